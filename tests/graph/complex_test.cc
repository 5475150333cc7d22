// Copyright 2026 The Kiln Authors.
// Complex numbers: the dtypes, Complex/Real/Imag/Conj/Angle, the elementwise
// ops on complex values against std::complex references (random values of
// several shapes, and the special values: NaN, infinities, signed zeros),
// the composed complex MatMul and ReduceSum, conversions, tensors and
// checkpoints of complex values, and the errors of ops not defined on them.
#include <cmath>
#include <complex>
#include <cstring>
#include <filesystem>

#include "kiln/context/checkpoints.h"
#include "kiln/graph/fft.h"
#include "kiln/graph/cumulative.h"
#include "kiln/graph/linalg.h"
#include "kiln/graph/sort.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using dtypes::DType;
using graph::Node;
using tensors::Tensor;
using testing::AllClose;
using testing::Rng;

const DType kComplexDTypes[] = {dtypes::Complex64, dtypes::Complex128};

// The backends with complex dtypes (all of them now; a new backend may lack them).
std::vector<std::string> ComplexBackends() {
  std::vector<std::string> names;
  for (const std::string& name : testing::BackendNames()) {
    if (backends::NewWithName(name)->GetCapabilities().SupportsDType(dtypes::Complex64)) names.push_back(name);
  }
  return names;
}

std::vector<std::complex<double>> Values(const Tensor& t) {
  const std::vector<double> d = testing::ToDoubles(t);
  std::vector<std::complex<double>> out;
  for (size_t i = 0; i + 1 < d.size(); i += 2) out.emplace_back(d[i], d[i + 1]);
  return out;
}

Tensor FromComplex(DType dt, std::vector<int64_t> dims, const std::vector<std::complex<double>>& v) {
  std::vector<double> d;
  for (const auto& z : v) {
    d.push_back(z.real());
    d.push_back(z.imag());
  }
  return testing::FromDoubles(shapes::Shape(dt, std::move(dims)), d);
}

// Interleaved doubles of reference values computed in the dtype's own
// precision, as the kernels compute: f32 for Complex64, f64 for Complex128.
template <typename F32, typename F64>
std::vector<double> Reference(DType dt, const std::vector<std::complex<double>>& in, F32&& f32, F64&& f64) {
  std::vector<double> out;
  for (const auto& z : in) {
    std::complex<double> r;
    if (dt == dtypes::Complex64) r = std::complex<double>(f32(std::complex<float>(z)));
    else r = f64(z);
    out.push_back(r.real());
    out.push_back(r.imag());
  }
  return out;
}

// The interleaved doubles of complex values.
std::vector<double> Interleave(const std::vector<std::complex<double>>& v) {
  std::vector<double> out;
  for (const auto& z : v) {
    out.push_back(z.real());
    out.push_back(z.imag());
  }
  return out;
}

// Special values: NaN and infinities in either part, signed zeros, huge parts.
const std::vector<std::complex<double>> kSpecial = {
    {std::nan(""), 0}, {0, std::nan("")}, {INFINITY, 0}, {-INFINITY, 1}, {0, INFINITY}, {1, -INFINITY},
    {0, 0},           {-0.0, 0},         {0, -0.0},     {1e30, 1e30},   {-2, 0},       {0.5, -0.25}};

class ComplexOps : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> backend_ = backends::NewWithName(GetParam());
  Tensor Run1(const std::function<Node(const std::vector<Node>&)>& fn, const std::vector<Tensor>& args) {
    return testing::Run1(backend_, fn, args);
  }
  // Random inputs of every test shape, plus the special values.
  std::vector<Tensor> Inputs(DType dt, double lo = -3, double hi = 3) {
    std::vector<Tensor> inputs;
    for (const shapes::Shape& s : testing::TestShapes(dt)) inputs.push_back(testing::Random(s, rng_, lo, hi));
    inputs.push_back(FromComplex(dt, {static_cast<int64_t>(kSpecial.size())}, kSpecial));
    return inputs;
  }
  Rng rng_{11};
};

template <typename T>
using Fn1 = std::complex<T> (*)(const std::complex<T>&);

// std::pow, except at 0 (where it is NaN): 0^0 = 1, 0^b = 0 for Re(b) > 0.
template <typename T>
std::complex<T> RefPow(std::complex<T> a, std::complex<T> b) {
  if (a == std::complex<T>(0) && b == std::complex<T>(0)) return 1;
  if (a == std::complex<T>(0) && b.real() > 0) return 0;
  return std::pow(a, b);
}

// References in long double, whose 64-bit mantissa keeps exp(z) - 1 and
// log(1 + z) accurate enough for Complex128 everywhere but very near 0.
template <typename T>
std::complex<T> RefExpm1(const std::complex<T>& z) {
  return std::complex<T>(std::exp(std::complex<long double>(z)) - 1.0L);
}
template <typename T>
std::complex<T> RefLog1p(const std::complex<T>& z) {
  return std::complex<T>(std::log(1.0L + std::complex<long double>(z)));
}
// The unit complex number in z's direction: polar(1, arg z) (the kernel
// divides by |z|); for an infinite z the direction's limit, NaN for NaN.
template <typename T>
std::complex<T> RefSgn(const std::complex<T>& z) {
  const T nan = std::numeric_limits<T>::quiet_NaN();
  if (std::isnan(z.real()) || std::isnan(z.imag())) return {nan, nan};
  if (z == std::complex<T>(0)) return z;
  if (std::isinf(z.real()) || std::isinf(z.imag())) {
    const T re = std::isinf(z.real()) ? std::copysign(T(1), z.real()) : 0;
    const T im = std::isinf(z.imag()) ? std::copysign(T(1), z.imag()) : 0;
    return std::polar(T(1), std::atan2(im, re));
  }
  return std::polar(T(1), std::arg(z));
}

// got within rtol |want| of want as complex numbers (not part by part: a
// part that cancels to near 0 may carry the rounding error of the other,
// larger part, as in any complex function evaluated in floating point);
// where want has a NaN or infinite part, the parts must match as AllClose's.
::testing::AssertionResult CloseAsComplex(const Tensor& got, const std::vector<double>& want, double rtol) {
  const std::vector<double> g = testing::ToDoubles(got);
  if (g.size() != want.size()) return ::testing::AssertionFailure() << g.size() << " values, want " << want.size();
  for (size_t k = 0; k + 1 < g.size(); k += 2) {
    const std::complex<double> gz(g[k], g[k + 1]), wz(want[k], want[k + 1]);
    bool ok;
    if (std::isfinite(wz.real()) && std::isfinite(wz.imag())) {
      ok = std::abs(gz - wz) <= rtol * std::abs(wz) + 1e-30;
    } else {
      auto same = [](double want, double got) {
        if (std::isnan(want)) return std::isnan(got);
        return std::isinf(want) ? want == got : std::abs(got - want) <= 1e-6 * std::abs(want);
      };
      ok = same(wz.real(), gz.real()) && same(wz.imag(), gz.imag());
    }
    if (!ok) return ::testing::AssertionFailure() << "element " << k / 2 << ": got " << gz << ", want " << wz;
  }
  return ::testing::AssertionSuccess();
}

TEST_P(ComplexOps, UnaryMatchStdComplex) {
  struct Case {
    const char* name;
    Node (*op)(Node, graph::Loc);
    Fn1<float> f32;
    Fn1<double> f64;
    bool as_complex = false;  // compare with CloseAsComplex (parts that cancel)
  };
  const Case cases[] = {
      {"Neg", graph::Neg, [](const std::complex<float>& z) { return -z; }, [](const std::complex<double>& z) { return -z; }},
      {"Exp", graph::Exp, [](const std::complex<float>& z) { return std::exp(z); },
       [](const std::complex<double>& z) { return std::exp(z); }},
      {"Log", graph::Log, [](const std::complex<float>& z) { return std::log(z); },
       [](const std::complex<double>& z) { return std::log(z); }},
      {"Sin", graph::Sin, [](const std::complex<float>& z) { return std::sin(z); },
       [](const std::complex<double>& z) { return std::sin(z); }},
      {"Cos", graph::Cos, [](const std::complex<float>& z) { return std::cos(z); },
       [](const std::complex<double>& z) { return std::cos(z); }},
      {"Tanh", graph::Tanh, [](const std::complex<float>& z) { return std::tanh(z); },
       [](const std::complex<double>& z) { return std::tanh(z); }},
      {"Sqrt", graph::Sqrt, [](const std::complex<float>& z) { return std::sqrt(z); },
       [](const std::complex<double>& z) { return std::sqrt(z); }},
      {"Expm1", graph::Expm1, RefExpm1<float>, RefExpm1<double>, true},
      {"Log1p", graph::Log1p, RefLog1p<float>, RefLog1p<double>, true},
      {"Sign", graph::Sign, RefSgn<float>, RefSgn<double>, true},
      {"Rsqrt", graph::Rsqrt, [](const std::complex<float>& z) { return std::complex<float>(1) / std::sqrt(z); },
       [](const std::complex<double>& z) { return std::complex<double>(1) / std::sqrt(z); }},
  };
  for (const Case& c : cases) {
    for (DType dt : kComplexDTypes) {
      for (const Tensor& x : Inputs(dt)) {
        SCOPED_TRACE(::testing::Message() << c.name << " " << x.Shape());
        Tensor got = Run1([&](const auto& p) { return c.op(p[0], graph::Loc::current()); }, {x});
        std::vector<double> want = Reference(dt, Values(x), c.f32, c.f64);
        if (c.as_complex) {
          EXPECT_EQ(got.Shape(), x.Shape());
          EXPECT_TRUE(CloseAsComplex(got, want, 4 * testing::Tolerance(dt)));
        } else {
          EXPECT_TRUE(AllClose(got, x.Shape(), want, 4 * testing::Tolerance(dt), 1e-30));
        }
      }
    }
  }
}

TEST_P(ComplexOps, BinaryMatchStdComplexWithBroadcasting) {
  struct Case {
    const char* name;
    Node (*op)(Node, Node, graph::Loc);
    std::complex<double> (*f)(std::complex<double>, std::complex<double>);
  };
  const Case cases[] = {
      {"Add", graph::Add, [](std::complex<double> a, std::complex<double> b) { return a + b; }},
      {"Sub", graph::Sub, [](std::complex<double> a, std::complex<double> b) { return a - b; }},
      {"Mul", graph::Mul, [](std::complex<double> a, std::complex<double> b) { return a * b; }},
      {"Div", graph::Div, [](std::complex<double> a, std::complex<double> b) { return a / b; }},
      {"Pow", graph::Pow, [](std::complex<double> a, std::complex<double> b) { return RefPow(a, b); }},
  };
  for (const Case& c : cases) {
    for (DType dt : kComplexDTypes) {
      // [n, 3] op [3], then the special values against each other (a
      // different pairing each: the second operand reversed).
      for (int64_t rows : {0, 1, 5, 20000}) {
        Tensor a = testing::Random(shapes::Make(dt, rows, 3), rng_), b = testing::Random(shapes::Make(dt, 3), rng_);
        SCOPED_TRACE(::testing::Message() << c.name << " " << a.Shape());
        Tensor got = Run1([&](const auto& p) { return c.op(p[0], p[1], graph::Loc::current()); }, {a, b});
        std::vector<std::complex<double>> av = Values(a), bv = Values(b), want;
        for (size_t i = 0; i < av.size(); ++i) {
          if (dt == dtypes::Complex64) {
            // in float, as the kernel: the quotient's rounding differs otherwise
            auto f32 = [&](std::complex<float> x, std::complex<float> y) -> std::complex<double> {
              if (std::string(c.name) == "Add") return x + y;
              if (std::string(c.name) == "Sub") return x - y;
              if (std::string(c.name) == "Mul") return x * y;
              if (std::string(c.name) == "Pow") return RefPow(x, y);
              return x / y;
            };
            want.push_back(f32(std::complex<float>(av[i]), std::complex<float>(bv[i % 3])));
          } else {
            want.push_back(c.f(av[i], bv[i % 3]));
          }
        }
        // Each part is a sum of products: compared with an absolute error
        // scaled to the values' size, as a part may cancel to near zero. A
        // power, exp(b log a), reaches |z| ~ e^15 here: compared as complex
        // numbers (its parts carry each other's rounding, magnified by the
        // exponential; kernels that are not glibc's differ by ~1e-6 |z|).
        if (std::string(c.name) == "Pow") {
          EXPECT_EQ(got.Shape(), a.Shape());
          EXPECT_TRUE(CloseAsComplex(got, Interleave(want), 4 * testing::Tolerance(dt)));
        } else {
          EXPECT_TRUE(AllClose(got, a.Shape(), Interleave(want), 4 * testing::Tolerance(dt), 50 * testing::Tolerance(dt)));
        }
      }
      std::vector<std::complex<double>> rev(kSpecial.rbegin(), kSpecial.rend());
      Tensor a = FromComplex(dt, {static_cast<int64_t>(kSpecial.size())}, kSpecial);
      Tensor b = FromComplex(dt, {static_cast<int64_t>(rev.size())}, rev);
      Tensor got = Run1([&](const auto& p) { return c.op(p[0], p[1], graph::Loc::current()); }, {a, b});
      std::vector<std::complex<double>> want;
      for (size_t i = 0; i < kSpecial.size(); ++i) {
        if (dt == dtypes::Complex64) {
          const std::complex<float> x(kSpecial[i]), y(rev[i]);
          const std::string n = c.name;
          want.emplace_back(n == "Add"   ? x + y
                            : n == "Sub" ? x - y
                            : n == "Mul" ? x * y
                            : n == "Pow" ? RefPow(x, y)
                                         : x / y);
        } else {
          want.push_back(c.f(kSpecial[i], rev[i]));
        }
      }
      SCOPED_TRACE(::testing::Message() << c.name << " special values " << dtypes::Name(dt));
      EXPECT_TRUE(AllClose(got, a.Shape(), Interleave(want),
                           4 * testing::Tolerance(dt), 1e-30));
    }
  }
}

// exp(b log a) is NaN at a = 0; Pow gives 0^0 = 1 and 0^b = 0 for Re(b) > 0
// (numpy, PyTorch), and the gradient of z^1 at 0 is 1.
TEST_P(ComplexOps, PowAtZero) {
  for (DType dt : kComplexDTypes) {
    Tensor a = FromComplex(dt, {3}, {{0, 0}, {0, 0}, {0, 0}});
    Tensor b = FromComplex(dt, {3}, {{0, 0}, {2, 1}, {0.5, -3}});
    EXPECT_TRUE(AllClose(Run1([](const auto& p) { return graph::Pow(p[0], p[1]); }, {a, b}), a.Shape(),
                         {1, 0, 0, 0, 0, 0}, 0, 0));
  }
  Tensor z = FromComplex(dtypes::Complex128, {}, {{0, 0}});
  Tensor grad = Run1([](const auto& p) {
    Node one = graph::ScalarLike(p[0], 1);
    return graph::Gradient(graph::Real(graph::Pow(p[0], one)), {p[0]})[0];
  }, {z});
  EXPECT_TRUE(AllClose(grad, z.Shape(), {1, 0}, 0, 0));
}

TEST_P(ComplexOps, PartsAbsAngleConj) {
  for (DType dt : kComplexDTypes) {
    const DType real = dtypes::RealPart(dt);
    for (const Tensor& x : Inputs(dt)) {
      SCOPED_TRACE(x.Shape().ToString());
      std::vector<std::complex<double>> v = Values(x);
      std::vector<double> re, im, abs, angle;
      for (const auto& z : v) {
        re.push_back(z.real());
        im.push_back(z.imag());
        abs.push_back(dt == dtypes::Complex64 ? std::abs(std::complex<float>(z)) : std::abs(z));
        angle.push_back(dt == dtypes::Complex64 ? std::arg(std::complex<float>(z)) : std::arg(z));
      }
      const shapes::Shape rs = x.Shape().WithDType(real);
      EXPECT_TRUE(AllClose(Run1([](const auto& p) { return graph::Real(p[0]); }, {x}), rs, re, 0, 0));
      EXPECT_TRUE(AllClose(Run1([](const auto& p) { return graph::Imag(p[0]); }, {x}), rs, im, 0, 0));
      EXPECT_TRUE(AllClose(Run1([](const auto& p) { return graph::Abs(p[0]); }, {x}), rs, abs, testing::Tolerance(dt), 0));
      EXPECT_TRUE(AllClose(Run1([](const auto& p) { return graph::Angle(p[0]); }, {x}), rs, angle,
                           4 * testing::Tolerance(dt), 1e-30));
      std::vector<std::complex<double>> conj;
      for (const auto& z : v) conj.push_back(std::conj(z));
      EXPECT_TRUE(AllClose(Run1([](const auto& p) { return graph::Conj(p[0]); }, {x}), x.Shape(),
                           Interleave(conj), 0, 0));
      // Complex(Real(x), Imag(x)) rebuilds x bit for bit.
      Tensor again = Run1([](const auto& p) { return graph::Complex(graph::Real(p[0]), graph::Imag(p[0])); }, {x});
      EXPECT_EQ(0, std::memcmp(again.HostData(), x.HostData(), static_cast<size_t>(x.Shape().ByteSize())));
    }
  }
}

TEST_P(ComplexOps, ComplexFromBroadcastPartsAndRealHelpers) {
  Tensor re = testing::FromDoubles(shapes::Make(dtypes::Float32, 2, 2), {1, 2, 3, 4});
  Tensor im = testing::FromDoubles(shapes::Make(dtypes::Float32, 2), {-1, 5});
  Tensor z = Run1([](const auto& p) { return graph::Complex(p[0], p[1]); }, {re, im});
  EXPECT_TRUE(AllClose(z, shapes::Make(dtypes::Complex64, 2, 2), {1, -1, 2, 5, 3, -1, 4, 5}, 0, 0));
  // Real, Conj of a real value return it; Imag gives zeros; Angle 0 or pi.
  Tensor x = testing::FromDoubles(shapes::Make(dtypes::Float64, 3), {2, -3, 0});
  EXPECT_TRUE(AllClose(Run1([](const auto& p) { return graph::Real(p[0]) + graph::Conj(p[0]); }, {x}), x.Shape(),
                       {4, -6, 0}, 0, 0));
  EXPECT_TRUE(AllClose(Run1([](const auto& p) { return graph::Imag(p[0]); }, {x}), x.Shape(), {0, 0, 0}, 0, 0));
  EXPECT_TRUE(AllClose(Run1([](const auto& p) { return graph::Angle(p[0]); }, {x}), x.Shape(), {0, M_PI, 0}, 1e-15, 0));
}

TEST_P(ComplexOps, ConvertDTypeAndComparisonsAndWhere) {
  Tensor x = testing::FromDoubles(shapes::Make(dtypes::Int32, 3), {1, -2, 7});
  EXPECT_TRUE(AllClose(Run1([](const auto& p) { return graph::ConvertDType(p[0], dtypes::Complex128); }, {x}),
                       shapes::Make(dtypes::Complex128, 3), {1, 0, -2, 0, 7, 0}, 0, 0));
  Tensor z = FromComplex(dtypes::Complex128, {3}, {{1.5, -2}, {1e300, 3}, {0, 0}});
  Tensor narrowed = Run1([](const auto& p) { return graph::ConvertDType(p[0], dtypes::Complex64); }, {z});
  EXPECT_TRUE(AllClose(narrowed, shapes::Make(dtypes::Complex64, 3), {1.5, -2, INFINITY, 3, 0, 0}, 0, 0));
  Tensor w = FromComplex(dtypes::Complex128, {3}, {{1.5, -2}, {1e300, 4}, {std::nan(""), 0}});
  Tensor eq = Run1([](const auto& p) { return graph::Equal(p[0], p[1]); }, {z, w});
  Tensor ne = Run1([](const auto& p) { return graph::NotEqual(p[0], p[1]); }, {z, w});
  EXPECT_TRUE(AllClose(eq, shapes::Make(dtypes::Bool, 3), {1, 0, 0}, 0, 0));
  EXPECT_TRUE(AllClose(ne, shapes::Make(dtypes::Bool, 3), {0, 1, 1}, 0, 0));
  Tensor pick = Run1([](const auto& p) { return graph::Where(graph::Equal(p[0], p[1]), p[0], p[1] * 2.0); }, {z, w});
  // (NaN + 0i) * 2 is NaN + NaN i: IEEE complex multiplication.
  EXPECT_TRUE(AllClose(pick, z.Shape(), {1.5, -2, 2e300, 8, NAN, NAN}, 0, 0));
}

TEST_P(ComplexOps, MatMulAndReduceSumMatchReferences) {
  for (DType dt : kComplexDTypes) {
    Tensor a = testing::Random(shapes::Make(dt, 2, 3, 4), rng_), b = testing::Random(shapes::Make(dt, 2, 4, 5), rng_);
    Tensor got = Run1([](const auto& p) { return graph::MatMul(p[0], p[1]); }, {a, b});
    std::vector<std::complex<double>> av = Values(a), bv = Values(b), want(2 * 3 * 5);
    for (int n = 0; n < 2; ++n) {
      for (int i = 0; i < 3; ++i) {
        for (int j = 0; j < 5; ++j) {
          for (int k = 0; k < 4; ++k) want[(n * 3 + i) * 5 + j] += av[(n * 3 + i) * 4 + k] * bv[(n * 4 + k) * 5 + j];
        }
      }
    }
    EXPECT_TRUE(AllClose(got, shapes::Make(dt, 2, 3, 5), Interleave(want),
                         20 * testing::Tolerance(dt), 1e-5 * (dt == dtypes::Complex64)));
    Tensor sum = Run1([](const auto& p) { return graph::ReduceSum(p[0], {0, 2}); }, {a});
    std::vector<std::complex<double>> s(3);
    for (size_t e = 0; e < av.size(); ++e) s[(e / 4) % 3] += av[e];
    EXPECT_TRUE(AllClose(sum, shapes::Make(dt, 3), Interleave(s),
                         10 * testing::Tolerance(dt), 1e-5 * (dt == dtypes::Complex64)));
  }
}

TEST_P(ComplexOps, LayoutOpsMoveComplexValues) {
  for (DType dt : kComplexDTypes) {
    Tensor x = testing::Random(shapes::Make(dt, 3, 4), rng_);
    std::vector<std::complex<double>> v = Values(x);
    Tensor t = Run1([](const auto& p) { return graph::Transpose(p[0], {1, 0}); }, {x});
    std::vector<std::complex<double>> want;
    for (int j = 0; j < 4; ++j) {
      for (int i = 0; i < 3; ++i) want.push_back(v[static_cast<size_t>(i * 4 + j)]);
    }
    EXPECT_TRUE(AllClose(t, shapes::Make(dt, 4, 3), Interleave(want), 0, 0));
    Tensor padded = Run1([](const auto& p) { return graph::Pad(p[0], graph::ScalarLike(p[0], 2), {0, 1}, {0, 0}); }, {x});
    ASSERT_EQ(padded.Shape(), shapes::Make(dt, 3, 5));
    EXPECT_EQ(Values(padded)[0], std::complex<double>(2, 0));
    EXPECT_EQ(Values(padded)[1], v[0]);
  }
}

// Gather, ScatterSum and ScatterUpdate move complex values as the same ops on
// each part would (duplicate indices included). Exactly, except for
// ScatterSum: a GPU adds the duplicates atomically, in any order, so the two
// runs may round them differently (KILN_CUDA_DETERMINISTIC=1 fixes the order).
TEST_P(ComplexOps, GatherAndScatterMatchTheOpsOnEachPart) {
  ir::GatherAttrs g;
  g.offset_dims = {1};
  g.collapsed_slice_dims = {0};
  g.start_index_map = {0};
  g.index_vector_dim = 1;
  g.slice_sizes = {1, 3};
  ir::ScatterAttrs s;
  s.update_window_dims = {1};
  s.inserted_window_dims = {0};
  s.scatter_dims_to_operand_dims = {0};
  s.index_vector_dim = 1;
  Tensor idx = testing::FromDoubles(shapes::Make(dtypes::Int32, 4, 1), {3, 0, 3, 1});
  for (DType dt : kComplexDTypes) {
    Tensor x = testing::Random(shapes::Make(dt, 5, 3), rng_), u = testing::Random(shapes::Make(dt, 4, 3), rng_);
    using graph::Complex, graph::Real, graph::Imag;
    auto check = [&](auto&& op, double tolerance) {
      Tensor whole = Run1([&](const auto& p) { return op(p[0], p[1], p[2]); }, {x, idx, u});
      Tensor parts = Run1([&](const auto& p) {
        return Complex(op(Real(p[0]), p[1], Real(p[2])), op(Imag(p[0]), p[1], Imag(p[2])));
      }, {x, idx, u});
      EXPECT_TRUE(AllClose(whole, parts, tolerance, tolerance));
    };
    check([&](Node a, Node i, Node) { return graph::Gather(a, i, g); }, 0);
    check([&](Node a, Node i, Node b) { return graph::ScatterSum(a, i, b, s); }, testing::Tolerance(dt));
    check([&](Node a, Node i, Node b) { return graph::ScatterUpdate(a, i, b, s); }, 0);
  }
}

// A complex variable trained by gradient descent to fit z * w = target: the
// gradient convention (dL/dx + i dL/dy) makes plain descent converge.
TEST_P(ComplexOps, GradientDescentOnAComplexValueConverges) {
  const std::complex<double> target(3, -4), z(1, 2);
  Tensor w = FromComplex(dtypes::Complex128, {}, {{0, 0}});
  auto step = graph::NewExec(backend_, [&](const std::vector<Node>& p) {
    Node zc = graph::Const(p[0].Graph(), FromComplex(dtypes::Complex128, {}, {z}));
    Node t = graph::Const(p[0].Graph(), FromComplex(dtypes::Complex128, {}, {target}));
    Node err = zc * p[0] - t;
    Node loss = graph::Real(err * graph::Conj(err));  // |z w - t|^2
    return p[0] - graph::Gradient(loss, {p[0]})[0] * 0.05;
  }, "step");
  for (int i = 0; i < 200; ++i) w = step.Call(w);
  const std::complex<double> got = Values(w)[0], want = target / z;
  EXPECT_NEAR(got.real(), want.real(), 1e-9);
  EXPECT_NEAR(got.imag(), want.imag(), 1e-9);
}

INSTANTIATE_TEST_SUITE_P(Backends, ComplexOps, ::testing::ValuesIn(ComplexBackends()));
// Empty where no backend tested has the op (KILN_TEST_BACKENDS=cuda).
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(ComplexOps);

TEST(ComplexDTypes, NamesSizesAndParts) {
  EXPECT_STREQ(dtypes::Name(dtypes::Complex64), "Complex64");
  EXPECT_EQ(dtypes::FromName("Complex128"), dtypes::Complex128);
  EXPECT_EQ(dtypes::SizeOf(dtypes::Complex64), 8u);
  EXPECT_EQ(dtypes::SizeOf(dtypes::Complex128), 16u);
  EXPECT_EQ(dtypes::RealPart(dtypes::Complex64), dtypes::Float32);
  EXPECT_EQ(dtypes::ComplexOf(dtypes::Float64), dtypes::Complex128);
  EXPECT_EQ(dtypes::ComplexOf(dtypes::Int32), dtypes::Invalid);
  EXPECT_FALSE(dtypes::IsFloat(dtypes::Complex64));
  EXPECT_TRUE(dtypes::IsFloatOrComplex(dtypes::Complex64));
  EXPECT_EQ(dtypes::DTypeOf<std::complex<double>>(), dtypes::Complex128);
  KILN_EXPECT_ERROR(DispatchDType(dtypes::Complex64, [](auto) {}), "Complex64 is not supported here");
}

TEST(ComplexTensors, PrintAndCheckpointRoundTrip) {
  Tensor t = FromComplex(dtypes::Complex64, {2}, {{1, 2}, {-0.5, 0}});
  EXPECT_EQ(t.ToString(), "Complex64[2]{(1,2), (-0.5,0)}");
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "kiln_complex_ckpt";
  std::filesystem::remove_all(dir);
  context::Context ctx;
  Rng rng(3);
  Tensor a = testing::Random(shapes::Make(dtypes::Complex128, 3, 2), rng);
  Tensor b = testing::Random(shapes::Make(dtypes::Complex64, 4), rng);
  ctx.In("spectral").VariableWithValue("w", a);
  ctx.In("spectral").VariableWithValue("v", b);
  context::checkpoints::Build(ctx).Dir(dir.string()).Done()->Save();
  context::Context loaded;
  context::checkpoints::Build(loaded).Dir(dir.string()).Done()->Restore();
  // Restored lazily: the variables take the saved values when created.
  EXPECT_TRUE(AllClose(loaded.In("spectral").VariableWithShape("v", b.Shape())->Value(), b, 0, 0));
  Tensor back = loaded.In("spectral").VariableWithShape("w", a.Shape())->Value();
  EXPECT_TRUE(AllClose(back, a, 0, 0));
  std::filesystem::remove_all(dir);
}
// Near 0, where exp(z) - 1 and log(1 + z) computed directly lose every
// digit: the Taylor series z + z^2/2 + z^3/6 and z - z^2/2 + z^3/3, and
// parts of very different sizes.
TEST_P(ComplexOps, Expm1AndLog1pStayAccurateNearZero) {
  const std::vector<std::complex<double>> z = {{1e-10, 2e-10}, {-3e-9, 1e-12}, {1e-14, -1e-7}, {0, 1e-9}, {2e-8, 0}};
  std::vector<std::complex<double>> expm1, log1p;
  for (const auto& v : z) {
    expm1.push_back(v + v * v / 2.0 + v * v * v / 6.0);
    log1p.push_back(v - v * v / 2.0 + v * v * v / 3.0);
  }
  for (DType dt : kComplexDTypes) {
    SCOPED_TRACE(dtypes::Name(dt));
    const Tensor x = FromComplex(dt, {static_cast<int64_t>(z.size())}, z);
    const double tol = 4 * testing::Tolerance(dt);
    const Tensor got_expm1 = Run1([](const auto& p) { return graph::Expm1(p[0]); }, {x});
    const Tensor got_log1p = Run1([](const auto& p) { return graph::Log1p(p[0]); }, {x});
    EXPECT_TRUE(AllClose(got_expm1, x.Shape(), Interleave(expm1), tol, 0));
    EXPECT_TRUE(AllClose(got_log1p, x.Shape(), Interleave(log1p), tol, 0));
  }
}

// Sign of values whose modulus overflows, and of infinite ones: the unit
// number in their direction.
TEST_P(ComplexOps, SignOfHugeValuesIsTheirDirection) {
  const double r = 1 / std::sqrt(2.0);
  const std::vector<std::complex<double>> z = {{3e38, 3e38}, {-3e38, 1e38}, {INFINITY, 5}, {-INFINITY, INFINITY}};
  const std::vector<std::complex<double>> want = {{r, r}, {-3 / std::sqrt(10.0), 1 / std::sqrt(10.0)}, {1, 0}, {-r, r}};
  for (DType dt : kComplexDTypes) {
    SCOPED_TRACE(dtypes::Name(dt));
    const Tensor x = FromComplex(dt, {4}, z);
    EXPECT_TRUE(CloseAsComplex(Run1([](const auto& p) { return graph::Sign(p[0]); }, {x}), Interleave(want),
                               4 * testing::Tolerance(dt)));
  }
}

// A complex running sum is the running sums of the parts, in every variant.
TEST_P(ComplexOps, CumSumSumsEachPart) {
  for (DType dt : kComplexDTypes) {
    const Tensor x = testing::Random(shapes::Shape(dt, {3, 4}), rng_);
    const std::vector<std::complex<double>> v = Values(x);
    for (bool exclusive : {false, true}) {
      for (bool reverse : {false, true}) {
        SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << (exclusive ? " exclusive" : "")
                                          << (reverse ? " reverse" : ""));
        std::vector<std::complex<double>> want(v.size());
        for (int64_t i = 0; i < 3; ++i) {
          std::complex<double> sum = 0;
          for (int64_t k = 0; k < 4; ++k) {
            const int64_t j = reverse ? 3 - k : k;
            const auto at = static_cast<size_t>(i * 4 + j);
            if (exclusive) want[at] = sum;
            sum += v[at];
            if (!exclusive) want[at] = sum;
          }
        }
        const Tensor got = Run1([&](const auto& p) {
          return graph::CumSum(p[0], 1, {.exclusive = exclusive, .reverse = reverse});
        }, {x});
        EXPECT_TRUE(AllClose(got, x.Shape(), Interleave(want), 4 * testing::Tolerance(dt), 1e-6));
      }
    }
  }
}

// A complex running product multiplies as complex numbers (i^k cycles
// exactly through 1, i, -1, -i), in every variant, zeros included; a window
// product of complex values too.
TEST_P(ComplexOps, CumProdMultipliesAsComplexNumbers) {
  using C = std::complex<double>;
  const std::vector<C> v = {{0, 1}, {0, 1}, {0, 1}, {0, 1}, {0.5, -1.5}, {1.25, 0.5}, {0, 0}, {-2, 0.75},
                            {1, 1},  {-1, 2}, {0.5, 0.5}, {3, -1}};
  for (DType dt : kComplexDTypes) {
    const Tensor x = FromComplex(dt, {3, 4}, v);
    for (bool exclusive : {false, true}) {
      for (bool reverse : {false, true}) {
        SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << (exclusive ? " exclusive" : "")
                                          << (reverse ? " reverse" : ""));
        std::vector<C> want(v.size());
        for (int64_t i = 0; i < 3; ++i) {
          std::complex<long double> prod = 1;
          for (int64_t k = 0; k < 4; ++k) {
            const int64_t j = reverse ? 3 - k : k;
            const auto at = static_cast<size_t>(i * 4 + j);
            if (exclusive) want[at] = C(static_cast<double>(prod.real()), static_cast<double>(prod.imag()));
            prod *= std::complex<long double>(v[at].real(), v[at].imag());
            if (!exclusive) want[at] = C(static_cast<double>(prod.real()), static_cast<double>(prod.imag()));
          }
        }
        const Tensor got = Run1([&](const auto& p) {
          return graph::CumProd(p[0], 1, {.exclusive = exclusive, .reverse = reverse});
        }, {x});
        EXPECT_TRUE(CloseAsComplex(got, Interleave(want), 4 * testing::Tolerance(dt)));
      }
    }
    // The powers of i are exact (no rounding in 0 * 1 + 1 * 1).
    const std::vector<double> first_row = testing::ToDoubles(Run1([](const auto& p) { return graph::CumProd(p[0], 1); }, {x}));
    EXPECT_EQ(std::vector<double>(first_row.begin(), first_row.begin() + 8), (std::vector<double>{0, 1, -1, 0, 0, -1, 1, 0}));
    // A window of 2 with stride 1 (not cumulative: the generic kernel).
    ir::WindowAttrs pairs;
    pairs.reduction = ir::WindowReduction::kProduct;
    pairs.window_dimensions = {1, 2};
    std::vector<C> want_pairs;
    for (int64_t i = 0; i < 3; ++i) {
      for (int64_t j = 0; j < 3; ++j) want_pairs.push_back(v[static_cast<size_t>(i * 4 + j)] * v[static_cast<size_t>(i * 4 + j + 1)]);
    }
    EXPECT_TRUE(CloseAsComplex(Run1([&](const auto& p) { return graph::ReduceWindow(p[0], pairs); }, {x}),
                               Interleave(want_pairs), 4 * testing::Tolerance(dt)));
  }
}

// ReduceProduct multiplies complex numbers, over one axis, several (in either
// memory order) and all, against long-double products; an empty product is 1.
TEST_P(ComplexOps, ReduceProductMultipliesAsComplexNumbers) {
  using C = std::complex<double>;
  using L = std::complex<long double>;
  std::vector<C> v;
  for (int k = 0; k < 24; ++k) v.emplace_back(0.75 + 0.25 * std::sin(k), 0.5 * std::cos(3 * k));
  v[5] = {0, 1};
  const auto at = [&](int64_t i, int64_t j, int64_t k) { return L(v[static_cast<size_t>((i * 3 + j) * 4 + k)]); };
  const auto to_c = [](L z) { return C(static_cast<double>(z.real()), static_cast<double>(z.imag())); };
  for (DType dt : kComplexDTypes) {
    SCOPED_TRACE(dtypes::Name(dt));
    const Tensor x = FromComplex(dt, {2, 3, 4}, v);
    std::vector<C> last, first_two, all(1);
    for (int64_t i = 0; i < 2; ++i) {
      for (int64_t j = 0; j < 3; ++j) {
        L p = 1;
        for (int64_t k = 0; k < 4; ++k) p *= at(i, j, k);
        last.push_back(to_c(p));
      }
    }
    for (int64_t k = 0; k < 4; ++k) {
      L p = 1;
      for (int64_t i = 0; i < 2; ++i) {
        for (int64_t j = 0; j < 3; ++j) p *= at(i, j, k);
      }
      first_two.push_back(to_c(p));
    }
    L p = 1;
    for (const C& z : v) p *= L(z);
    all[0] = to_c(p);
    const double tol = 8 * testing::Tolerance(dt);
    EXPECT_TRUE(CloseAsComplex(Run1([](const auto& q) { return graph::ReduceProduct(q[0], {2}); }, {x}), Interleave(last), tol));
    EXPECT_TRUE(CloseAsComplex(Run1([](const auto& q) { return graph::ReduceProduct(q[0], {0, 1}); }, {x}),
                               Interleave(first_two), tol));
    EXPECT_TRUE(CloseAsComplex(Run1([](const auto& q) { return graph::ReduceProduct(q[0], {}); }, {x}), Interleave(all), tol));
    const Tensor empty = FromComplex(dt, {2, 0}, {});
    EXPECT_TRUE(CloseAsComplex(Run1([](const auto& q) { return graph::ReduceProduct(q[0], {1}); }, {empty}),
                               Interleave({C(1, 0), C(1, 0)}), 0));
  }
}

class ComplexErrors : public testing::GraphErrorTest {};

TEST_F(ComplexErrors, OpsNotDefinedOnComplexNumbersSaySo) {
  Node z = Param(shapes::Make(dtypes::Complex64, 3));
  KILN_EXPECT_ERROR(graph::LessThan(z, z), "LessThan: requires a real (non-complex) dtype, got Complex64[3]");
  KILN_EXPECT_ERROR(graph::Max(z, z), "Max: requires a numeric (integer or float) dtype, got Complex64[3]");
  KILN_EXPECT_ERROR(graph::Erf(z), "Erf: requires a float dtype, got Complex64[3]");
  KILN_EXPECT_ERROR(graph::ReduceMax(z, {0}), "ReduceMax: requires");
  ir::ScatterAttrs s;
  s.update_window_dims = {};
  s.inserted_window_dims = {0};
  s.scatter_dims_to_operand_dims = {0};
  s.index_vector_dim = 1;
  KILN_EXPECT_ERROR(graph::ScatterMax(z, Param(shapes::Make(dtypes::Int32, 2, 1)), Param(shapes::Make(dtypes::Complex64, 2)), s),
                    "ScatterMax: is not defined on complex numbers");
  KILN_EXPECT_ERROR(graph::Sort(z, 0), "Sort: is not defined on complex numbers, got Complex64[3]");
  KILN_EXPECT_ERROR(graph::Cholesky(Param(shapes::Make(dtypes::Complex128, 2, 2))), "Cholesky: ");
  KILN_EXPECT_ERROR(graph::Cholesky(Param(shapes::Make(dtypes::Complex128, 2, 2))), "Complex128[2, 2]");
  KILN_EXPECT_ERROR(graph::CumMax(z, 0), "CumMax: is not defined on complex numbers (they have no order), got Complex64[3]");
  KILN_EXPECT_ERROR(graph::CumMin(z, 0), "CumMin: is not defined on complex numbers (they have no order), got Complex64[3]");
  ir::WindowAttrs max_window;
  max_window.reduction = ir::WindowReduction::kMax;
  max_window.window_dimensions = {2};
  KILN_EXPECT_ERROR(graph::ReduceWindow(z, max_window),
                    "ReduceWindow: max and min are not defined on complex numbers, got Complex64[3]");
  KILN_EXPECT_ERROR(graph::ConvertDType(z, dtypes::Float32),
                    "ConvertDType: converting Complex64[3] to Float32 would drop the imaginary part");
  KILN_EXPECT_ERROR(graph::Complex(Param(shapes::Make(dtypes::Float32, 3)), Param(shapes::Make(dtypes::Float64, 3))),
                    "Complex: needs real and imaginary parts of one dtype, Float32 or Float64, got Float32[3] and "
                    "Float64[3]");
  KILN_EXPECT_ERROR(graph::Complex(Param(shapes::Make(dtypes::Int32, 3)), Param(shapes::Make(dtypes::Int32, 3))),
                    "Complex: needs real and imaginary parts of one dtype");
  KILN_EXPECT_ERROR(graph::Add(z, Param(shapes::Make(dtypes::Complex128, 3))), "Add: dtypes differ");
  KILN_EXPECT_ERROR(graph::Gradient(graph::ReduceAllSum(z), {z}), "Gradient: output must be a float scalar");
  KILN_EXPECT_ERROR(graph::Jacobian(z, z), "Jacobian: output must be real (float), got Complex64[3]");
}

}  // namespace
}  // namespace kiln
