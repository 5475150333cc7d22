// Copyright 2026 The Kiln Authors.
// Definitions (operand checks and shape rules) of the reductions: Reduce*
// and ArgMinMax.
#include <algorithm>
#include <limits>
#include <numeric>
#include <string>

#include "src/graph/op_builder.h"
#include "src/graph/vjp.h"

namespace kiln::graph {

using internal::OpError;
using ir::OpType;

namespace {

// The dtypes a reduction accepts.
enum class ReduceKinds : uint8_t { kNumeric, kNumericOrComplex, kBool, kInteger };

bool Accepts(ReduceKinds kinds, dtypes::DType dt) {
  switch (kinds) {
    case ReduceKinds::kNumeric: return dtypes::IsFloat(dt) || dtypes::IsInteger(dt);
    case ReduceKinds::kNumericOrComplex: return dtypes::IsFloatOrComplex(dt) || dtypes::IsInteger(dt);
    case ReduceKinds::kBool: return dt == dtypes::Bool;
    case ReduceKinds::kInteger: return dtypes::IsInteger(dt);
  }
  return false;
}

const char* KindsName(ReduceKinds kinds) {
  switch (kinds) {
    case ReduceKinds::kNumeric: return "a numeric (integer or float) dtype";
    case ReduceKinds::kNumericOrComplex: return "a numeric (integer, float or complex) dtype";
    case ReduceKinds::kBool: return "Bool";
    case ReduceKinds::kInteger: return "an integer dtype";
  }
  return "";
}

// Checks the dtype, normalizes and sorts the axes (empty: all axes) and emits
// `op` with the reduced axes removed. A rank-0 x has nothing to reduce and is
// returned as is.
Node Reduce(OpType op, ReduceKinds kinds, Node x, const std::vector<int>& axes, const Loc& loc) {
  const std::string_view name = ir::OpName(op);
  Graph* g = internal::CheckNode(x, name, loc);
  if (!Accepts(kinds, x.DType())) {
    OpError(loc, name, std::string("requires ") + KindsName(kinds) + ", got " + x.Shape().ToString());
  }
  std::vector<int64_t> reduced;
  if (axes.empty()) {
    for (int i = 0; i < x.Rank(); ++i) reduced.push_back(i);
  } else {
    reduced = internal::NormalizeAxes(axes, x.Rank(), name, loc);
    std::sort(reduced.begin(), reduced.end());
  }
  if (reduced.empty()) return x;
  std::vector<int64_t> dims;
  for (int i = 0; i < x.Rank(); ++i) {
    if (!std::binary_search(reduced.begin(), reduced.end(), i)) dims.push_back(x.Shape().Dims()[i]);
  }
  return internal::Emit(g, op, {x}, shapes::Shape(x.DType(), dims), ir::AxesAttrs{std::move(reduced)}, loc);
}

// The largest value of an integer dtype, as an int64 (saturated for Uint64).
int64_t MaxIndexOf(dtypes::DType dt) {
  return DispatchDType(dt, [](auto zero) -> int64_t {
    using T = decltype(zero);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      if constexpr (sizeof(T) == 8) return std::numeric_limits<int64_t>::max();
      else return static_cast<int64_t>(std::numeric_limits<T>::max());
    } else {
      return 0;
    }
  });
}

}  // namespace

Node ReduceSum(Node x, std::vector<int> axes, Loc loc) {
  // Complex sums are two real ones (so every backend's reduction serves).
  if (x.Ok() && dtypes::IsComplex(x.DType())) {
    return Complex(ReduceSum(Real(x, loc), axes, loc), ReduceSum(Imag(x, loc), axes, loc), loc);
  }
  return Reduce(OpType::kReduceSum, ReduceKinds::kNumeric, x, axes, loc);
}
Node ReduceProduct(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceProduct, ReduceKinds::kNumericOrComplex, x, axes, loc);
}
Node ReduceMax(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceMax, ReduceKinds::kNumeric, x, axes, loc);
}
Node ReduceMin(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceMin, ReduceKinds::kNumeric, x, axes, loc);
}
Node ReduceLogicalAnd(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceLogicalAnd, ReduceKinds::kBool, x, axes, loc);
}
Node ReduceLogicalOr(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceLogicalOr, ReduceKinds::kBool, x, axes, loc);
}
Node ReduceLogicalXor(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceLogicalXor, ReduceKinds::kBool, x, axes, loc);
}
Node ReduceBitwiseAnd(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceBitwiseAnd, ReduceKinds::kInteger, x, axes, loc);
}
Node ReduceBitwiseOr(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceBitwiseOr, ReduceKinds::kInteger, x, axes, loc);
}
Node ReduceBitwiseXor(Node x, std::vector<int> axes, Loc loc) {
  return Reduce(OpType::kReduceBitwiseXor, ReduceKinds::kInteger, x, axes, loc);
}

Node ArgMinMax(Node x, int axis, bool is_min, dtypes::DType index_dtype, Loc loc) {
  Graph* g = internal::CheckNode(x, "ArgMinMax", loc);
  if (!Accepts(ReduceKinds::kNumeric, x.DType())) {
    OpError(loc, "ArgMinMax", "requires a numeric (integer or float) dtype, got " + x.Shape().ToString());
  }
  if (!dtypes::IsInteger(index_dtype)) {
    OpError(loc, "ArgMinMax", std::string("index dtype must be an integer type, got ") + dtypes::Name(index_dtype));
  }
  if (x.Shape().IsScalar()) OpError(loc, "ArgMinMax", "operand must have at least one axis, got " + x.Shape().ToString());
  const int a = internal::NormalizeAxis(axis, x.Rank(), "ArgMinMax", loc);
  const int64_t d = x.Shape().Dims()[a];
  // An empty axis has no min or max (numpy and JAX reject it too).
  if (d == 0) OpError(loc, "ArgMinMax", "axis " + std::to_string(axis) + " of " + x.Shape().ToString() + " is empty");
  if (d - 1 > MaxIndexOf(index_dtype)) {
    OpError(loc, "ArgMinMax", std::string("index dtype ") + dtypes::Name(index_dtype) + " cannot hold index " +
                                  std::to_string(d - 1) + " of axis " + std::to_string(axis) + " of " +
                                  x.Shape().ToString());
  }
  std::vector<int64_t> dims = x.Shape().Dims();
  dims.erase(dims.begin() + a);
  return internal::Emit(g, OpType::kArgMinMax, {x}, shapes::Shape(index_dtype, dims), ir::ArgMinMaxAttrs{a, is_min},
                        loc);
}

// ------------------------------------------------------------ VJP rules.
// Gradients of the float reductions, written with graph ops so that they can
// be differentiated again. The logical and bitwise reductions and ArgMinMax
// have integer or Bool results and no rule.

namespace {

using internal::VJPArgs;

// The reduced axes of a Reduce* instruction (sorted) and the kept ones.
struct ReducedAxes {
  std::vector<int64_t> reduced;
  std::vector<int> kept;
};

ReducedAxes AxesOf(const VJPArgs& a) {
  ReducedAxes r{ir::Attr<ir::AxesAttrs>(a.instr).axes, {}};
  for (int i = 0; i < a.operands[0].Rank(); ++i) {
    if (!std::binary_search(r.reduced.begin(), r.reduced.end(), i)) r.kept.push_back(i);
  }
  return r;
}

// `v`, of the reduction's output shape, broadcast back to the operand's dims
// (each kept axis maps to its place in the operand).
Node BroadcastBack(Node v, const Node& operand, const ReducedAxes& axes, const Loc& loc) {
  return BroadcastInDim(v, operand.Shape().Dims(), axes.kept, loc);
}

std::vector<Node> ReduceSumVJP(const VJPArgs& a) {
  return {BroadcastBack(a.cotangent, a.operands[0], AxesOf(a), a.loc)};
}

// `x` (shape [m, n]) shifted right by `shift` along axis 1, filled with ones:
// result[:, i] = x[:, i - shift], 1 for i < shift. Requires 0 < shift < n.
Node ShiftRightWithOnes(Node x, int64_t shift, const Loc& loc) {
  const auto& d = x.Shape().Dims();
  Node kept = Slice(x, {0, 0}, {d[0], d[1] - shift}, {}, loc);
  return Pad(kept, ScalarLike(x, 1, loc), {0, shift}, {0, 0}, {}, loc);
}

// Exclusive prefix products along axis 1 of `x` ([m, n], n > 1):
// result[:, i] = x[:, 0] * ... * x[:, i - 1] (1 for i = 0). A Hillis-Steele
// scan: ceil(log2 n) multiply steps, no division.
Node ExclusiveCumProd(Node x, const Loc& loc) {
  const int64_t n = x.Shape().Dims()[1];
  Node scan = ShiftRightWithOnes(x, 1, loc);
  for (int64_t shift = 1; shift < n; shift *= 2) scan = Mul(scan, ShiftRightWithOnes(scan, shift, loc), loc);
  return scan;
}

// d prod(x) / d x_i = the product of the other elements of x_i's group,
// computed as (product of the elements before it) * (product of those after
// it). No division, so zeros in the input are exact: with one zero in a group
// only that element gets a nonzero gradient, with two or more all get zero.
// The products are polynomials of x, so higher derivatives are exact too.
// The reduced axes are moved last and flattened: the scan runs on [m, n].
std::vector<Node> ReduceProductVJP(const VJPArgs& a) {
  const Node& x = a.operands[0];
  const ReducedAxes axes = AxesOf(a);
  const auto& dims = x.Shape().Dims();
  int64_t m = 1, n = 1;
  std::vector<int> perm = axes.kept;
  for (int k : axes.kept) m *= dims[k];
  for (int64_t r : axes.reduced) {
    n *= dims[r];
    perm.push_back(static_cast<int>(r));
  }
  if (m == 0 || n == 0) return {ZerosLike(x, a.loc)};
  Node xt = Transpose(x, perm, a.loc);
  Node others;
  if (n == 1) {
    others = OnesLike(xt, a.loc);  // an empty product
  } else {
    Node x2 = Reshape(xt, {m, n}, a.loc);
    Node before = ExclusiveCumProd(x2, a.loc);
    Node after = Reverse(ExclusiveCumProd(Reverse(x2, {1}, a.loc), a.loc), {1}, a.loc);
    others = Reshape(Mul(before, after, a.loc), xt.Shape().Dims(), a.loc);
  }
  // The cotangent broadcast over the trailing reduced axes of xt.
  std::vector<int> lead(axes.kept.size());
  std::iota(lead.begin(), lead.end(), 0);
  Node grad = Mul(others, BroadcastInDim(a.cotangent, xt.Shape().Dims(), lead, a.loc), a.loc);
  std::vector<int> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<int>(i);
  return {Transpose(grad, inverse, a.loc)};
}

// Max/Min: the cotangent goes to the elements equal to the result; ties split
// it evenly among them, as JAX does (so the gradient of a group sums to the
// cotangent). Inputs are assumed NaN-free: a NaN result matches no element
// and gives a zero gradient. The tie count is kept in x's dtype (exact up to
// 2048 ties for Float16, 256 for BFloat16).
std::vector<Node> SelectReductionVJP(const VJPArgs& a) {
  const Node& x = a.operands[0];
  const ReducedAxes axes = AxesOf(a);
  Node selected = ConvertDType(Equal(x, BroadcastBack(a.output, x, axes, a.loc), a.loc), x.DType(), a.loc);
  std::vector<int> reduced(axes.reduced.begin(), axes.reduced.end());
  Node count = ReduceSum(selected, reduced, a.loc);  // >= 1 for every non-empty group
  Node share = Div(a.cotangent, count, a.loc);
  return {Mul(selected, BroadcastBack(share, x, axes, a.loc), a.loc)};
}

}  // namespace

namespace internal {

void RegisterReduceVJPs(VJPTable& table) {
  auto set = [&](OpType op, VJPRule rule) { table[static_cast<size_t>(op)] = rule; };
  set(OpType::kReduceSum, ReduceSumVJP);
  set(OpType::kReduceProduct, ReduceProductVJP);
  set(OpType::kReduceMax, SelectReductionVJP);
  set(OpType::kReduceMin, SelectReductionVJP);
}

}  // namespace internal

}  // namespace kiln::graph
