// Copyright 2026 The Kiln Authors.
// CumSum, CumProd, CumMax, CumMin and CumLogSumExp on every backend: against
// a naive reference for each dtype, axis and variant (exclusive, reversed),
// with empty axes and NaN; gradients against central finite differences in
// float64; the error messages.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

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
  const std::vector<Case> cases = {{{7}, 0}, {{3, 5}, 0}, {{3, 5}, 1}, {{2, 4, 3}, -2}, {{1, 1}, 1}, {{2, 0, 3}, 1}, {{2, 3, 0}, 1}};
  for (Kind k : {Kind::kSum, Kind::kProd, Kind::kMax, Kind::kMin, Kind::kLogSumExp}) {
    const bool lse = k == Kind::kLogSumExp;
    std::vector<dtypes::DType> dts = {dtypes::Float32, dtypes::Float64, dtypes::BFloat16};
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
          const double tol = dt == dtypes::BFloat16 ? 3e-2 : dt == dtypes::Float32 ? 1e-5 : dt == dtypes::Float64 ? 1e-12 : 0;
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
