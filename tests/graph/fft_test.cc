// Copyright 2026 The Kiln Authors.
// FFT, IFFT, RFFT, IRFFT against a naive DFT written here (one axis at a time,
// O(n^2) sums in double), for one to three axes, even, odd, prime and unit
// lengths, batches (split over threads, with a shorter last chunk), empty
// batches and zero lengths, NaN, round trips; and the errors.
#include <cmath>
#include <complex>
#include <numbers>

#include "kiln/graph/fft.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using dtypes::DType;
using graph::Node;
using tensors::Tensor;
using testing::AllClose;
using testing::Rng;
using Cd = std::complex<double>;

std::vector<std::string> ComplexBackends() {
  std::vector<std::string> names;
  for (const std::string& name : testing::BackendNames()) {
    if (backends::NewWithName(name)->GetCapabilities().SupportsOp(ir::OpType::kFft)) names.push_back(name);
  }
  return names;
}

std::vector<Cd> Values(const Tensor& t) {
  const std::vector<double> d = testing::ToDoubles(t);
  std::vector<Cd> out;
  if (dtypes::IsComplex(t.DType())) {
    for (size_t i = 0; i + 1 < d.size(); i += 2) out.emplace_back(d[i], d[i + 1]);
  } else {
    for (double v : d) out.emplace_back(v, 0);
  }
  return out;
}

std::vector<double> Interleave(const std::vector<Cd>& v) {
  std::vector<double> d;
  for (const Cd& z : v) {
    d.push_back(z.real());
    d.push_back(z.imag());
  }
  return d;
}

// The DFT of `x` (dims) along `axis`: sign -1 forward, +1 inverse (unscaled).
std::vector<Cd> DftAxis(const std::vector<Cd>& x, const std::vector<int64_t>& dims, size_t axis, int sign) {
  std::vector<Cd> y(x.size());
  int64_t inner = 1;
  for (size_t a = axis + 1; a < dims.size(); ++a) inner *= dims[a];
  const int64_t n = dims[axis], outer = static_cast<int64_t>(x.size()) / std::max<int64_t>(1, n * inner);
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      for (int64_t k = 0; k < n; ++k) {
        Cd sum = 0;
        for (int64_t t = 0; t < n; ++t) {
          const double angle = sign * 2 * std::numbers::pi * static_cast<double>((k * t) % n) / static_cast<double>(n);
          sum += x[static_cast<size_t>((o * n + t) * inner + i)] * Cd(std::cos(angle), std::sin(angle));
        }
        y[static_cast<size_t>((o * n + k) * inner + i)] = sum;
      }
    }
  }
  return y;
}

// The DFT over the last `num_axes` axes; `inverse` divides by N.
std::vector<Cd> Dft(std::vector<Cd> x, const std::vector<int64_t>& dims, int num_axes, bool inverse) {
  double n = 1;
  for (size_t a = dims.size() - static_cast<size_t>(num_axes); a < dims.size(); ++a) {
    x = DftAxis(x, dims, a, inverse ? 1 : -1);
    n *= static_cast<double>(dims[a]);
  }
  if (inverse) {
    for (Cd& v : x) v /= n;
  }
  return x;
}

// Keeps the first m of the last axis's elements.
std::vector<Cd> KeepFirst(const std::vector<Cd>& x, int64_t n, int64_t m) {
  std::vector<Cd> y;
  for (size_t r = 0; r < x.size() / static_cast<size_t>(n); ++r) {
    for (int64_t k = 0; k < m; ++k) y.push_back(x[r * static_cast<size_t>(n) + static_cast<size_t>(k)]);
  }
  return y;
}

// numpy's irfftn: the inverse DFT over the leading axes, then each last-axis
// row's half spectrum c (m values) extended to n Hermitian values (the
// imaginary parts of c[0] and, for even n, c[n/2] dropped) and inverted.
std::vector<double> IrfftReference(const std::vector<Cd>& c, std::vector<int64_t> dims, int num_axes, int64_t n) {
  const int64_t m = dims.back();
  std::vector<Cd> x = c;
  for (size_t a = dims.size() - static_cast<size_t>(num_axes); a + 1 < dims.size(); ++a) {
    x = DftAxis(x, dims, a, 1);
    for (Cd& v : x) v /= static_cast<double>(dims[a]);
  }
  std::vector<double> y;
  for (size_t r = 0; r < x.size() / static_cast<size_t>(m); ++r) {
    for (int64_t t = 0; t < n; ++t) {
      double sum = 0;
      for (int64_t k = 0; k < n; ++k) {
        Cd ck = k < m ? x[r * m + k] : std::conj(x[r * m + (n - k)]);
        if (k == 0 || 2 * k == n) ck = ck.real();
        const double angle = 2 * std::numbers::pi * static_cast<double>((k * t) % n) / static_cast<double>(n);
        sum += (ck * Cd(std::cos(angle), std::sin(angle))).real();
      }
      y.push_back(sum / static_cast<double>(n));
    }
  }
  return y;
}

struct Case {
  std::vector<int64_t> dims;
  int num_axes;
};

const std::vector<Case> kCases = {{{8}, 1},    {{7}, 1},       {{1}, 1},          {{13}, 1},      {{3, 5}, 1},
                                  {{3, 5}, 2}, {{2, 4, 6}, 3}, {{5, 3, 4, 2}, 2}, {{7, 9, 16}, 1}, {{2, 3, 5, 7}, 3}};

// Tolerances relative to the largest output: FFTW's error grows with log N.
double Tol(DType dt) { return dt == dtypes::Complex64 || dt == dtypes::Float32 ? 2e-5 : 1e-12; }

class Fft : public ::testing::TestWithParam<std::string> {
 protected:
  Tensor Run1(const std::function<Node(const std::vector<Node>&)>& fn, const std::vector<Tensor>& args) {
    return testing::Run1(backends::NewWithName(GetParam()), fn, args);
  }
  Rng rng_{5};
};

TEST_P(Fft, ComplexTransformsMatchTheDft) {
  for (DType dt : {dtypes::Complex64, dtypes::Complex128}) {
    for (const Case& c : kCases) {
      Tensor x = testing::Random(shapes::Shape(dt, c.dims), rng_, -1, 1);
      SCOPED_TRACE(::testing::Message() << x.Shape() << " over " << c.num_axes << " axes");
      const double n = static_cast<double>(testing::NumElements(c.dims));
      Tensor y = Run1([&](const auto& p) { return graph::FFT(p[0], c.num_axes); }, {x});
      EXPECT_TRUE(AllClose(y, x.Shape(), Interleave(Dft(Values(x), c.dims, c.num_axes, false)), 0, Tol(dt) * n));
      Tensor z = Run1([&](const auto& p) { return graph::IFFT(p[0], c.num_axes); }, {x});
      EXPECT_TRUE(AllClose(z, x.Shape(), Interleave(Dft(Values(x), c.dims, c.num_axes, true)), 0, Tol(dt)));
      Tensor back = Run1([&](const auto& p) { return graph::IFFT(graph::FFT(p[0], c.num_axes), c.num_axes); }, {x});
      EXPECT_TRUE(AllClose(back, x, 0, 10 * Tol(dt)));
    }
  }
}

TEST_P(Fft, RealTransformsMatchTheDft) {
  for (DType dt : {dtypes::Float32, dtypes::Float64}) {
    const DType cdt = dtypes::ComplexOf(dt);
    for (const Case& c : kCases) {
      Tensor x = testing::Random(shapes::Shape(dt, c.dims), rng_, -1, 1);
      SCOPED_TRACE(::testing::Message() << x.Shape() << " over " << c.num_axes << " axes");
      const int64_t n = c.dims.back(), m = n / 2 + 1;
      std::vector<int64_t> half = c.dims;
      half.back() = m;
      const double total = static_cast<double>(testing::NumElements(c.dims));
      Tensor y = Run1([&](const auto& p) { return graph::RFFT(p[0], c.num_axes); }, {x});
      std::vector<Cd> full = Dft(Values(x), c.dims, c.num_axes, false);
      EXPECT_TRUE(AllClose(y, shapes::Shape(cdt, half), Interleave(KeepFirst(full, n, m)), 0, Tol(dt) * total));
      // IRFFT of an arbitrary (non-Hermitian) half spectrum, numpy's rule.
      Tensor h = testing::Random(shapes::Shape(cdt, half), rng_, -1, 1);
      Tensor r = Run1([&](const auto& p) { return graph::IRFFT(p[0], c.num_axes, n); }, {h});
      EXPECT_TRUE(AllClose(r, x.Shape(), IrfftReference(Values(h), half, c.num_axes, n), 0, Tol(dt)));
      // Round trip, odd lengths included (given explicitly).
      Tensor back = Run1([&](const auto& p) { return graph::IRFFT(graph::RFFT(p[0], c.num_axes), c.num_axes, n); }, {x});
      EXPECT_TRUE(AllClose(back, x, 0, 10 * Tol(dt)));
    }
  }
}

TEST_P(Fft, BatchesSplitOverThreadsAndLongTransforms) {
  // 7 transforms (chunks of 4 and 3 on 2 threads) of 4096, and one of 2^16.
  for (std::vector<int64_t> dims : std::vector<std::vector<int64_t>>{{7, 4096}, {1 << 16}, {33, 2, 1024}}) {
    Tensor x = testing::Random(shapes::Shape(dtypes::Complex128, dims), rng_, -1, 1);
    Tensor y = Run1([](const auto& p) { return graph::IFFT(graph::FFT(p[0])); }, {x});
    EXPECT_TRUE(AllClose(y, x, 0, 1e-12));
    Tensor r = testing::Random(shapes::Shape(dtypes::Float32, dims), rng_, -1, 1);
    Tensor rr = Run1([](const auto& p) { return graph::IRFFT(graph::RFFT(p[0])); }, {r});
    EXPECT_TRUE(AllClose(rr, r, 0, 1e-5));
  }
  // One frequency of a long transform against its closed form: a cosine of
  // frequency 5 over 2^16 points has |X[5]| = N/2.
  const int64_t n = 1 << 16;
  std::vector<double> v;
  for (int64_t t = 0; t < n; ++t) v.push_back(std::cos(2 * std::numbers::pi * 5 * static_cast<double>(t) / n));
  Tensor c = testing::FromDoubles(shapes::Make(dtypes::Float64, n), v);
  std::vector<Cd> spectrum = Values(Run1([](const auto& p) { return graph::RFFT(p[0]); }, {c}));
  EXPECT_NEAR(spectrum[5].real(), n / 2.0, 1e-7);
  EXPECT_NEAR(std::abs(spectrum[6]), 0, 1e-7);
}

TEST_P(Fft, EmptyBatchesZeroLengthsAndNaN) {
  Tensor empty = testing::Random(shapes::Make(dtypes::Complex64, 0, 8), rng_);
  EXPECT_EQ(Run1([](const auto& p) { return graph::FFT(p[0]); }, {empty}).Shape(), empty.Shape());
  Tensor zero_length = testing::Random(shapes::Make(dtypes::Float32, 3, 0), rng_);
  // The RFFT of an empty row keeps one frequency: zero.
  EXPECT_TRUE(AllClose(Run1([](const auto& p) { return graph::RFFT(p[0]); }, {zero_length}),
                       shapes::Make(dtypes::Complex64, 3, 1), {0, 0, 0, 0, 0, 0}, 0, 0));
  // A NaN reaches every frequency; an infinity too (as NaN or infinity).
  Tensor x = testing::FromDoubles(shapes::Make(dtypes::Float64, 2, 4), {1, 2, NAN, 4, 1, INFINITY, 0, 0});
  std::vector<Cd> y = Values(Run1([](const auto& p) { return graph::RFFT(p[0]); }, {x}));
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(std::isnan(y[static_cast<size_t>(k)].real())) << k;
  for (int k = 3; k < 6; ++k) EXPECT_FALSE(std::isfinite(std::abs(y[static_cast<size_t>(k)]))) << k;
}

INSTANTIATE_TEST_SUITE_P(Backends, Fft, ::testing::ValuesIn(ComplexBackends()));
// Empty where no backend tested has the op (KILN_TEST_BACKENDS=cuda).
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(Fft);

class FftErrors : public testing::GraphErrorTest {};

TEST_F(FftErrors, ShapesDTypesAndLengths) {
  Node z = Param(shapes::Make(dtypes::Complex64, 4, 6));
  Node r = Param(shapes::Make(dtypes::Float32, 4, 6));
  KILN_EXPECT_ERROR(graph::FFT(z, 0), "FFT: transforms 1 to 3 trailing axes, got num_axes=0");
  KILN_EXPECT_ERROR(graph::IFFT(z, 4), "IFFT: transforms 1 to 3 trailing axes, got num_axes=4");
  KILN_EXPECT_ERROR(graph::FFT(z, 3), "FFT: needs an operand of rank >= 3 to transform 3 axes, got Complex64[4, 6]");
  KILN_EXPECT_ERROR(graph::FFT(r), "FFT: requires a complex operand, got Float32[4, 6] (make one with Complex");
  KILN_EXPECT_ERROR(graph::RFFT(z), "RFFT: requires a Float32 or Float64 operand, got Complex64[4, 6]");
  KILN_EXPECT_ERROR(graph::RFFT(Param(shapes::Make(dtypes::Float16, 4))), "RFFT: requires a Float32 or Float64");
  KILN_EXPECT_ERROR(graph::IRFFT(r), "IRFFT: requires a complex operand");
  KILN_EXPECT_ERROR(graph::IRFFT(z, 1, 7),
                    "IRFFT: an output length of 7 needs a last axis of length/2 + 1 = 4 frequencies, got Complex64[4, 6]");
  KILN_EXPECT_ERROR(graph::IRFFT(Param(shapes::Make(dtypes::Complex64, 1))),
                    "IRFFT: an output length of 0 needs a last axis of length/2 + 1 = 1 frequencies, got Complex64[1] "
                    "(the output length must be >= 1)");
  EXPECT_EQ(graph::IRFFT(z).Shape(), shapes::Make(dtypes::Float32, 4, 10));
  EXPECT_EQ(graph::IRFFT(z, 2, 11).Shape(), shapes::Make(dtypes::Float32, 4, 11));
  EXPECT_EQ(graph::RFFT(r, 2).Shape(), shapes::Make(dtypes::Complex64, 4, 4));
}

}  // namespace
}  // namespace kiln
