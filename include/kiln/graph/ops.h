// Copyright 2026 The Kiln Authors.
// Every op of the op set as a free function over graph::Node, plus the
// numpy-style helpers built from them.
//
// Every function checks its operands when called and throws kiln::Error
// naming the op, the operand shapes and the caller's file:line.
// Binary elementwise ops broadcast numpy-style (trailing axes aligned, size-1
// axes stretched); the IR itself only sees equal shapes.
#pragma once

#include <concepts>
#include <string>
#include <utility>
#include <vector>

#include "kiln/graph/graph.h"

namespace kiln::graph {

// ---------------------------------------------------------------- Unary ops.
// Float ops (Exp, Log, Sin, ...) require a float dtype; Abs, Neg, Sign work on
// every integer and float dtype (Neg of an unsigned value wraps); bit ops on
// integers; LogicalNot on Bool. IsFinite/IsNaN return Bool. Abs, Neg, Exp,
// Log, Sin, Cos, Tanh, Sqrt, Rsqrt (principal branches, as std::complex) and
// Add, Sub, Mul, Div, Pow, Equal, NotEqual, Where take complex values too.

/// |x|; for complex x its modulus, of the real dtype (Complex64 -> Float32).
Node Abs(Node x, Loc loc = Loc::current());
/// -x (wraps for integers).
Node Neg(Node x, Loc loc = Loc::current());
/// -1, 0 or 1 (NaN for NaN; for unsigned 0 or 1); for complex x, x / |x|
/// (0 at 0), as torch.sgn.
Node Sign(Node x, Loc loc = Loc::current());
/// Smallest integer value >= x.
Node Ceil(Node x, Loc loc = Loc::current());
/// Largest integer value <= x.
Node Floor(Node x, Loc loc = Loc::current());
/// Rounds half to even (2.5 -> 2, 3.5 -> 4), as numpy.round and jnp.round.
Node Round(Node x, Loc loc = Loc::current());
/// e^x.
Node Exp(Node x, Loc loc = Loc::current());
/// exp(x) - 1, accurate near 0 (complex x too).
Node Expm1(Node x, Loc loc = Loc::current());
/// Natural logarithm (NaN below 0, -Inf at 0).
Node Log(Node x, Loc loc = Loc::current());
/// log(1 + x), accurate near 0 (complex x too, principal branch).
Node Log1p(Node x, Loc loc = Loc::current());
/// 1 / (1 + exp(-x)).
Node Logistic(Node x, Loc loc = Loc::current());
/// Sine (radians).
Node Sin(Node x, Loc loc = Loc::current());
/// Cosine (radians).
Node Cos(Node x, Loc loc = Loc::current());
/// Hyperbolic tangent.
Node Tanh(Node x, Loc loc = Loc::current());
/// Square root (NaN below 0).
Node Sqrt(Node x, Loc loc = Loc::current());
/// 1 / sqrt(x).
Node Rsqrt(Node x, Loc loc = Loc::current());
/// The error function.
Node Erf(Node x, Loc loc = Loc::current());
/// Bool: neither Inf nor NaN.
Node IsFinite(Node x, Loc loc = Loc::current());
/// Bool: x is NaN.
Node IsNaN(Node x, Loc loc = Loc::current());
/// Number of set bits (integers).
Node BitCount(Node x, Loc loc = Loc::current());
/// Count of leading zero bits (integers); the bit width for 0.
Node Clz(Node x, Loc loc = Loc::current());
/// ~x (integers).
Node BitwiseNot(Node x, Loc loc = Loc::current());
/// !x (Bool).
Node LogicalNot(Node x, Loc loc = Loc::current());

// --------------------------------------------------------------- Binary ops.
// Operands must have the same dtype; shapes broadcast numpy-style.

/// a + b (integers wrap).
Node Add(Node a, Node b, Loc loc = Loc::current());
/// a - b (integers wrap).
Node Sub(Node a, Node b, Loc loc = Loc::current());
/// a * b (integers wrap).
Node Mul(Node a, Node b, Loc loc = Loc::current());
/// Float division; for integers truncates toward zero, x / 0 is -1 (all bits
/// set) and INT_MIN / -1 is INT_MIN, as XLA specifies.
Node Div(Node a, Node b, Loc loc = Loc::current());
/// Remainder with the sign of the dividend (C fmod / C++ %); for integers
/// x % 0 is x and INT_MIN % -1 is 0.
Node Rem(Node a, Node b, Loc loc = Loc::current());
/// a ** b. For integers, a negative exponent gives 0 unless |a| is 1.
Node Pow(Node a, Node b, Loc loc = Loc::current());
/// Elementwise maximum; NaN if either operand is NaN.
Node Max(Node a, Node b, Loc loc = Loc::current());
/// Elementwise minimum; NaN if either operand is NaN.
Node Min(Node a, Node b, Loc loc = Loc::current());
/// The angle of (x, y) in radians, in [-pi, pi].
Node Atan2(Node y, Node x, Loc loc = Loc::current());

// ---------------------------------------------------------- Complex numbers.
// Gradients with respect to complex values follow PyTorch: the gradient of a
// real loss L at z = x + iy is dL/dx + i dL/dy, the direction of steepest
// ascent, so optimizers update complex variables like real ones.

/// re + i im, elementwise: Float32 parts give Complex64, Float64 Complex128.
/// The parts broadcast as in Add.
Node Complex(Node re, Node im, Loc loc = Loc::current());
/// The real part of a complex value (a real value is returned unchanged).
Node Real(Node x, Loc loc = Loc::current());
/// The imaginary part of a complex value (zeros for a real value).
Node Imag(Node x, Loc loc = Loc::current());
/// The complex conjugate re - i im (a real value is returned unchanged).
Node Conj(Node x, Loc loc = Loc::current());
/// The argument atan2(im, re) in [-pi, pi] (0 or pi for real values).
Node Angle(Node x, Loc loc = Loc::current());
/// Bitwise and, or, xor of integers.
Node BitwiseAnd(Node a, Node b, Loc loc = Loc::current());
Node BitwiseOr(Node a, Node b, Loc loc = Loc::current());
Node BitwiseXor(Node a, Node b, Loc loc = Loc::current());
/// Logical and, or, xor of Bool values.
Node LogicalAnd(Node a, Node b, Loc loc = Loc::current());
Node LogicalOr(Node a, Node b, Loc loc = Loc::current());
Node LogicalXor(Node a, Node b, Loc loc = Loc::current());
/// Shifts by b bits; a shift of b >= bit width (or negative b) gives 0.
Node ShiftLeft(Node a, Node b, Loc loc = Loc::current());
/// Sign-filling right shift (for unsigned types the top bit is copied, as
/// XLA does); a shift >= bit width gives all copies of the top bit.
Node ShiftRightArithmetic(Node a, Node b, Loc loc = Loc::current());
/// Zero-filling right shift; a shift >= bit width gives 0.
Node ShiftRightLogical(Node a, Node b, Loc loc = Loc::current());

// Comparisons return Bool. For floats NaN compares unequal to everything.
/// Elementwise ==, !=, >, >=, <, <=.
Node Equal(Node a, Node b, Loc loc = Loc::current());
Node NotEqual(Node a, Node b, Loc loc = Loc::current());
Node GreaterThan(Node a, Node b, Loc loc = Loc::current());
Node GreaterOrEqual(Node a, Node b, Loc loc = Loc::current());
Node LessThan(Node a, Node b, Loc loc = Loc::current());
Node LessOrEqual(Node a, Node b, Loc loc = Loc::current());

// ------------------------------------------------------------- Other ops.

/// Elementwise select: cond ? on_true : on_false. cond is Bool; all three
/// broadcast numpy-style.
Node Where(Node cond, Node on_true, Node on_false, Loc loc = Loc::current());
/// min(max(x, lo), hi); lo and hi broadcast to x. A NaN operand or bound
/// gives NaN.
Node Clamp(Node lo, Node x, Node hi, Loc loc = Loc::current());
/// Converts values to another dtype (floats to integers truncate toward zero
/// and saturate; NaN converts to 0; anything nonzero converts to true).
Node ConvertDType(Node x, dtypes::DType dtype, Loc loc = Loc::current());
/// Reinterprets the bits. Equal widths keep the shape; a narrower target adds
/// a last axis of width ratio; a wider one removes a last axis of that size.
Node Bitcast(Node x, dtypes::DType dtype, Loc loc = Loc::current());
/// Same values, new dimensions; one dimension may be -1 (inferred).
Node Reshape(Node x, std::vector<int64_t> dims, Loc loc = Loc::current());
/// Permutes axes: output axis i is input axis permutation[i].
Node Transpose(Node x, std::vector<int> permutation, Loc loc = Loc::current());
/// Swaps two axes (the numpy-style 2-axis transpose).
Node TransposeAxes(Node x, int axis0, int axis1, Loc loc = Loc::current());
/// Broadcasts x to `shape`: operand axis i maps to output axis axes[i]
/// (StableHLO broadcast_in_dim); mapped dims must match or be 1.
Node BroadcastInDim(Node x, std::vector<int64_t> dims, std::vector<int> axes, Loc loc = Loc::current());
/// numpy broadcast_to.
Node BroadcastTo(Node x, std::vector<int64_t> dims, Loc loc = Loc::current());
/// Joins along `axis`; other dims must match.
Node Concatenate(const std::vector<Node>& xs, int axis, Loc loc = Loc::current());
/// Static slice [starts, limits) with strides (empty strides: all 1).
Node Slice(Node x, std::vector<int64_t> starts, std::vector<int64_t> limits, std::vector<int64_t> strides = {},
           Loc loc = Loc::current());
/// Pads with `value` (a scalar of x's dtype): low/high per axis (negative
/// crops), interior between elements (>= 0).
Node Pad(Node x, Node value, std::vector<int64_t> low, std::vector<int64_t> high, std::vector<int64_t> interior = {},
         Loc loc = Loc::current());
/// Reverses the order of elements along `axes`.
Node Reverse(Node x, std::vector<int> axes, Loc loc = Loc::current());
/// Counts 0, 1, 2, ... along `axis` of a new value of `shape`.
Node Iota(Graph* g, const shapes::Shape& shape, int axis, Loc loc = Loc::current());
/// A slice of `sizes` starting at runtime scalar integer indices (one per
/// axis), clamped so the slice stays inside x (StableHLO semantics).
Node DynamicSlice(Node x, const std::vector<Node>& starts, std::vector<int64_t> sizes, Loc loc = Loc::current());
/// x with `update` written at runtime scalar indices (clamped like DynamicSlice).
Node DynamicUpdateSlice(Node x, Node update, const std::vector<Node>& starts, Loc loc = Loc::current());

// Reductions over `axes` (negative counts from the end). An empty axes list
// reduces over all axes, as GoMLX does. Reduced axes are removed.
/// Sum (Float16/BFloat16 accumulate in Float32; integers wrap).
Node ReduceSum(Node x, std::vector<int> axes, Loc loc = Loc::current());
/// Single-axis form, ReduceSum(x, 0). A template, so that ReduceSum(x, {})
/// selects the all-axes form above rather than axis 0.
template <std::integral I>
Node ReduceSum(Node x, I axis, Loc loc = Loc::current()) {
  return ReduceSum(x, std::vector<int>{static_cast<int>(axis)}, loc);
}
/// Product (integers wrap; complex values multiply as complex numbers).
Node ReduceProduct(Node x, std::vector<int> axes, Loc loc = Loc::current());
/// Maximum; NaN propagates; -Inf (or the type's lowest) for empty reductions.
Node ReduceMax(Node x, std::vector<int> axes, Loc loc = Loc::current());
/// Single-axis form, ReduceMax(x, 0). A template, so that ReduceMax(x, {})
/// selects the all-axes form above rather than axis 0.
template <std::integral I>
Node ReduceMax(Node x, I axis, Loc loc = Loc::current()) {
  return ReduceMax(x, std::vector<int>{static_cast<int>(axis)}, loc);
}
/// Minimum; NaN propagates; +Inf (or the type's highest) for empty reductions.
Node ReduceMin(Node x, std::vector<int> axes, Loc loc = Loc::current());
/// Single-axis form, ReduceMin(x, 0). A template, so that ReduceMin(x, {})
/// selects the all-axes form above rather than axis 0.
template <std::integral I>
Node ReduceMin(Node x, I axis, Loc loc = Loc::current()) {
  return ReduceMin(x, std::vector<int>{static_cast<int>(axis)}, loc);
}
/// Logical and, or, xor over Bool values; bitwise and, or, xor over integers.
Node ReduceLogicalAnd(Node x, std::vector<int> axes, Loc loc = Loc::current());
Node ReduceLogicalOr(Node x, std::vector<int> axes, Loc loc = Loc::current());
Node ReduceLogicalXor(Node x, std::vector<int> axes, Loc loc = Loc::current());
Node ReduceBitwiseAnd(Node x, std::vector<int> axes, Loc loc = Loc::current());
Node ReduceBitwiseOr(Node x, std::vector<int> axes, Loc loc = Loc::current());
Node ReduceBitwiseXor(Node x, std::vector<int> axes, Loc loc = Loc::current());

/// Index of the max (or min) along `axis`, first one on ties; a NaN counts as
/// the max (and the min), so its first index is returned, as in JAX.
Node ArgMinMax(Node x, int axis, bool is_min, dtypes::DType index_dtype = dtypes::Int32, Loc loc = Loc::current());

/// General dot product (StableHLO dot_general). Output axes: batch axes, then
/// lhs free axes, then rhs free axes. Float16/BFloat16 accumulate in Float32.
/// A Float32 dot takes CurrentDotPrecision(); its gradient's dots take its own.
Node DotGeneral(Node lhs, std::vector<int> lhs_contracting, std::vector<int> lhs_batch, Node rhs,
                std::vector<int> rhs_contracting, std::vector<int> rhs_batch, Loc loc = Loc::current());

/// The precision of the Float32 DotGenerals traced on this thread from now on
/// (MatMul, Einsum, Dense, the composed attention): the innermost
/// DotPrecisionScope's, else the process-wide default. Executables already
/// traced keep theirs. NewExec (and the Trainer) trace at the first Call of
/// each new shape: set the default before, or open the scope inside the
/// traced function, not around NewExec.
ir::DotPrecision CurrentDotPrecision();
/// Sets the process-wide default precision of Float32 dots (initially
/// kHighest), as PyTorch's torch.set_float32_matmul_precision("medium") or
/// JAX's jax_default_matmul_precision. Takes effect at the next trace.
void SetDefaultDotPrecision(ir::DotPrecision precision);

/// Sets the precision of the Float32 dots traced on this thread while it lives.
class DotPrecisionScope {
 public:
  explicit DotPrecisionScope(ir::DotPrecision precision);
  ~DotPrecisionScope();
  DotPrecisionScope(const DotPrecisionScope&) = delete;
  DotPrecisionScope& operator=(const DotPrecisionScope&) = delete;

 private:
  int previous_;  // the enclosing scope's precision, or -1 for none
};

/// General N-d convolution (StableHLO convolution); see ir::ConvAttrs.
/// Empty strides/dilations mean 1, empty paddings mean 0; negative padding
/// crops.
Node ConvGeneral(Node input, Node kernel, ir::ConvAttrs attrs, Loc loc = Loc::current());

/// Reduces windows of x (StableHLO reduce_window with sum/product/max/min).
/// Empty strides/dilations mean 1, empty paddings mean 0 (negative crops).
/// Padding holds the reduction's identity (0, 1, -Inf, +Inf).
Node ReduceWindow(Node x, ir::WindowAttrs attrs, Loc loc = Loc::current());

/// Gradient of a max (or min) ReduceWindow: scatters (adds) each `source`
/// value to the position of its window's selected element of `operand`
/// (first on ties). Output has operand's shape; attrs.reduction is kMax or kMin.
Node SelectAndScatter(Node operand, Node source, ir::WindowAttrs attrs, Loc loc = Loc::current());

/// XLA Gather; see ir::GatherAttrs. Out-of-range start indices are clamped.
Node Gather(Node operand, Node indices, ir::GatherAttrs attrs, Loc loc = Loc::current());
/// XLA Scatter with add / max / min / overwrite combiners. Update elements
/// whose target index falls outside the operand are skipped (the rest of the
/// window still applies); duplicates combine index vector by index vector,
/// and for ScatterUpdate the last one wins.
Node ScatterSum(Node operand, Node indices, Node updates, ir::ScatterAttrs attrs, Loc loc = Loc::current());
/// Scatter with the max / min / overwrite combiners (see ScatterSum).
Node ScatterMax(Node operand, Node indices, Node updates, ir::ScatterAttrs attrs, Loc loc = Loc::current());
Node ScatterMin(Node operand, Node indices, Node updates, ir::ScatterAttrs attrs, Loc loc = Loc::current());
Node ScatterUpdate(Node operand, Node indices, Node updates, ir::ScatterAttrs attrs, Loc loc = Loc::current());

/// Stateless Philox4x32-10 random bits. `state` is Uint64[3]: {key, counter
/// low, counter high}. Returns {new state, bits of `shape`} where shape's
/// dtype is an unsigned integer type. The same state always gives the same
/// bits; the new state continues the stream.
std::pair<Node, Node> RNGBitGenerator(Node state, const shapes::Shape& shape, Loc loc = Loc::current());

// ------------------------------------------------------------- Operators.

Node operator+(Node a, Located<Node> b);
Node operator-(Node a, Located<Node> b);
Node operator*(Node a, Located<Node> b);
Node operator/(Node a, Located<Node> b);
Node operator+(Node a, Located<double> b);
Node operator-(Node a, Located<double> b);
Node operator*(Node a, Located<double> b);
Node operator/(Node a, Located<double> b);
Node operator+(Located<double> a, Node b);
Node operator-(Located<double> a, Node b);
Node operator*(Located<double> a, Node b);
Node operator/(Located<double> a, Node b);
Node operator-(Node x);

// ------------------------------------------------- Helpers (numpy-style).

/// A scalar of x's dtype; broadcasts in binary ops.
Node ScalarLike(Node x, double value, Loc loc = Loc::current());
/// Zeros / ones of x's shape, or of `shape`.
Node ZerosLike(Node x, Loc loc = Loc::current());
Node OnesLike(Node x, Loc loc = Loc::current());
Node Zeros(Graph* g, const shapes::Shape& shape, Loc loc = Loc::current());
Node Ones(Graph* g, const shapes::Shape& shape, Loc loc = Loc::current());

/// x * x.
Node Square(Node x, Loc loc = Loc::current());
/// 1 / x (floats).
Node Reciprocal(Node x, Loc loc = Loc::current());
/// max(x, 0); its gradient is 1 where x > 0 and 0 elsewhere (x = 0 included).
Node Relu(Node x, Loc loc = Loc::current());
/// 1 / (1 + exp(-x)) (Logistic).
Node Sigmoid(Node x, Loc loc = Loc::current());
/// Exact GELU: x * (1 + erf(x / sqrt(2))) / 2.
Node Gelu(Node x, Loc loc = Loc::current());
/// Tanh approximation of GELU.
Node GeluApprox(Node x, Loc loc = Loc::current());
/// x * sigmoid(x).
Node Silu(Node x, Loc loc = Loc::current());
/// log(1 + exp(x)), stable for large |x|.
Node Softplus(Node x, Loc loc = Loc::current());
/// x for x >= 0, alpha * x below.
Node LeakyRelu(Node x, double alpha = 0.01, Loc loc = Loc::current());

/// Mean over axes (floats; empty axes: all; NaN for an empty reduction).
Node ReduceMean(Node x, std::vector<int> axes, Loc loc = Loc::current());
/// Single-axis form, ReduceMean(x, 0). A template, so that ReduceMean(x, {})
/// selects the all-axes form above rather than axis 0.
template <std::integral I>
Node ReduceMean(Node x, I axis, Loc loc = Loc::current()) {
  return ReduceMean(x, std::vector<int>{static_cast<int>(axis)}, loc);
}
/// Sum / mean / max / min over every axis, to a scalar.
Node ReduceAllSum(Node x, Loc loc = Loc::current());
Node ReduceAllMean(Node x, Loc loc = Loc::current());
Node ReduceAllMax(Node x, Loc loc = Loc::current());
Node ReduceAllMin(Node x, Loc loc = Loc::current());
/// log(sum(exp(x))) over axes, computed stably (max subtracted).
Node LogSumExp(Node x, std::vector<int> axes, Loc loc = Loc::current());
/// exp(x) / sum(exp(x)) along `axis`, computed stably.
Node Softmax(Node x, int axis = -1, Loc loc = Loc::current());
/// x - LogSumExp(x) along `axis`.
Node LogSoftmax(Node x, int axis = -1, Loc loc = Loc::current());
/// ArgMinMax for the max / the min.
Node ArgMax(Node x, int axis, dtypes::DType index_dtype = dtypes::Int32, Loc loc = Loc::current());
Node ArgMin(Node x, int axis, dtypes::DType index_dtype = dtypes::Int32, Loc loc = Loc::current());

/// numpy matmul: 1-D operands are promoted, leading (batch) axes broadcast.
Node MatMul(Node a, Node b, Loc loc = Loc::current());
/// Einstein summation, e.g. Einsum("bij,bjk->bik", a, b). Each letter is an
/// axis; letters in both inputs and the output are batch axes, letters only in
/// the inputs are contracted.
Node Einsum(const std::string& equation, Node a, Node b, Loc loc = Loc::current());

/// One-hot encoding: appends an axis of size `depth`; out-of-range indices
/// give an all-zero row.
Node OneHot(Node indices, int64_t depth, dtypes::DType dtype, Loc loc = Loc::current());
/// Removes size-1 axes (all of them when axes is empty).
Node Squeeze(Node x, std::vector<int> axes = {}, Loc loc = Loc::current());
/// Inserts size-1 axes at `axes` (positions in the output).
Node ExpandAxes(Node x, std::vector<int> axes, Loc loc = Loc::current());
/// Stacks equally shaped values along a new axis.
Node Stack(const std::vector<Node>& xs, int axis = 0, Loc loc = Loc::current());
/// Splits into `n` equal parts along `axis`.
std::vector<Node> Split(Node x, int axis, int n, Loc loc = Loc::current());
/// x[start:end:stride] along one axis (negative start/end count from the end).
Node SliceAxis(Node x, int axis, int64_t start, int64_t end, int64_t stride = 1, Loc loc = Loc::current());

}  // namespace kiln::graph
