// Copyright 2026 The Kiln Authors.
// Sort and the helpers on it (see kiln/graph/sort.h): the Sort instruction
// (a tuple of the sorted operands) with built-in keys or a traced
// comparator, TakeAlongAxis, and Sort's VJP (the cotangents scattered back
// through the permutation, found by sorting an Iota along).
#include "kiln/graph/sort.h"

#include <limits>
#include <string>
#include <vector>

#include "kiln/graph/ops.h"
#include "src/graph/op_builder.h"
#include "src/graph/tracing.h"
#include "src/graph/vjp.h"

namespace kiln::graph {

using internal::OpError;

namespace {

// Emits Sort over `operands` (checked: one shape, rank >= 1) and its
// GetTupleElements. `comparator`, if any, becomes its sub-function.
std::vector<Node> EmitSort(Graph* g, const std::vector<Node>& operands, ir::SortAttrs attrs,
                           const internal::Traced* comparator, const Loc& loc) {
  if (comparator != nullptr) attrs.comparator = g->AddSubfunction(comparator->function, comparator->graph);
  return internal::EmitTuple(g, ir::OpType::kSort, operands, std::move(attrs), internal::ShapesOf(operands), loc);
}

// Checks the operands of a sort and returns the normalized axis.
int64_t CheckSortOperands(const std::vector<Node>& operands, int axis, std::string_view op, const Loc& loc) {
  if (operands.empty()) OpError(loc, op, "needs at least one operand");
  internal::CheckSameGraph(operands, op, loc);
  const shapes::Shape& first = operands[0].Shape();
  if (first.Rank() == 0) OpError(loc, op, "needs an axis to sort along, but the operand is a scalar " + first.ToString());
  for (size_t i = 1; i < operands.size(); ++i) {
    if (operands[i].Shape().Dims() != first.Dims()) {
      OpError(loc, op, "operand #" + std::to_string(i) + " " + operands[i].Shape().ToString() +
                           " must have the dimensions of operand #0 " + first.ToString());
    }
  }
  return internal::NormalizeAxis(axis, first.Rank(), op, loc);
}

// The index dtype able to count `n` elements.
dtypes::DType IndexDTypeFor(int64_t n) {
  return n > std::numeric_limits<int32_t>::max() ? dtypes::Int64 : dtypes::Int32;
}

// The full coordinates of `indices` along `axis` (Iotas along the others),
// stacked as the last axis: the index vectors of a point Gather/Scatter.
Node Coordinates(Node indices, int axis, const Loc& loc) {
  std::vector<Node> coords;
  for (int d = 0; d < indices.Rank(); ++d) {
    coords.push_back(d == axis ? indices : Iota(indices.Graph(), indices.Shape(), d, loc));
  }
  return Stack(coords, indices.Rank(), loc);
}

std::vector<int64_t> AllAxes(int rank) {
  std::vector<int64_t> axes;
  for (int d = 0; d < rank; ++d) axes.push_back(d);
  return axes;
}

// zeros with updates[..., j, ...] added at [..., indices[..., j, ...], ...].
Node ScatterAlongAxis(Node updates, Node indices, int axis, const Loc& loc) {
  ir::ScatterAttrs attrs;
  attrs.inserted_window_dims = AllAxes(updates.Rank());
  attrs.scatter_dims_to_operand_dims = AllAxes(updates.Rank());
  attrs.index_vector_dim = updates.Rank();
  return ScatterSum(ZerosLike(updates, loc), Coordinates(indices, axis, loc), updates, std::move(attrs), loc);
}

}  // namespace

std::vector<Node> SortTogether(const std::vector<Node>& operands, int axis, int num_keys, SortOptions options,
                               Loc loc) {
  const int64_t a = CheckSortOperands(operands, axis, "Sort", loc);
  if (num_keys < 1 || num_keys > static_cast<int>(operands.size())) {
    OpError(loc, "Sort", "num_keys must be in [1, " + std::to_string(operands.size()) + "], got " +
                             std::to_string(num_keys));
  }
  ir::SortAttrs attrs;
  attrs.axis = a;
  attrs.stable = options.stable;
  for (int k = 0; k < num_keys; ++k) {
    attrs.keys.push_back(k);
    attrs.descending.push_back(options.descending);
  }
  return EmitSort(internal::TargetGraph(operands, "Sort", loc), operands, std::move(attrs), nullptr, loc);
}

Node Sort(Node x, int axis, SortOptions options, Loc loc) { return SortTogether({x}, axis, 1, options, loc)[0]; }

std::vector<Node> SortWithComparator(const std::vector<Node>& operands, int axis, const Comparator& less, bool stable,
                                     Loc loc) {
  const int64_t a = CheckSortOperands(operands, axis, "SortWithComparator", loc);
  if (!less) OpError(loc, "SortWithComparator", "the comparator must be a non-empty function");
  Graph* g = internal::TargetGraph(operands, "SortWithComparator", loc);
  std::vector<shapes::Shape> scalars;
  for (const Node& o : operands) {
    scalars.emplace_back(o.DType(), std::vector<int64_t>{});
    scalars.emplace_back(o.DType(), std::vector<int64_t>{});
  }
  const size_t n = operands.size();
  const internal::Traced cmp = internal::Trace(
      g, "comparator", scalars, {},
      [&](const std::vector<Node>& p) {
        std::vector<Node> lhs, rhs;
        for (size_t i = 0; i < n; ++i) {
          lhs.push_back(p[2 * i]);
          rhs.push_back(p[2 * i + 1]);
        }
        return std::vector<Node>{less(lhs, rhs)};
      },
      "SortWithComparator", loc);
  if (cmp.results.size() != 1 || cmp.results[0] != shapes::Shape(dtypes::Bool, {})) {
    OpError(loc, "SortWithComparator", "the comparator must return one Bool scalar, got " + cmp.results[0].ToString());
  }
  if (!cmp.graph->Captures().empty()) {
    OpError(loc, "SortWithComparator",
            "the comparator uses a value from outside it; it may only use its arguments and constants");
  }
  ir::SortAttrs attrs;
  attrs.axis = a;
  attrs.stable = stable;
  return EmitSort(g, operands, std::move(attrs), &cmp, loc);
}

Node ArgSort(Node x, int axis, SortOptions options, dtypes::DType index_dtype, Loc loc) {
  const int64_t a = CheckSortOperands({x}, axis, "ArgSort", loc);
  if (!dtypes::IsInteger(index_dtype)) {
    OpError(loc, "ArgSort", "index_dtype must be an integer dtype, got " + std::string(dtypes::Name(index_dtype)));
  }
  const Node iota = Iota(x.Graph(), shapes::Shape(index_dtype, x.Shape().Dims()), static_cast<int>(a), loc);
  return SortTogether({x, iota}, static_cast<int>(a), 1, options, loc)[1];
}

namespace {

TopKResult SelectK(Node x, int64_t k, int axis, dtypes::DType index_dtype, bool largest, std::string_view op,
                   const Loc& loc) {
  const int64_t a = CheckSortOperands({x}, axis, op, loc);
  const int64_t n = x.Shape().Dims()[static_cast<size_t>(a)];
  if (k < 0 || k > n) {
    OpError(loc, op, "k must be in [0, " + std::to_string(n) + "] for " + x.Shape().ToString() + " along axis " +
                         std::to_string(a) + ", got " + std::to_string(k));
  }
  if (!dtypes::IsInteger(index_dtype)) {
    OpError(loc, op, "index_dtype must be an integer dtype, got " + std::string(dtypes::Name(index_dtype)));
  }
  const Node iota = Iota(x.Graph(), shapes::Shape(index_dtype, x.Shape().Dims()), static_cast<int>(a), loc);
  const std::vector<Node> sorted =
      SortTogether({x, iota}, static_cast<int>(a), 1, SortOptions{.descending = largest}, loc);
  return {SliceAxis(sorted[0], static_cast<int>(a), 0, k, 1, loc), SliceAxis(sorted[1], static_cast<int>(a), 0, k, 1, loc)};
}

}  // namespace

TopKResult TopK(Node x, int64_t k, int axis, dtypes::DType index_dtype, Loc loc) {
  return SelectK(x, k, axis, index_dtype, true, "TopK", loc);
}

TopKResult BottomK(Node x, int64_t k, int axis, dtypes::DType index_dtype, Loc loc) {
  return SelectK(x, k, axis, index_dtype, false, "BottomK", loc);
}

Node TakeAlongAxis(Node x, Node indices, int axis, Loc loc) {
  internal::CheckSameGraph({x, indices}, "TakeAlongAxis", loc);
  if (!dtypes::IsInteger(indices.DType())) {
    OpError(loc, "TakeAlongAxis", "indices must have an integer dtype, got " + indices.Shape().ToString());
  }
  if (x.Rank() == 0 || indices.Rank() != x.Rank()) {
    OpError(loc, "TakeAlongAxis", "indices " + indices.Shape().ToString() + " must have the rank of x " +
                                      x.Shape().ToString() + " (at least 1)");
  }
  const int a = internal::NormalizeAxis(axis, x.Rank(), "TakeAlongAxis", loc);
  for (int d = 0; d < x.Rank(); ++d) {
    if (d != a && indices.Shape().Dims()[d] != x.Shape().Dims()[d]) {
      OpError(loc, "TakeAlongAxis", "indices " + indices.Shape().ToString() + " must match x " +
                                        x.Shape().ToString() + " on every axis but " + std::to_string(a));
    }
  }
  // Nothing to gather (a Gather of size-1 slices needs every axis of x
  // non-empty): zeros of the indices' shape.
  if (x.Shape().Size() == 0 || indices.Shape().Size() == 0) {
    return Zeros(x.Graph(), shapes::Shape(x.DType(), indices.Shape().Dims()), loc);
  }
  ir::GatherAttrs attrs;
  attrs.collapsed_slice_dims = AllAxes(x.Rank());
  attrs.start_index_map = AllAxes(x.Rank());
  attrs.index_vector_dim = x.Rank();
  attrs.slice_sizes.assign(static_cast<size_t>(x.Rank()), 1);
  return Gather(x, Coordinates(indices, a, loc), std::move(attrs), loc);
}

// ------------------------------------------------------------ VJP rule.

namespace {

// Each sorted float operand's cotangent goes back to the position its
// element came from. The permutation is found by sorting an Iota along with
// the operands, with the same keys or comparator.
std::vector<Node> SortVJP(const internal::VJPArgs& a) {
  const auto& attrs = ir::Attr<ir::SortAttrs>(a.instr);
  const Loc& loc = a.loc;
  std::vector<Node> grads(a.operands.size());
  bool any = false;
  for (size_t i = 0; i < a.operands.size(); ++i) any |= a.cotangents[i].Ok() && dtypes::IsFloat(a.operands[i].DType());
  if (!any) return grads;
  const int axis = static_cast<int>(attrs.axis);
  const shapes::Shape& shape = a.operands[0].Shape();
  const Node iota = Iota(a.g, shapes::Shape(IndexDTypeFor(shape.Dims()[static_cast<size_t>(axis)]), shape.Dims()), axis, loc);
  std::vector<Node> operands = a.operands;
  operands.push_back(iota);
  ir::SortAttrs with_iota = attrs;
  std::vector<Node> sorted;
  if (attrs.comparator < 0) {
    with_iota.comparator = -1;
    sorted = EmitSort(a.g, operands, std::move(with_iota), nullptr, loc);
  } else {
    // The same comparator, ignoring the Iota's pair of arguments.
    const Graph& cmp = *a.g->Subgraph(attrs.comparator);
    std::vector<shapes::Shape> scalars;
    for (const Node& o : operands) {
      scalars.emplace_back(o.DType(), std::vector<int64_t>{});
      scalars.emplace_back(o.DType(), std::vector<int64_t>{});
    }
    const internal::Traced traced = internal::Trace(
        a.g, "comparator", scalars, {},
        [&](const std::vector<Node>& p) {
          return internal::Inline(cmp, std::vector<Node>(p.begin(), p.end() - 2), internal::Current());
        },
        "Sort", loc);
    with_iota.comparator = -1;
    sorted = EmitSort(a.g, operands, std::move(with_iota), &traced, loc);
  }
  const Node perm = sorted.back();
  for (size_t i = 0; i < a.operands.size(); ++i) {
    if (!a.cotangents[i].Ok() || !dtypes::IsFloat(a.operands[i].DType())) continue;
    grads[i] = ScatterAlongAxis(a.cotangents[i], perm, axis, loc);
  }
  return grads;
}

}  // namespace

namespace internal {
void RegisterSortVJPs(VJPTable& table) { table[static_cast<size_t>(ir::OpType::kSort)] = SortVJP; }
}  // namespace internal

}  // namespace kiln::graph
