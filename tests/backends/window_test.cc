// Copyright 2026 The Kiln Authors.
// Conformance tests of ReduceWindow and SelectAndScatter: each against a
// naive reference computed in double, on every backend, plus the error
// messages of every operand check.
#include <cmath>
#include <limits>

#include "tests/testing/testing.h"

namespace kiln {
namespace {

using dtypes::DType;
using graph::Node;
using ir::WindowAttrs;
using ir::WindowReduction;
using shapes::Shape;
using tensors::Tensor;
using testing::AllClose;
using testing::NextIndex;
using testing::NumElements;
using testing::Rng;

class WindowTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, WindowTest, ::testing::ValuesIn(testing::BackendNames()));

constexpr double kInf = std::numeric_limits<double>::infinity();

// Builds WindowAttrs field by field (designated initializers that skip
// fields trip -Wmissing-field-initializers).
struct Win {
  WindowAttrs attrs;
  explicit Win(std::vector<int64_t> window_dimensions) { attrs.window_dimensions = std::move(window_dimensions); }
  Win& Reduction(WindowReduction r) { return Set(attrs.reduction, r); }
  Win& Strides(std::vector<int64_t> v) { return Set(attrs.strides, std::move(v)); }
  Win& BaseDilations(std::vector<int64_t> v) { return Set(attrs.base_dilations, std::move(v)); }
  Win& WindowDilations(std::vector<int64_t> v) { return Set(attrs.window_dilations, std::move(v)); }
  Win& PaddingLow(std::vector<int64_t> v) { return Set(attrs.padding_low, std::move(v)); }
  Win& PaddingHigh(std::vector<int64_t> v) { return Set(attrs.padding_high, std::move(v)); }
  operator WindowAttrs() const { return attrs; }  // NOLINT(google-explicit-constructor)

 private:
  template <typename F, typename V>
  Win& Set(F& field, V value) {
    field = std::move(value);
    return *this;
  }
};

// ------------------------------------------------------ The reference.

// attrs with the documented defaults filled in (strides/dilations 1, padding 0).
WindowAttrs WithDefaults(WindowAttrs a, size_t rank) {
  if (a.strides.empty()) a.strides.assign(rank, 1);
  if (a.base_dilations.empty()) a.base_dilations.assign(rank, 1);
  if (a.window_dilations.empty()) a.window_dilations.assign(rank, 1);
  if (a.padding_low.empty()) a.padding_low.assign(rank, 0);
  if (a.padding_high.empty()) a.padding_high.assign(rank, 0);
  return a;
}

// The output dims, straight from the definition: the padded, dilated input
// holds `padded` positions and a window spans `span` of them.
std::vector<int64_t> ReferenceOutDims(const std::vector<int64_t>& dims, const WindowAttrs& a) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t dilated = dims[i] == 0 ? 0 : (dims[i] - 1) * a.base_dilations[i] + 1;
    const int64_t padded = dilated + a.padding_low[i] + a.padding_high[i];
    const int64_t span = (a.window_dimensions[i] - 1) * a.window_dilations[i] + 1;
    int64_t n = 0;
    while (n * a.strides[i] + span <= padded) ++n;  // count windows that fit
    out.push_back(n);
  }
  return out;
}

// For every output element, the operand flat index of each window position
// in window order, or -1 where the position is padding or a dilation hole.
std::vector<std::vector<int64_t>> WindowPositions(const std::vector<int64_t>& dims, const WindowAttrs& a,
                                                  const std::vector<int64_t>& out_dims) {
  std::vector<std::vector<int64_t>> result;
  if (NumElements(out_dims) == 0) return result;
  std::vector<int64_t> oi(dims.size(), 0);
  do {
    std::vector<int64_t> positions;
    std::vector<int64_t> wi(dims.size(), 0);
    do {
      int64_t flat = 0;
      bool inside = true;
      for (size_t i = 0; i < dims.size(); ++i) {
        const int64_t p = oi[i] * a.strides[i] + wi[i] * a.window_dilations[i] - a.padding_low[i];
        if (p < 0 || p % a.base_dilations[i] != 0 || p / a.base_dilations[i] >= dims[i]) inside = false;
        flat = flat * dims[i] + (inside ? p / a.base_dilations[i] : 0);
      }
      positions.push_back(inside ? flat : -1);
    } while (NextIndex(a.window_dimensions, wi));
    result.push_back(std::move(positions));
  } while (NextIndex(out_dims, oi));
  return result;
}

// The reduction's identity in `dtype` (integers have no infinities).
double Identity(WindowReduction r, DType dtype) {
  const bool is_float = dtypes::IsFloat(dtype);
  double lowest = -kInf, highest = kInf;
  if (!is_float) {
    DispatchDType(dtype, [&](auto zero) {
      using T = decltype(zero);
      lowest = static_cast<double>(std::numeric_limits<T>::lowest());
      highest = static_cast<double>(std::numeric_limits<T>::max());
    });
  }
  switch (r) {
    case WindowReduction::kSum: return 0;
    case WindowReduction::kProduct: return 1;
    case WindowReduction::kMax: return lowest;
    case WindowReduction::kMin: return highest;
  }
  return 0;
}

double Combine(WindowReduction r, double acc, double v) {
  if (std::isnan(acc) || std::isnan(v)) return std::nan("");
  switch (r) {
    case WindowReduction::kSum: return acc + v;
    case WindowReduction::kProduct: return acc * v;
    case WindowReduction::kMax: return std::max(acc, v);
    case WindowReduction::kMin: return std::min(acc, v);
  }
  return 0;
}

std::vector<double> ReferenceReduceWindow(const std::vector<double>& x, DType dtype, const std::vector<int64_t>& dims,
                                          const WindowAttrs& a, const std::vector<int64_t>& out_dims) {
  std::vector<double> out;
  const double identity = Identity(a.reduction, dtype);
  for (const auto& positions : WindowPositions(dims, a, out_dims)) {
    double acc = identity;
    for (int64_t p : positions) acc = Combine(a.reduction, acc, p < 0 ? identity : x[p]);
    out.push_back(acc);
  }
  return out;
}

std::vector<double> ReferenceSelectAndScatter(const std::vector<double>& operand, const std::vector<double>& source,
                                              const std::vector<int64_t>& dims, const WindowAttrs& a,
                                              const std::vector<int64_t>& out_dims) {
  std::vector<double> out(operand.size(), 0.0);
  const auto windows = WindowPositions(dims, a, out_dims);
  for (size_t i = 0; i < windows.size(); ++i) {
    int64_t best = -1;
    for (int64_t p : windows[i]) {
      if (p < 0) continue;
      const bool better = best < 0 || (a.reduction == WindowReduction::kMax ? operand[p] > operand[best]
                                                                             : operand[p] < operand[best]);
      if (better) best = p;
    }
    if (best >= 0) out[best] += source[i];
  }
  return out;
}

// ------------------------------------------------------ ReduceWindow.

constexpr DType kDTypes[] = {dtypes::Float32, dtypes::Float64, dtypes::Int32, dtypes::Int64,
                             dtypes::BFloat16, dtypes::Float16, dtypes::Int8,  dtypes::Uint8};
constexpr WindowReduction kReductions[] = {WindowReduction::kSum, WindowReduction::kProduct, WindowReduction::kMax,
                                           WindowReduction::kMin};

struct WindowCase {
  std::vector<int64_t> dims;
  WindowAttrs attrs;  // reduction set by the test
};

// Window cases over 1-D, 2-D and 3-D operands with every feature.
std::vector<WindowCase> Cases() {
  return {
      {{10}, Win({3})},                                                  // defaults
      {{10}, Win({3}).Strides({2})},                                  // stride
      {{10}, Win({3}).Strides({2}).PaddingLow({1}).PaddingHigh({2})},
      {{7}, Win({2}).BaseDilations({2}).PaddingLow({1}).PaddingHigh({1})},
      {{9}, Win({3}).WindowDilations({3})},                          // window dilation
      {{9}, Win({2}).Strides({1}).PaddingLow({-2}).PaddingHigh({-1})},  // cropping
      {{2}, Win({2}).PaddingLow({3}).PaddingHigh({3})},          // all-padding windows
      {{0}, Win({1}).PaddingLow({2})},                               // empty operand
      {{3}, Win({5})},                                                   // window too big: empty
      {{5, 6}, Win({2, 3})},
      {{5, 6},
       Win({2, 3}).Strides({2, 1}).BaseDilations({2, 1}).WindowDilations({1, 2}).PaddingLow({1, 2}).PaddingHigh({0, 1})},
      {{6, 7}, Win({3, 3}).Strides({2, 2}).PaddingLow({1, 1}).PaddingHigh({1, 1})},
      {{4, 1}, Win({1, 1})},                                             // identity window
      {{3, 4, 5}, Win({2, 1, 3}).Strides({1, 2, 2}).PaddingHigh({1, 0, 1})},
  };
}

void CheckReduceWindow(const std::shared_ptr<backends::Backend>& backend, DType dtype, const WindowCase& c,
                       WindowReduction r, Rng& rng) {
  WindowAttrs attrs = c.attrs;
  attrs.reduction = r;
  const WindowAttrs full = WithDefaults(attrs, c.dims.size());
  SCOPED_TRACE(::testing::Message() << dtypes::Name(dtype) << " " << ir::WindowReductionName(r) << " " << Shape(dtype, c.dims)
                                    << " window " << ::testing::PrintToString(full.window_dimensions) << " strides "
                                    << ::testing::PrintToString(full.strides) << " padding "
                                    << ::testing::PrintToString(full.padding_low)
                                    << ::testing::PrintToString(full.padding_high));
  // Unsigned values stay positive; products of small ints stay in range.
  const double lo = dtypes::IsUnsignedInteger(dtype) ? 0 : -3;
  Tensor x = testing::Random(Shape(dtype, c.dims), rng, lo, 3);
  const auto out_dims = ReferenceOutDims(c.dims, full);
  std::vector<double> want = ReferenceReduceWindow(testing::ToDoubles(x), dtype, c.dims, full, out_dims);
  Tensor got = testing::Run1(backend, [&](const std::vector<Node>& p) { return graph::ReduceWindow(p[0], attrs); },
                             {x});
  const double tol = testing::Tolerance(dtype);
  EXPECT_TRUE(AllClose(got, Shape(dtype, out_dims), want, 8 * tol, 30 * tol));
}

TEST_P(WindowTest, ReduceWindowMatchesReference) {
  Rng rng(11);
  for (DType dtype : kDTypes) {
    for (WindowReduction r : kReductions) {
      for (const auto& c : Cases()) {
        // Int8 products of 6+ values may overflow; the reference does not wrap.
        if (r == WindowReduction::kProduct && (dtype == dtypes::Int8 || dtype == dtypes::Uint8) &&
            NumElements(c.attrs.window_dimensions) > 3) {
          continue;
        }
        CheckReduceWindow(Backend(), dtype, c, r, rng);
      }
    }
  }
}

TEST_P(WindowTest, ReduceWindowScalar) {
  for (WindowReduction r : kReductions) {
    Tensor got = testing::Run1(
        Backend(),
        [&](const std::vector<Node>& p) { return graph::ReduceWindow(p[0], Win({}).Reduction(r)); },
        {tensors::FromValue(2.5f)});
    EXPECT_EQ(got.Value<float>(), 2.5f) << ir::WindowReductionName(r);
  }
}

TEST_P(WindowTest, ReduceWindowPaddingHoldsTheIdentity) {
  // Negative values everywhere: a max over a partly padded window must not
  // see a 0 from the padding, and the all-padding window gives the identity.
  Tensor x = tensors::FromValue(std::vector<float>{-5, -2, -7});
  auto run = [&](WindowReduction r) {
    return testing::Run1(
        Backend(),
        [&](const std::vector<Node>& p) {
          return graph::ReduceWindow(
              p[0], Win({2}).Reduction(r).PaddingLow({3}).PaddingHigh({1}));
        },
        {x});
  };
  const Shape shape(dtypes::Float32, {6});
  EXPECT_TRUE(AllClose(run(WindowReduction::kMax), shape, {-kInf, -kInf, -5, -2, -2, -7}, 0, 0));
  EXPECT_TRUE(AllClose(run(WindowReduction::kMin), shape, {kInf, kInf, -5, -5, -7, -7}, 0, 0));
  EXPECT_TRUE(AllClose(run(WindowReduction::kSum), shape, {0, 0, -5, -7, -9, -7}, 0, 0));
  EXPECT_TRUE(AllClose(run(WindowReduction::kProduct), shape, {1, 1, -5, 10, 14, -7}, 0, 0));
  // Integer max padding is the lowest value.
  Tensor got = testing::Run1(
      Backend(),
      [&](const std::vector<Node>& p) {
        return graph::ReduceWindow(p[0], Win({1}).Reduction(WindowReduction::kMax).PaddingLow({1}));
      },
      {tensors::FromValue(std::vector<int32_t>{4})});
  EXPECT_EQ(got.Value<std::vector<int32_t>>(), (std::vector<int32_t>{std::numeric_limits<int32_t>::lowest(), 4}));
}

TEST_P(WindowTest, ReduceWindowPropagatesNaN) {
  const double nan = std::nan("");
  for (DType dtype : {dtypes::Float32, dtypes::Float64, dtypes::BFloat16, dtypes::Float16}) {
    Tensor x = testing::FromDoubles(Shape(dtype, {4}), {1, nan, 3, 2});
    for (WindowReduction r : kReductions) {
      Tensor got = testing::Run1(
          Backend(),
          [&](const std::vector<Node>& p) {
            return graph::ReduceWindow(p[0], Win({2}).Reduction(r));
          },
          {x});
      const double last = r == WindowReduction::kSum       ? 5
                          : r == WindowReduction::kProduct ? 6
                          : r == WindowReduction::kMax     ? 3
                                                           : 2;
      EXPECT_TRUE(AllClose(got, Shape(dtype, {3}), {nan, nan, last}, 0, 0)) << dtypes::Name(dtype) << " " << ir::WindowReductionName(r);
    }
  }
}

TEST_P(WindowTest, ReduceWindowIntegerSumWrapsAround) {
  Tensor got = testing::Run1(
      Backend(),
      [](const std::vector<Node>& p) { return graph::ReduceWindow(p[0], Win({2})); },
      {tensors::FromValue(std::vector<int8_t>{100, 100})});
  EXPECT_EQ(got.Value<std::vector<int8_t>>(), (std::vector<int8_t>{-56}));
}

TEST_P(WindowTest, ReduceWindowLargeInputRunsInParallel) {
  Rng rng(12);
  for (WindowReduction r : {WindowReduction::kSum, WindowReduction::kMax}) {
    CheckReduceWindow(Backend(), dtypes::Float32,
                      {{64, 96, 8}, Win({3, 3, 1}).Strides({2, 2, 1}).PaddingLow({1, 1, 0}).PaddingHigh({1, 1, 0})},
                      r, rng);
  }
}

// ---------------------------------------------------- SelectAndScatter.

void CheckSelectAndScatter(const std::shared_ptr<backends::Backend>& backend, DType dtype, const WindowCase& c,
                           WindowReduction r, Rng& rng) {
  WindowAttrs attrs = c.attrs;
  attrs.reduction = r;
  const WindowAttrs full = WithDefaults(attrs, c.dims.size());
  SCOPED_TRACE(::testing::Message() << dtypes::Name(dtype) << " " << ir::WindowReductionName(r) << " " << Shape(dtype, c.dims)
                                    << " window " << ::testing::PrintToString(full.window_dimensions));
  // Few distinct values, so ties are common and first-on-ties is exercised.
  Tensor operand = testing::Random(Shape(dtype, c.dims), rng, 0, 3);
  if (dtypes::IsFloat(dtype)) {
    std::vector<double> v = testing::ToDoubles(operand);
    for (double& e : v) e = std::round(e);
    operand = testing::FromDoubles(operand.Shape(), v);
  }
  const auto out_dims = ReferenceOutDims(c.dims, full);
  Tensor source = testing::Random(Shape(dtype, out_dims), rng, 0, 3);
  std::vector<double> want =
      ReferenceSelectAndScatter(testing::ToDoubles(operand), testing::ToDoubles(source), c.dims, full, out_dims);
  Tensor got = testing::Run1(
      backend, [&](const std::vector<Node>& p) { return graph::SelectAndScatter(p[0], p[1], attrs); },
      {operand, source});
  const double tol = testing::Tolerance(dtype);
  EXPECT_TRUE(AllClose(got, Shape(dtype, c.dims), want, 4 * tol, 10 * tol));
}

TEST_P(WindowTest, SelectAndScatterMatchesReference) {
  Rng rng(13);
  for (DType dtype : kDTypes) {
    for (WindowReduction r : {WindowReduction::kMax, WindowReduction::kMin}) {
      for (const auto& c : Cases()) CheckSelectAndScatter(Backend(), dtype, c, r, rng);
    }
  }
}

TEST_P(WindowTest, SelectAndScatterFirstOnTiesAndOverlaps) {
  // Windows [0,1,2], [2,3,4] overlap at 2. Max: window 0 has a tie 5,5 at 0 and
  // 1 (the first wins); window 1 selects 2 (value 7).
  Tensor operand = tensors::FromValue(std::vector<float>{5, 5, 7, 1, 7});
  Tensor source = tensors::FromValue(std::vector<float>{10, 100});
  auto run = [&](WindowReduction r) {
    return testing::Run1(
        Backend(),
        [&](const std::vector<Node>& p) {
          return graph::SelectAndScatter(p[0], p[1], Win({3}).Reduction(r).Strides({2}));
        },
        {operand, source});
  };
  EXPECT_EQ(run(WindowReduction::kMax).Value<std::vector<float>>(), (std::vector<float>{0, 0, 110, 0, 0}));
  EXPECT_EQ(run(WindowReduction::kMin).Value<std::vector<float>>(), (std::vector<float>{10, 0, 0, 100, 0}));
}

TEST_P(WindowTest, SelectAndScatterNeverSelectsPadding) {
  // All operand values are negative: a max must still pick a real element,
  // and a window made of padding only drops its source value.
  Tensor operand = tensors::FromValue(std::vector<float>{-3, -1});
  Tensor source = tensors::FromValue(std::vector<float>{1, 2, 4, 8});
  Tensor got = testing::Run1(
      Backend(),
      [&](const std::vector<Node>& p) {
        return graph::SelectAndScatter(p[0], p[1],
                                       Win({2}).Reduction(WindowReduction::kMax).PaddingLow({2}).PaddingHigh({1}));
      },
      {operand, source});
  // Windows: [pad, pad] -> dropped, [pad, -3] -> 0, [-3, -1] -> 1, [-1, pad] -> 1.
  EXPECT_EQ(got.Value<std::vector<float>>(), (std::vector<float>{2, 12}));
}

TEST_P(WindowTest, SelectAndScatterNaNIsSelected) {
  const double nan = std::nan("");
  Tensor operand = testing::FromDoubles(Shape(dtypes::Float32, {4}), {1, nan, 3, nan});
  Tensor source = tensors::FromValue(std::vector<float>{1, 10});
  for (WindowReduction r : {WindowReduction::kMax, WindowReduction::kMin}) {
    Tensor got = testing::Run1(
        Backend(),
        [&](const std::vector<Node>& p) {
          return graph::SelectAndScatter(p[0], p[1], Win({2}).Reduction(r).Strides({2}));
        },
        {operand, source});
    EXPECT_EQ(got.Value<std::vector<float>>(), (std::vector<float>{0, 1, 0, 10})) << ir::WindowReductionName(r);
  }
}

TEST_P(WindowTest, SelectAndScatterHalfTypesAccumulateInFloat) {
  // 64 overlapping windows all select element 0; 64 additions of 1 + 1/128
  // would lose the fraction if rounded to BFloat16 after each addition.
  std::vector<double> src(64, 1.0 + 1.0 / 128);
  Tensor operand = testing::FromDoubles(Shape(dtypes::BFloat16, {1}), {1});
  Tensor source = testing::FromDoubles(Shape(dtypes::BFloat16, {64}), src);
  Tensor got = testing::Run1(
      Backend(),
      [&](const std::vector<Node>& p) {
        return graph::SelectAndScatter(p[0], p[1],
                                       Win({64}).Reduction(WindowReduction::kMax).PaddingLow({63}).PaddingHigh({63}));
      },
      {operand, source});
  EXPECT_TRUE(AllClose(got, Shape(dtypes::BFloat16, {1}), {64.5}, 0, 0));
}

TEST_P(WindowTest, SelectAndScatterScalarAndEmpty) {
  Tensor got = testing::Run1(
      Backend(),
      [](const std::vector<Node>& p) {
        return graph::SelectAndScatter(p[0], p[1], Win({}).Reduction(WindowReduction::kMax));
      },
      {tensors::FromValue(1.0), tensors::FromValue(3.0)});
  EXPECT_EQ(got.Value<double>(), 3.0);
  // An empty source: nothing is scattered.
  Tensor zeros = testing::Run1(
      Backend(),
      [](const std::vector<Node>& p) {
        return graph::SelectAndScatter(p[0], p[1], Win({5}).Reduction(WindowReduction::kMin));
      },
      {tensors::FromValue(std::vector<double>{1, 2, 3}), Tensor(Shape(dtypes::Float64, {0}))});
  EXPECT_EQ(zeros.Value<std::vector<double>>(), (std::vector<double>{0, 0, 0}));
}

// ----------------------------------------------- Row (pooling) layouts.
// Windows whose trailing axes are unit windows (window 1, stride 1, no
// padding or base dilation: NHWC pooling's channels) run the CPU backend's
// row kernels; these cases cover their paths: leading-axis padding,
// cropping and dilation, overlapping windows, batch slices (>= 16), rows
// wider than one 1024-lane chunk, more than 8 taps, all-padding windows,
// and no window at all.
std::vector<WindowCase> RowCases() {
  return {
      {{2, 6, 6, 3}, Win({1, 2, 2, 1}).Strides({1, 2, 2, 1})},  // max-pool 2x2 stride 2
      {{2, 7, 7, 4}, Win({1, 3, 3, 1}).Strides({1, 2, 2, 1}).PaddingLow({0, 1, 1, 0}).PaddingHigh({0, 1, 1, 0})},
      {{3, 5, 2}, Win({2, 2, 1})},  // overlapping along the first axis: no independent groups
      {{4, 6, 5},
       Win({1, 3, 1}).BaseDilations({1, 2, 1}).WindowDilations({1, 2, 1}).PaddingLow({0, -1, 0}).PaddingHigh(
           {0, 2, 0})},
      {{6, 4}, Win({2, 1}).Strides({2, 1}).PaddingLow({4, 0}).PaddingHigh({1, 0})},  // all-padding windows
      {{3, 4, 2, 3}, Win({2, 2, 1, 1})},                                              // rows of 2 axes (6)
      {{5, 2, 3}, Win({1, 1, 1})},                                                    // no window: one row
      {{2, 0, 4}, Win({1, 2, 1}).PaddingLow({0, 2, 0})},  // empty operand, padding-only windows
      {{0, 3, 4}, Win({1, 2, 1})},                         // empty output
      {{3, 6, 6, 4}, Win({1, 3, 3, 1})},                   // 9 taps, overlapping
      {{20, 4, 4, 3}, Win({1, 2, 2, 1}).Strides({1, 2, 2, 1})},                       // batch slices
      {{17, 5, 5, 2}, Win({1, 3, 3, 1}).PaddingLow({0, 1, 1, 0}).PaddingHigh({0, 1, 1, 0})},  // overlapping slices
      {{4, 3, 1030}, Win({1, 2, 1})},  // rows of 2 chunks
  };
}

TEST_P(WindowTest, ReduceWindowRowLayoutsMatchReference) {
  Rng rng(21);
  for (DType dtype : kDTypes) {
    for (WindowReduction r : kReductions) {
      for (const auto& c : RowCases()) {
        if (r == WindowReduction::kProduct && (dtype == dtypes::Int8 || dtype == dtypes::Uint8) &&
            NumElements(c.attrs.window_dimensions) > 3) {
          continue;  // Int8 products of 4+ values may overflow; the reference does not wrap
        }
        CheckReduceWindow(Backend(), dtype, c, r, rng);
      }
    }
  }
}

TEST_P(WindowTest, SelectAndScatterRowLayoutsMatchReference) {
  Rng rng(23);
  for (DType dtype : kDTypes) {
    for (WindowReduction r : {WindowReduction::kMax, WindowReduction::kMin}) {
      for (const auto& c : RowCases()) CheckSelectAndScatter(Backend(), dtype, c, r, rng);
    }
  }
}

TEST_P(WindowTest, RowLayoutsLargeInputsRunInParallel) {
  Rng rng(24);
  const WindowCase pool3 = {
      {32, 24, 24, 16}, Win({1, 3, 3, 1}).Strides({1, 2, 2, 1}).PaddingLow({0, 1, 1, 0}).PaddingHigh({0, 1, 1, 0})};
  const WindowCase pool2 = {{8, 28, 28, 32}, Win({1, 2, 2, 1}).Strides({1, 2, 2, 1})};  // 8 < 16: row groups
  for (const WindowCase& c : {pool3, pool2}) {
    for (WindowReduction r : {WindowReduction::kSum, WindowReduction::kMax}) {
      CheckReduceWindow(Backend(), dtypes::Float32, c, r, rng);
    }
    CheckSelectAndScatter(Backend(), dtypes::Float32, c, WindowReduction::kMax, rng);
    CheckSelectAndScatter(Backend(), dtypes::BFloat16, c, WindowReduction::kMin, rng);
  }
}

TEST_P(WindowTest, RowLayoutsEqualGenericLayouts) {
  // NHWC pooling (row kernels) and the same pooling of the NCHW transpose
  // (no trailing unit axes: the generic kernels) combine each window in the
  // same order, so the results agree exactly, float sums included.
  Rng rng(25);
  Tensor x = testing::Random(Shape(dtypes::Float32, {3, 9, 9, 5}), rng);
  Tensor src = testing::Random(Shape(dtypes::Float32, {3, 4, 4, 5}), rng);
  const Win nhwc = Win({1, 3, 3, 1}).Strides({1, 2, 2, 1}).PaddingLow({0, 0, 1, 0}).PaddingHigh({0, 1, 0, 0});
  const Win nchw = Win({1, 1, 3, 3}).Strides({1, 1, 2, 2}).PaddingLow({0, 0, 0, 1}).PaddingHigh({0, 0, 1, 0});
  for (WindowReduction r : kReductions) {
    auto outs = testing::Run(
        Backend(),
        [&](const std::vector<Node>& p) {
          WindowAttrs rows = Win(nhwc).Reduction(r), generic = Win(nchw).Reduction(r);
          Node a = graph::ReduceWindow(p[0], rows);
          Node b = graph::Transpose(graph::ReduceWindow(graph::Transpose(p[0], {0, 3, 1, 2}), generic), {0, 2, 3, 1});
          if (r != WindowReduction::kMax && r != WindowReduction::kMin) return std::vector<Node>{a, b};
          Node c = graph::SelectAndScatter(p[0], p[1], rows);
          Node d = graph::Transpose(
              graph::SelectAndScatter(graph::Transpose(p[0], {0, 3, 1, 2}), graph::Transpose(p[1], {0, 3, 1, 2}),
                                      generic),
              {0, 2, 3, 1});
          return std::vector<Node>{a, b, c, d};
        },
        {x, src});
    for (size_t i = 0; i < outs.size(); i += 2) {
      EXPECT_EQ(outs[i].Value<std::vector<std::vector<std::vector<std::vector<float>>>>>(),
                outs[i + 1].Value<std::vector<std::vector<std::vector<std::vector<float>>>>>())
          << ir::WindowReductionName(r) << " output " << i;
    }
  }
}

TEST_P(WindowTest, RowLayoutsPropagateNaNPerLane) {
  const double nan = std::nan("");
  // Rows of 2 lanes; windows of 2 rows. Lane 0: {1, NaN | 3, NaN}; lane 1:
  // {NaN, NaN | 2, 2}.
  for (DType dtype : {dtypes::Float32, dtypes::Float64, dtypes::BFloat16, dtypes::Float16}) {
    Tensor operand = testing::FromDoubles(Shape(dtype, {4, 2}), {1, nan, nan, nan, 3, 2, nan, 2});
    Tensor source = testing::FromDoubles(Shape(dtype, {2, 2}), {1, 2, 10, 20});
    for (WindowReduction r : {WindowReduction::kMax, WindowReduction::kMin}) {
      SCOPED_TRACE(::testing::Message() << dtypes::Name(dtype) << " " << ir::WindowReductionName(r));
      const WindowAttrs attrs = Win({2, 1}).Reduction(r).Strides({2, 1});
      auto outs = testing::Run(
          Backend(),
          [&](const std::vector<Node>& p) {
            return std::vector<Node>{graph::ReduceWindow(p[0], attrs), graph::SelectAndScatter(p[0], p[1], attrs)};
          },
          {operand, source});
      EXPECT_TRUE(AllClose(outs[0], Shape(dtype, {2, 2}), {nan, nan, nan, 2}, 0, 0));
      // The first NaN of each lane's window is selected; on ties of 2 and 2, the first.
      EXPECT_TRUE(AllClose(outs[1], Shape(dtype, {4, 2}), {0, 2, 1, 0, 0, 20, 10, 0}, 0, 0));
    }
  }
}

TEST_P(WindowTest, RowLayoutsNeverSelectPaddingAndFirstOnTies) {
  // Rows of 3 lanes, all negative; window 3 stride 1 with padding 1 and 2.
  // Lane 0: -3, -1, -1 (tie: the first -1); lane 1: -5, -5, -5; lane 2: -1, -2, -3.
  Tensor operand = tensors::FromValue(std::vector<std::vector<float>>{{-3, -5, -1}, {-1, -5, -2}, {-1, -5, -3}});
  Tensor source = tensors::FromValue(std::vector<std::vector<float>>{
      {1, 1, 1}, {2, 2, 2}, {4, 4, 4}, {8, 8, 8}, {16, 16, 16}});
  Tensor got = testing::Run1(
      Backend(),
      [&](const std::vector<Node>& p) {
        return graph::SelectAndScatter(
            p[0], p[1], Win({3, 1}).Reduction(WindowReduction::kMax).PaddingLow({2, 0}).PaddingHigh({2, 0}));
      },
      {operand, source});
  // Windows (rows): [p, p, 0], [p, 0, 1], [0, 1, 2], [1, 2, p], [2, p, p].
  EXPECT_EQ(got.Value<std::vector<std::vector<float>>>(),
            (std::vector<std::vector<float>>{{1, 1 + 2 + 4, 1 + 2 + 4}, {2 + 4 + 8, 8, 8}, {16, 16, 16}}));
}

TEST_P(WindowTest, RowLayoutsAccumulateWideAndWrap) {
  // BFloat16: 64 overlapping windows all select row 0, summed in float.
  std::vector<double> src(128, 1.0 + 1.0 / 128);
  Tensor got = testing::Run1(
      Backend(),
      [&](const std::vector<Node>& p) {
        return graph::SelectAndScatter(
            p[0], p[1], Win({64, 1}).Reduction(WindowReduction::kMax).PaddingLow({63, 0}).PaddingHigh({63, 0}));
      },
      {testing::FromDoubles(Shape(dtypes::BFloat16, {1, 2}), {1, 2}),
       testing::FromDoubles(Shape(dtypes::BFloat16, {64, 2}), src)});
  EXPECT_TRUE(AllClose(got, Shape(dtypes::BFloat16, {1, 2}), {64.5, 64.5}, 0, 0));
  // Int8 sums wrap around.
  Tensor sum = testing::Run1(
      Backend(),
      [](const std::vector<Node>& p) { return graph::ReduceWindow(p[0], Win({2, 1})); },
      {tensors::FromValue(std::vector<std::vector<int8_t>>{{100, 1}, {100, 2}})});
  EXPECT_EQ(sum.Value<std::vector<std::vector<int8_t>>>(), (std::vector<std::vector<int8_t>>{{-56, 3}}));
}

// ----------------------------------------------------------- Errors.

TEST(WindowErrors, ReduceWindowMessages) {
  auto g = graph::NewGraph();
  Node x = graph::Parameter(g.get(), "x", Shape(dtypes::Float32, {4, 5}));
  Node b = graph::Parameter(g.get(), "b", Shape(dtypes::Bool, {4}));
  KILN_EXPECT_ERROR(graph::ReduceWindow(x, Win({2})),
                    "ReduceWindow: window_dimensions [2] must have 2 values (one per axis of Float32[4, 5]) "
                    "(window_test.cc:");
  KILN_EXPECT_ERROR(graph::ReduceWindow(x, Win({2, 0})),
                    "ReduceWindow: window_dimensions [2, 0] must be >= 1");
  KILN_EXPECT_ERROR(graph::ReduceWindow(x, Win({2, 2}).Strides({1})),
                    "ReduceWindow: strides [1] must have 2 values");
  KILN_EXPECT_ERROR(graph::ReduceWindow(x, Win({2, 2}).Strides({1, 0})),
                    "ReduceWindow: strides [1, 0] must be >= 1");
  KILN_EXPECT_ERROR(graph::ReduceWindow(x, Win({2, 2}).BaseDilations({0, 1})),
                    "ReduceWindow: base_dilations [0, 1] must be >= 1");
  KILN_EXPECT_ERROR(graph::ReduceWindow(x, Win({2, 2}).WindowDilations({1, 1, 1})),
                    "ReduceWindow: window_dilations [1, 1, 1] must have 2 values");
  KILN_EXPECT_ERROR(graph::ReduceWindow(x, Win({2, 2}).PaddingLow({1})),
                    "ReduceWindow: padding_low [1] must have 2 values");
  KILN_EXPECT_ERROR(graph::ReduceWindow(x, Win({2, 2}).PaddingHigh({1, 1, 1})),
                    "ReduceWindow: padding_high [1, 1, 1] must have 2 values");
  KILN_EXPECT_ERROR(graph::ReduceWindow(b, Win({2})),
                    "ReduceWindow: Bool operands are not supported: Bool[4]");
  KILN_EXPECT_ERROR(graph::ReduceWindow(Node(), {}), "ReduceWindow: operand is an empty Node");
}

TEST(WindowErrors, SelectAndScatterMessages) {
  auto g = graph::NewGraph();
  Node x = graph::Parameter(g.get(), "x", Shape(dtypes::Float32, {6}));
  Node s = graph::Parameter(g.get(), "s", Shape(dtypes::Float32, {3}));
  Node i = graph::Parameter(g.get(), "i", Shape(dtypes::Int32, {3}));
  Node b = graph::Parameter(g.get(), "b", Shape(dtypes::Bool, {6}));
  const WindowAttrs max2 = Win({2}).Reduction(WindowReduction::kMax).Strides({2});
  const Shape x_shape = x.Shape();  // Shape() refers into the graph, which grows below
  EXPECT_EQ(graph::SelectAndScatter(x, s, max2).Shape(), x_shape);
  KILN_EXPECT_ERROR(graph::SelectAndScatter(x, i, max2),
                    "SelectAndScatter: dtypes differ: Float32[6] and Int32[3] (window_test.cc:");
  KILN_EXPECT_ERROR(graph::SelectAndScatter(b, b, max2), "SelectAndScatter: Bool operands are not supported");
  WindowAttrs sum = max2;
  sum.reduction = WindowReduction::kSum;
  KILN_EXPECT_ERROR(graph::SelectAndScatter(x, s, sum),
                    "SelectAndScatter: reduction must be kMax or kMin (the select), got sum");
  WindowAttrs stride1 = max2;
  stride1.strides = {1};
  KILN_EXPECT_ERROR(graph::SelectAndScatter(x, s, stride1),
                    "SelectAndScatter: source Float32[3] must have the window output dims [5] of operand Float32[6]");
  KILN_EXPECT_ERROR(graph::SelectAndScatter(x, s, Win({}).Reduction(WindowReduction::kMax)),
                    "SelectAndScatter: window_dimensions [] must have 1 values");
  auto other = graph::NewGraph("other");
  Node o = graph::Parameter(other.get(), "o", Shape(dtypes::Float32, {3}));
  KILN_EXPECT_ERROR(graph::SelectAndScatter(x, o, max2), "SelectAndScatter: operands belong to different graphs");
}

}  // namespace
}  // namespace kiln
