// Copyright 2026 The Kiln Authors.
// Highway implementations of the float math of the elementwise kernels.
//
// Static dispatch: the library is built for the host CPU (-march=native), so
// HWY_NAMESPACE is the single best target available at compile time.
//
// Highway's contrib math is only specified on a "valid range" per function
// (e.g. Exp up to +104 for float32, Log on (0, FLT_MAX], Sin/Cos within
// +-39000) and does not promise IEEE results for NaN or Inf. Each op below
// therefore states the inputs on which its vector code is trusted; a vector
// with any lane outside that set (rare in practice) is computed lane by lane
// with the C++ standard library, which gives the IEEE special values.
#include "src/backends/cpu/elementwise_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <limits>
#include <type_traits>

// Static dispatch only: without this, Highway 1.0.3 rejects -march=native on
// AVX3_DL machines ("best baseline should be included in dynamic targets").
#define HWY_COMPILE_ONLY_STATIC 1
#include "hwy/cache_control.h"
#include "hwy/highway.h"
#include "hwy/contrib/math/math-inl.h"

namespace kiln::backends::cpu {

namespace {

namespace hn = hwy::HWY_NAMESPACE;

template <typename T>
T ScalarLogistic(T x) {
  // exp(-|x|) never overflows; the x < 0 branch avoids 1 - tiny cancellation.
  const T e = std::exp(-std::abs(x));
  return x >= 0 ? T(1) / (T(1) + e) : e / (T(1) + e);
}

// ------------------------------------------ Float32 exponential kernels.
//
// Exp, Logistic and Tanh dominate activation-heavy graphs, and Highway's
// general versions (built for float and double, with wide valid ranges)
// cost 2-3x more than the memory traffic of a fused elementwise pass. These
// float32 versions share one reduction: e^y = 2^n * e^r with n = round(y /
// ln 2) and |r| <= ln(2) / 2 (Cody-Waite: ln 2 split in a part exact in
// float times n, plus a small rest), and e^r - 1 as its Taylor series to r^7,
// whose truncation error (|r|^8 / 8! < 1.5e-9 relative) is far below float
// rounding. Results are within a few ulp of the correctly rounded ones
// (the tests hold them to 2e-6 relative over the whole range).

template <class D>
constexpr bool IsF32 = std::is_same_v<hn::TFromD<D>, float>;

// 1 + r/2 + r^2/6 + ... + r^6/7!: (e^r - 1) / r, by Horner's rule.
template <class D, class V>
HWY_INLINE V ExpTaylorQuotient(D d, V r) {
  V p = hn::Set(d, 1.0f / 5040);
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 720));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 120));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 24));
  p = hn::MulAdd(p, r, hn::Set(d, 1.0f / 6));
  p = hn::MulAdd(p, r, hn::Set(d, 0.5f));
  return hn::MulAdd(p, r, hn::Set(d, 1.0f));
}

// e^r - 1 for |r| <= ln(2) / 2 + rounding.
template <class D, class V>
HWY_INLINE V Expm1Reduced(D d, V r) {
  return hn::Mul(ExpTaylorQuotient(d, r), r);
}

// n = round(y / ln 2) and r = y - n ln 2; k is n as an integer vector.
// The rounding is the float trick: adding 1.5 * 2^23 (inside the fused
// multiply-add, so from the exact product) leaves round(y / ln 2) in the
// low mantissa bits, from which n and k follow with one subtraction each
// (|y / ln 2| < 2^22).
template <class D, class V, class VI>
HWY_INLINE void ReduceExpArgument(D d, V y, V& n, V& r, VI& k) {
  const hn::RebindToSigned<D> di;
  const V magic = hn::Set(d, 12582912.0f);  // 1.5 * 2^23
  const V shifted = hn::MulAdd(y, hn::Set(d, 1.44269504088896341f), magic);
  n = hn::Sub(shifted, magic);
  k = hn::Sub(hn::BitCast(di, shifted), hn::BitCast(di, magic));
  r = hn::NegMulAdd(n, hn::Set(d, 0.693359375f), y);  // 355/512: n * it is exact
  r = hn::NegMulAdd(n, hn::Set(d, -2.12194440e-4f), r);
}

// 2^k for integral k in [-126, 127], as float bits.
template <class D, class VI>
HWY_INLINE hn::Vec<D> Pow2(D d, VI k) {
  const hn::RebindToSigned<D> di;
  return hn::BitCast(d, hn::ShiftLeft<23>(hn::Add(k, hn::Set(di, 127))));
}

// 1 / x for finite x >= 1: the hardware estimate (14 bits on AVX-512, 12 on
// AVX2) refined by one Newton step (error squared: about 1 ulp; two steps
// from Arm's 8-bit estimate). 3-4x the
// throughput of a vector division, which would bound these kernels.
template <class D, class V>
HWY_INLINE V Reciprocal(D d, V x) {
  V r = hn::ApproximateReciprocal(x);
  r = hn::MulAdd(r, hn::NegMulAdd(x, r, hn::Set(d, 1.0f)), r);
#if !HWY_ARCH_X86
  // Arm's estimate has about 8 bits: a second step for full precision.
  r = hn::MulAdd(r, hn::NegMulAdd(x, r, hn::Set(d, 1.0f)), r);
#endif
  return r;
}

// e^y for y in [-104, 89] (callers clamp; not NaN): 0 below about -103.97
// (through the subnormals) and Inf above about 88.72. 2^n is applied as two
// normal factors so n may range over [-150, 128].
template <class D, class V>
HWY_INLINE V ExpF32(D d, V y) {
  V n, r;
  hn::Vec<hn::RebindToSigned<D>> k;
  ReduceExpArgument(d, y, n, r, k);
  const auto k1 = hn::ShiftRight<1>(k);  // arithmetic: floor(k / 2)
  const V p = hn::Add(Expm1Reduced(d, r), hn::Set(d, 1.0f));
  return hn::Mul(hn::Mul(p, Pow2(d, k1)), Pow2(d, hn::Sub(k, k1)));
}

// e^y for y in [-87, 88] (callers clamp; not NaN), where 2^n is one normal
// factor: the cheaper form for callers to which results below e^-87 (1.6e-38,
// next to the subnormals, which executions flush to 0) make no difference.
// e^r is its Taylor polynomial to r^7 as 1 + r * ExpTaylorQuotient(r).
template <class D, class V>
HWY_INLINE V ExpF32Normal(D d, V y) {
  V n, r;
  hn::Vec<hn::RebindToSigned<D>> k;
  ReduceExpArgument(d, y, n, r, k);
  const V p = hn::MulAdd(ExpTaylorQuotient(d, r), r, hn::Set(d, 1.0f));
  return hn::Mul(p, Pow2(d, k));
}

// tanh(x) = -u / (u + 2) with u = e^(-2|x|) - 1, sign restored: no
// cancellation anywhere (u is computed with relative accuracy near 0 as
// 2^n (e^r - 1) + (2^n - 1), and u + 2 is in [1, 2]). x not NaN.
template <class D, class V>
HWY_INLINE V TanhF32(D d, V x) {
  const V y = hn::Max(hn::Mul(hn::Abs(x), hn::Set(d, -2.0f)), hn::Set(d, -40.0f));  // tanh(20) is 1 in float
  V n, r;
  hn::Vec<hn::RebindToSigned<D>> k;
  ReduceExpArgument(d, y, n, r, k);
  const V scale = Pow2(d, k);  // n in [-58, 0]
  const V u = hn::MulAdd(scale, Expm1Reduced(d, r), hn::Sub(scale, hn::Set(d, 1.0f)));
  const V t = hn::Mul(hn::Neg(u), Reciprocal(d, hn::Add(u, hn::Set(d, 2.0f))));
  return hn::CopySign(t, x);  // (t is -0.0 for x = +0.0: not CopySignToAbs)
}

// `y`, except x itself where x is +-0: for the odd functions with f(0) = 0
// whose Highway versions return +0 for -0 (Sin, Expm1), as std:: does not.
template <class D, class V>
HWY_INLINE V KeepZero(D d, V x, V y) {
  return hn::IfThenElse(hn::Eq(x, hn::Zero(d)), x, y);
}

// Each op: Vec(d, x), the vector function; Scalar(x), the reference used for
// lanes outside the trusted inputs; kAlwaysValid, or Valid(d, x), the mask of
// lanes on which Vec is trusted.

struct CeilOp {
  static constexpr bool kAlwaysValid = true;
  template <class D, class V>
  static V Vec(D, V x) { return hn::Ceil(x); }
  template <typename T>
  static T Scalar(T x) { return std::ceil(x); }
};

struct FloorOp {
  static constexpr bool kAlwaysValid = true;
  template <class D, class V>
  static V Vec(D, V x) { return hn::Floor(x); }
  template <typename T>
  static T Scalar(T x) { return std::floor(x); }
};

struct RoundOp {  // hn::Round and std::nearbyint (default mode) round half to even.
  static constexpr bool kAlwaysValid = true;
  template <class D, class V>
  static V Vec(D, V x) { return hn::Round(x); }
  template <typename T>
  static T Scalar(T x) { return std::nearbyint(x); }
};

struct SqrtOp {
  static constexpr bool kAlwaysValid = true;
  template <class D, class V>
  static V Vec(D, V x) { return hn::Sqrt(x); }
  template <typename T>
  static T Scalar(T x) { return std::sqrt(x); }
};

struct RsqrtOp {  // Exact division, not the ~12-bit ApproximateReciprocalSqrt.
  static constexpr bool kAlwaysValid = true;
  template <class D, class V>
  static V Vec(D d, V x) { return hn::Div(hn::Set(d, 1), hn::Sqrt(x)); }
  template <typename T>
  static T Scalar(T x) { return T(1) / std::sqrt(x); }
};

// Largest argument trusted for Exp/Expm1: inside Highway's valid range, and
// for float32 below the overflow threshold (~88.72), so Inf comes from std::.
template <typename T>
constexpr T kExpMaxArg = sizeof(T) == 4 ? T(88) : T(706);

struct ExpOp {
  static constexpr bool kAlwaysValid = false;
  template <class D, class V>
  static V Vec(D d, V x) {  // 0 below -104 (f32) / -1000 (f64), -Inf included
    if constexpr (IsF32<D>) {
      return ExpF32(d, hn::Min(hn::Max(x, hn::Set(d, -104.0f)), hn::Set(d, 89.0f)));
    } else {
      return hn::Exp(d, x);
    }
  }
  template <class D, class V>
  static auto Valid(D d, V x) {
    if constexpr (IsF32<D>) {
      return hn::Eq(x, x);  // any float but NaN: ExpF32 saturates to 0 and Inf itself
    } else {
      return hn::Le(x, hn::Set(d, kExpMaxArg<hn::TFromD<D>>));  // false for NaN
    }
  }
  template <typename T>
  static T Scalar(T x) { return std::exp(x); }
};

struct Expm1Op {
  static constexpr bool kAlwaysValid = false;
  template <class D, class V>
  static V Vec(D d, V x) { return KeepZero(d, x, hn::Expm1(d, x)); }
  template <class D, class V>
  static auto Valid(D d, V x) { return hn::Le(x, hn::Set(d, kExpMaxArg<hn::TFromD<D>>)); }
  template <typename T>
  static T Scalar(T x) { return std::expm1(x); }
};

struct LogOp {
  static constexpr bool kAlwaysValid = false;
  template <class D, class V>
  static V Vec(D d, V x) { return hn::Log(d, x); }
  template <class D, class V>
  static auto Valid(D d, V x) {  // (0, max]: excludes 0, negatives, Inf, NaN
    using T = hn::TFromD<D>;
    return hn::And(hn::Gt(x, hn::Zero(d)), hn::Le(x, hn::Set(d, std::numeric_limits<T>::max())));
  }
  template <typename T>
  static T Scalar(T x) { return std::log(x); }
};

struct Log1pOp {
  static constexpr bool kAlwaysValid = false;
  // Highway computes log(1 + x) * x / ((1 + x) - 1), accurate on (-1, 0) too.
  template <class D, class V>
  static V Vec(D d, V x) { return hn::Log1p(d, x); }
  template <class D, class V>
  static auto Valid(D d, V x) {  // (-1, max]
    using T = hn::TFromD<D>;
    return hn::And(hn::Gt(x, hn::Set(d, T(-1))), hn::Le(x, hn::Set(d, std::numeric_limits<T>::max())));
  }
  template <typename T>
  static T Scalar(T x) { return std::log1p(x); }
};

struct LogisticOp {
  static constexpr bool kAlwaysValid = false;
  template <class D, class V>
  static V Vec(D d, V x) {
    const V one = hn::Set(d, 1);
    if constexpr (IsF32<D>) {
      // 1 / (1 + e^-x) directly: for x < 0, 1 + e^-x is large rather than
      // near 1, so nothing cancels. e^-x is capped at e^88 (x = -Inf
      // included) to keep the reciprocal's Newton step finite (below x = -87
      // the result is subnormal, which the backend flushes to 0 anyway), and
      // floored at e^-87, which 1 + e^-x cannot tell from 0.
      const V e = ExpF32Normal(d, hn::Min(hn::Max(hn::Neg(x), hn::Set(d, -87.0f)), hn::Set(d, 88.0f)));
      return Reciprocal(d, hn::Add(one, e));
    } else {  // as ScalarLogistic; Exp(-Inf) is 0, so +-Inf give 1 and 0.
      const V e = hn::Exp(d, hn::Neg(hn::Abs(x)));
      const V positive = hn::Div(one, hn::Add(one, e));
      return hn::IfThenElse(hn::Lt(x, hn::Zero(d)), hn::Mul(e, positive), positive);
    }
  }
  template <class D, class V>
  static auto Valid(D, V x) { return hn::Eq(x, x); }  // not NaN
  template <typename T>
  static T Scalar(T x) { return ScalarLogistic(x); }
};

struct SinOp {
  static constexpr bool kAlwaysValid = false;
  template <class D, class V>
  static V Vec(D d, V x) { return KeepZero(d, x, hn::Sin(d, x)); }
  template <class D, class V>
  static auto Valid(D d, V x) { return hn::Le(hn::Abs(x), hn::Set(d, 39000)); }
  template <typename T>
  static T Scalar(T x) { return std::sin(x); }
};

struct CosOp {
  static constexpr bool kAlwaysValid = false;
  template <class D, class V>
  static V Vec(D d, V x) { return hn::Cos(d, x); }
  template <class D, class V>
  static auto Valid(D d, V x) { return hn::Le(hn::Abs(x), hn::Set(d, 39000)); }
  template <typename T>
  static T Scalar(T x) { return std::cos(x); }
};

struct TanhOp {
  static constexpr bool kAlwaysValid = false;
  template <class D, class V>
  static V Vec(D d, V x) {  // saturates to +-1 for large |x|, Inf included
    if constexpr (IsF32<D>) {
      return TanhF32(d, x);
    } else {
      return hn::Tanh(d, x);
    }
  }
  template <class D, class V>
  static auto Valid(D, V x) { return hn::Eq(x, x); }
  template <typename T>
  static T Scalar(T x) { return std::tanh(x); }
};

// Erf for float32 (Highway has none), within 1.4 ulp (all floats of
// (0, 5) checked against double erf): for |x| < 1 the Taylor series to x^19
// (truncation < 2e-8 relative, 0.3 ulp), 2/sqrt(pi) x + x^3 P(x^2) with the leading
// coefficient split in two floats so that the result is one fused
// multiply-add of a small correction; beyond, 1 - erfc(|x|) with Numerical
// Recipes' Chebyshev fit erfc(z) = t exp(-z^2 + R(t)), t = 1 / (1 + z / 2),
// relative error < 1.2e-7 (erfc <= 0.16 there, so < 0.3 ulp of erf), and
// -z^2 + R(t) as one fused multiply-add. (The Abramowitz & Stegun 7.1.26
// form used before had an absolute error of 1.5e-7 by itself: 5.7 ulp.)
// erf(-0) = -0. Float64 keeps std::erf.
struct ErfF32Op {
  static constexpr bool kAlwaysValid = false;
  template <class D, class V>
  static V Vec(D d, V x) {
    const V one = hn::Set(d, 1.0f);
    const V abs_x = hn::Abs(x);
    const V x2 = hn::Mul(x, x);
    // 2/sqrt(pi) * (-1)^n / (n! (2n + 1)), n = 9 .. 1; n = 0 as hi + lo.
    constexpr double kC = 1.1283791670955126;
    constexpr float kTaylor[] = {
        static_cast<float>(-kC / (362880.0 * 19)),   static_cast<float>(kC / (40320.0 * 17)),
        static_cast<float>(-kC / (5040.0 * 15)),     static_cast<float>(kC / (720.0 * 13)),
        static_cast<float>(-kC / (120.0 * 11)),      static_cast<float>(kC / (24.0 * 9)),
        static_cast<float>(-kC / (6.0 * 7)),         static_cast<float>(kC / (2.0 * 5)),
        static_cast<float>(-kC / 3)};
    constexpr float kC0Hi = static_cast<float>(kC);
    constexpr float kC0Lo = static_cast<float>(kC - static_cast<double>(kC0Hi));
    V p = hn::Set(d, kTaylor[0]);
    for (size_t k = 1; k < std::size(kTaylor); ++k) p = hn::MulAdd(p, x2, hn::Set(d, kTaylor[k]));
    const V correction = hn::Mul(hn::Mul(x, x2), p);
    const V small = hn::MulAdd(x, hn::Set(d, kC0Hi), hn::MulAdd(x, hn::Set(d, kC0Lo), correction));
    constexpr float kR[] = {0.17087277f,  -0.82215223f, 1.48851587f, -1.13520398f, 0.27886807f,
                            -0.18628806f, 0.09678418f,  0.37409196f, 1.00002368f,  -1.26551223f};
    // erf(z) is 1 in float from z = 3.92 on; z <= 10 keeps the exponent in
    // ExpF32's range (and Inf out of the reciprocal).
    const V z = hn::Min(abs_x, hn::Set(d, 10.0f));
    const V t = Reciprocal(d, hn::MulAdd(hn::Set(d, 0.5f), z, one));
    V r = hn::Set(d, kR[0]);
    for (size_t k = 1; k < std::size(kR); ++k) r = hn::MulAdd(r, t, hn::Set(d, kR[k]));
    const V erfc = hn::Mul(t, ExpF32(d, hn::NegMulAdd(z, z, r)));
    return KeepZero(d, x, hn::IfThenElse(hn::Lt(abs_x, one), small, hn::CopySign(hn::Sub(one, erfc), x)));
  }
  template <class D, class V>
  static auto Valid(D, V x) { return hn::Eq(x, x); }
  template <typename T>
  static T Scalar(T x) { return std::erf(x); }
};

// Computes one full vector in[0, Lanes) into out (which may equal in). Only
// the lanes outside the trusted inputs take the scalar path, so each result
// depends on its input alone, not on which others share its vector (row
// groups and per-op kernels split arrays at different points).
template <class Op, typename T>
HWY_INLINE void ApplyVector(const T* in, T* out) {
  const hn::ScalableTag<T> d;
  const auto x = hn::LoadU(d, in);
  if constexpr (!Op::kAlwaysValid) {
    const auto valid = Op::Valid(d, x);
    if (HWY_UNLIKELY(!hn::AllTrue(d, valid))) {
      HWY_ALIGN T x_lanes[HWY_MAX_BYTES / sizeof(T)];  // (out may be in)
      HWY_ALIGN T valid_lanes[HWY_MAX_BYTES / sizeof(T)];
      hn::Store(x, d, x_lanes);
      hn::Store(hn::IfThenElseZero(valid, hn::Set(d, T(1))), d, valid_lanes);
      hn::StoreU(Op::Vec(d, x), d, out);
      for (size_t k = 0; k < hn::Lanes(d); ++k) {
        if (valid_lanes[k] == T(0)) out[k] = Op::Scalar(x_lanes[k]);
      }
      return;
    }
  }
  hn::StoreU(Op::Vec(d, x), d, out);
}

template <class Op, typename T>
void Apply(const T* in, T* out, int64_t n) {
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<int64_t>(hn::Lanes(d));
  int64_t i = 0;
  for (; i + lanes <= n; i += lanes) ApplyVector<Op>(in + i, out + i);
  if (i == n) return;
  // The tail goes through a full vector padded with ones (valid for every
  // op), so short arrays get the same results as long ones.
  HWY_ALIGN T buf[HWY_MAX_BYTES / sizeof(T)];
  const int64_t rest = n - i;
  for (int64_t k = 0; k < lanes; ++k) buf[k] = k < rest ? in[i + k] : T(1);
  ApplyVector<Op>(buf, buf);
  std::copy_n(buf, rest, out + i);
}

template <typename T>
void Math(MathOp op, const T* in, T* out, int64_t n) {
  switch (op) {
    case MathOp::kCeil: return Apply<CeilOp>(in, out, n);
    case MathOp::kFloor: return Apply<FloorOp>(in, out, n);
    case MathOp::kRound: return Apply<RoundOp>(in, out, n);
    case MathOp::kExp: return Apply<ExpOp>(in, out, n);
    case MathOp::kExpm1: return Apply<Expm1Op>(in, out, n);
    case MathOp::kLog: return Apply<LogOp>(in, out, n);
    case MathOp::kLog1p: return Apply<Log1pOp>(in, out, n);
    case MathOp::kLogistic: return Apply<LogisticOp>(in, out, n);
    case MathOp::kSin: return Apply<SinOp>(in, out, n);
    case MathOp::kCos: return Apply<CosOp>(in, out, n);
    case MathOp::kTanh: return Apply<TanhOp>(in, out, n);
    case MathOp::kSqrt: return Apply<SqrtOp>(in, out, n);
    case MathOp::kRsqrt: return Apply<RsqrtOp>(in, out, n);
    case MathOp::kErf:
      if constexpr (std::is_same_v<T, float>) return Apply<ErfF32Op>(in, out, n);
      for (int64_t i = 0; i < n; ++i) out[i] = std::erf(in[i]);
      return;
    case MathOp::kCount: break;  // not an op
  }
}

// Four independent accumulators (the max has a latency of several cycles);
// NaN lanes are collected in a mask rather than propagated through Max,
// whose x86 form returns one operand or the other for a NaN.
template <typename T>
T RowExtremum(const T* x, int64_t n, bool is_min) {
  const hn::ScalableTag<T> d;
  const auto lanes = static_cast<int64_t>(hn::Lanes(d));
  const T identity = is_min ? std::numeric_limits<T>::infinity() : -std::numeric_limits<T>::infinity();
  auto a0 = hn::Set(d, identity), a1 = a0, a2 = a0, a3 = a0;
  auto nan = hn::FirstN(d, 0);  // all false
  int64_t i = 0;
  auto fold = [&](auto& acc, const T* p) {
    const auto v = hn::LoadU(d, p);
    nan = hn::Or(nan, hn::IsNaN(v));
    acc = is_min ? hn::Min(acc, v) : hn::Max(acc, v);
  };
  for (; i + 4 * lanes <= n; i += 4 * lanes) {
    fold(a0, x + i);
    fold(a1, x + i + lanes);
    fold(a2, x + i + 2 * lanes);
    fold(a3, x + i + 3 * lanes);
  }
  for (; i + lanes <= n; i += lanes) fold(a0, x + i);
  a0 = is_min ? hn::Min(hn::Min(a0, a1), hn::Min(a2, a3)) : hn::Max(hn::Max(a0, a1), hn::Max(a2, a3));
  if (!hn::AllFalse(d, nan)) return std::numeric_limits<T>::quiet_NaN();
  T r = is_min ? hn::GetLane(hn::MinOfLanes(d, a0)) : hn::GetLane(hn::MaxOfLanes(d, a0));
  for (; i < n; ++i) {
    if (x[i] != x[i]) return std::numeric_limits<T>::quiet_NaN();
    r = is_min ? std::min(r, x[i]) : std::max(r, x[i]);
  }
  return r;
}

}  // namespace

float RowExtremumF32(const float* x, int64_t n, bool is_min) { return RowExtremum(x, n, is_min); }
double RowExtremumF64(const double* x, int64_t n, bool is_min) { return RowExtremum(x, n, is_min); }

void MathF32(MathOp op, const float* in, float* out, int64_t n) { Math(op, in, out, n); }
void MathF64(MathOp op, const double* in, double* out, int64_t n) { Math(op, in, out, n); }

void StreamCopy(void* dst, const void* src, size_t bytes) {
  const hn::ScalableTag<uint8_t> d;
  const size_t lanes = hn::Lanes(d);
  auto* out = static_cast<uint8_t*>(dst);
  const auto* in = static_cast<const uint8_t*>(src);
  size_t i = 0;
  if (reinterpret_cast<uintptr_t>(out) % (lanes) == 0) {
    for (; i + lanes <= bytes; i += lanes) hn::Stream(hn::LoadU(d, in + i), d, out + i);
  }
  if (i < bytes) std::memcpy(out + i, in + i, bytes - i);
}

void StreamFence() { hwy::FlushStream(); }

}  // namespace kiln::backends::cpu
