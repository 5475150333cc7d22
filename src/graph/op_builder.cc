// Copyright 2026 The Kiln Authors.
#include "src/graph/op_builder.h"

#include <algorithm>

namespace kiln::graph::internal {

void OpError(const Loc& loc, std::string_view op, const std::string& message) {
  ThrowAt(loc, std::string(op) + ": " + message);
}

std::string ListToString(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string ListToString(const std::vector<int>& v) { return ListToString(std::vector<int64_t>(v.begin(), v.end())); }

namespace {
[[noreturn]] void ThrowStaleOperand(const Loc& loc, std::string_view op, const std::string& which) {
  OpError(loc, op, which + " is a Node whose graph no longer exists (kept from an earlier trace?)");
}
}  // namespace

Graph* CheckNode(const Node& n, std::string_view op, const Loc& loc) {
  if (!n.Ok()) OpError(loc, op, "operand is an empty Node");
  if (!n.Alive()) ThrowStaleOperand(loc, op, "the operand");
  return n.Graph();
}

Graph* CheckSameGraph(const std::vector<Node>& nodes, std::string_view op, const Loc& loc) {
  if (nodes.empty()) OpError(loc, op, "needs at least one operand");
  Graph* g = nullptr;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (!nodes[i].Ok()) OpError(loc, op, "operand #" + std::to_string(i) + " is an empty Node");
    if (!nodes[i].Alive()) ThrowStaleOperand(loc, op, "operand #" + std::to_string(i));
    Graph* ng = nodes[i].Graph();
    // Nodes of enclosing graphs may be mixed with a sub-graph's own (they
    // are captured): the op goes to the innermost graph.
    if (g == nullptr || ng->IsWithin(g)) {
      g = ng;
    } else if (!g->IsWithin(ng)) {
      OpError(loc, op, "operands belong to different graphs (\"" + g->Name() + "\" and \"" + ng->Name() + "\")");
    }
  }
  return g;
}

namespace {

// Whether `op` is defined on complex values: the elementwise ops whose dtype
// class includes them (their builders check which), the data-movement and
// control-flow ops (which never look at the values) and the complex ops.
bool TakesComplex(ir::OpType op) {
  using ir::OpType;
  switch (ir::DTypeClassOf(op)) {
    case ir::DTypeClass::kFloatOrComplex:
    case ir::DTypeClass::kNumericOrComplex:
    case ir::DTypeClass::kAnyOrComplex: return true;
    default: break;
  }
  switch (op) {
    case OpType::kParameter:
    case OpType::kConstant:
    case OpType::kBitcast:
    case OpType::kReshape:
    case OpType::kTranspose:
    case OpType::kBroadcastInDim:
    case OpType::kConcatenate:
    case OpType::kSlice:
    case OpType::kPad:
    case OpType::kReverse:
    case OpType::kDynamicSlice:
    case OpType::kDynamicUpdateSlice:
    case OpType::kGather:
    case OpType::kScatterSum:
    case OpType::kScatterUpdate:
    case OpType::kWhile:
    case OpType::kIf:
    case OpType::kGetTupleElement:
    case OpType::kComplex:
    case OpType::kReal:
    case OpType::kImag:
    case OpType::kFft:
    case OpType::kReduceProduct:
    case OpType::kReduceWindow:  // sums and products; ReduceWindow refuses complex max and min
    case OpType::kCollective: return true;
    default: return false;
  }
}

}  // namespace

void CheckComplexSupport(ir::OpType op, const std::vector<Node>& operands, const shapes::Shape& shape,
                         const Loc& loc) {
  if (TakesComplex(op)) return;
  bool complex = dtypes::IsComplex(shape.DType());
  for (const Node& n : operands) complex = complex || (n.Ok() && dtypes::IsComplex(n.DType()));
  if (!complex) return;
  std::string shapes;
  for (const Node& n : operands) shapes += (shapes.empty() ? "" : ", ") + n.Shape().ToString();
  OpError(loc, ir::OpName(op), "is not defined on complex numbers, got " + (shapes.empty() ? shape.ToString() : shapes));
}

Node Emit(Graph* g, ir::OpType op, const std::vector<Node>& operands, shapes::Shape shape, ir::Attributes attrs,
          const Loc& loc) {
  // One check for every op that has no complex kernels, so none of them
  // reaches a backend with a complex value.
  CheckComplexSupport(op, operands, shape, loc);
  for (const Node& n : operands) {
    if (n.Ok() && n.Graph() != g && n.Alive() && n.Graph()->IsWithin(g)) g = n.Graph();
  }
  return g->AddInstruction(op, operands, std::move(shape), std::move(attrs), loc);
}

shapes::Shape OpShape(dtypes::DType dtype, std::vector<int64_t> dims, std::string_view op, const Loc& loc) {
  try {
    return shapes::Shape(dtype, std::move(dims));
  } catch (const Error& e) {
    OpError(loc, op, std::string("result ") + e.what());
  }
}

int64_t CheckedAdd(int64_t a, int64_t b, std::string_view op, const Loc& loc) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) {
    OpError(loc, op, "dimension " + std::to_string(a) + " + " + std::to_string(b) + " overflows int64");
  }
  return r;
}

int64_t CheckedMul(int64_t a, int64_t b, std::string_view op, const Loc& loc) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r)) {
    OpError(loc, op, "dimension " + std::to_string(a) + " * " + std::to_string(b) + " overflows int64");
  }
  return r;
}

int NormalizeAxis(int axis, int rank, std::string_view op, const Loc& loc) {
  int a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) {
    OpError(loc, op, "axis " + std::to_string(axis) + " is out of range for rank " + std::to_string(rank));
  }
  return a;
}

std::vector<int64_t> NormalizeAxes(const std::vector<int>& axes, int rank, std::string_view op, const Loc& loc) {
  std::vector<int64_t> out;
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int axis : axes) {
    int a = NormalizeAxis(axis, rank, op, loc);
    if (seen[a]) OpError(loc, op, "axis " + std::to_string(axis) + " appears twice in " + ListToString(axes));
    seen[a] = true;
    out.push_back(a);
  }
  return out;
}

std::vector<int64_t> BroadcastDims(const shapes::Shape& a, const shapes::Shape& b, std::string_view op,
                                   const Loc& loc) {
  const int rank = std::max(a.Rank(), b.Rank());
  std::vector<int64_t> dims(static_cast<size_t>(rank));
  for (int i = 0; i < rank; ++i) {
    int ia = a.Rank() - rank + i, ib = b.Rank() - rank + i;
    int64_t da = ia >= 0 ? a.Dims()[ia] : 1;
    int64_t db = ib >= 0 ? b.Dims()[ib] : 1;
    if (da != db && da != 1 && db != 1) {
      OpError(loc, op, "shapes " + a.ToString() + " and " + b.ToString() + " cannot be broadcast");
    }
    dims[i] = da == 1 ? db : da;
  }
  internal::OpShape(a.DType(), dims, op, loc);  // the broadcast size must fit int64
  return dims;
}

Node BroadcastToDims(Node x, const std::vector<int64_t>& dims, const Loc& loc) {
  if (x.Shape().Dims() == dims) return x;
  const int rank = static_cast<int>(dims.size());
  std::vector<int> axes;
  for (int i = 0; i < x.Rank(); ++i) axes.push_back(rank - x.Rank() + i);
  return BroadcastInDim(x, dims, axes, loc);
}

}  // namespace kiln::graph::internal
