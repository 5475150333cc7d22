// Copyright 2026 The Kiln Authors.
// Masked reductions on every backend: against a naive reference (dtypes,
// broadcast masks, groups with nothing selected, NaN in unselected
// elements), gradients against finite differences, and the error messages.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kiln/graph/masked.h"
#include "tests/testing/gradcheck.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;

class MaskedTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, MaskedTest, ::testing::ValuesIn(testing::BackendNames()));

enum class Kind { kSum, kMean, kMax, kMin };

Node Apply(Kind k, Node x, Node m, std::vector<int> axes) {
  switch (k) {
    case Kind::kSum: return graph::MaskedReduceSum(x, m, axes);
    case Kind::kMean: return graph::MaskedReduceMean(x, m, axes);
    case Kind::kMax: return graph::MaskedReduceMax(x, m, axes);
    case Kind::kMin: return graph::MaskedReduceMin(x, m, axes);
  }
  return x;
}

// x [3, 4] reduced over axis 1 with mask [3, 4]; row 1 selects nothing, and
// its unselected elements hold NaN, which must not leak.
TEST_P(MaskedTest, MatchesReference) {
  auto backend = Backend();
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  const std::vector<double> xs = {1, -2, 3, 4, nan, nan, 7, 8, -9, 10, 11, -12};
  const std::vector<double> ms = {1, 0, 1, 1, 0, 0, 0, 0, 1, 1, 0, 1};
  Tensor mask = testing::FromDoubles(shapes::Make(dtypes::Bool, 3, 4), ms);
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64, dtypes::BFloat16, dtypes::Int32, dtypes::Int64}) {
    const bool fl = dtypes::IsFloat(dt);
    std::vector<double> v = xs;
    if (!fl) v[4] = v[5] = 5;  // no NaN in integers
    Tensor x = testing::FromDoubles(shapes::Make(dt, 3, 4), v);
    for (Kind k : {Kind::kSum, Kind::kMean, Kind::kMax, Kind::kMin}) {
      if (k == Kind::kMean && !fl) continue;
      SCOPED_TRACE(std::string(dtypes::Name(dt)) + " kind " + std::to_string(static_cast<int>(k)));
      std::vector<double> want;
      for (int r = 0; r < 3; ++r) {
        double sum = 0, n = 0, mx = -inf, mn = inf;
        for (int c = 0; c < 4; ++c) {
          if (ms[static_cast<size_t>(r * 4 + c)] == 0) continue;
          const double e = v[static_cast<size_t>(r * 4 + c)];
          sum += e, n += 1, mx = std::max(mx, e), mn = std::min(mn, e);
        }
        if (!fl && std::isinf(mx)) mx = dt == dtypes::Int32 ? -2147483648.0 : -9223372036854775808.0;
        if (!fl && std::isinf(mn)) mn = dt == dtypes::Int32 ? 2147483647.0 : 9223372036854775807.0;
        want.push_back(k == Kind::kSum ? sum : k == Kind::kMean ? (n == 0 ? nan : sum / n) : k == Kind::kMax ? mx : mn);
      }
      Tensor got = testing::Run1(backend, [&](const std::vector<Node>& p) { return Apply(k, p[0], p[1], {1}); }, {x, mask});
      const double tol = dt == dtypes::BFloat16 ? 2e-2 : 1e-6;
      EXPECT_TRUE(testing::AllClose(got, shapes::Make(dt, 3), want, fl ? tol : 0, fl ? tol : 0));
    }
  }
}

TEST_P(MaskedTest, BroadcastMaskSelectsColumns) {
  auto backend = Backend();
  Tensor x = testing::FromDoubles(shapes::Make(dtypes::Float32, 2, 3), {1, 2, 3, 4, 5, 6});
  Tensor cols = testing::FromDoubles(shapes::Make(dtypes::Bool, 3), {1, 0, 1});
  Tensor got = testing::Run1(
      backend, [](const std::vector<Node>& p) { return graph::MaskedReduceSum(p[0], p[1], {0, 1}); }, {x, cols});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Float32), {1 + 3 + 4 + 6}, 0, 0));
}

TEST_P(MaskedTest, GradientsMatchFiniteDifferences) {
  auto backend = Backend();
  testing::Rng rng(31);
  Tensor x = testing::FromDoubles(shapes::Make(dtypes::Float64, 3, 4),
                                  {0.1, -0.7, 0.35, 0.9, -0.2, 0.45, 0.6, -0.55, 0.8, -0.3, 0.15, 0.65});
  Tensor mask = testing::FromDoubles(shapes::Make(dtypes::Bool, 3, 4), {1, 0, 1, 1, 0, 1, 1, 0, 1, 1, 0, 1});
  for (Kind k : {Kind::kSum, Kind::kMean, Kind::kMax, Kind::kMin}) {
    SCOPED_TRACE(static_cast<int>(k));
    EXPECT_TRUE(testing::CheckGradients(
        backend, [&](const std::vector<Node>& p) { return graph::ReduceAllSum(Apply(k, p[0], p[1], {1})); }, {x, mask},
        {.skip = {1}}));
  }
}

TEST(MaskedErrors, BadMasks) {
  auto g = graph::NewGraph("masked");
  Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float32, 2, 3));
  Node f = graph::Parameter(g.get(), "f", shapes::Make(dtypes::Float32, 2, 3));
  KILN_EXPECT_ERROR(graph::MaskedReduceSum(x, f, {1}), "MaskedReduceSum: the mask must be Bool, got Float32[2, 3] (masked_test.cc:");
  Node wide = graph::Parameter(g.get(), "wide", shapes::Make(dtypes::Bool, 4, 2, 3));
  KILN_EXPECT_ERROR(graph::MaskedReduceMax(x, wide, {1}),
                    "MaskedReduceMax: the mask Bool[4, 2, 3] must broadcast to the operand Float32[2, 3] without enlarging it");
  Node bad = graph::Parameter(g.get(), "bad", shapes::Make(dtypes::Bool, 4));
  KILN_EXPECT_ERROR(graph::MaskedReduceMin(x, bad, {1}), "MaskedReduceMin");
  Node i = graph::Parameter(g.get(), "i", shapes::Make(dtypes::Int32, 2, 3));
  Node m = graph::Parameter(g.get(), "m", shapes::Make(dtypes::Bool, 2, 3));
  KILN_EXPECT_ERROR(graph::MaskedReduceMean(i, m, {1}), "MaskedReduceMean: needs a float operand, got Int32[2, 3]");
}

}  // namespace
}  // namespace kiln
