// Copyright 2026 The Kiln Authors.
// Definitions (operand checks, shape rules) and gradients of the complex-number
// ops: Complex, Real, Imag (ops of the op set), Conj and Angle (composed), and
// the Fourier transforms FFT, IFFT, RFFT, IRFFT (the Fft op).
//
// Gradients follow PyTorch's convention: for a real loss L of z = x + iy the
// gradient is dL/dx + i dL/dy. For a holomorphic op the chain rule is then
// grad_z = cotangent * conj(f'(z)), which autodiff derives from the op's real
// rule (see ConjugatedVJP in autodiff.cc); the rules here are for the ops
// that are not holomorphic (Real, Imag, Complex) or that mix real and complex
// values (RFFT, IRFFT).
#include <string>

#include "kiln/graph/fft.h"
#include "src/graph/op_builder.h"
#include "src/graph/vjp.h"

namespace kiln::graph {

using internal::OpError;
using ir::OpType;

Node Complex(Node re, Node im, Loc loc) {
  Graph* g = internal::CheckSameGraph({re, im}, "Complex", loc);
  if (re.DType() != im.DType() || (re.DType() != dtypes::Float32 && re.DType() != dtypes::Float64)) {
    OpError(loc, "Complex", "needs real and imaginary parts of one dtype, Float32 or Float64, got " +
                                re.Shape().ToString() + " and " + im.Shape().ToString());
  }
  auto dims = internal::BroadcastDims(re.Shape(), im.Shape(), "Complex", loc);
  re = internal::BroadcastToDims(re, dims, loc);
  im = internal::BroadcastToDims(im, dims, loc);
  return internal::Emit(g, OpType::kComplex, {re, im}, shapes::Shape(dtypes::ComplexOf(re.DType()), dims),
                        ir::NoAttrs{}, loc);
}

namespace {

// Real or Imag of a complex value.
Node Part(OpType op, Node x, const Loc& loc) {
  Graph* g = internal::CheckNode(x, ir::OpName(op), loc);
  return internal::Emit(g, op, {x}, x.Shape().WithDType(dtypes::RealPart(x.DType())), ir::NoAttrs{}, loc);
}

}  // namespace

Node Real(Node x, Loc loc) {
  internal::CheckNode(x, "Real", loc);
  return dtypes::IsComplex(x.DType()) ? Part(OpType::kReal, x, loc) : x;
}

Node Imag(Node x, Loc loc) {
  internal::CheckNode(x, "Imag", loc);
  return dtypes::IsComplex(x.DType()) ? Part(OpType::kImag, x, loc) : ZerosLike(x, loc);
}

Node Conj(Node x, Loc loc) {
  internal::CheckNode(x, "Conj", loc);
  if (!dtypes::IsComplex(x.DType())) return x;
  return Complex(Real(x, loc), Neg(Imag(x, loc), loc), loc);
}

Node Angle(Node x, Loc loc) {
  internal::CheckNode(x, "Angle", loc);
  if (dtypes::IsComplex(x.DType())) return Atan2(Imag(x, loc), Real(x, loc), loc);
  if (!dtypes::IsFloat(x.DType())) OpError(loc, "Angle", "requires a float or complex dtype, got " + x.Shape().ToString());
  // atan2(0, x): 0 for x >= +0, pi for x <= -0 (as numpy.angle).
  return Atan2(ZerosLike(x, loc), x, loc);
}

// ------------------------------------------------------------------- FFT.

namespace {

// Checks num_axes and the operand's dtype and rank; emits the Fft op.
Node EmitFft(ir::FftType type, Node x, int num_axes, int64_t length, const Loc& loc) {
  const std::string op(ir::FftTypeName(type));
  Graph* g = internal::CheckNode(x, op, loc);
  if (num_axes < 1 || num_axes > 3) {
    OpError(loc, op, "transforms 1 to 3 trailing axes, got num_axes=" + std::to_string(num_axes));
  }
  if (x.Rank() < num_axes) {
    OpError(loc, op, "needs an operand of rank >= " + std::to_string(num_axes) + " to transform " +
                         std::to_string(num_axes) + " axes, got " + x.Shape().ToString());
  }
  const bool real_input = type == ir::FftType::kRfft;
  if (real_input ? (x.DType() != dtypes::Float32 && x.DType() != dtypes::Float64) : !dtypes::IsComplex(x.DType())) {
    OpError(loc, op, std::string("requires ") + (real_input ? "a Float32 or Float64" : "a complex") + " operand, got " +
                         x.Shape().ToString() + (real_input ? "" : " (make one with Complex or ConvertDType)"));
  }
  std::vector<int64_t> dims = x.Shape().Dims();
  std::vector<int64_t> lengths(dims.end() - num_axes, dims.end());
  dtypes::DType out_dtype = x.DType();
  if (type == ir::FftType::kRfft) {
    out_dtype = dtypes::ComplexOf(x.DType());
    dims.back() = dims.back() / 2 + 1;
  } else if (type == ir::FftType::kIrfft) {
    out_dtype = dtypes::RealPart(x.DType());
    const int64_t m = dims.back();
    if (length < 0) length = 2 * (m - 1);
    if (length < 1 || length / 2 + 1 != m) {
      OpError(loc, op, "an output length of " + std::to_string(length) + " needs a last axis of length/2 + 1 = " +
                           std::to_string(length < 1 ? 1 : length / 2 + 1) + " frequencies, got " +
                           x.Shape().ToString() + (length < 1 ? " (the output length must be >= 1)" : ""));
    }
    dims.back() = length;
    lengths.back() = length;
  }
  return internal::Emit(g, OpType::kFft, {x}, internal::OpShape(out_dtype, dims, op, loc),
                        ir::FftAttrs{type, std::move(lengths)}, loc);
}

}  // namespace

Node FFT(Node x, int num_axes, Loc loc) { return EmitFft(ir::FftType::kFft, x, num_axes, -1, loc); }
Node IFFT(Node x, int num_axes, Loc loc) { return EmitFft(ir::FftType::kIfft, x, num_axes, -1, loc); }
Node RFFT(Node x, int num_axes, Loc loc) { return EmitFft(ir::FftType::kRfft, x, num_axes, -1, loc); }
Node IRFFT(Node x, int num_axes, int64_t length, Loc loc) {
  return EmitFft(ir::FftType::kIrfft, x, num_axes, length, loc);
}

// ------------------------------------------------------------ VJP rules.

namespace {

using internal::VJPArgs;

// Complex(re, im): dL/dre = Re(g), dL/dim = Im(g).
std::vector<Node> ComplexVJP(const VJPArgs& a) { return {Real(a.cotangent, a.loc), Imag(a.cotangent, a.loc)}; }
// Real(z) = x: the gradient is g + 0i; Imag(z) = y: 0 + g i.
std::vector<Node> RealVJP(const VJPArgs& a) { return {Complex(a.cotangent, ZerosLike(a.cotangent, a.loc), a.loc)}; }
std::vector<Node> ImagVJP(const VJPArgs& a) { return {Complex(ZerosLike(a.cotangent, a.loc), a.cotangent, a.loc)}; }

// Each transform is linear; its gradient is the adjoint applied to the
// cotangent. With F the unnormalized DFT over the transformed axes (N points),
// F^H = N IFFT:
//   FFT:   y = F x          -> x̄ = F^H ȳ = N IFFT(ȳ)
//   IFFT:  y = F^H x / N    -> x̄ = F ȳ / N = FFT(ȳ) / N
//   RFFT:  y = S F x (S keeps the first n/2+1 frequencies of the last axis;
//          x real) -> x̄ = Re(F^H Sᵀ ȳ) = N Re(IFFT(ȳ zero-padded to n))
//   IRFFT: y = the real inverse of the half spectrum x -> x̄ = RFFT(ȳ) w / N,
//          w = 2 on the frequencies that stand for a conjugate pair too
//          (all but the zero and, for even n, the Nyquist frequency), else 1.
std::vector<Node> FftVJP(const VJPArgs& a) {
  const auto& attrs = ir::Attr<ir::FftAttrs>(a.instr);
  const int num_axes = static_cast<int>(attrs.lengths.size());
  double n = 1;
  for (int64_t l : attrs.lengths) n *= static_cast<double>(l);
  const Node& g = a.cotangent;
  switch (attrs.type) {
    case ir::FftType::kFft: return {Mul(IFFT(g, num_axes, a.loc), ScalarLike(g, n, a.loc), a.loc)};
    case ir::FftType::kIfft: return {Mul(FFT(g, num_axes, a.loc), ScalarLike(g, 1 / n, a.loc), a.loc)};
    case ir::FftType::kRfft: {
      const int64_t full = attrs.lengths.back();
      std::vector<int64_t> low(static_cast<size_t>(g.Rank()), 0), high = low;
      high.back() = full - g.Shape().Dims().back();
      Node padded = Pad(g, ScalarLike(g, 0, a.loc), low, high, {}, a.loc);
      return {Mul(Real(IFFT(padded, num_axes, a.loc), a.loc), ScalarLike(a.operands[0], n, a.loc), a.loc)};
    }
    case ir::FftType::kIrfft: {
      const int64_t full = attrs.lengths.back(), m = full / 2 + 1;
      // w / N along the last axis: 1/N at frequency 0 (and at m-1 for even
      // lengths), 2/N elsewhere.
      std::vector<double> w(static_cast<size_t>(m), 2 / n);
      w[0] = 1 / n;
      if (full % 2 == 0) w.back() = 1 / n;
      Node scale = ConvertDType(Const(a.g, w, a.loc), g.DType(), a.loc);
      Node spectrum = RFFT(g, num_axes, a.loc);
      return {Mul(spectrum, Complex(scale, ZerosLike(scale, a.loc), a.loc), a.loc)};
    }
  }
  return {Node()};
}

}  // namespace

namespace internal {

void RegisterComplexVJPs(VJPTable& t) {
  t[static_cast<size_t>(OpType::kComplex)] = ComplexVJP;
  t[static_cast<size_t>(OpType::kReal)] = RealVJP;
  t[static_cast<size_t>(OpType::kImag)] = ImagVJP;
  t[static_cast<size_t>(OpType::kFft)] = FftVJP;
}

}  // namespace internal

}  // namespace kiln::graph
