// Copyright 2026 The Kiln Authors.
// Conformance tests of the reductions (Reduce*) and ArgMinMax against naive
// references computed in double, on every backend, plus their graph-level
// errors.
#include <cmath>
#include <functional>
#include <limits>

#include "tests/testing/testing.h"

namespace kiln {
namespace {

using dtypes::DType;
using graph::Node;
using tensors::Tensor;
using testing::Rng;
using testing::Unravel;
using Index = std::vector<int64_t>;

constexpr DType kNumericDTypes[] = {dtypes::Int8,    dtypes::Int16,    dtypes::Int32,   dtypes::Int64,
                                    dtypes::Uint8,   dtypes::Uint16,   dtypes::Uint32,  dtypes::Uint64,
                                    dtypes::Float16, dtypes::BFloat16, dtypes::Float32, dtypes::Float64};
constexpr DType kIntegerDTypes[] = {dtypes::Int8,  dtypes::Int16,  dtypes::Int32,  dtypes::Int64,
                                    dtypes::Uint8, dtypes::Uint16, dtypes::Uint32, dtypes::Uint64};
constexpr DType kFloatDTypes[] = {dtypes::Float16, dtypes::BFloat16, dtypes::Float32, dtypes::Float64};
// One dtype of each accumulation path, for the larger shapes.
constexpr DType kSomeDTypes[] = {dtypes::Int8, dtypes::Uint64, dtypes::BFloat16, dtypes::Float32, dtypes::Float64};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

// The reduced axes, normalized and sorted; empty `axes` means all of them.
std::vector<int> NormalizedAxes(std::vector<int> axes, int rank) {
  if (axes.empty()) {
    for (int i = 0; i < rank; ++i) axes.push_back(i);
  }
  for (int& a : axes) a = a < 0 ? a + rank : a;
  std::sort(axes.begin(), axes.end());
  return axes;
}

// Naive reduction: every input element is folded into the output element
// whose index is its index without the reduced axes.
std::vector<double> NaiveReduce(const std::vector<double>& x, const Index& dims, const std::vector<int>& axes,
                                double init, const std::function<double(double, double)>& op, Index& out_dims) {
  out_dims.clear();
  for (int i = 0; i < static_cast<int>(dims.size()); ++i) {
    if (!std::binary_search(axes.begin(), axes.end(), i)) out_dims.push_back(dims[i]);
  }
  std::vector<double> out(static_cast<size_t>(testing::NumElements(out_dims)), init);
  for (size_t j = 0; j < x.size(); ++j) {
    const Index idx = Unravel(static_cast<int64_t>(j), dims);
    int64_t o = 0;
    for (int i = 0; i < static_cast<int>(dims.size()); ++i) {
      if (!std::binary_search(axes.begin(), axes.end(), i)) o = o * dims[i] + idx[i];
    }
    out[o] = op(out[o], x[j]);
  }
  return out;
}

// An exact integer result wrapped into dtype `dt` as two's complement (as the
// kernels' integer arithmetic does); floats are left as they are.
double WrapTo(DType dt, double v) {
  if (!dtypes::IsInteger(dt)) return v;
  const auto bits = static_cast<uint64_t>(static_cast<int64_t>(v));
  return DispatchDType(dt, [&](auto zero) -> double {
    using T = decltype(zero);
    if constexpr (std::is_integral_v<T>) return static_cast<double>(static_cast<T>(bits));
    else return v;
  });
}

double Lowest(DType dt) {
  if (dtypes::IsFloat(dt)) return -kInf;
  return DispatchDType(dt, [](auto zero) { return static_cast<double>(std::numeric_limits<decltype(zero)>::lowest()); });
}

double Highest(DType dt) {
  if (dtypes::IsFloat(dt)) return kInf;
  return DispatchDType(dt, [](auto zero) { return static_cast<double>(std::numeric_limits<decltype(zero)>::max()); });
}

int64_t AsInt(double v) { return static_cast<int64_t>(v); }

// NaN-propagating max and min, as ReduceMax/ReduceMin specify.
double NaNMax(double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::max(a, b); }
double NaNMin(double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::min(a, b); }

// A reduction under test: how to build it and its naive definition.
struct ReduceOp {
  const char* name;
  std::function<Node(Node, std::vector<int>)> build;
  std::function<double(DType)> identity;
  std::function<double(double, double)> combine;
  bool wraps;  // integer results wrap around (two's complement)
};

const ReduceOp kSum{"ReduceSum", [](Node x, std::vector<int> a) { return graph::ReduceSum(x, a); },
                    [](DType) { return 0.0; }, [](double a, double b) { return a + b; }, true};
const ReduceOp kProduct{"ReduceProduct", [](Node x, std::vector<int> a) { return graph::ReduceProduct(x, a); },
                        [](DType) { return 1.0; }, [](double a, double b) { return a * b; }, true};
const ReduceOp kMax{"ReduceMax", [](Node x, std::vector<int> a) { return graph::ReduceMax(x, a); }, Lowest, NaNMax,
                    false};
const ReduceOp kMin{"ReduceMin", [](Node x, std::vector<int> a) { return graph::ReduceMin(x, a); }, Highest, NaNMin,
                    false};
const ReduceOp kLogicalAnd{"ReduceLogicalAnd",
                           [](Node x, std::vector<int> a) { return graph::ReduceLogicalAnd(x, a); },
                           [](DType) { return 1.0; }, [](double a, double b) { return double(a != 0 && b != 0); },
                           false};
const ReduceOp kLogicalOr{"ReduceLogicalOr", [](Node x, std::vector<int> a) { return graph::ReduceLogicalOr(x, a); },
                          [](DType) { return 0.0; }, [](double a, double b) { return double(a != 0 || b != 0); },
                          false};
const ReduceOp kLogicalXor{"ReduceLogicalXor",
                           [](Node x, std::vector<int> a) { return graph::ReduceLogicalXor(x, a); },
                           [](DType) { return 0.0; }, [](double a, double b) { return double((a != 0) != (b != 0)); },
                           false};
const ReduceOp kBitwiseAnd{"ReduceBitwiseAnd",
                           [](Node x, std::vector<int> a) { return graph::ReduceBitwiseAnd(x, a); },
                           [](DType) { return -1.0; },  // all bits set, wrapped into the dtype
                           [](double a, double b) { return double(AsInt(a) & AsInt(b)); }, true};
const ReduceOp kBitwiseOr{"ReduceBitwiseOr", [](Node x, std::vector<int> a) { return graph::ReduceBitwiseOr(x, a); },
                          [](DType) { return 0.0; }, [](double a, double b) { return double(AsInt(a) | AsInt(b)); },
                          true};
const ReduceOp kBitwiseXor{"ReduceBitwiseXor",
                           [](Node x, std::vector<int> a) { return graph::ReduceBitwiseXor(x, a); },
                           [](DType) { return 0.0; }, [](double a, double b) { return double(AsInt(a) ^ AsInt(b)); },
                           true};

struct ReduceCase {
  Index dims;
  std::vector<int> axes;
};

// Small shapes: scalars, size-0 axes, size-1 axes, negative axes, empty axes.
const std::vector<ReduceCase> kSmallCases = {
    {{}, {}},           {{7}, {}},          {{7}, {0}},         {{7}, {-1}},         {{3, 0, 2}, {1}},
    {{3, 0, 2}, {0}},   {{0}, {}},          {{2, 3, 5}, {0}},   {{2, 3, 5}, {1}},    {{2, 3, 5}, {2}},
    {{2, 3, 5}, {0, 2}}, {{2, 3, 5}, {-1, -2}}, {{2, 3, 5}, {}}, {{4, 1, 6}, {0, 1}}, {{2, 3, 4, 5}, {1, 3}},
    {{33, 17}, {1}},    {{33, 17}, {0}},
};

// Shapes above the parallel threshold, one per splitting strategy.
const std::vector<ReduceCase> kLargeCases = {
    {{40000}, {}},          // everything: per-chunk partial results
    {{300, 200}, {1}},      // rows, split over kept outer axis
    {{300, 200}, {0}},      // columns: partials
    {{40, 2000}, {0}},      // wide kept axis: column chunks
    {{64, 50, 30}, {1}},    // kept, reduced, kept
    {{5, 3000, 7}, {0, 2}}, // reduced, kept, reduced: kept axis moved first
    {{20000, 3}, {1}},      // many tiny rows
};

class ReduceTest : public ::testing::TestWithParam<std::string> {
 protected:
  Tensor Run1(const std::function<Node(const std::vector<Node>&)>& fn, const std::vector<Tensor>& args) const {
    return testing::Run1(backends::NewWithName(GetParam()), fn, args);
  }

  // Runs op over x and compares with the naive reference: exact for integers
  // and max/min, within the accumulation error for float sums and products.
  void Check(const ReduceOp& op, const Tensor& x, const std::vector<int>& axes) {
    const DType dt = x.DType();
    SCOPED_TRACE(::testing::Message() << op.name << " of " << x.Shape() << " over "
                                      << ::testing::PrintToString(axes));
    Tensor got = Run1([&](const auto& p) { return op.build(p[0], axes); }, {x});
    const std::vector<double> xv = testing::ToDoubles(x);
    const std::vector<int> norm = NormalizedAxes(axes, x.Rank());
    Index out_dims;
    std::vector<double> want = NaiveReduce(xv, x.Shape().Dims(), norm, op.identity(dt), op.combine, out_dims);
    if (op.wraps) {
      for (double& w : want) w = WrapTo(dt, w);
    }
    // Error bound of a float accumulation: a few ulps of the accumulator per
    // reduced element, relative to the sum of magnitudes (sums) or the value
    // (products), plus the final rounding to dt.
    int64_t count = 1;
    for (int a : norm) count *= x.Shape().Dims()[a];
    const double acc_eps = dt == dtypes::Float64 ? 1e-16 : 1.2e-7;
    double rtol = testing::Tolerance(dt), atol = 0;
    if (dtypes::IsFloat(dt) && &op == &kSum) {
      double magnitude = 0;
      for (double v : xv) {
        if (std::isfinite(v)) magnitude = std::max(magnitude, std::abs(v));
      }
      atol = 4 * acc_eps * static_cast<double>(count) * magnitude + 1e-12;
    } else if (dtypes::IsFloat(dt) && &op == &kProduct) {
      rtol += 4 * acc_eps * static_cast<double>(count);
    }
    // Float16 results below 6.1e-5 are subnormal, with absolute spacing 2^-24.
    if (dt == dtypes::Float16) atol = std::max(atol, 6e-8);
    EXPECT_TRUE(testing::AllClose(got, shapes::Make(got.DType(), out_dims), want, rtol, atol));
  }

  void CheckCases(const ReduceOp& op, const std::vector<ReduceCase>& cases, DType dt, double lo, double hi) {
    for (const auto& c : cases) Check(op, testing::Random(shapes::Make(dt, c.dims), rng_, lo, hi), c.axes);
  }

  Rng rng_{7};
};

TEST_P(ReduceTest, Sum) {
  for (DType dt : kNumericDTypes) CheckCases(kSum, kSmallCases, dt, -100, 100);  // int8 sums wrap
  for (DType dt : kSomeDTypes) CheckCases(kSum, kLargeCases, dt, -3, 3);
}

TEST_P(ReduceTest, SumOfHalfTypesAccumulatesInFloat32) {
  // 4096 ones: float16 itself would stop at 2048 (2048 + 1 rounds to 2048).
  for (DType dt : {dtypes::Float16, dtypes::BFloat16}) {
    Tensor ones = testing::FromDoubles(shapes::Make(dt, 4096), std::vector<double>(4096, 1.0));
    Tensor got = Run1([](const auto& p) { return graph::ReduceSum(p[0], 0); }, {ones});
    EXPECT_TRUE(testing::AllClose(got, shapes::Make(dt), {4096}, 0, 0)) << dtypes::Name(dt);
  }
}

TEST_P(ReduceTest, Product) {
  // Few factors per output, so integer products stay exact in double before wrapping.
  const std::vector<ReduceCase> cases = {{{}, {}},          {{7}, {}},      {{3, 0, 2}, {1}}, {{2, 3, 5}, {0, 2}},
                                         {{4, 5, 3}, {-1}}, {{20000, 3}, {1}}, {{3, 20000}, {0}}};
  for (DType dt : kNumericDTypes) {
    if (dtypes::IsFloat(dt)) CheckCases(kProduct, cases, dt, -1.6, 1.6);
    else CheckCases(kProduct, cases, dt, -3, 3);
  }
}

TEST_P(ReduceTest, MaxAndMin) {
  for (DType dt : kNumericDTypes) {
    CheckCases(kMax, kSmallCases, dt, -1000, 1000);
    CheckCases(kMin, kSmallCases, dt, -1000, 1000);
  }
  for (DType dt : kSomeDTypes) {
    CheckCases(kMax, kLargeCases, dt, -1000, 1000);
    CheckCases(kMin, kLargeCases, dt, -1000, 1000);
  }
}

TEST_P(ReduceTest, MaxAndMinPropagateNaNAndHandleInfinities) {
  for (DType dt : kFloatDTypes) {
    // [4, 6] with NaNs in rows 1 and 3 (columns 2, 0, 5) and infinities elsewhere.
    std::vector<double> v(24);
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i % 7) - 3;
    v[0] = kInf;
    v[15] = -kInf;
    v[8] = v[18] = v[23] = kNaN;
    Tensor x = testing::FromDoubles(shapes::Make(dt, 4, 6), v);
    for (const std::vector<int>& axes : std::vector<std::vector<int>>{{0}, {1}, {}, {0, 1}}) {
      Check(kMax, x, axes);
      Check(kMin, x, axes);
      Check(kSum, x, axes);  // NaN and opposite infinities sum to NaN
    }
    // A NaN far inside a long row still wins (the vectorized lanes must keep it).
    std::vector<double> long_row(40000, 1.0);
    long_row[31337] = kNaN;
    Check(kMax, testing::FromDoubles(shapes::Make(dt, 40000), long_row), {});
    Check(kMin, testing::FromDoubles(shapes::Make(dt, 40000), long_row), {});
  }
}

TEST_P(ReduceTest, EmptyReductionsGiveTheIdentity) {
  for (DType dt : kNumericDTypes) {
    Tensor x(shapes::Make(dt, 3, 0));
    for (const ReduceOp* op : {&kSum, &kProduct, &kMax, &kMin}) Check(*op, x, {1});
  }
  Tensor f(shapes::Make(dtypes::Float32, 2, 0));
  Tensor got = Run1([](const auto& p) { return graph::ReduceMax(p[0], -1); }, {f});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Float32, 2), {-kInf, -kInf}, 0, 0));
  got = Run1([](const auto& p) { return graph::ReduceMin(p[0], 1); }, {f});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Float32, 2), {kInf, kInf}, 0, 0));
  Tensor i(shapes::Make(dtypes::Int16, 0));
  got = Run1([](const auto& p) { return graph::ReduceMax(p[0], std::vector<int>{}); }, {i});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Int16), {-32768}, 0, 0));
}

TEST_P(ReduceTest, SingleAxisOverloads) {
  Tensor x = testing::Random(shapes::Make(dtypes::Float32, 3, 4, 5), rng_);
  const std::vector<double> xv = testing::ToDoubles(x);
  Index out_dims;
  Tensor got = Run1([](const auto& p) { return graph::ReduceSum(p[0], 1); }, {x});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Float32, 3, 5),
                                NaiveReduce(xv, {3, 4, 5}, {1}, 0, kSum.combine, out_dims), 1e-6, 1e-6));
  got = Run1([](const auto& p) { return graph::ReduceMax(p[0], -1); }, {x});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Float32, 3, 4),
                                NaiveReduce(xv, {3, 4, 5}, {2}, -kInf, NaNMax, out_dims), 0, 0));
  got = Run1([](const auto& p) { return graph::ReduceMin(p[0], 0); }, {x});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Float32, 4, 5),
                                NaiveReduce(xv, {3, 4, 5}, {0}, kInf, NaNMin, out_dims), 0, 0));
}

TEST_P(ReduceTest, Logical) {
  for (const ReduceOp* op : {&kLogicalAnd, &kLogicalOr, &kLogicalXor}) {
    CheckCases(*op, kSmallCases, dtypes::Bool, 0, 1);
    CheckCases(*op, kLargeCases, dtypes::Bool, 0, 1);
    // Mostly-true and mostly-false inputs, where And / Or are not trivially decided.
    std::vector<double> v(3 * 50, 1.0);
    v[60] = 0;
    Check(*op, testing::FromDoubles(shapes::Make(dtypes::Bool, 3, 50), v), {1});
    for (double& b : v) b = 1 - b;
    Check(*op, testing::FromDoubles(shapes::Make(dtypes::Bool, 3, 50), v), {1});
  }
}

TEST_P(ReduceTest, Bitwise) {
  for (const ReduceOp* op : {&kBitwiseAnd, &kBitwiseOr, &kBitwiseXor}) {
    for (DType dt : kIntegerDTypes) {
      CheckCases(*op, kSmallCases, dt, -1000, 1000);
      // Values with few bits clear, so And does not collapse to 0 immediately.
      CheckCases(*op, {{{6, 8}, {1}}, {{6, 8}, {0}}}, dt, 120, 127);
    }
    CheckCases(*op, kLargeCases, dtypes::Uint32, 0, 1e9);
  }
}

// --------------------------------------------------------------- ArgMinMax.

// First index of the max (min) along `axis`; a NaN wins over everything and
// the first NaN is kept.
std::vector<double> NaiveArgMinMax(const std::vector<double>& x, const Index& dims, int axis, bool is_min) {
  int64_t outer = 1, inner = 1;
  for (int i = 0; i < axis; ++i) outer *= dims[i];
  for (size_t i = static_cast<size_t>(axis) + 1; i < dims.size(); ++i) inner *= dims[i];
  const int64_t d = dims[axis];
  std::vector<double> out;
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t j = 0; j < inner; ++j) {
      int64_t best = 0;
      for (int64_t i = 1; i < d; ++i) {
        const double v = x[(o * d + i) * inner + j], b = x[(o * d + best) * inner + j];
        if (std::isnan(b)) break;
        if (std::isnan(v) || (is_min ? v < b : v > b)) best = i;
      }
      out.push_back(static_cast<double>(best));
    }
  }
  return out;
}

TEST_P(ReduceTest, ArgMinMax) {
  struct Case {
    Index dims;
    int axis;
  };
  const std::vector<Case> cases = {{{7}, 0},       {{3, 4}, 0},      {{3, 4}, -1},     {{2, 3, 5}, 1},
                                   {{2, 0, 5}, 2}, {{4, 1, 3}, 1},   {{300, 200}, 0},  {{300, 200}, 1},
                                   {{40000}, 0}};
  const DType index_dtypes[] = {dtypes::Int32, dtypes::Int64, dtypes::Uint16};
  int n = 0;
  for (DType dt : kNumericDTypes) {
    for (const auto& c : cases) {
      // Values in [-2, 2] make ties frequent; large shapes only for some dtypes.
      if (c.dims[0] >= 300 && dt != dtypes::Float32 && dt != dtypes::Int8 && dt != dtypes::BFloat16) continue;
      Tensor x = testing::Random(shapes::Make(dt, c.dims), rng_, -2, 2);
      const int axis = c.axis < 0 ? c.axis + static_cast<int>(c.dims.size()) : c.axis;
      Index out_dims = c.dims;
      out_dims.erase(out_dims.begin() + axis);
      for (bool is_min : {false, true}) {
        const DType it = index_dtypes[n++ % 3];
        SCOPED_TRACE(::testing::Message() << (is_min ? "ArgMin" : "ArgMax") << " of " << x.Shape() << " axis "
                                          << c.axis << " as " << dtypes::Name(it));
        Tensor got = Run1([&](const auto& p) { return graph::ArgMinMax(p[0], c.axis, is_min, it); }, {x});
        EXPECT_TRUE(testing::AllClose(got, shapes::Make(it, out_dims),
                                      NaiveArgMinMax(testing::ToDoubles(x), c.dims, axis, is_min), 0, 0));
      }
    }
  }
}

TEST_P(ReduceTest, ArgMinMaxTiesAndNaN) {
  for (DType dt : kFloatDTypes) {
    // Rows: ties (first wins), NaN in the middle, NaN first, two NaNs, infinities.
    const std::vector<double> v = {1,    3,    3,    -2,   -2,    //
                                   1,    kNaN, 5,    kNaN, -7,    //
                                   kNaN, 9,    -9,   0,    0,     //
                                   -kInf, 2,   kInf, kInf, -kInf};
    Tensor x = testing::FromDoubles(shapes::Make(dt, 4, 5), v);
    Tensor got = Run1([](const auto& p) { return graph::ArgMinMax(p[0], 1, false); }, {x});
    EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Int32, 4), {1, 1, 0, 2}, 0, 0)) << dtypes::Name(dt);
    got = Run1([](const auto& p) { return graph::ArgMinMax(p[0], 1, true, dtypes::Int64); }, {x});
    EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Int64, 4), {3, 1, 0, 0}, 0, 0)) << dtypes::Name(dt);
    // Along axis 0 (the strided, row-accumulating path).
    got = Run1([](const auto& p) { return graph::ArgMinMax(p[0], 0, false, dtypes::Int8); }, {x});
    EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Int8, 5), {2, 1, 3, 1, 2}, 0, 0)) << dtypes::Name(dt);
    got = Run1([](const auto& p) { return graph::ArgMinMax(p[0], 0, true, dtypes::Uint8); }, {x});
    EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Uint8, 5), {2, 1, 2, 1, 3}, 0, 0)) << dtypes::Name(dt);
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, ReduceTest, ::testing::ValuesIn(testing::BackendNames()),
                         testing::BackendParamName);

// ------------------------------------------------------------------- Errors.

using ReduceErrors = testing::GraphErrorTest;

TEST_F(ReduceErrors, DTypes) {
  Node b = Param(shapes::Make(dtypes::Bool, 3));
  Node f = Param(shapes::Make(dtypes::Float32, 3));
  KILN_EXPECT_ERROR(graph::ReduceSum(b, std::vector<int>{}), "ReduceSum: requires a numeric (integer or float) dtype, got Bool[3]");
  KILN_EXPECT_ERROR(graph::ReduceProduct(b, {}), "ReduceProduct: requires a numeric");
  KILN_EXPECT_ERROR(graph::ReduceMax(b, 0), "ReduceMax: requires a numeric");
  KILN_EXPECT_ERROR(graph::ReduceMin(b, 0), "ReduceMin: requires a numeric");
  KILN_EXPECT_ERROR(graph::ReduceLogicalAnd(f, {}), "ReduceLogicalAnd: requires Bool, got Float32[3]");
  KILN_EXPECT_ERROR(graph::ReduceLogicalOr(f, {}), "ReduceLogicalOr: requires Bool");
  KILN_EXPECT_ERROR(graph::ReduceLogicalXor(f, {}), "ReduceLogicalXor: requires Bool");
  KILN_EXPECT_ERROR(graph::ReduceBitwiseAnd(f, {}), "ReduceBitwiseAnd: requires an integer dtype, got Float32[3]");
  KILN_EXPECT_ERROR(graph::ReduceBitwiseOr(b, {}), "ReduceBitwiseOr: requires an integer dtype, got Bool[3]");
  KILN_EXPECT_ERROR(graph::ReduceBitwiseXor(f, {}), "ReduceBitwiseXor: requires an integer dtype");
}

TEST_F(ReduceErrors, Axes) {
  Node x = Param(shapes::Make(dtypes::Float32, 3, 4));
  KILN_EXPECT_ERROR(graph::ReduceSum(x, 2), "ReduceSum: axis 2 is out of range for rank 2");
  KILN_EXPECT_ERROR(graph::ReduceMax(x, std::vector<int>{0, -3}), "ReduceMax: axis -3 is out of range for rank 2");
  KILN_EXPECT_ERROR(graph::ReduceMin(x, std::vector<int>{1, -1}), "ReduceMin: axis -1 appears twice in [1, -1]");
  KILN_EXPECT_ERROR(graph::ReduceSum(Node(), 0), "ReduceSum: operand is an empty Node");
  const int line = __LINE__ + 1;
  KILN_EXPECT_ERROR(graph::ReduceProduct(x, {5}), "(reduce_test.cc:" + std::to_string(line) + ")");
}

TEST_F(ReduceErrors, ArgMinMax) {
  Node x = Param(shapes::Make(dtypes::Float32, 3, 200));
  KILN_EXPECT_ERROR(graph::ArgMinMax(Param(shapes::Make(dtypes::Bool, 3)), 0, false),
                    "ArgMinMax: requires a numeric (integer or float) dtype, got Bool[3]");
  KILN_EXPECT_ERROR(graph::ArgMinMax(x, 0, false, dtypes::Float32),
                    "ArgMinMax: index dtype must be an integer type, got Float32");
  KILN_EXPECT_ERROR(graph::ArgMinMax(x, 0, false, dtypes::Bool), "index dtype must be an integer type, got Bool");
  KILN_EXPECT_ERROR(graph::ArgMinMax(Param(shapes::Make(dtypes::Float32)), 0, true),
                    "ArgMinMax: operand must have at least one axis, got Float32");
  KILN_EXPECT_ERROR(graph::ArgMinMax(x, 2, true), "ArgMinMax: axis 2 is out of range for rank 2");
  KILN_EXPECT_ERROR(graph::ArgMinMax(Param(shapes::Make(dtypes::Float32, 3, 0)), -1, true),
                    "ArgMinMax: axis -1 of Float32[3, 0] is empty");
  KILN_EXPECT_ERROR(graph::ArgMinMax(x, 1, false, dtypes::Int8),
                    "ArgMinMax: index dtype Int8 cannot hold index 199 of axis 1 of Float32[3, 200]");
  EXPECT_NO_THROW(graph::ArgMinMax(x, 1, false, dtypes::Uint8));  // 199 fits
}

}  // namespace
}  // namespace kiln
