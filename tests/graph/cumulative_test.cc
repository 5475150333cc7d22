// Copyright 2026 The Kiln Authors.
// CumSum, CumProd, CumMax, CumMin and CumLogSumExp on every backend: against
// a naive reference for each dtype, axis and variant (exclusive, reversed),
// with empty axes and NaN; gradients against central finite differences in
// float64; the error messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "kiln/context/exec.h"
#include "kiln/graph/autodiff.h"
#include "kiln/graph/cumulative.h"
#include "tests/testing/gradcheck.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::CumulativeOptions;
using graph::Node;
using tensors::Tensor;

class CumulativeTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, CumulativeTest, ::testing::ValuesIn(testing::BackendNames()));

enum class Kind { kSum, kProd, kMax, kMin, kLogSumExp };

const char* NameOf(Kind k) {
  switch (k) {
    case Kind::kSum: return "CumSum";
    case Kind::kProd: return "CumProd";
    case Kind::kMax: return "CumMax";
    case Kind::kMin: return "CumMin";
    case Kind::kLogSumExp: return "CumLogSumExp";
  }
  return "";
}

Node Apply(Kind k, Node x, int axis, CumulativeOptions o) {
  switch (k) {
    case Kind::kSum: return graph::CumSum(x, axis, o);
    case Kind::kProd: return graph::CumProd(x, axis, o);
    case Kind::kMax: return graph::CumMax(x, axis, o);
    case Kind::kMin: return graph::CumMin(x, axis, o);
    case Kind::kLogSumExp: return graph::CumLogSumExp(x, axis, o);
  }
  return x;
}

// The reference: for each position, combine the elements before it (or
// after it, reversed) in double, in order, starting from the identity.
std::vector<double> Reference(Kind k, const std::vector<double>& x, const std::vector<int64_t>& dims, int axis,
                              CumulativeOptions o) {
  const double inf = std::numeric_limits<double>::infinity();
  const double identity = k == Kind::kSum ? 0 : k == Kind::kProd ? 1 : k == Kind::kMax ? -inf : k == Kind::kMin ? inf : 0;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= dims[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < dims.size(); ++d) inner *= dims[d];
  const int64_t n = dims[static_cast<size_t>(axis)];
  std::vector<double> out(x.size());
  for (int64_t o0 = 0; o0 < outer; ++o0) {
    for (int64_t i0 = 0; i0 < inner; ++i0) {
      double acc = identity;  // for LogSumExp: a plain sum of exp
      for (int64_t step = 0; step < n; ++step) {
        const int64_t j = o.reverse ? n - 1 - step : step;
        const size_t at = static_cast<size_t>((o0 * n + j) * inner + i0);
        auto combine = [&](double v) {
          switch (k) {
            case Kind::kSum: acc += v; break;
            case Kind::kProd: acc *= v; break;
            case Kind::kMax: acc = (v > acc || std::isnan(v) || std::isnan(acc)) ? (std::isnan(acc) ? acc : v) : acc; break;
            case Kind::kMin: acc = (v < acc || std::isnan(v) || std::isnan(acc)) ? (std::isnan(acc) ? acc : v) : acc; break;
            case Kind::kLogSumExp: acc += std::exp(v); break;
          }
        };
        if (!o.exclusive) combine(x[at]);
        out[at] = k == Kind::kLogSumExp ? std::log(acc) : acc;
        if (o.exclusive) combine(x[at]);
      }
    }
  }
  return out;
}

const std::vector<CumulativeOptions> kVariants = {{false, false}, {true, false}, {false, true}, {true, true}};

std::string VariantName(CumulativeOptions o) {
  return std::string(o.exclusive ? "exclusive" : "inclusive") + (o.reverse ? " reversed" : "");
}

TEST_P(CumulativeTest, MatchesReference) {
  auto backend = Backend();
  testing::Rng rng(17);
  struct Case {
    std::vector<int64_t> dims;
    int axis;
  };
  // {3, 300} along axis 0: 300 lanes, more than one chunk of the CPU's scan.
  const std::vector<Case> cases = {{{7}, 0},     {{3, 5}, 0},    {{3, 5}, 1},    {{2, 4, 3}, -2},
                                   {{1, 1}, 1},  {{2, 0, 3}, 1}, {{2, 3, 0}, 1}, {{3, 300}, 0}};
  for (Kind k : {Kind::kSum, Kind::kProd, Kind::kMax, Kind::kMin, Kind::kLogSumExp}) {
    const bool lse = k == Kind::kLogSumExp;
    std::vector<dtypes::DType> dts = {dtypes::Float32, dtypes::Float64, dtypes::BFloat16, dtypes::Float16};
    if (!lse) dts.insert(dts.end(), {dtypes::Int32, dtypes::Int64, dtypes::Uint8});
    for (dtypes::DType dt : dts) {
      for (const Case& c : cases) {
        for (CumulativeOptions o : kVariants) {
          SCOPED_TRACE(std::string(NameOf(k)) + " " + dtypes::Name(dt) + " " + shapes::Shape(dt, c.dims).ToString() +
                       " axis " + std::to_string(c.axis) + " " + VariantName(o));
          // Products of small values keep integers and 16-bit floats exact enough.
          const bool prod = k == Kind::kProd;
          Tensor x = testing::Random(shapes::Shape(dt, c.dims), rng, dtypes::IsUnsignedInteger(dt) ? 0 : (prod ? -2 : -5),
                                     prod ? 2 : 5);
          const int rank = static_cast<int>(c.dims.size());
          const int axis = c.axis < 0 ? c.axis + rank : c.axis;
          std::vector<double> want = Reference(k, testing::ToDoubles(x), c.dims, axis, o);
          if (dtypes::IsInteger(dt)) {
            // Integer sums and products wrap; these stay in range except Uint8.
            for (double& v : want) {
              if (dt == dtypes::Uint8 && std::isfinite(v)) v = std::fmod(std::fmod(v, 256) + 256, 256);
            }
            // Integer identities of max and min are the dtype's extremes, not +-Inf.
            const double lowest = dt == dtypes::Int32 ? -2147483648.0 : dt == dtypes::Int64 ? -9223372036854775808.0 : 0;
            const double highest = dt == dtypes::Int32 ? 2147483647.0 : dt == dtypes::Int64 ? 9223372036854775807.0 : 255;
            for (double& v : want) {
              if (std::isinf(v)) v = v < 0 ? lowest : highest;
            }
          }
          Tensor got = testing::Run1(backend, [&](const std::vector<Node>& p) { return Apply(k, p[0], c.axis, o); }, {x});
          const double tol = dt == dtypes::BFloat16 ? 3e-2
                             : dt == dtypes::Float16 ? 4e-3
                             : dt == dtypes::Float32 ? 1e-5
                             : dt == dtypes::Float64 ? 1e-12
                                                     : 0;
          EXPECT_TRUE(testing::AllClose(got, shapes::Shape(dt, c.dims), want, tol, tol));
        }
      }
    }
  }
}

TEST_P(CumulativeTest, NaNPropagatesForward) {
  auto backend = Backend();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  Tensor x = testing::FromDoubles(shapes::Make(dtypes::Float32, 5), {1, 3, nan, 2, 5});
  for (Kind k : {Kind::kSum, Kind::kMax, Kind::kMin}) {
    SCOPED_TRACE(NameOf(k));
    Tensor got = testing::Run1(backend, [&](const std::vector<Node>& p) { return Apply(k, p[0], 0, {}); }, {x});
    const std::vector<double> v = testing::ToDoubles(got);
    EXPECT_FALSE(std::isnan(v[0]));
    EXPECT_FALSE(std::isnan(v[1]));
    for (size_t i = 2; i < 5; ++i) EXPECT_TRUE(std::isnan(v[i])) << i;
  }
  // All -Inf stays -Inf in CumLogSumExp (no Inf - Inf).
  const double inf = std::numeric_limits<double>::infinity();
  Tensor minf = testing::FromDoubles(shapes::Make(dtypes::Float32, 3), {-inf, -inf, -inf});
  Tensor got = testing::Run1(backend, [&](const std::vector<Node>& p) { return graph::CumLogSumExp(p[0], 0); }, {minf});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Float32, 3), {-inf, -inf, -inf}, 0, 0));
}

TEST_P(CumulativeTest, GradientsMatchFiniteDifferences) {
  auto backend = Backend();
  testing::Rng rng(5);
  for (Kind k : {Kind::kSum, Kind::kProd, Kind::kMax, Kind::kMin, Kind::kLogSumExp}) {
    for (CumulativeOptions o : kVariants) {
      for (int axis : {0, 1}) {
        SCOPED_TRACE(std::string(NameOf(k)) + " " + VariantName(o) + " axis " + std::to_string(axis));
        // Distinct values (no ties for max/min), away from zero (products).
        std::vector<double> v(12);
        for (size_t i = 0; i < v.size(); ++i) v[i] = (0.3 + 0.11 * static_cast<double>((i * 7) % 12)) * (i % 3 == 0 ? -1 : 1);
        Tensor x = testing::FromDoubles(shapes::Make(dtypes::Float64, 3, 4), v);
        Tensor w = testing::Random(shapes::Make(dtypes::Float64, 3, 4), rng, -1, 1);
        // A weighted sum of the outputs, so every output's gradient matters;
        // the identities of exclusive variants (+-Inf for max, min and
        // log-sum-exp) are left out.
        EXPECT_TRUE(testing::CheckGradients(
            backend,
            [&](const std::vector<Node>& p) {
              Node y = Apply(k, p[0], axis, o);
              y = graph::Where(graph::IsFinite(y), y, graph::ZerosLike(y));
              return graph::ReduceAllSum(y * p[1]);
            },
            {x, w}, {.skip = {1}}));
      }
    }
  }
  // Second order through CumProd.
  Tensor x = testing::FromDoubles(shapes::Make(dtypes::Float64, 4), {0.5, -1.5, 2.0, 0.7});
  EXPECT_TRUE(testing::CheckGradients(
      backend,
      [](const std::vector<Node>& p) {
        Node y = graph::ReduceAllSum(graph::CumProd(p[0], 0));
        return graph::ReduceAllSum(graph::Gradient(y, {p[0]})[0] * p[0]);
      },
      {x}));
}

// The windows element j of a cumulative op feeds: output i covers [0, i],
// [0, i), [i, n) or (i, n) of its axis.
bool Covers(CumulativeOptions o, int64_t i, int64_t j) {
  if (!o.reverse) return o.exclusive ? j < i : j <= i;
  return o.exclusive ? j > i : j >= i;
}

// CumProd's gradient where x has zeros (one, two, first, last, all), against
// its definition: d/dx_k = sum over outputs i covering k of g_i times the
// product of the other elements i covers. Exact in float64 (small integers).
TEST_P(CumulativeTest, CumProdGradientIsExactAtZeros) {
  auto backend = Backend();
  const std::vector<std::vector<double>> rows = {
      {2, 0, 3, -1, 2}, {0, 2, 3, 0, -2}, {3, 2, 0, 0, 1}, {1, -2, 3, 2, 0}, {0, 0, 0, 0, 0}, {2, -1, 3, 2, 1}};
  const int64_t n = 5;
  std::vector<double> xs, gs;
  for (const auto& r : rows) xs.insert(xs.end(), r.begin(), r.end());
  for (size_t i = 0; i < xs.size(); ++i) gs.push_back(static_cast<double>(static_cast<int>(i * 5 % 7) - 3));
  const auto rows_n = static_cast<int64_t>(rows.size());
  const Tensor x = testing::FromDoubles(shapes::Make(dtypes::Float64, rows_n, n), xs);
  const Tensor g = testing::FromDoubles(shapes::Make(dtypes::Float64, rows_n, n), gs);
  for (CumulativeOptions o : kVariants) {
    SCOPED_TRACE(VariantName(o));
    std::vector<double> want;
    for (int64_t r = 0; r < rows_n; ++r) {
      for (int64_t k = 0; k < n; ++k) {
        double sum = 0;
        for (int64_t i = 0; i < n; ++i) {
          if (!Covers(o, i, k)) continue;
          double others = 1;
          for (int64_t j = 0; j < n; ++j) {
            if (j != k && Covers(o, i, j)) others *= xs[static_cast<size_t>(r * n + j)];
          }
          sum += gs[static_cast<size_t>(r * n + i)] * others;
        }
        want.push_back(sum);
      }
    }
    Tensor got = testing::Run1(
        backend,
        [&](const std::vector<Node>& p) {
          return graph::Gradient(graph::ReduceAllSum(graph::CumProd(p[0], 1, o) * p[1]), {p[0]})[0];
        },
        {x, g});
    EXPECT_TRUE(testing::AllClose(got, x.Shape(), want, 0, 0));
  }
}

// Exclusive CumProd never uses the last element (the first, reversed), so
// an Inf or NaN there leaves the outputs and the gradient finite; a
// one-element axis has the constant output 1 and gradient 0.
TEST_P(CumulativeTest, ExclusiveCumProdGradientIgnoresTheUnusedElement) {
  auto backend = Backend();
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  auto grad = [&](const Tensor& x, CumulativeOptions o) {
    return testing::Run1(backend, [&](const std::vector<Node>& p) {
      Node y = graph::CumProd(p[0], 0, o);
      return graph::Gradient(graph::ReduceAllSum(y * graph::Iota(p[0].Graph(), p[0].Shape(), 0)), {p[0]})[0];
    }, {x});
  };
  // Outputs [1, 2, 6] (weights 0, 1, 2): d/dx0 = 1 + 2 x1 = 7, d/dx1 = 2 x0 = 4.
  EXPECT_TRUE(testing::AllClose(grad(testing::FromDoubles(shapes::Make(dtypes::Float64, 3), {2, 3, inf}), {.exclusive = true}),
                                shapes::Make(dtypes::Float64, 3), {7, 4, 0}, 0, 0));
  // Reversed: outputs [x1 x2, x2, 1] = [6, 3, 1], loss x2 + 2: d/dx1 = 0, d/dx2 = 1.
  EXPECT_TRUE(testing::AllClose(grad(testing::FromDoubles(shapes::Make(dtypes::Float64, 3), {nan, 2, 3}),
                                     {.exclusive = true, .reverse = true}),
                                shapes::Make(dtypes::Float64, 3), {0, 0, 1}, 0, 0));
  EXPECT_TRUE(testing::AllClose(grad(testing::FromDoubles(shapes::Make(dtypes::Float64, 1), {inf}), {.exclusive = true}),
                                shapes::Make(dtypes::Float64, 1), {0}, 0, 0));
}

// CumMax and CumMin send each output's cotangent to the first best element
// of its window in index order (the first NaN if any), ties included.
TEST_P(CumulativeTest, CumMaxAndCumMinGradientsGoToTheFirstBestOfEachWindow) {
  auto backend = Backend();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  testing::Rng rng(23);
  const int64_t outer = 3, n = 9, inner = 2;
  std::vector<double> xs(static_cast<size_t>(outer * n * inner)), gs(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    xs[i] = static_cast<double>(static_cast<int>(i * 7 % 5));  // many ties
    gs[i] = static_cast<double>(i % 4 + 1) * (i % 2 == 0 ? 1 : 0.5);
  }
  xs[7] = nan;   // outer 0
  xs[30] = nan;  // outer 1: two NaNs in one lane
  xs[34] = nan;
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64, dtypes::BFloat16, dtypes::Float16}) {
    const shapes::Shape shape(dt, {outer, n, inner});
    const Tensor x = testing::FromDoubles(shape, xs), g = testing::FromDoubles(shape, gs);
    for (Kind k : {Kind::kMax, Kind::kMin}) {
      for (CumulativeOptions o : kVariants) {
        SCOPED_TRACE(std::string(NameOf(k)) + " " + dtypes::Name(dt) + " " + VariantName(o));
        std::vector<double> want(xs.size(), 0.0);
        for (int64_t a = 0; a < outer; ++a) {
          for (int64_t c = 0; c < inner; ++c) {
            auto at = [&](int64_t i) { return static_cast<size_t>((a * n + i) * inner + c); };
            for (int64_t i = 0; i < n; ++i) {
              int64_t best = -1;
              for (int64_t j = 0; j < n; ++j) {  // the window in index order
                if (!Covers(o, i, j)) continue;
                const double v = xs[at(j)];
                if (best >= 0 && std::isnan(xs[at(best)])) break;
                const bool better = best < 0 || std::isnan(v) ||
                                    (k == Kind::kMax ? v > xs[at(best)] : v < xs[at(best)]);
                if (better) best = j;
              }
              if (best >= 0) want[at(best)] += gs[at(i)];
            }
          }
        }
        Tensor got = testing::Run1(
            backend,
            [&](const std::vector<Node>& p) {
              Node y = Apply(k, p[0], 1, o);
              // Window outputs that are NaN or an identity (+-Inf) still pass
              // their cotangent, so the loss is a plain weighted sum.
              return graph::Gradient(graph::ReduceAllSum(y * p[1]), {p[0]})[0];
            },
            {x, g});
        EXPECT_TRUE(testing::AllClose(got, shape, want, 0, 0));
      }
    }
  }
}

// Cumulative ops over long axes run in O(n): values and gradients of
// CumSum, CumProd and CumMax over 300,000 elements (n windows of n taps
// would be 9e10 steps, and CumProd's generic window gradient n^3 memory).
TEST_P(CumulativeTest, LongAxesScanInLinearTime) {
  if (GetParam() != "cpu") GTEST_SKIP() << "the CUDA backend's windows are not scans yet (O(n^2) along the axis)";
  auto backend = Backend();
  const int64_t n = 300000;
  std::vector<double> xs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) xs[static_cast<size_t>(i)] = (i % 3 == 0 ? 1.0 : 0.5) + 1e-6 * static_cast<double>(i % 11);
  const Tensor x = testing::FromDoubles(shapes::Make(dtypes::Float64, n), xs);
  auto results = context::NewExec(backend, context::New(), [](context::Context, Node v) {
    Node sum = graph::CumSum(v, 0), prod = graph::CumProd(v, 0, {.reverse = true}), mx = graph::CumMax(v, 0);
    Node loss = graph::ReduceAllSum(sum) + graph::ReduceAllSum(prod) + graph::ReduceAllSum(mx);
    return std::vector<Node>{sum, graph::Gradient(loss, {v})[0]};
  }).Call(x);
  // The references, each in one pass: running sums; d/dx_k of the reversed
  // CumProd's sum is P_k S_k with P_k = prod_{j > k} x_j and
  // S_k = sum_{i <= k} prod_{i <= j < k} x_j = 1 + x_{k-1} S_{k-1}; CumMax's
  // counts how many prefixes have their first maximum at k.
  const auto at = [](int64_t i) { return static_cast<size_t>(i); };
  std::vector<double> want_sum(xs.size()), suffix(xs.size()), want_grad(xs.size());
  double running = 0, s_k = 0;
  for (int64_t i = 0; i < n; ++i) want_sum[at(i)] = running += xs[at(i)];
  double p = 1;
  for (int64_t i = n - 1; i >= 0; --i) {
    suffix[at(i)] = p;
    p *= xs[at(i)];
  }
  int64_t first_max = 0;
  std::vector<double> max_count(xs.size(), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    if (xs[at(i)] > xs[at(first_max)]) first_max = i;
    max_count[at(first_max)] += 1;
  }
  for (int64_t k = 0; k < n; ++k) {
    s_k = k == 0 ? 1 : 1 + xs[at(k - 1)] * s_k;
    want_grad[at(k)] = static_cast<double>(n - k) + suffix[at(k)] * s_k + max_count[at(k)];
  }
  EXPECT_TRUE(testing::AllClose(results[0], x.Shape(), want_sum, 1e-11, 0));
  EXPECT_TRUE(testing::AllClose(results[1], x.Shape(), want_grad, 1e-11, 0));
}

TEST(CumulativeErrors, BadOperands) {
  auto g = graph::NewGraph("cum");
  Node v = graph::Parameter(g.get(), "v", shapes::Make(dtypes::Float32, 3, 4));
  KILN_EXPECT_ERROR(graph::CumSum(v, 2), "CumSum");
  KILN_EXPECT_ERROR(graph::CumSum(v, 2), "cumulative_test.cc:");
  Node s = graph::Parameter(g.get(), "s", shapes::Make(dtypes::Float32));
  KILN_EXPECT_ERROR(graph::CumMax(s, 0), "CumMax: needs an axis, but the operand is a scalar Float32");
  Node b = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Bool, 3));
  KILN_EXPECT_ERROR(graph::CumProd(b, 0), "CumProd: Bool operands are not supported: Bool[3]");
  Node i = graph::Parameter(g.get(), "i", shapes::Make(dtypes::Int32, 3));
  KILN_EXPECT_ERROR(graph::CumLogSumExp(i, 0), "CumLogSumExp: needs a float operand, got Int32[3]");
}

}  // namespace
}  // namespace kiln
