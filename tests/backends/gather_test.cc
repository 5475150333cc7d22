// Copyright 2026 The Kiln Authors.
// Conformance tests of Gather and Scatter{Sum,Max,Min,Update}: each op against
// a naive reference written from the StableHLO spec (loops over every output
// or update index), on every backend, for several dtypes and index dtypes.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using ir::GatherAttrs;
using ir::ScatterAttrs;
using shapes::Shape;
using tensors::Tensor;
using testing::Ravel;
using testing::Rng;
using testing::Unravel;

using Dims = std::vector<int64_t>;

// ------------------------------------------------------ Naive references.

bool Contains(const Dims& list, int64_t v) { return std::find(list.begin(), list.end(), v) != list.end(); }

// The index vector for the batch index `batch` (indices axes other than
// index_vector_dim, in order): the spec's start_index.
Dims StartIndex(const Dims& batch, const std::vector<double>& indices, const Dims& index_dims, int64_t ivd) {
  const auto rank = static_cast<int64_t>(index_dims.size());
  const int64_t components = ivd < rank ? index_dims[ivd] : 1;
  Dims start(static_cast<size_t>(components));
  for (int64_t k = 0; k < components; ++k) {
    Dims at;
    size_t b = 0;
    for (int64_t d = 0; d < rank; ++d) at.push_back(d == ivd ? k : batch[b++]);
    start[k] = static_cast<int64_t>(indices[Ravel(at, index_dims)]);
  }
  return start;
}

// StableHLO gather, one output element at a time.
std::vector<double> NaiveGather(const std::vector<double>& operand, const Dims& operand_dims,
                                const std::vector<double>& indices, const Dims& index_dims, const GatherAttrs& a,
                                const Dims& out_dims) {
  const int64_t out_size = testing::NumElements(out_dims);
  std::vector<double> out(static_cast<size_t>(out_size));
  for (int64_t flat = 0; flat < out_size; ++flat) {
    const Dims out_index = Unravel(flat, out_dims);
    Dims batch, offset;
    for (size_t d = 0; d < out_dims.size(); ++d) {
      (Contains(a.offset_dims, static_cast<int64_t>(d)) ? offset : batch).push_back(out_index[d]);
    }
    const Dims start = StartIndex(batch, indices, index_dims, a.index_vector_dim);
    Dims operand_index(operand_dims.size(), 0);
    for (size_t k = 0; k < start.size(); ++k) {
      const int64_t d = a.start_index_map[k];
      operand_index[d] = std::clamp<int64_t>(start[k], 0, operand_dims[d] - a.slice_sizes[d]);
    }
    size_t o = 0;
    for (size_t d = 0; d < operand_dims.size(); ++d) {
      if (!Contains(a.collapsed_slice_dims, static_cast<int64_t>(d))) operand_index[d] += offset[o++];
    }
    out[flat] = operand[Ravel(operand_index, operand_dims)];
  }
  return out;
}

enum class Combiner { kSum, kMax, kMin, kUpdate };

double Combine(Combiner c, double target, double update) {
  switch (c) {
    case Combiner::kSum: return target + update;
    case Combiner::kMax: return std::isnan(target) || std::isnan(update) ? NAN : std::max(target, update);
    case Combiner::kMin: return std::isnan(target) || std::isnan(update) ? NAN : std::min(target, update);
    case Combiner::kUpdate: return update;
  }
  return 0;
}

// Splits an update index into its scatter and window parts.
void SplitUpdateIndex(const Dims& update_index, const ScatterAttrs& a, Dims& scatter, Dims& window) {
  scatter.clear();
  window.clear();
  for (size_t d = 0; d < update_index.size(); ++d) {
    (Contains(a.update_window_dims, static_cast<int64_t>(d)) ? window : scatter).push_back(update_index[d]);
  }
}

// StableHLO scatter, one update element at a time, ordered by index vector
// (row-major over the scatter dims) and then row-major within the window;
// elements targeting outside the operand are skipped.
std::vector<double> NaiveScatter(Combiner c, std::vector<double> result, const Dims& operand_dims,
                                 const std::vector<double>& indices, const Dims& index_dims,
                                 const std::vector<double>& updates, const Dims& update_dims, const ScatterAttrs& a) {
  // The update elements in combining order: a stable sort by scatter index.
  std::vector<std::pair<Dims, int64_t>> order;
  Dims scatter, window;
  for (size_t flat = 0; flat < updates.size(); ++flat) {
    SplitUpdateIndex(Unravel(static_cast<int64_t>(flat), update_dims), a, scatter, window);
    order.emplace_back(scatter, static_cast<int64_t>(flat));
  }
  std::stable_sort(order.begin(), order.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
  for (const auto& [unused, flat] : order) {
    SplitUpdateIndex(Unravel(flat, update_dims), a, scatter, window);
    const Dims start = StartIndex(scatter, indices, index_dims, a.index_vector_dim);
    Dims target(operand_dims.size(), 0);
    for (size_t k = 0; k < start.size(); ++k) target[a.scatter_dims_to_operand_dims[k]] = start[k];
    size_t w = 0;
    bool in_bounds = true;
    for (size_t d = 0; d < operand_dims.size(); ++d) {
      if (!Contains(a.inserted_window_dims, static_cast<int64_t>(d))) target[d] += window[w++];
      in_bounds = in_bounds && target[d] >= 0 && target[d] < operand_dims[d];
    }
    if (!in_bounds) continue;
    double& t = result[Ravel(target, operand_dims)];
    t = Combine(c, t, updates[flat]);
  }
  return result;
}

// ------------------------------------------------------------ Fixtures.

class GatherTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> backend_ = backends::NewWithName(GetParam());
};

// The operand and index dtypes of the reference comparisons over all cases.
constexpr dtypes::DType kDTypes[] = {dtypes::Float32, dtypes::Float64, dtypes::Int32, dtypes::Uint8,
                                     dtypes::BFloat16};
constexpr dtypes::DType kIndexDTypes[] = {dtypes::Int32, dtypes::Int64, dtypes::Uint8};

struct GatherCase {
  std::string name;
  Dims operand, indices;
  GatherAttrs attrs;
  Dims want_output;
  int64_t index_lo, index_hi;  // range of random indices
};

// Runs Gather on random data and compares with NaiveGather (exactly).
void CheckGather(const std::shared_ptr<backends::Backend>& backend, const GatherCase& c, dtypes::DType dtype,
                 dtypes::DType index_dtype, Rng& rng) {
  SCOPED_TRACE(c.name + " " + dtypes::Name(dtype) + " indices " + dtypes::Name(index_dtype));
  Tensor operand = testing::Random(Shape(dtype, c.operand), rng, -100, 100);
  Tensor indices = testing::Random(Shape(index_dtype, c.indices), rng, static_cast<double>(c.index_lo),
                                   static_cast<double>(c.index_hi));
  Tensor got = testing::Run1(
      backend, [&](const std::vector<Node>& p) { return graph::Gather(p[0], p[1], c.attrs); }, {operand, indices});
  std::vector<double> want =
      NaiveGather(testing::ToDoubles(operand), c.operand, testing::ToDoubles(indices), c.indices, c.attrs,
                  c.want_output);
  EXPECT_TRUE(testing::AllClose(got, Shape(dtype, c.want_output), want, 0, 0));
}

GatherAttrs RowsAttrs(int64_t depth, int64_t index_vector_dim, Dims offset_dims = {1}) {
  GatherAttrs a;
  a.offset_dims = std::move(offset_dims);
  a.collapsed_slice_dims = {0};
  a.start_index_map = {0};
  a.index_vector_dim = index_vector_dim;
  a.slice_sizes = {1, depth};
  return a;
}

std::vector<GatherCase> GatherCases() {
  std::vector<GatherCase> cases;
  // Embedding lookups: indices [N] (implicit index vector) and [N, 1], with
  // out-of-range and negative indices clamped.
  cases.push_back({"rows [N]", {7, 5}, {6}, RowsAttrs(5, 1), {6, 5}, -3, 10});
  cases.push_back({"rows [N,1]", {7, 5}, {6, 1}, RowsAttrs(5, 1), {6, 5}, 0, 6});
  cases.push_back({"rows, offset dim first", {7, 5}, {4}, RowsAttrs(5, 1, {0}), {5, 4}, -2, 8});
  cases.push_back({"rows [N,M]", {9, 3}, {2, 4}, RowsAttrs(3, 2, {2}), {2, 4, 3}, 0, 8});
  // 2-D windows [2, 3] of an operand [6, 7, 3], starting anywhere (clamped).
  GatherAttrs windows;
  windows.offset_dims = {1, 2, 3};
  windows.start_index_map = {0, 1};
  windows.index_vector_dim = 1;
  windows.slice_sizes = {2, 3, 3};
  cases.push_back({"2-D windows", {6, 7, 3}, {4, 2}, windows, {4, 2, 3, 3}, -4, 9});
  // index_vector_dim in the middle of indices [3, 2, 4]; start_index_map
  // reversed; output offset axis between the batch axes.
  GatherAttrs middle;
  middle.offset_dims = {1};
  middle.collapsed_slice_dims = {1};
  middle.start_index_map = {1, 0};
  middle.index_vector_dim = 1;
  middle.slice_sizes = {2, 1};
  cases.push_back({"index_vector_dim middle", {5, 6}, {3, 2, 4}, middle, {3, 2, 4}, -2, 7});
  // Point gather (every axis collapsed), index_vector_dim == rank - 1.
  GatherAttrs points;
  points.collapsed_slice_dims = {0, 1};
  points.start_index_map = {0, 1};
  points.index_vector_dim = 1;
  points.slice_sizes = {1, 1};
  cases.push_back({"points", {4, 5}, {10, 2}, points, {10}, -1, 6});
  // A scalar index (index_vector_dim == rank == 0): one row.
  cases.push_back({"scalar index", {7, 5}, {}, RowsAttrs(5, 0, {0}), {5}, -2, 9});
  // Empty batch, and a scalar operand (empty index vectors).
  cases.push_back({"no indices", {7, 5}, {0}, RowsAttrs(5, 1), {0, 5}, 0, 6});
  GatherAttrs scalar;
  scalar.index_vector_dim = 1;
  cases.push_back({"scalar operand", {}, {3, 0}, scalar, {3}, 0, 0});
  // Large enough to take the parallel path.
  cases.push_back({"rows, parallel", {100, 300}, {1000}, RowsAttrs(300, 1), {1000, 300}, -5, 105});
  return cases;
}

TEST_P(GatherTest, MatchesReferenceAcrossDTypes) {
  Rng rng(1);
  for (const GatherCase& c : GatherCases()) {
    for (dtypes::DType dtype : kDTypes) {
      for (dtypes::DType index_dtype : kIndexDTypes) CheckGather(backend_, c, dtype, index_dtype, rng);
    }
  }
}

TEST_P(GatherTest, EveryDTypeAndIndexDType) {
  Rng rng(2);
  const GatherCase c{"rows", {6, 3}, {5, 1}, RowsAttrs(3, 1), {5, 3}, 0, 9};
  for (dtypes::DType dtype : dtypes::kAll) {
    if (!dtypes::IsComplex(dtype)) CheckGather(backend_, c, dtype, dtypes::Int32, rng);  // complex: complex_test.cc
  }
  for (dtypes::DType index_dtype : dtypes::kAll) {
    if (dtypes::IsInteger(index_dtype)) CheckGather(backend_, c, dtypes::Float32, index_dtype, rng);
  }
}

TEST_P(GatherTest, ClampsKnownIndices) {
  // Rows of a [4, 2] operand; -7 clamps to row 0, 99 to row 3.
  Tensor operand = tensors::FromValue(std::vector<std::vector<float>>{{0, 1}, {10, 11}, {20, 21}, {30, 31}});
  Tensor indices = tensors::FromValue(std::vector<int64_t>{2, -7, 99, 1});
  Tensor got = testing::Run1(
      backend_, [](const std::vector<Node>& p) { return graph::Gather(p[0], p[1], RowsAttrs(2, 1)); },
      {operand, indices});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Float32, 4, 2), {20, 21, 0, 1, 30, 31, 10, 11}, 0, 0));
  // A window of 3 on 4 elements starting at 3 is moved back to start 1.
  GatherAttrs window;
  window.offset_dims = {1};
  window.start_index_map = {0};
  window.index_vector_dim = 1;
  window.slice_sizes = {3};
  Tensor vec = tensors::FromValue(std::vector<int32_t>{5, 6, 7, 8});
  Tensor starts = tensors::FromValue(std::vector<uint64_t>{3, std::numeric_limits<uint64_t>::max()});
  got = testing::Run1(
      backend_, [&](const std::vector<Node>& p) { return graph::Gather(p[0], p[1], window); }, {vec, starts});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Int32, 2, 3), {6, 7, 8, 6, 7, 8}, 0, 0));
}

// ------------------------------------------------------------- Scatter.

struct ScatterCase {
  std::string name;
  Dims operand, indices, updates;
  ScatterAttrs attrs;
  int64_t index_lo, index_hi;
};

Node RunScatterOp(Combiner c, Node operand, Node indices, Node updates, const ScatterAttrs& a) {
  switch (c) {
    case Combiner::kSum: return graph::ScatterSum(operand, indices, updates, a);
    case Combiner::kMax: return graph::ScatterMax(operand, indices, updates, a);
    case Combiner::kMin: return graph::ScatterMin(operand, indices, updates, a);
    case Combiner::kUpdate: return graph::ScatterUpdate(operand, indices, updates, a);
  }
  return {};
}

const char* CombinerName(Combiner c) {
  switch (c) {
    case Combiner::kSum: return "ScatterSum";
    case Combiner::kMax: return "ScatterMax";
    case Combiner::kMin: return "ScatterMin";
    case Combiner::kUpdate: return "ScatterUpdate";
  }
  return "";
}

// Sums round to the dtype after every addition, the reference only at the
// end: an absolute tolerance for sums of a few values of magnitude <= 20.
double SumTolerance(dtypes::DType dtype) {
  switch (dtype) {
    case dtypes::BFloat16: return 1.0;
    case dtypes::Float16: return 0.1;
    case dtypes::Float32: return 1e-4;
    case dtypes::Float64: return 1e-10;
    default: return 0;
  }
}

// Integer sums wrap around: `v` modulo 2^bits, in the dtype's range (64-bit
// sums of test values never wrap, and 2^64 is beyond double's exact range).
double WrapToDType(double v, dtypes::DType dtype) {
  if (dtypes::SizeOf(dtype) == 8) return v;
  const double modulus = std::ldexp(1.0, static_cast<int>(8 * dtypes::SizeOf(dtype)));
  v = std::fmod(v, modulus);
  if (v < 0) v += modulus;
  if (dtypes::IsSignedInteger(dtype) && v >= modulus / 2) v -= modulus;
  return v;
}

// Runs the scatter on random data (NaN sprinkled into float updates) and
// compares with NaiveScatter.
void CheckScatter(const std::shared_ptr<backends::Backend>& backend, Combiner comb, const ScatterCase& c,
                  dtypes::DType dtype, dtypes::DType index_dtype, Rng& rng, bool with_nan) {
  SCOPED_TRACE(std::string(CombinerName(comb)) + " " + c.name + " " + dtypes::Name(dtype) + " indices " +
               dtypes::Name(index_dtype));
  const bool is_unsigned = dtypes::IsUnsignedInteger(dtype);
  Tensor operand = testing::Random(Shape(dtype, c.operand), rng, is_unsigned ? 0 : -20, 20);
  std::vector<double> update_values =
      testing::ToDoubles(testing::Random(Shape(dtype, c.updates), rng, is_unsigned ? 0 : -20, 20));
  if (with_nan && dtypes::IsFloat(dtype) && !update_values.empty()) update_values[update_values.size() / 2] = NAN;
  Tensor updates = testing::FromDoubles(Shape(dtype, c.updates), update_values);
  Tensor indices = testing::Random(Shape(index_dtype, c.indices), rng, static_cast<double>(c.index_lo),
                                   static_cast<double>(c.index_hi));
  Tensor got = testing::Run1(
      backend, [&](const std::vector<Node>& p) { return RunScatterOp(comb, p[0], p[1], p[2], c.attrs); },
      {operand, indices, updates});
  std::vector<double> want = NaiveScatter(comb, testing::ToDoubles(operand), c.operand, testing::ToDoubles(indices),
                                          c.indices, update_values, c.updates, c.attrs);
  if (dtypes::IsInteger(dtype)) {
    for (double& v : want) v = WrapToDType(v, dtype);
  }
  const bool sum = comb == Combiner::kSum;
  EXPECT_TRUE(testing::AllClose(got, Shape(dtype, c.operand), want, sum ? 8 * testing::Tolerance(dtype) : 0,
                                sum ? SumTolerance(dtype) : 0));
}

ScatterAttrs RowsScatter() {
  ScatterAttrs a;
  a.update_window_dims = {1};
  a.inserted_window_dims = {0};
  a.scatter_dims_to_operand_dims = {0};
  a.index_vector_dim = 1;
  return a;
}

std::vector<ScatterCase> ScatterCases() {
  std::vector<ScatterCase> cases;
  // Embedding gradient: rows of [V, D] with duplicate and out-of-range rows.
  cases.push_back({"rows [N,1]", {5, 4}, {9, 1}, {9, 4}, RowsScatter(), -2, 6});
  cases.push_back({"rows [N]", {5, 4}, {9}, {9, 4}, RowsScatter(), 0, 4});
  // Large enough for the parallel split of the rows (D >= 128).
  cases.push_back({"rows, parallel", {40, 512}, {100, 1}, {100, 512}, RowsScatter(), -1, 40});
  // Scalars into a vector (every update window is one element).
  ScatterAttrs points;
  points.inserted_window_dims = {0};
  points.scatter_dims_to_operand_dims = {0};
  points.index_vector_dim = 1;
  cases.push_back({"points", {6}, {20}, {20}, points, -2, 7});
  // 2-D windows [3, 2] into [6, 7], some partly outside (those elements skipped).
  ScatterAttrs windows;
  windows.update_window_dims = {1, 2};
  windows.scatter_dims_to_operand_dims = {0, 1};
  windows.index_vector_dim = 1;
  cases.push_back({"2-D windows", {6, 7}, {8, 2}, {8, 3, 2}, windows, -2, 7});
  // index_vector_dim in the middle of indices [2, 2, 3]; reversed
  // scatter_dims_to_operand_dims; the window axis between the scatter axes.
  ScatterAttrs middle;
  middle.update_window_dims = {1};
  middle.inserted_window_dims = {0};
  middle.scatter_dims_to_operand_dims = {1, 0};
  middle.index_vector_dim = 1;
  cases.push_back({"index_vector_dim middle", {5, 4}, {2, 2, 3}, {2, 3, 3}, middle, -1, 5});
  // Windows on a rank-3 operand with an unindexed full trailing axis.
  ScatterAttrs rank3;
  rank3.update_window_dims = {1, 2};
  rank3.inserted_window_dims = {1};
  rank3.scatter_dims_to_operand_dims = {1};
  rank3.index_vector_dim = 1;
  cases.push_back({"rank 3", {3, 4, 5}, {6}, {6, 2, 5}, rank3, -1, 4});
  // A scalar index updating one row.
  ScatterAttrs one_row = RowsScatter();
  one_row.update_window_dims = {0};
  one_row.index_vector_dim = 0;
  cases.push_back({"scalar index", {5, 4}, {}, {4}, one_row, -1, 5});
  // No updates; and a scalar operand.
  cases.push_back({"no updates", {5, 4}, {0, 1}, {0, 4}, RowsScatter(), 0, 4});
  ScatterAttrs scalar;
  scalar.index_vector_dim = 1;
  cases.push_back({"scalar operand", {}, {4, 0}, {4}, scalar, 0, 0});
  return cases;
}

TEST_P(GatherTest, ScatterMatchesReference) {
  Rng rng(3);
  for (Combiner comb : {Combiner::kSum, Combiner::kMax, Combiner::kMin, Combiner::kUpdate}) {
    for (const ScatterCase& c : ScatterCases()) {
      for (dtypes::DType dtype : kDTypes) {
        for (dtypes::DType index_dtype : kIndexDTypes) {
          CheckScatter(backend_, comb, c, dtype, index_dtype, rng, /*with_nan=*/false);
        }
      }
    }
  }
}

TEST_P(GatherTest, ScatterEveryDTypeAndNaN) {
  Rng rng(4);
  const ScatterCase c{"rows", {5, 3}, {7, 1}, {7, 3}, RowsScatter(), -1, 6};
  for (Combiner comb : {Combiner::kSum, Combiner::kMax, Combiner::kMin, Combiner::kUpdate}) {
    for (dtypes::DType dtype : dtypes::kAll) {
      if (dtypes::IsComplex(dtype)) continue;  // complex_test.cc
      if (dtype != dtypes::Bool || comb == Combiner::kUpdate) CheckScatter(backend_, comb, c, dtype, dtypes::Int16, rng, true);
    }
  }
}

TEST_P(GatherTest, ScatterDuplicatesKnownValues) {
  // Rows 1, 1, 3 (twice), -1 and 4 (skipped) of a [4, 2] operand of ones.
  Tensor operand = tensors::FromValue(std::vector<std::vector<float>>{{1, 1}, {1, 1}, {1, 1}, {1, 1}});
  Tensor indices = tensors::FromValue(std::vector<int32_t>{1, 3, 1, -1, 4, 3});
  Tensor updates = tensors::FromValue(
      std::vector<std::vector<float>>{{2, 5}, {7, -1}, {3, 4}, {100, 100}, {100, 100}, {-6, 9}});
  auto run = [&](Combiner comb) {
    return testing::Run1(
        backend_, [&](const std::vector<Node>& p) { return RunScatterOp(comb, p[0], p[1], p[2], RowsScatter()); },
        {operand, indices, updates});
  };
  const Shape shape = shapes::Make(dtypes::Float32, 4, 2);
  EXPECT_TRUE(testing::AllClose(run(Combiner::kSum), shape, {1, 1, 6, 10, 1, 1, 2, 9}, 0, 0));
  EXPECT_TRUE(testing::AllClose(run(Combiner::kMax), shape, {1, 1, 3, 5, 1, 1, 7, 9}, 0, 0));
  EXPECT_TRUE(testing::AllClose(run(Combiner::kMin), shape, {1, 1, 1, 1, 1, 1, -6, -1}, 0, 0));
  EXPECT_TRUE(testing::AllClose(run(Combiner::kUpdate), shape, {1, 1, 3, 4, 1, 1, -6, 9}, 0, 0));
}

TEST_P(GatherTest, ScatterSkipsOnlyOutOfBoundsElements) {
  // A window of 3 starting at 2 on 4 elements: elements 2 and 3 get updates
  // 10 and 20; 30 (target 4) is skipped. Start -1: 1 -> 0, 2 -> 1.
  ScatterAttrs a;
  a.update_window_dims = {1};
  a.scatter_dims_to_operand_dims = {0};
  a.index_vector_dim = 1;
  Tensor operand = tensors::FromValue(std::vector<int64_t>{0, 0, 0, 0});
  Tensor indices = tensors::FromValue(std::vector<std::vector<int64_t>>{{2}, {-1}});
  Tensor updates = tensors::FromValue(std::vector<std::vector<int64_t>>{{10, 20, 30}, {100, 1, 2}});
  Tensor got = testing::Run1(
      backend_, [&](const std::vector<Node>& p) { return graph::ScatterSum(p[0], p[1], p[2], a); },
      {operand, indices, updates});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Int64, 4), {1, 2, 10, 20}, 0, 0));
}

INSTANTIATE_TEST_SUITE_P(Backends, GatherTest, ::testing::ValuesIn(testing::BackendNames()));

// ---------------------------------------------------------------- Errors.

using GatherErrors = testing::GraphErrorTest;

TEST_F(GatherErrors, GatherChecksEveryConstraint) {
  Node x = Param(Shape(dtypes::Float32, {7, 5}));
  Node idx = Param(Shape(dtypes::Int32, {6}));
  Node fidx = Param(Shape(dtypes::Float32, {6}));
  EXPECT_EQ(graph::Gather(x, idx, RowsAttrs(5, 1)).Shape(), shapes::Make(dtypes::Float32, 6, 5));
  KILN_EXPECT_ERROR(graph::Gather(x, fidx, RowsAttrs(5, 1)),
                    "Gather: indices must have an integer dtype, got Float32[6] (gather_test.cc:");
  KILN_EXPECT_ERROR(graph::Gather(x, idx, RowsAttrs(5, 2)), "index_vector_dim 2 is out of range [0, 1]");
  GatherAttrs a = RowsAttrs(5, 1);
  a.slice_sizes = {1};
  KILN_EXPECT_ERROR(graph::Gather(x, idx, a), "slice_sizes [1] has 1 entries for operand Float32[7, 5] of rank 2");
  a = RowsAttrs(6, 1);
  KILN_EXPECT_ERROR(graph::Gather(x, idx, a), "size 6 of axis 1 is out of range [0, 5]");
  a = RowsAttrs(5, 1);
  a.slice_sizes = {2, 5};
  KILN_EXPECT_ERROR(graph::Gather(x, idx, a), "collapsed axis 0 must have slice size 1");
  a = RowsAttrs(5, 1);
  a.collapsed_slice_dims = {2};
  KILN_EXPECT_ERROR(graph::Gather(x, idx, a), "collapsed_slice_dims [2]: 2 is out of range for the operand");
  a.collapsed_slice_dims = {1, 0};
  a.slice_sizes = {1, 1};
  a.offset_dims = {};
  KILN_EXPECT_ERROR(graph::Gather(x, idx, a), "collapsed_slice_dims [1, 0] must be sorted and unique");
  a = RowsAttrs(5, 1);
  a.start_index_map = {0, 1};
  KILN_EXPECT_ERROR(graph::Gather(x, idx, a),
                    "start_index_map [0, 1] has 2 entries but the index vectors have 1 components");
  a.start_index_map = {2};
  KILN_EXPECT_ERROR(graph::Gather(x, idx, a), "start_index_map [2]: 2 is out of range for the operand (rank 2)");
  Node idx2 = Param(Shape(dtypes::Int64, {6, 2}));
  a.start_index_map = {1, 1};
  KILN_EXPECT_ERROR(graph::Gather(x, idx2, a), "start_index_map [1, 1] has duplicate axis 1");
  a = RowsAttrs(5, 1);
  a.offset_dims = {1, 2};
  KILN_EXPECT_ERROR(graph::Gather(x, idx, a), "offset_dims [1, 2] and collapsed_slice_dims [0] must have 2 entries");
  a.offset_dims = {2};
  KILN_EXPECT_ERROR(graph::Gather(x, idx, a), "offset_dims [2]: 2 is out of range for the output (rank 2)");
  GatherAttrs windows;
  windows.offset_dims = {2, 1};
  windows.start_index_map = {0};
  windows.index_vector_dim = 1;
  windows.slice_sizes = {2, 2};
  KILN_EXPECT_ERROR(graph::Gather(x, idx, windows), "offset_dims [2, 1] must be sorted and unique");
  auto other = graph::NewGraph("other");
  Node y = graph::Parameter(other.get(), "y", shapes::Make(dtypes::Int32, 6));
  KILN_EXPECT_ERROR(graph::Gather(x, y, RowsAttrs(5, 1)), "operands belong to different graphs");
}

TEST_F(GatherErrors, ScatterChecksEveryConstraint) {
  Node x = Param(Shape(dtypes::Float32, {5, 4}));
  Node idx = Param(Shape(dtypes::Int32, {9, 1}));
  Node upd = Param(Shape(dtypes::Float32, {9, 4}));
  EXPECT_EQ(graph::ScatterSum(x, idx, upd, RowsScatter()).Shape(), x.Shape());
  KILN_EXPECT_ERROR(graph::ScatterSum(x, idx, Param(Shape(dtypes::Int32, {9, 4})), RowsScatter()),
                    "ScatterSum: operand Float32[5, 4] and updates Int32[9, 4] must have the same dtype");
  Node b = Param(Shape(dtypes::Bool, {5, 4}));
  Node bu = Param(Shape(dtypes::Bool, {9, 4}));
  KILN_EXPECT_ERROR(graph::ScatterMax(b, idx, bu, RowsScatter()), "ScatterMax: does not support Bool operands");
  EXPECT_EQ(graph::ScatterUpdate(b, idx, bu, RowsScatter()).DType(), dtypes::Bool);
  KILN_EXPECT_ERROR(graph::ScatterMin(x, Param(Shape(dtypes::Float64, {9, 1})), upd, RowsScatter()),
                    "ScatterMin: indices must have an integer dtype, got Float64[9, 1]");
  ScatterAttrs a = RowsScatter();
  a.index_vector_dim = 3;
  KILN_EXPECT_ERROR(graph::ScatterUpdate(x, idx, upd, a), "index_vector_dim 3 is out of range [0, 2]");
  a = RowsScatter();
  a.scatter_dims_to_operand_dims = {0, 1};
  KILN_EXPECT_ERROR(graph::ScatterSum(x, idx, upd, a),
                    "scatter_dims_to_operand_dims [0, 1] has 2 entries but the index vectors have 1 components");
  a.scatter_dims_to_operand_dims = {-1};
  KILN_EXPECT_ERROR(graph::ScatterSum(x, idx, upd, a), "scatter_dims_to_operand_dims [-1]: -1 is out of range");
  a = RowsScatter();
  a.update_window_dims = {2};
  KILN_EXPECT_ERROR(graph::ScatterSum(x, idx, upd, a), "update_window_dims [2]: 2 is out of range for updates");
  a.update_window_dims = {1, 0};
  a.inserted_window_dims = {};
  KILN_EXPECT_ERROR(graph::ScatterSum(x, idx, upd, a), "update_window_dims [1, 0] must be sorted and unique");
  a = RowsScatter();
  a.inserted_window_dims = {1, 0};
  KILN_EXPECT_ERROR(graph::ScatterSum(x, idx, upd, a), "inserted_window_dims [1, 0] must be sorted and unique");
  a = RowsScatter();
  a.inserted_window_dims = {};
  KILN_EXPECT_ERROR(graph::ScatterSum(x, idx, upd, a),
                    "update_window_dims [1] and inserted_window_dims [] must have 2 entries in all");
  KILN_EXPECT_ERROR(graph::ScatterSum(x, idx, Param(Shape(dtypes::Float32, {9, 4, 1})), RowsScatter()),
                    "updates Float32[9, 4, 1] must have rank 2");
  KILN_EXPECT_ERROR(graph::ScatterSum(x, idx, Param(Shape(dtypes::Float32, {8, 4})), RowsScatter()),
                    "updates Float32[8, 4] scatter axis 0 has size 8 but the matching indices Int32[9, 1] batch dim "
                    "has size 9");
  KILN_EXPECT_ERROR(graph::ScatterSum(x, idx, Param(Shape(dtypes::Float32, {9, 5})), RowsScatter()),
                    "updates Float32[9, 5] window axis 1 (size 5) is larger than operand Float32[5, 4] axis 1 (size 4)");
}

}  // namespace
}  // namespace kiln
