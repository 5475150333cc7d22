// Copyright 2026 The Kiln Authors.
// The CUDA backend's complex math (src/backends/cuda/complex_math.cuh),
// compiled here for the host, against std::complex (glibc, C99 Annex G),
// which the CPU backend computes with: every unary function and the
// arithmetic on the special values (NaN, infinities, signed zeros, huge
// parts) and on random values, in float and double; and the same file
// compiled by NVRTC for Ampere and Hopper.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "src/backends/cuda/nvrtc_compiler.h"
#include "src/backends/cuda/prelude.h"

namespace kiln::backends::cuda {
namespace {

#define __device__
#define __forceinline__ inline
inline double __longlong_as_double(long long v) {
  double d;
  std::memcpy(&d, &v, sizeof d);
  return d;
}
#define KILN_CUDA_SOURCE(...) __VA_ARGS__
#include "src/backends/cuda/complex_math.cuh"
#undef KILN_CUDA_SOURCE
#undef __device__
#undef __forceinline__

template <class R>
std::complex<R> Std(KCx<R> z) {
  return {z.re, z.im};
}
template <class R>
KCx<R> Kc(std::complex<R> z) {
  return kcMake(z.real(), z.imag());
}

// got equals want: the same NaN parts and infinities, finite values within
// rtol |want| as complex numbers (a part that cancels to near zero carries
// the other part's rounding), or within the smallest normal number (the
// subnormal range keeps too few digits to compare; the CPU flushes it to
// zero).
template <class R>
::testing::AssertionResult Same(std::complex<R> got, std::complex<R> want, double rtol) {
  const double atol = std::numeric_limits<R>::min();
  auto part = [](R g, R w) {
    if (std::isnan(w)) return std::isnan(g);
    if (std::isinf(w)) return g == w;
    return std::isfinite(g);
  };
  bool ok = part(got.real(), want.real()) && part(got.imag(), want.imag());
  if (ok && std::isfinite(want.real()) && std::isfinite(want.imag())) {
    const std::complex<double> g(got), w(want);
    ok = std::abs(g - w) <= rtol * std::abs(w) + atol;
  } else if (ok) {  // a finite part beside an infinite or NaN one
    auto near = [&](R g, R w) { return !std::isfinite(w) || std::abs(double(g) - w) <= rtol * std::abs(double(w)) + atol; };
    ok = near(got.real(), want.real()) && near(got.imag(), want.imag());
  }
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want;
}

template <class R>
std::vector<std::complex<R>> Values() {
  const R nan = std::numeric_limits<R>::quiet_NaN(), inf = std::numeric_limits<R>::infinity();
  std::vector<std::complex<R>> v;
  const R parts[] = {nan, inf, -inf, 0, R(-0.0), 1, -2, R(0.5), R(1e30), R(-1e-30), R(3.25)};
  // Where e^x overflows but e^x cos y may not (glibc scales it).
  const R large[] = {R(sizeof(R) == 4 ? 89.5 : 710.2), R(sizeof(R) == 4 ? -89.5 : -710.2)};
  for (R a : parts) {
    for (R b : parts) v.emplace_back(a, b);
  }
  for (R a : large) {
    for (R b : {R(1.0471975), R(-2.5), R(0.001)}) v.emplace_back(a, b), v.emplace_back(b, a);
  }
  std::mt19937 rng(7);
  std::uniform_real_distribution<R> dist(-3, 3);
  for (int i = 0; i < 2000; ++i) v.emplace_back(dist(rng), dist(rng));
  std::uniform_real_distribution<R> near(-R(1e-3), R(1e-3));
  for (int i = 0; i < 200; ++i) v.emplace_back(near(rng), near(rng));
  return v;
}

template <class R>
double Rtol() {
  return sizeof(R) == 4 ? 4e-6 : 1e-14;
}

template <class R>
void CheckUnary(const char* name, KCx<R> (*ours)(KCx<R>), std::complex<R> (*want)(std::complex<R>)) {
  int failures = 0;
  for (const std::complex<R>& z : Values<R>()) {
    const auto result = Same(Std(ours(Kc(z))), want(z), Rtol<R>());
    if (!result && ++failures <= 8) ADD_FAILURE() << name << z << ": " << result.message();
  }
  EXPECT_EQ(failures, 0) << name << (sizeof(R) == 4 ? " float" : " double");
}

// `finite_limit`: pairs with a finite part this large or larger are skipped
// (a power with a huge exponent is exp of an angle of ~1e30 radians, whose
// value hangs on the last bit of log a: no two implementations agree).
template <class R>
void CheckBinary(const char* name, KCx<R> (*ours)(KCx<R>, KCx<R>),
                 std::complex<R> (*want)(std::complex<R>, std::complex<R>), double finite_limit = INFINITY) {
  const std::vector<std::complex<R>> v = Values<R>();
  auto huge = [&](std::complex<R> z) {
    auto big = [&](R x) { return std::isfinite(x) && std::abs(x) >= finite_limit; };
    return big(z.real()) || big(z.imag());
  };
  int failures = 0;
  // Every special pair, then random pairs.
  for (size_t i = 0; i < v.size(); ++i) {
    for (size_t j = 0; j < v.size(); j += i < 121 ? 1 : 97) {
      if (i >= 121 && j >= 121 && (i + j) % 7 != 0) continue;
      if (huge(v[i]) || huge(v[j])) continue;
      const auto result = Same(Std(ours(Kc(v[i]), Kc(v[j]))), want(v[i], v[j]), 4 * Rtol<R>());
      if (!result && ++failures <= 8) ADD_FAILURE() << name << v[i] << ", " << v[j] << ": " << result.message();
    }
  }
  EXPECT_EQ(failures, 0) << name << (sizeof(R) == 4 ? " float" : " double");
}

// In long double, and by their series where even that cancels.
template <class R>
std::complex<R> RefExpm1(std::complex<R> z) {
  const std::complex<long double> w(z);
  if (std::abs(w) < 1e-6L) return std::complex<R>(w + w * w / 2.0L);
  return std::complex<R>(std::exp(w) - 1.0L);
}
template <class R>
std::complex<R> RefLog1p(std::complex<R> z) {
  const std::complex<long double> w(z);
  if (std::abs(w) < 1e-6L) return std::complex<R>(w - w * w / 2.0L);
  return std::complex<R>(std::log(1.0L + w));
}

template <class R>
void CheckAll() {
  CheckUnary<R>("exp", kcExp<R>, [](std::complex<R> z) { return std::exp(z); });
  CheckUnary<R>("log", kcLog<R>, [](std::complex<R> z) { return std::log(z); });
  CheckUnary<R>("sqrt", kcSqrt<R>, [](std::complex<R> z) { return std::sqrt(z); });
  CheckUnary<R>("sin", kcSin<R>, [](std::complex<R> z) { return std::sin(z); });
  CheckUnary<R>("cos", kcCos<R>, [](std::complex<R> z) { return std::cos(z); });
  CheckUnary<R>("tanh", kcTanh<R>, [](std::complex<R> z) { return std::tanh(z); });
  CheckUnary<R>("expm1", kcExpm1<R>, RefExpm1<R>);
  CheckUnary<R>("log1p", kcLog1p<R>, RefLog1p<R>);
  CheckUnary<R>("rsqrt", kcRsqrt<R>, [](std::complex<R> z) { return std::complex<R>(1) / std::sqrt(z); });
  CheckBinary<R>("mul", [](KCx<R> a, KCx<R> b) { return a * b; }, [](std::complex<R> a, std::complex<R> b) { return a * b; });
  CheckBinary<R>("div", [](KCx<R> a, KCx<R> b) { return a / b; }, [](std::complex<R> a, std::complex<R> b) { return a / b; });
  CheckBinary<R>("pow", kcPow<R>, [](std::complex<R> a, std::complex<R> b) {
    if (a == std::complex<R>(0) && b == std::complex<R>(0)) return std::complex<R>(1);
    if (a == std::complex<R>(0) && b.real() > 0) return std::complex<R>(0);
    return std::pow(a, b);
  }, 1e20);
}

TEST(CudaComplexMath, FloatMatchesStdComplex) { CheckAll<float>(); }
TEST(CudaComplexMath, DoubleMatchesStdComplex) { CheckAll<double>(); }

// Every function instantiated for both part types in one kernel, from the
// string the generated modules include (ComplexMathSource).
TEST(CudaComplexMath, CompilesWithNvrtc) {
  std::stringstream source;
  source << ComplexMathSource();
  source << R"(
template <class R>
__device__ void kcAll(KCx<R>* z) {
  const KCx<R> a = z[0], b = z[1];
  z[2] = a * b + a / b - kcExp(a) + kcLog(a) + kcSqrt(a) + kcSin(a) + kcCos(a) + kcTanh(a) + kcExpm1(a) +
         kcLog1p(a) + kcRsqrt(a) + kcPow(a, b) + kcSign(a);
  z[3] = kcMake(kcAbs(a), kcAbs(b));
  z[4].re = a == b || a != b;
}
extern "C" __global__ void kc_all(kc64* f, kc128* d) {
  kcAll(f);
  kcAll(d);
}
)";
  for (const char* arch : {"sm_80", "sm_90"}) {
    SCOPED_TRACE(arch);
    EXPECT_NO_THROW(CompileToCubin(source.str(), arch));
  }
}

}  // namespace
}  // namespace kiln::backends::cuda
