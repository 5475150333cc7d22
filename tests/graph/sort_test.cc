// Copyright 2026 The Kiln Authors.
// Sort, SortTogether, SortWithComparator, ArgSort, TopK, BottomK and
// TakeAlongAxis on every backend that implements Sort: against std::stable_sort
// in the test's own total order for every dtype, shape and axis (ties, NaN,
// -0, infinities, empty axes), gradients against finite differences in
// float64, and the error messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "kiln/graph/sort.h"
#include "tests/testing/gradcheck.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;

class SortTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, SortTest, ::testing::ValuesIn(testing::BackendsSupporting(ir::OpType::kSort)));
// Empty where no backend tested has the op (KILN_TEST_BACKENDS=cuda).
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(SortTest);

// The order of the spec: NaN after everything, -0 equal to +0.
bool RefLess(double a, double b) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return a < b;
}

// For each slice along `axis` of `dims`: the stable order of its elements
// (perm[j] = the position within the slice of the element that goes to j),
// then the values gathered by it.
struct Reference {
  std::vector<double> values;
  std::vector<double> indices;
};

Reference RefSort(const std::vector<double>& x, const std::vector<int64_t>& dims, int axis, bool descending) {
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= dims[d];
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  const int64_t len = dims[axis];
  Reference r{std::vector<double>(x.size()), std::vector<double>(x.size())};
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      auto at = [&](int64_t j) { return (o * len + j) * inner + i; };
      std::vector<int64_t> perm(static_cast<size_t>(len));
      std::iota(perm.begin(), perm.end(), 0);
      std::stable_sort(perm.begin(), perm.end(), [&](int64_t a, int64_t b) {
        return descending ? RefLess(x[at(b)], x[at(a)]) : RefLess(x[at(a)], x[at(b)]);
      });
      for (int64_t j = 0; j < len; ++j) {
        r.values[at(j)] = x[at(perm[j])];
        r.indices[at(j)] = static_cast<double>(perm[j]);
      }
    }
  }
  return r;
}

// Values with ties, and for floats NaN, infinities and both zeros.
Tensor SortInput(const shapes::Shape& shape, uint64_t seed) {
  testing::Rng rng(seed);
  const bool is_unsigned = shape.DType() == dtypes::Uint8 || shape.DType() == dtypes::Uint16 ||
                           shape.DType() == dtypes::Uint32 || shape.DType() == dtypes::Uint64;
  Tensor t = testing::Random(shape, rng, is_unsigned ? 0 : -4, 4);
  if (!dtypes::IsFloat(shape.DType())) return t;
  std::vector<double> v = testing::ToDoubles(t);
  const double specials[] = {std::numeric_limits<double>::quiet_NaN(), -0.0, 0.0,
                             std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(), 1.0};
  for (size_t i = 0; i < v.size(); i += 3) v[i] = specials[(i / 3) % 6];
  return testing::FromDoubles(shape, v);
}

::testing::AssertionResult SameValues(const std::vector<double>& got, const std::vector<double>& want) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    const bool same = (std::isnan(got[i]) && std::isnan(want[i])) || got[i] == want[i];
    if (!same) return ::testing::AssertionFailure() << "element " << i << ": " << got[i] << " vs " << want[i];
  }
  return ::testing::AssertionSuccess();
}

struct SortShape {
  std::vector<int64_t> dims;
  int axis;
};

const std::vector<SortShape>& SortShapes() {
  static const std::vector<SortShape> shapes = {
      {{1}, 0}, {{17}, 0}, {{3, 5}, 0}, {{3, 5}, 1}, {{2, 7, 3}, 1}, {{4, 0}, 1}, {{0, 3}, 1}, {{40, 1000}, 1}};
  return shapes;
}

// Every dtype, shape, axis and direction: the sorted values and the stable
// permutation (ArgSort) match the reference.
TEST_P(SortTest, SortAndArgSortMatchTheReferenceForEveryDType) {
  auto backend = Backend();
  for (dtypes::DType dt : dtypes::kAll) {
    if (dtypes::IsComplex(dt)) continue;  // not ordered: refused (complex_test.cc)
    for (const SortShape& s : SortShapes()) {
      for (bool descending : {false, true}) {
        const shapes::Shape shape(dt, s.dims);
        const Tensor x = SortInput(shape, 1000 + s.dims.size() * 10 + static_cast<uint64_t>(s.axis));
        SCOPED_TRACE(shape.ToString() + " axis " + std::to_string(s.axis) + (descending ? " descending" : ""));
        auto out = testing::Run(
            backend,
            [&](const std::vector<Node>& p) {
              graph::SortOptions o{.descending = descending};
              return std::vector<Node>{graph::Sort(p[0], s.axis, o), graph::ArgSort(p[0], s.axis, o)};
            },
            {x});
        const Reference want = RefSort(testing::ToDoubles(x), s.dims, s.axis, descending);
        EXPECT_TRUE(SameValues(testing::ToDoubles(out[0]), want.values));
        EXPECT_EQ(out[1].Shape(), shapes::Shape(dtypes::Int32, s.dims));
        EXPECT_TRUE(SameValues(testing::ToDoubles(out[1]), want.indices));
      }
    }
  }
}

// Two keys, lexicographic, carrying a payload: rows sorted by (a, b).
TEST_P(SortTest, SortTogetherOrdersByKeysLexicographically) {
  const std::vector<double> a = {2, 1, 2, 1, 0, 2}, b = {5, 9, 1, 9, 3, 1}, c = {0, 1, 2, 3, 4, 5};
  auto out = testing::Run(
      Backend(),
      [](const std::vector<Node>& p) { return graph::SortTogether({p[0], p[1], p[2]}, 0, 2); },
      {testing::FromDoubles(shapes::Make(dtypes::Int32, 6), a), testing::FromDoubles(shapes::Make(dtypes::Float32, 6), b),
       testing::FromDoubles(shapes::Make(dtypes::Int64, 6), c)});
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[0]), {0, 1, 1, 2, 2, 2}));
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[1]), {3, 9, 9, 1, 1, 5}));
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[2]), {4, 1, 3, 2, 5, 0}));  // ties in input order
}

TEST_P(SortTest, TopKAndBottomKPickTheExtremesWithTheirIndices) {
  const std::vector<double> x = {3, NAN, 7, 7, -1, 0, 7, 2};
  auto out = testing::Run(
      Backend(),
      [](const std::vector<Node>& p) {
        auto top = graph::TopK(p[0], 3, -1, dtypes::Int64);
        auto bottom = graph::BottomK(p[0], 2);
        auto none = graph::TopK(p[0], 0);
        return std::vector<Node>{top.values, top.indices, bottom.values, bottom.indices, none.values};
      },
      {testing::FromDoubles(shapes::Make(dtypes::Float32, 2, 4), x)});
  // Row 0: {3, NaN, 7, 7}: NaN counts as the largest; row 1: {-1, 0, 7, 2}.
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[0]), {NAN, 7, 7, 7, 2, 0}));
  EXPECT_EQ(out[1].Shape(), shapes::Make(dtypes::Int64, 2, 3));
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[1]), {1, 2, 3, 2, 3, 1}));
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[2]), {3, 7, -1, 0}));
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[3]), {0, 2, 0, 1}));
  EXPECT_EQ(out[4].Shape(), shapes::Make(dtypes::Float32, 2, 0));
}

// TopK reads only the first k positions, so the CPU selects them in one
// pass (a heap per thread where the row is the only one): check it against
// the full reference on rows with many ties, for several k, on several rows
// and on one long row.
TEST_P(SortTest, TopKMatchesTheFullSortOnLargeRowsWithTies) {
  for (const std::vector<int64_t>& dims : {std::vector<int64_t>{3, 5000}, std::vector<int64_t>{1, 70001}}) {
    const int64_t rows = dims[0], len = dims[1];
    const Tensor x = SortInput(shapes::Shape(dtypes::Float32, dims), 77);
    const Reference want = RefSort(testing::ToDoubles(x), dims, 1, true);
    for (int64_t k : {int64_t{1}, int64_t{37}, int64_t{4999}, len}) {
      auto out = testing::Run(
          Backend(),
          [k](const std::vector<Node>& p) {
            auto r = graph::TopK(p[0], k);
            return std::vector<Node>{r.values, r.indices};
          },
          {x});
      std::vector<double> values, indices;
      for (int64_t row = 0; row < rows; ++row) {
        for (int64_t j = 0; j < k; ++j) {
          values.push_back(want.values[static_cast<size_t>(row * len + j)]);
          indices.push_back(want.indices[static_cast<size_t>(row * len + j)]);
        }
      }
      EXPECT_TRUE(SameValues(testing::ToDoubles(out[0]), values)) << "len = " << len << ", k = " << k;
      EXPECT_TRUE(SameValues(testing::ToDoubles(out[1]), indices)) << "len = " << len << ", k = " << k;
    }
  }
}

// Axes longer than a backend's in-memory chunk (CUDA sorts chunks of 2048
// positions, then merges runs in passes): rows of 70,001 with ties, a
// strided axis of 9,000, and a comparator over 5,000 positions.
TEST_P(SortTest, LongAxesMatchTheReference) {
  auto backend = Backend();
  struct Case {
    dtypes::DType dt;
    std::vector<int64_t> dims;
    int axis;
    bool descending;
  };
  for (const Case& c : {Case{dtypes::Float32, {2, 70001}, 1, false}, Case{dtypes::Int32, {9000, 3}, 0, true},
                        Case{dtypes::BFloat16, {4097}, 0, true}}) {
    const shapes::Shape shape(c.dt, c.dims);
    SCOPED_TRACE(shape.ToString());
    const Tensor x = SortInput(shape, 4242);
    auto out = testing::Run(
        backend,
        [&](const std::vector<Node>& p) {
          graph::SortOptions o{.descending = c.descending};
          return std::vector<Node>{graph::Sort(p[0], c.axis, o), graph::ArgSort(p[0], c.axis, o)};
        },
        {x});
    const Reference want = RefSort(testing::ToDoubles(x), c.dims, c.axis, c.descending);
    EXPECT_TRUE(SameValues(testing::ToDoubles(out[0]), want.values));
    EXPECT_TRUE(SameValues(testing::ToDoubles(out[1]), want.indices));
  }
  // By absolute value; ties (x and -x, equal values) keep their order.
  testing::Rng rng(9);
  std::vector<double> v(5000);
  for (double& e : v) e = static_cast<double>(static_cast<int64_t>(rng() % 601) - 300);
  auto out = testing::Run(
      backend,
      [](const std::vector<Node>& p) {
        return graph::SortWithComparator({p[0], graph::Iota(p[0].Graph(), shapes::Make(dtypes::Int32, 5000), 0)}, 0,
                                         [](const std::vector<Node>& l, const std::vector<Node>& r) {
                                           return graph::LessThan(graph::Abs(l[0]), graph::Abs(r[0]));
                                         });
      },
      {testing::FromDoubles(shapes::Make(dtypes::Float64, 5000), v)});
  std::vector<double> perm(v.size());
  std::iota(perm.begin(), perm.end(), 0.0);
  std::stable_sort(perm.begin(), perm.end(), [&](double a, double b) {
    return std::abs(v[static_cast<size_t>(a)]) < std::abs(v[static_cast<size_t>(b)]);
  });
  std::vector<double> sorted;
  for (double i : perm) sorted.push_back(v[static_cast<size_t>(i)]);
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[0]), sorted));
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[1]), perm));
}

// By absolute value, descending, with a traced comparator; and pairs sorted
// by their second operand only.
TEST_P(SortTest, SortWithComparatorFollowsTheComparator) {
  const std::vector<double> x = {-3, 1, 4, -1, 5, -9, 2, 6};
  auto out = testing::Run(
      Backend(),
      [](const std::vector<Node>& p) {
        auto by_abs = graph::SortWithComparator(
            {p[0]}, 0, [](const std::vector<Node>& l, const std::vector<Node>& r) {
              return graph::GreaterThan(graph::Abs(l[0]), graph::Abs(r[0]));
            });
        auto by_second = graph::SortWithComparator(
            {p[0], graph::Neg(p[0])}, 0,
            [](const std::vector<Node>& l, const std::vector<Node>& r) { return graph::LessThan(l[1], r[1]); });
        return std::vector<Node>{by_abs[0], by_second[0], by_second[1]};
      },
      {testing::FromDoubles(shapes::Make(dtypes::Float64, 8), x)});
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[0]), {-9, 6, 5, 4, -3, 2, 1, -1}));  // 1 and -1 tie: input order
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[1]), {6, 5, 4, 2, 1, -1, -3, -9}));
  EXPECT_TRUE(SameValues(testing::ToDoubles(out[2]), {-6, -5, -4, -2, -1, 1, 3, 9}));
}

TEST_P(SortTest, TakeAlongAxisGathersAlongOneAxis) {
  auto out = testing::Run1(
      Backend(),
      [](const std::vector<Node>& p) { return graph::TakeAlongAxis(p[0], p[1], 1); },
      {testing::FromDoubles(shapes::Make(dtypes::Float32, 2, 3), {10, 11, 12, 20, 21, 22}),
       testing::FromDoubles(shapes::Make(dtypes::Int32, 2, 4), {2, 0, 0, 1, 1, 2, 2, 0})});
  EXPECT_TRUE(testing::AllClose(out, shapes::Make(dtypes::Float32, 2, 4), {12, 10, 10, 11, 21, 22, 22, 20}, 0, 0));
}

// Gradients flow back to where each sorted element came from (distinct
// values, so the permutation is constant near the inputs).
TEST_P(SortTest, GradientsMatchFiniteDifferences) {
  auto backend = Backend();
  testing::Rng rng(5);
  const auto f64 = [&](std::vector<int64_t> dims) {
    return testing::Random(shapes::Shape(dtypes::Float64, std::move(dims)), rng, -2, 2);
  };
  EXPECT_TRUE(testing::CheckGradients(backend, [](const std::vector<Node>& p) { return graph::Sort(p[0], 0) * p[1]; },
                                      {f64({5, 3}), f64({5, 3})}));
  EXPECT_TRUE(testing::CheckGradients(
      backend, [](const std::vector<Node>& p) { return graph::SortTogether({p[0], p[1]}, 1, 1, {.descending = true})[1]; },
      {f64({3, 6}), f64({3, 6})}));
  EXPECT_TRUE(testing::CheckGradients(
      backend, [](const std::vector<Node>& p) { return graph::TopK(p[0] * p[0], 3).values; }, {f64({2, 7})}));
  EXPECT_TRUE(testing::CheckGradients(
      backend,
      [](const std::vector<Node>& p) {
        return graph::SortWithComparator({p[0]}, 0, [](const std::vector<Node>& l, const std::vector<Node>& r) {
          return graph::LessThan(graph::Abs(l[0]), graph::Abs(r[0]));
        })[0];
      },
      {f64({6})}));
  EXPECT_TRUE(testing::CheckGradients(
      backend,
      [](const std::vector<Node>& p) {
        Node idx = graph::Const(p[0].Graph(), std::vector<std::vector<int32_t>>{{2, 2, 0}, {1, 0, 1}});
        return graph::TakeAlongAxis(p[0], idx, 1);
      },
      {f64({2, 3})}));
}

using SortErrors = testing::GraphErrorTest;

TEST_F(SortErrors, BadOperandsAreRejectedWithTheirShapes) {
  Node x = Param(shapes::Make(dtypes::Float32, 3, 4));
  Node y = Param(shapes::Make(dtypes::Float32, 4, 3));
  Node s = Param(shapes::Make(dtypes::Float32));
  KILN_EXPECT_ERROR(graph::Sort(s), "Sort: needs an axis to sort along, but the operand is a scalar Float32");
  KILN_EXPECT_ERROR(graph::Sort(x, 2), "sort_test.cc:");
  KILN_EXPECT_ERROR(graph::SortTogether({x, y}), "operand #1 Float32[4, 3] must have the dimensions of operand #0 Float32[3, 4]");
  KILN_EXPECT_ERROR(graph::SortTogether({x, x}, -1, 3), "num_keys must be in [1, 2], got 3");
  KILN_EXPECT_ERROR(graph::TopK(x, 5), "TopK: k must be in [0, 4] for Float32[3, 4] along axis 1, got 5");
  KILN_EXPECT_ERROR(graph::ArgSort(x, -1, {}, dtypes::Float32), "index_dtype must be an integer dtype");
  KILN_EXPECT_ERROR(graph::TakeAlongAxis(x, y, 1), "TakeAlongAxis: indices must have an integer dtype");
  KILN_EXPECT_ERROR(graph::TakeAlongAxis(x, graph::ConvertDType(y, dtypes::Int32), 1),
                    "indices Int32[4, 3] must match x Float32[3, 4] on every axis but 1");
}

TEST_F(SortErrors, ComparatorsMustBeBoolAndSelfContained) {
  Node x = Param(shapes::Make(dtypes::Float32, 4));
  Node t = Param(shapes::Make(dtypes::Float32));
  KILN_EXPECT_ERROR(graph::SortWithComparator({x}, 0, [](const std::vector<Node>& l, const std::vector<Node>&) { return l[0]; }),
                    "the comparator must return one Bool scalar, got Float32");
  KILN_EXPECT_ERROR(graph::SortWithComparator(
                        {x}, 0, [&](const std::vector<Node>& l, const std::vector<Node>& r) { return graph::LessThan(l[0] * t, r[0]); }),
                    "the comparator uses a value from outside it");
}

}  // namespace
}  // namespace kiln
