// Copyright 2026 The Kiln Authors.
// Definitions (operand checks and shape rules) of the elementwise ops:
// unary, binary, comparisons, Where, Clamp, ConvertDType, Bitcast, and the
// arithmetic operators.
#include <cmath>
#include <numbers>
#include <string>

#include "src/graph/op_builder.h"
#include "src/graph/vjp.h"

namespace kiln::graph {

using internal::OpError;
using ir::OpType;

namespace {

// The op's accepted dtypes come from the op table (ir::DTypeClassOf), which
// the CPU kernels and the conformance tests read too.
Node Unary(OpType op, Node x, const Loc& loc, dtypes::DType out_dtype = dtypes::Invalid) {
  Graph* g = internal::CheckNode(x, ir::OpName(op), loc);
  const ir::DTypeClass kinds = ir::DTypeClassOf(op);
  if (!ir::Accepts(kinds, x.DType())) {
    OpError(loc, ir::OpName(op), "requires " + std::string(ir::DTypeClassName(kinds)) + ", got " + x.Shape().ToString());
  }
  shapes::Shape shape = x.Shape();
  if (out_dtype != dtypes::Invalid) shape = shape.WithDType(out_dtype);
  return internal::Emit(g, op, {x}, shape, ir::NoAttrs{}, loc);
}

// Checks dtypes, broadcasts both operands to a common shape, emits `op`.
Node Binary(OpType op, Node a, Node b, const Loc& loc, bool comparison = false) {
  const ir::DTypeClass kinds = ir::DTypeClassOf(op);
  Graph* g = internal::CheckSameGraph({a, b}, ir::OpName(op), loc);
  if (a.DType() != b.DType()) {
    OpError(loc, ir::OpName(op), "dtypes differ: " + a.Shape().ToString() + " and " + b.Shape().ToString());
  }
  if (!ir::Accepts(kinds, a.DType())) {
    OpError(loc, ir::OpName(op), "requires " + std::string(ir::DTypeClassName(kinds)) + ", got " + a.Shape().ToString() +
                                     " and " + b.Shape().ToString());
  }
  std::vector<int64_t> dims = internal::BroadcastDims(a.Shape(), b.Shape(), ir::OpName(op), loc);
  a = internal::BroadcastToDims(a, dims, loc);
  b = internal::BroadcastToDims(b, dims, loc);
  shapes::Shape shape(comparison ? dtypes::Bool : a.DType(), dims);
  return internal::Emit(g, op, {a, b}, shape, ir::NoAttrs{}, loc);
}

}  // namespace

// Unary.
Node Abs(Node x, Loc loc) { return Unary(OpType::kAbs, x, loc, dtypes::RealPart(x.DType())); }
Node Neg(Node x, Loc loc) { return Unary(OpType::kNeg, x, loc); }
Node Sign(Node x, Loc loc) { return Unary(OpType::kSign, x, loc); }
Node Ceil(Node x, Loc loc) { return Unary(OpType::kCeil, x, loc); }
Node Floor(Node x, Loc loc) { return Unary(OpType::kFloor, x, loc); }
Node Round(Node x, Loc loc) { return Unary(OpType::kRound, x, loc); }
Node Exp(Node x, Loc loc) { return Unary(OpType::kExp, x, loc); }
Node Expm1(Node x, Loc loc) { return Unary(OpType::kExpm1, x, loc); }
Node Log(Node x, Loc loc) { return Unary(OpType::kLog, x, loc); }
Node Log1p(Node x, Loc loc) { return Unary(OpType::kLog1p, x, loc); }
Node Logistic(Node x, Loc loc) { return Unary(OpType::kLogistic, x, loc); }
Node Sin(Node x, Loc loc) { return Unary(OpType::kSin, x, loc); }
Node Cos(Node x, Loc loc) { return Unary(OpType::kCos, x, loc); }
Node Tanh(Node x, Loc loc) { return Unary(OpType::kTanh, x, loc); }
Node Sqrt(Node x, Loc loc) { return Unary(OpType::kSqrt, x, loc); }
Node Rsqrt(Node x, Loc loc) { return Unary(OpType::kRsqrt, x, loc); }
Node Erf(Node x, Loc loc) { return Unary(OpType::kErf, x, loc); }
Node IsFinite(Node x, Loc loc) { return Unary(OpType::kIsFinite, x, loc, dtypes::Bool); }
Node IsNaN(Node x, Loc loc) { return Unary(OpType::kIsNaN, x, loc, dtypes::Bool); }
Node BitCount(Node x, Loc loc) { return Unary(OpType::kBitCount, x, loc); }
Node Clz(Node x, Loc loc) { return Unary(OpType::kClz, x, loc); }
Node BitwiseNot(Node x, Loc loc) { return Unary(OpType::kBitwiseNot, x, loc); }
Node LogicalNot(Node x, Loc loc) { return Unary(OpType::kLogicalNot, x, loc); }

// Binary.
Node Add(Node a, Node b, Loc loc) { return Binary(OpType::kAdd, a, b, loc); }
Node Sub(Node a, Node b, Loc loc) { return Binary(OpType::kSub, a, b, loc); }
Node Mul(Node a, Node b, Loc loc) { return Binary(OpType::kMul, a, b, loc); }
Node Div(Node a, Node b, Loc loc) { return Binary(OpType::kDiv, a, b, loc); }
Node Rem(Node a, Node b, Loc loc) { return Binary(OpType::kRem, a, b, loc); }
Node Pow(Node a, Node b, Loc loc) { return Binary(OpType::kPow, a, b, loc); }
Node Max(Node a, Node b, Loc loc) { return Binary(OpType::kMax, a, b, loc); }
Node Min(Node a, Node b, Loc loc) { return Binary(OpType::kMin, a, b, loc); }
Node Atan2(Node y, Node x, Loc loc) { return Binary(OpType::kAtan2, y, x, loc); }
Node BitwiseAnd(Node a, Node b, Loc loc) { return Binary(OpType::kBitwiseAnd, a, b, loc); }
Node BitwiseOr(Node a, Node b, Loc loc) { return Binary(OpType::kBitwiseOr, a, b, loc); }
Node BitwiseXor(Node a, Node b, Loc loc) { return Binary(OpType::kBitwiseXor, a, b, loc); }
Node LogicalAnd(Node a, Node b, Loc loc) { return Binary(OpType::kLogicalAnd, a, b, loc); }
Node LogicalOr(Node a, Node b, Loc loc) { return Binary(OpType::kLogicalOr, a, b, loc); }
Node LogicalXor(Node a, Node b, Loc loc) { return Binary(OpType::kLogicalXor, a, b, loc); }
Node ShiftLeft(Node a, Node b, Loc loc) { return Binary(OpType::kShiftLeft, a, b, loc); }
Node ShiftRightArithmetic(Node a, Node b, Loc loc) {
  return Binary(OpType::kShiftRightArithmetic, a, b, loc);
}
Node ShiftRightLogical(Node a, Node b, Loc loc) {
  return Binary(OpType::kShiftRightLogical, a, b, loc);
}

// Comparisons.
Node Equal(Node a, Node b, Loc loc) { return Binary(OpType::kEqual, a, b, loc, true); }
Node NotEqual(Node a, Node b, Loc loc) { return Binary(OpType::kNotEqual, a, b, loc, true); }
Node GreaterThan(Node a, Node b, Loc loc) { return Binary(OpType::kGreaterThan, a, b, loc, true); }
Node GreaterOrEqual(Node a, Node b, Loc loc) { return Binary(OpType::kGreaterOrEqual, a, b, loc, true); }
Node LessThan(Node a, Node b, Loc loc) { return Binary(OpType::kLessThan, a, b, loc, true); }
Node LessOrEqual(Node a, Node b, Loc loc) { return Binary(OpType::kLessOrEqual, a, b, loc, true); }

Node Where(Node cond, Node on_true, Node on_false, Loc loc) {
  Graph* g = internal::CheckSameGraph({cond, on_true, on_false}, "Where", loc);
  if (cond.DType() != dtypes::Bool) OpError(loc, "Where", "condition must be Bool, got " + cond.Shape().ToString());
  if (on_true.DType() != on_false.DType()) {
    OpError(loc, "Where", "branch dtypes differ: " + on_true.Shape().ToString() + " and " + on_false.Shape().ToString());
  }
  auto dims = internal::BroadcastDims(on_true.Shape(), on_false.Shape(), "Where", loc);
  dims = internal::BroadcastDims(cond.Shape(), shapes::Shape(on_true.DType(), dims), "Where", loc);
  cond = internal::BroadcastToDims(cond, dims, loc);
  on_true = internal::BroadcastToDims(on_true, dims, loc);
  on_false = internal::BroadcastToDims(on_false, dims, loc);
  return internal::Emit(g, OpType::kWhere, {cond, on_true, on_false}, shapes::Shape(on_true.DType(), dims),
                        ir::NoAttrs{}, loc);
}

Node Clamp(Node lo, Node x, Node hi, Loc loc) {
  Graph* g = internal::CheckSameGraph({lo, x, hi}, "Clamp", loc);
  if (lo.DType() != x.DType() || hi.DType() != x.DType()) {
    OpError(loc, "Clamp", "dtypes differ: " + lo.Shape().ToString() + ", " + x.Shape().ToString() + ", " +
                              hi.Shape().ToString());
  }
  if (!ir::Accepts(ir::DTypeClassOf(OpType::kClamp), x.DType())) {
    OpError(loc, "Clamp", "requires a numeric dtype, got " + x.Shape().ToString());
  }
  // lo and hi broadcast to x; x itself is not broadcast.
  for (const Node* bound : {&lo, &hi}) {
    auto dims = internal::BroadcastDims(bound->Shape(), x.Shape(), "Clamp", loc);
    if (dims != x.Shape().Dims()) {
      OpError(loc, "Clamp", "bound " + bound->Shape().ToString() + " does not broadcast to operand " +
                                x.Shape().ToString());
    }
  }
  lo = internal::BroadcastToDims(lo, x.Shape().Dims(), loc);
  hi = internal::BroadcastToDims(hi, x.Shape().Dims(), loc);
  return internal::Emit(g, OpType::kClamp, {lo, x, hi}, x.Shape(), ir::NoAttrs{}, loc);
}

Node ConvertDType(Node x, dtypes::DType dtype, Loc loc) {
  Graph* g = internal::CheckNode(x, "ConvertDType", loc);
  if (dtype == dtypes::Invalid) OpError(loc, "ConvertDType", "target dtype is Invalid");
  if (dtype == x.DType()) return x;
  if (dtypes::IsComplex(x.DType()) && !dtypes::IsComplex(dtype)) {
    OpError(loc, "ConvertDType", "converting " + x.Shape().ToString() + " to " + dtypes::Name(dtype) +
                                     " would drop the imaginary part: take Real, Imag or Abs");
  }
  return internal::Emit(g, OpType::kConvertDType, {x}, internal::OpShape(dtype, x.Shape().Dims(), "ConvertDType", loc),
                        ir::NoAttrs{}, loc);
}

Node Bitcast(Node x, dtypes::DType dtype, Loc loc) {
  Graph* g = internal::CheckNode(x, "Bitcast", loc);
  if (dtype == dtypes::Invalid) OpError(loc, "Bitcast", "target dtype is Invalid");
  const size_t from = dtypes::SizeOf(x.DType()), to = dtypes::SizeOf(dtype);
  std::vector<int64_t> dims = x.Shape().Dims();
  if (to < from) {
    dims.push_back(static_cast<int64_t>(from / to));
  } else if (to > from) {
    if (dims.empty() || dims.back() != static_cast<int64_t>(to / from)) {
      OpError(loc, "Bitcast", "converting " + x.Shape().ToString() + " to " + dtypes::Name(dtype) +
                                  " needs a last axis of size " + std::to_string(to / from));
    }
    dims.pop_back();
  }
  if (dtype == x.DType()) return x;
  return internal::Emit(g, OpType::kBitcast, {x}, shapes::Shape(dtype, dims), ir::NoAttrs{}, loc);
}

// Operators.
Node operator+(Node a, Located<Node> b) { return Add(a, b.value, b.loc); }
Node operator-(Node a, Located<Node> b) { return Sub(a, b.value, b.loc); }
Node operator*(Node a, Located<Node> b) { return Mul(a, b.value, b.loc); }
Node operator/(Node a, Located<Node> b) { return Div(a, b.value, b.loc); }
Node operator+(Node a, Located<double> b) { return Add(a, ScalarLike(a, b.value, b.loc), b.loc); }
Node operator-(Node a, Located<double> b) { return Sub(a, ScalarLike(a, b.value, b.loc), b.loc); }
Node operator*(Node a, Located<double> b) { return Mul(a, ScalarLike(a, b.value, b.loc), b.loc); }
Node operator/(Node a, Located<double> b) { return Div(a, ScalarLike(a, b.value, b.loc), b.loc); }
Node operator+(Located<double> a, Node b) { return Add(ScalarLike(b, a.value, a.loc), b, a.loc); }
Node operator-(Located<double> a, Node b) { return Sub(ScalarLike(b, a.value, a.loc), b, a.loc); }
Node operator*(Located<double> a, Node b) { return Mul(ScalarLike(b, a.value, a.loc), b, a.loc); }
Node operator/(Located<double> a, Node b) { return Div(ScalarLike(b, a.value, a.loc), b, a.loc); }
Node operator-(Node x) { return Neg(x); }

Node ScalarLike(Node x, double value, Loc loc) {
  Graph* g = internal::CheckNode(x, "ScalarLike", loc);
  return Scalar(g, x.DType(), value, loc);
}

// ------------------------------------------------------------ VJP rules.
// Each returns the gradient of every operand given the output's cotangent.
// Non-float results (comparisons, IsNaN, integer ops) carry no gradient and
// have no rule; Bitcast is not differentiable.

namespace {

using internal::VJPArgs;

Node Half(const Node& like, const Loc& loc) { return ScalarLike(like, 0.5, loc); }

// For complex z the gradient of |z| is z / |z| (0 at z = 0, as PyTorch).
std::vector<Node> AbsVJP(const VJPArgs& a) {
  Node x = a.operands[0];
  if (!dtypes::IsComplex(x.DType())) return {Mul(a.cotangent, Sign(x, a.loc), a.loc)};
  Node zero = ZerosLike(a.output, a.loc);
  Node safe = Where(Equal(a.output, zero, a.loc), OnesLike(a.output, a.loc), a.output, a.loc);
  Node scale = Where(Equal(a.output, zero, a.loc), zero, Div(a.cotangent, safe, a.loc), a.loc);
  return {Mul(x, Complex(scale, zero, a.loc), a.loc)};
}
// Real x: piecewise constant, zero gradient. Complex z, s = z / |z|: s moves
// with z's angle only, so the gradient is the cotangent's component tangent
// to the unit circle at s, over |z|: (g - Re(g conj(s)) s) / |z| = (g - s^2
// conj(g)) / (2 |z|), each part divided by |z| (a complex multiply by 1 / |z|
// would make 0 * inf = NaN for a subnormal |z|); 0 at z = 0, as torch.sgn.
std::vector<Node> SignVJP(const VJPArgs& a) {
  Node z = a.operands[0];
  if (!dtypes::IsComplex(z.DType())) return {ZerosLike(z, a.loc)};
  const Loc& loc = a.loc;
  Node r2 = Abs(z, loc) * 2.0;
  Node zero = ZerosLike(r2, loc);
  Node at_zero = Equal(r2, zero, loc);
  Node safe = Where(at_zero, OnesLike(r2, loc), r2, loc);
  Node t = Sub(a.cotangent, Mul(Mul(a.output, a.output, loc), Conj(a.cotangent, loc), loc), loc);
  return {Complex(Where(at_zero, zero, Div(Real(t, loc), safe, loc), loc),
                  Where(at_zero, zero, Div(Imag(t, loc), safe, loc), loc), loc)};
}
std::vector<Node> NegVJP(const VJPArgs& a) { return {Neg(a.cotangent, a.loc)}; }
// Piecewise-constant functions: zero gradient (almost everywhere).
std::vector<Node> ZeroVJP(const VJPArgs& a) { return {ZerosLike(a.operands[0], a.loc)}; }
std::vector<Node> ExpVJP(const VJPArgs& a) { return {Mul(a.cotangent, a.output, a.loc)}; }
std::vector<Node> Expm1VJP(const VJPArgs& a) {
  return {Mul(a.cotangent, Add(a.output, ScalarLike(a.output, 1, a.loc), a.loc), a.loc)};
}
std::vector<Node> LogVJP(const VJPArgs& a) { return {Div(a.cotangent, a.operands[0], a.loc)}; }
std::vector<Node> Log1pVJP(const VJPArgs& a) {
  return {Div(a.cotangent, Add(a.operands[0], ScalarLike(a.operands[0], 1, a.loc), a.loc), a.loc)};
}
std::vector<Node> LogisticVJP(const VJPArgs& a) {
  Node y = a.output;
  return {Mul(a.cotangent, Mul(y, Sub(ScalarLike(y, 1, a.loc), y, a.loc), a.loc), a.loc)};
}
std::vector<Node> SinVJP(const VJPArgs& a) { return {Mul(a.cotangent, Cos(a.operands[0], a.loc), a.loc)}; }
std::vector<Node> CosVJP(const VJPArgs& a) { return {Neg(Mul(a.cotangent, Sin(a.operands[0], a.loc), a.loc), a.loc)}; }
std::vector<Node> TanhVJP(const VJPArgs& a) {
  Node y = a.output;
  return {Mul(a.cotangent, Sub(ScalarLike(y, 1, a.loc), Mul(y, y, a.loc), a.loc), a.loc)};
}
// d sqrt(x) = 1 / (2 sqrt(x)): +Inf at 0, as in JAX and PyTorch.
std::vector<Node> SqrtVJP(const VJPArgs& a) { return {Div(Mul(a.cotangent, Half(a.output, a.loc), a.loc), a.output, a.loc)}; }
// d x^-1/2 = -1/2 x^-3/2 = -0.5 * y^3.
std::vector<Node> RsqrtVJP(const VJPArgs& a) {
  Node y = a.output;
  Node y3 = Mul(y, Mul(y, y, a.loc), a.loc);
  return {Mul(a.cotangent, Mul(y3, ScalarLike(y, -0.5, a.loc), a.loc), a.loc)};
}
std::vector<Node> ErfVJP(const VJPArgs& a) {
  Node x = a.operands[0];
  Node d = Mul(Exp(Neg(Mul(x, x, a.loc), a.loc), a.loc), ScalarLike(x, 2 / std::sqrt(std::numbers::pi), a.loc), a.loc);
  return {Mul(a.cotangent, d, a.loc)};
}

std::vector<Node> AddVJP(const VJPArgs& a) { return {a.cotangent, a.cotangent}; }
std::vector<Node> SubVJP(const VJPArgs& a) { return {a.cotangent, Neg(a.cotangent, a.loc)}; }
std::vector<Node> MulVJP(const VJPArgs& a) {
  return {Mul(a.cotangent, a.operands[1], a.loc), Mul(a.cotangent, a.operands[0], a.loc)};
}
std::vector<Node> DivVJP(const VJPArgs& a) {
  Node b = a.operands[1];
  return {Div(a.cotangent, b, a.loc), Neg(Div(Mul(a.cotangent, a.output, a.loc), b, a.loc), a.loc)};
}
// rem(a, b) = a - trunc(a / b) * b.
std::vector<Node> RemVJP(const VJPArgs& a) {
  Node x = a.operands[0], y = a.operands[1];
  Node quotient = Round(Div(Sub(x, a.output, a.loc), y, a.loc), a.loc);
  return {a.cotangent, Neg(Mul(a.cotangent, quotient, a.loc), a.loc)};
}
// d a^b / da = b a^(b-1) (0 where b == 0, so 0^0 has gradient 0 like JAX);
// d a^b / db = a^b log(a) (0 where a == 0).
std::vector<Node> PowVJP(const VJPArgs& a) {
  Node x = a.operands[0], y = a.operands[1];
  Node zero = ZerosLike(x, a.loc);
  Node dx = Mul(y, Pow(x, Sub(y, ScalarLike(y, 1, a.loc), a.loc), a.loc), a.loc);
  dx = Where(Equal(y, zero, a.loc), zero, dx, a.loc);
  Node dy = Where(Equal(x, zero, a.loc), zero, Mul(a.output, Log(x, a.loc), a.loc), a.loc);
  return {Mul(a.cotangent, dx, a.loc), Mul(a.cotangent, dy, a.loc)};
}
// Max/Min: the selected operand gets the gradient; ties split it evenly
// (as JAX), so the sum over both operands is always the cotangent.
std::vector<Node> SelectVJP(const VJPArgs& a, bool is_max) {
  Node x = a.operands[0], y = a.operands[1];
  Node wins = ConvertDType(is_max ? GreaterThan(x, y, a.loc) : LessThan(x, y, a.loc), x.DType(), a.loc);
  Node ties = ConvertDType(Equal(x, y, a.loc), x.DType(), a.loc);
  Node share_x = Add(wins, Mul(ties, Half(x, a.loc), a.loc), a.loc);
  Node share_y = Sub(ScalarLike(x, 1, a.loc), share_x, a.loc);
  return {Mul(a.cotangent, share_x, a.loc), Mul(a.cotangent, share_y, a.loc)};
}
std::vector<Node> MaxVJP(const VJPArgs& a) { return SelectVJP(a, true); }
std::vector<Node> MinVJP(const VJPArgs& a) { return SelectVJP(a, false); }
std::vector<Node> Atan2VJP(const VJPArgs& a) {
  Node y = a.operands[0], x = a.operands[1];
  Node denom = Add(Mul(x, x, a.loc), Mul(y, y, a.loc), a.loc);
  return {Div(Mul(a.cotangent, x, a.loc), denom, a.loc), Neg(Div(Mul(a.cotangent, y, a.loc), denom, a.loc), a.loc)};
}
std::vector<Node> WhereVJP(const VJPArgs& a) {
  Node cond = a.operands[0], zero = ZerosLike(a.cotangent, a.loc);
  return {Node(), Where(cond, a.cotangent, zero, a.loc), Where(cond, zero, a.cotangent, a.loc)};
}
// Clamp(lo, x, hi): x gets the gradient where lo <= x <= hi (ties go to x),
// the bounds where they clip.
std::vector<Node> ClampVJP(const VJPArgs& a) {
  Node lo = a.operands[0], x = a.operands[1], hi = a.operands[2], zero = ZerosLike(a.cotangent, a.loc);
  Node below = LessThan(x, lo, a.loc), above = GreaterThan(x, hi, a.loc);
  Node inside = LogicalNot(LogicalOr(below, above, a.loc), a.loc);
  return {Where(below, a.cotangent, zero, a.loc), Where(inside, a.cotangent, zero, a.loc),
          Where(above, a.cotangent, zero, a.loc)};
}
// Real to complex: the operand's gradient is the real part of the cotangent.
std::vector<Node> ConvertVJP(const VJPArgs& a) {
  const dtypes::DType from = a.operands[0].DType();
  if (!dtypes::IsFloatOrComplex(from)) return {Node()};
  Node g = dtypes::IsComplex(from) ? a.cotangent : Real(a.cotangent, a.loc);
  return {ConvertDType(g, from, a.loc)};
}

}  // namespace

namespace internal {

void RegisterElementwiseVJPs(VJPTable& t) {
  auto set = [&](OpType op, VJPRule rule) { t[static_cast<size_t>(op)] = rule; };
  set(OpType::kAbs, AbsVJP);
  set(OpType::kNeg, NegVJP);
  set(OpType::kSign, SignVJP);
  set(OpType::kCeil, ZeroVJP);
  set(OpType::kFloor, ZeroVJP);
  set(OpType::kRound, ZeroVJP);
  set(OpType::kExp, ExpVJP);
  set(OpType::kExpm1, Expm1VJP);
  set(OpType::kLog, LogVJP);
  set(OpType::kLog1p, Log1pVJP);
  set(OpType::kLogistic, LogisticVJP);
  set(OpType::kSin, SinVJP);
  set(OpType::kCos, CosVJP);
  set(OpType::kTanh, TanhVJP);
  set(OpType::kSqrt, SqrtVJP);
  set(OpType::kRsqrt, RsqrtVJP);
  set(OpType::kErf, ErfVJP);
  set(OpType::kAdd, AddVJP);
  set(OpType::kSub, SubVJP);
  set(OpType::kMul, MulVJP);
  set(OpType::kDiv, DivVJP);
  set(OpType::kRem, RemVJP);
  set(OpType::kPow, PowVJP);
  set(OpType::kMax, MaxVJP);
  set(OpType::kMin, MinVJP);
  set(OpType::kAtan2, Atan2VJP);
  set(OpType::kWhere, WhereVJP);
  set(OpType::kClamp, ClampVJP);
  set(OpType::kConvertDType, ConvertVJP);
}

}  // namespace internal

}  // namespace kiln::graph
