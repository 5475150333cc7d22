// Copyright 2026 The Kiln Authors.
// Cumulative reductions (see kiln/graph/cumulative.h) as ReduceWindows over
// the whole axis.
#include "kiln/graph/cumulative.h"

#include <string>
#include <vector>

#include "kiln/graph/autodiff.h"
#include "kiln/graph/ops.h"
#include "src/graph/op_builder.h"
#include "src/graph/vjp.h"
#include "src/ir/cumulative_window.h"

namespace kiln::graph {

namespace {

// The normalized axis of a cumulative op; x must be a valid node of rank >= 1.
int CumulativeAxis(Node x, int axis, std::string_view op, const Loc& loc) {
  internal::CheckNode(x, op, loc);
  if (x.Rank() == 0) internal::OpError(loc, op, "needs an axis, but the operand is a scalar " + x.Shape().ToString());
  return internal::NormalizeAxis(axis, x.Rank(), op, loc);
}

// One ReduceWindow: along `axis` a window of n elements with stride 1,
// padded so that output i covers [0, i] (inclusive), [0, i) (exclusive), or
// the mirror images when reversed; padding contributes the identity.
Node Cumulative(Node x, int axis, CumulativeOptions o, ir::WindowReduction reduction, std::string_view op,
                const Loc& loc) {
  const int a = CumulativeAxis(x, axis, op, loc);
  if (x.DType() == dtypes::Bool) internal::OpError(loc, op, "Bool operands are not supported: " + x.Shape().ToString());
  if (dtypes::IsComplex(x.DType()) && reduction != ir::WindowReduction::kProduct) {
    internal::OpError(loc, op, "is not defined on complex numbers (they have no order), got " + x.Shape().ToString());
  }
  const int64_t n = x.Shape().Dims()[static_cast<size_t>(a)];
  if (n == 0) return x;  // nothing to combine
  const size_t rank = static_cast<size_t>(x.Rank());
  ir::WindowAttrs w;
  w.reduction = reduction;
  w.window_dimensions.assign(rank, 1);
  w.strides.assign(rank, 1);
  w.base_dilations.assign(rank, 1);
  w.window_dilations.assign(rank, 1);
  w.padding_low.assign(rank, 0);
  w.padding_high.assign(rank, 0);
  const auto ax = static_cast<size_t>(a);
  w.window_dimensions[ax] = n;
  // Output i's window starts at padded position i, i.e. at element i - low.
  if (!o.reverse) {
    w.padding_low[ax] = o.exclusive ? n : n - 1;
    w.padding_high[ax] = o.exclusive ? -1 : 0;
  } else {
    w.padding_low[ax] = o.exclusive ? -1 : 0;
    w.padding_high[ax] = o.exclusive ? n : n - 1;
  }
  return ReduceWindow(x, std::move(w), loc);
}

// d/dx_k of an inclusive forward CumProd y (y_i = x_0 ... x_i), given the
// cotangent g: sum_{i >= k} g_i prod_{j <= i, j != k} x_j, in O(n) (as
// PyTorch's cumprod_backward). Before the first zero z the product of the
// others is y_i / x_k, so the gradient is a reversed CumSum of g y over x_k;
// at z it is the reversed CumSum of g y' with y' the CumProd of x with x_z
// replaced by 1; after z every product holds x_z = 0. As in PyTorch's, the
// division has limits: where y underflows to 0 while x_k is tiny but not
// zero it loses the terms beyond the underflow, and an infinite x_k gives
// Inf / Inf = NaN (an explicit product of the others would be finite).
Node InclusiveCumProdGrad(Node x, Node g, int axis, const Loc& loc) {
  Node zero = ScalarLike(x, 0, loc), one = ScalarLike(x, 1, loc);
  Node is_zero = Equal(x, zero, loc);
  Node zeros_before = CumSum(ConvertDType(is_zero, dtypes::Int32, loc), axis, {.exclusive = true}, loc);
  Node none_before = Equal(zeros_before, ScalarLike(zeros_before, 0, loc), loc);
  Node first_zero = LogicalAnd(is_zero, none_before, loc);
  const CumulativeOptions suffix{.reverse = true};
  Node y = CumProd(x, axis, {}, loc);
  Node nonzero_part = CumSum(g * y, axis, suffix, loc) / Where(is_zero, one, x, loc);
  Node at_first_zero = CumSum(g * CumProd(Where(first_zero, one, x, loc), axis, {}, loc), axis, suffix, loc);
  return Where(LogicalAnd(none_before, LogicalNot(is_zero, loc), loc), nonzero_part,
               Where(first_zero, at_first_zero, zero, loc), loc);
}

}  // namespace

namespace internal {

Node CumulativeWindowGrad(const ir::WindowAttrs& attrs, Node x, Node cotangent, const Loc& loc) {
  const std::optional<ir::CumulativeWindow> c = ir::AsCumulativeWindow(attrs, x.Shape().Dims());
  if (!c) return {};
  const int axis = c->axis;
  if (attrs.reduction == ir::WindowReduction::kSum) {
    // Each element feeds the outputs after it (before it, reversed): the
    // cotangent summed the other way.
    return CumSum(cotangent, axis, {.exclusive = c->exclusive, .reverse = !c->reverse}, loc);
  }
  if (attrs.reduction != ir::WindowReduction::kProduct) return {};
  // Reversed: the forward case on the reversed axis. Exclusive: output i is
  // the inclusive CumProd of x' = [1, x_0, ..., x_{n-2}], so x_j's gradient
  // is x'_{j+1}'s, and the last element (which no output uses) gets 0; it is
  // left out of the products, where an Inf or NaN in it would turn 0 * Inf
  // into NaN.
  Node xs = c->reverse ? Reverse(x, {axis}, loc) : x;
  Node g = c->reverse ? Reverse(cotangent, {axis}, loc) : cotangent;
  const int64_t n = x.Shape().Dims()[static_cast<size_t>(axis)];
  std::vector<int64_t> one_dims = x.Shape().Dims();
  one_dims[static_cast<size_t>(axis)] = 1;
  if (c->exclusive) {
    Node ones = Ones(x.Graph(), shapes::Shape(x.DType(), one_dims), loc);
    xs = Concatenate({ones, SliceAxis(xs, axis, 0, n - 1, 1, loc)}, axis, loc);
  }
  Node grad = InclusiveCumProdGrad(xs, g, axis, loc);
  if (c->exclusive) {
    grad = Concatenate({SliceAxis(grad, axis, 1, n, 1, loc), Zeros(x.Graph(), shapes::Shape(x.DType(), one_dims), loc)},
                       axis, loc);
  }
  return c->reverse ? Reverse(grad, {axis}, loc) : grad;
}

}  // namespace internal

Node CumSum(Node x, int axis, CumulativeOptions options, Loc loc) {
  if (x.Ok() && dtypes::IsComplex(x.DType())) {  // sums of complex numbers are sums of their parts
    CumulativeAxis(x, axis, "CumSum", loc);         // errors name the complex operand
    return Complex(CumSum(Real(x, loc), axis, options, loc), CumSum(Imag(x, loc), axis, options, loc), loc);
  }
  return Cumulative(x, axis, options, ir::WindowReduction::kSum, "CumSum", loc);
}

Node CumProd(Node x, int axis, CumulativeOptions options, Loc loc) {
  return Cumulative(x, axis, options, ir::WindowReduction::kProduct, "CumProd", loc);
}

Node CumMax(Node x, int axis, CumulativeOptions options, Loc loc) {
  return Cumulative(x, axis, options, ir::WindowReduction::kMax, "CumMax", loc);
}

Node CumMin(Node x, int axis, CumulativeOptions options, Loc loc) {
  return Cumulative(x, axis, options, ir::WindowReduction::kMin, "CumMin", loc);
}

// m + log(CumSum(exp(x - m))) with m the axis' maximum (0 where it is not
// finite, so all -Inf stays -Inf). m's gradient is zero analytically, so it is
// stopped rather than sent through ReduceMax's tie rule.
Node CumLogSumExp(Node x, int axis, CumulativeOptions options, Loc loc) {
  constexpr std::string_view kOp = "CumLogSumExp";
  internal::CheckNode(x, kOp, loc);
  if (!dtypes::IsFloat(x.DType())) {
    internal::OpError(loc, kOp, "needs a float operand, got " + x.Shape().ToString());
  }
  const int a = CumulativeAxis(x, axis, kOp, loc);
  if (x.Shape().Dims()[static_cast<size_t>(a)] == 0) return x;
  Node m = ReduceMax(StopGradient(x, loc), std::vector<int>{a}, loc);
  m = Where(IsFinite(m, loc), m, ZerosLike(m, loc), loc);
  std::vector<int> kept;
  for (int d = 0; d < x.Rank(); ++d) {
    if (d != a) kept.push_back(d);
  }
  Node mb = BroadcastInDim(m, x.Shape().Dims(), kept, loc);
  return Add(mb, Log(Cumulative(Exp(Sub(x, mb, loc), loc), a, options, ir::WindowReduction::kSum, kOp, loc), loc), loc);
}

}  // namespace kiln::graph
