// Copyright 2026 The Kiln Authors.
// Conformance tests of DotGeneral and ConvGeneral: each against a naive
// reference computed in double, on every backend, plus the error messages of
// every operand check.
#include <atomic>
#include <cmath>
#include <random>
#include <thread>

#include "kiln/graph/autodiff.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using dtypes::DType;
using graph::Node;
using shapes::Shape;
using tensors::Tensor;
using testing::AllClose;
using testing::NextIndex;
using testing::NumElements;
using testing::Ravel;
using testing::Rng;

class DotConvTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, DotConvTest, ::testing::ValuesIn(testing::BackendNames()));

// ----------------------------------------------------------- Helpers.

// Tolerances for a sum of `terms` products of values in [-3, 3].
double DotAtol(DType dtype, int64_t terms) {
  return testing::Tolerance(dtype) * 9 * std::sqrt(static_cast<double>(std::max<int64_t>(terms, 1)));
}
double DotRtol(DType dtype) { return 4 * testing::Tolerance(dtype); }

// ----------------------------------------------------- DotGeneral.

struct DotCase {
  std::vector<int64_t> lhs_dims;
  std::vector<int> lhs_contracting, lhs_batch;
  std::vector<int64_t> rhs_dims;
  std::vector<int> rhs_contracting, rhs_batch;
};

std::vector<int64_t> Normalized(const std::vector<int>& axes, size_t rank) {
  std::vector<int64_t> out;
  for (int a : axes) out.push_back(a < 0 ? a + static_cast<int64_t>(rank) : a);
  return out;
}

std::vector<int64_t> Free(size_t rank, const std::vector<int64_t>& a, const std::vector<int64_t>& b) {
  std::vector<int64_t> out;
  for (int64_t i = 0; i < static_cast<int64_t>(rank); ++i) {
    if (std::count(a.begin(), a.end(), i) == 0 && std::count(b.begin(), b.end(), i) == 0) out.push_back(i);
  }
  return out;
}

// The naive dot_general: for every output index, sums over every contracting index.
std::vector<double> ReferenceDot(const DotCase& c, const std::vector<double>& lhs, const std::vector<double>& rhs,
                                 std::vector<int64_t>& out_dims) {
  const auto lc = Normalized(c.lhs_contracting, c.lhs_dims.size()), lb = Normalized(c.lhs_batch, c.lhs_dims.size());
  const auto rc = Normalized(c.rhs_contracting, c.rhs_dims.size()), rb = Normalized(c.rhs_batch, c.rhs_dims.size());
  const auto lf = Free(c.lhs_dims.size(), lc, lb), rf = Free(c.rhs_dims.size(), rc, rb);
  out_dims.clear();
  for (int64_t a : lb) out_dims.push_back(c.lhs_dims[a]);
  for (int64_t a : lf) out_dims.push_back(c.lhs_dims[a]);
  for (int64_t a : rf) out_dims.push_back(c.rhs_dims[a]);
  std::vector<int64_t> contracting_dims;
  for (int64_t a : lc) contracting_dims.push_back(c.lhs_dims[a]);

  std::vector<double> out(static_cast<size_t>(NumElements(out_dims)), 0.0);
  if (out.empty()) return out;
  std::vector<int64_t> oi(out_dims.size(), 0), li(c.lhs_dims.size()), ri(c.rhs_dims.size());
  do {
    size_t pos = 0;
    for (size_t i = 0; i < lb.size(); ++i, ++pos) li[lb[i]] = ri[rb[i]] = oi[pos];
    for (int64_t a : lf) li[a] = oi[pos++];
    for (int64_t a : rf) ri[a] = oi[pos++];
    double sum = 0;
    if (NumElements(contracting_dims) > 0) {
      std::vector<int64_t> ci(contracting_dims.size(), 0);
      do {
        for (size_t i = 0; i < lc.size(); ++i) li[lc[i]] = ri[rc[i]] = ci[i];
        sum += lhs[Ravel(li, c.lhs_dims)] * rhs[Ravel(ri, c.rhs_dims)];
      } while (NextIndex(contracting_dims, ci));
    }
    out[Ravel(oi, out_dims)] = sum;
  } while (NextIndex(out_dims, oi));
  return out;
}

void CheckDot(const std::shared_ptr<backends::Backend>& backend, DType dtype, const DotCase& c, Rng& rng) {
  SCOPED_TRACE(::testing::Message() << dtypes::Name(dtype) << " lhs " << Shape(dtype, c.lhs_dims) << " rhs "
                                    << Shape(dtype, c.rhs_dims));
  Tensor lhs = testing::Random(Shape(dtype, c.lhs_dims), rng);
  Tensor rhs = testing::Random(Shape(dtype, c.rhs_dims), rng);
  std::vector<int64_t> out_dims;
  std::vector<double> want = ReferenceDot(c, testing::ToDoubles(lhs), testing::ToDoubles(rhs), out_dims);
  Tensor got = testing::Run1(
      backend,
      [&](const std::vector<Node>& p) {
        return graph::DotGeneral(p[0], c.lhs_contracting, c.lhs_batch, p[1], c.rhs_contracting, c.rhs_batch);
      },
      {lhs, rhs});
  int64_t terms = 1;
  for (int a : c.lhs_contracting) terms *= c.lhs_dims[Normalized({a}, c.lhs_dims.size())[0]];
  EXPECT_TRUE(AllClose(got, Shape(dtype, out_dims), want, DotRtol(dtype), DotAtol(dtype, terms)));
}

constexpr DType kDotDTypes[] = {dtypes::Float32, dtypes::Float64, dtypes::Int32,
                                dtypes::Int64,   dtypes::BFloat16, dtypes::Float16};

TEST_P(DotConvTest, DotGeneralPlainMatmul) {
  Rng rng(1);
  const std::vector<std::array<int64_t, 3>> sizes = {{1, 1, 1},   {7, 7, 7},  {33, 33, 33}, {128, 128, 128},
                                                     {1, 33, 7},  {7, 128, 1}, {33, 1, 128}, {128, 7, 33}};
  for (DType dtype : kDotDTypes) {
    for (const auto& [m, k, n] : sizes) CheckDot(Backend(), dtype, {{m, k}, {1}, {}, {k, n}, {0}, {}}, rng);
  }
}

TEST_P(DotConvTest, DotGeneralTransposedLayouts) {
  Rng rng(2);
  const std::vector<DotCase> cases = {
      {{9, 5}, {0}, {}, {9, 6}, {0}, {}},     // lhs contracting first (transposed lhs)
      {{5, 9}, {1}, {}, {6, 9}, {1}, {}},     // rhs contracting last (transposed rhs)
      {{9, 5}, {0}, {}, {6, 9}, {1}, {}},     // both transposed
      {{9, 5}, {-2}, {}, {6, 9}, {-1}, {}},   // negative axes
      {{1, 5}, {0}, {}, {6, 1}, {1}, {}},     // K = 1, transposed
      {{9, 1}, {0}, {}, {1, 9}, {1}, {}},     // M = N = 1, transposed
  };
  for (DType dtype : kDotDTypes) {
    for (const auto& c : cases) CheckDot(Backend(), dtype, c, rng);
  }
}

TEST_P(DotConvTest, DotGeneralBatchAxes) {
  Rng rng(3);
  const std::vector<DotCase> cases = {
      {{3, 4, 5}, {2}, {0}, {3, 5, 6}, {1}, {0}},              // leading batch
      {{4, 3, 5}, {2}, {1}, {3, 5, 6}, {1}, {0}},              // lhs batch in the middle
      {{4, 5, 3}, {1}, {2}, {5, 6, 3}, {0}, {2}},              // batch last on both
      {{3, 4, 5}, {1}, {0}, {3, 6, 4}, {2}, {0}},              // contracting on the "wrong" side
      {{2, 4, 3, 5}, {3}, {0, 2}, {3, 5, 2, 6}, {1}, {2, 0}},  // two batch axes, permuted in rhs
      {{3, 1, 5}, {2}, {0}, {3, 5, 1}, {1}, {0}},              // M = N = 1 with batch
      {{1, 4, 5}, {2}, {0}, {1, 5, 6}, {1}, {0}},              // batch of 1
      {{3, 5}, {1}, {0}, {3, 5}, {1}, {0}},                    // batched vector dot
  };
  for (DType dtype : kDotDTypes) {
    for (const auto& c : cases) CheckDot(Backend(), dtype, c, rng);
  }
}

TEST_P(DotConvTest, DotGeneralMultipleContractingAxes) {
  Rng rng(4);
  const std::vector<DotCase> cases = {
      {{4, 3, 5}, {1, 2}, {}, {3, 5, 6}, {0, 1}, {}},        // contiguous
      {{4, 3, 5}, {2, 1}, {}, {5, 3, 6}, {0, 1}, {}},        // reversed order
      {{3, 4, 5}, {0, 2}, {}, {5, 6, 3}, {2, 0}, {}},        // split around a free axis
      {{2, 3, 4, 5}, {1, 3}, {0}, {2, 5, 3, 6}, {2, 1}, {0}},  // with batch
  };
  for (DType dtype : kDotDTypes) {
    for (const auto& c : cases) CheckDot(Backend(), dtype, c, rng);
  }
}

TEST_P(DotConvTest, DotGeneralVectorsScalarsAndOuterProducts) {
  Rng rng(5);
  const std::vector<DotCase> cases = {
      {{7}, {0}, {}, {7}, {0}, {}},      // vector dot -> scalar
      {{4}, {}, {}, {5}, {}, {}},        // outer product
      {{}, {}, {}, {}, {}, {}},          // scalar * scalar
      {{}, {}, {}, {3, 2}, {}, {}},      // scalar * matrix
      {{3, 4}, {1}, {}, {4}, {0}, {}},   // matrix-vector
      {{4}, {0}, {}, {4, 3}, {0}, {}},   // vector-matrix
  };
  for (DType dtype : kDotDTypes) {
    for (const auto& c : cases) CheckDot(Backend(), dtype, c, rng);
  }
}

TEST_P(DotConvTest, DotGeneralSizeZero) {
  Rng rng(6);
  const std::vector<DotCase> cases = {
      {{0, 5}, {1}, {}, {5, 3}, {0}, {}},           // M = 0
      {{4, 0}, {1}, {}, {0, 3}, {0}, {}},           // K = 0: all zeros
      {{4, 5}, {1}, {}, {5, 0}, {0}, {}},           // N = 0
      {{0, 4, 5}, {2}, {0}, {0, 5, 3}, {1}, {0}},   // B = 0
      {{2, 4, 0}, {2}, {0}, {2, 0, 3}, {1}, {0}},   // batched K = 0
  };
  for (DType dtype : kDotDTypes) {
    for (const auto& c : cases) CheckDot(Backend(), dtype, c, rng);
  }
}

TEST_P(DotConvTest, DotGeneralSmallIntegersWrapAround) {
  Rng rng(7);
  // Values stay in range for Int8/Uint8/Int16/Uint16 here; wrap-around is
  // checked separately below.
  for (DType dtype : {dtypes::Int8, dtypes::Uint8, dtypes::Int16, dtypes::Uint16, dtypes::Uint32, dtypes::Uint64}) {
    CheckDot(Backend(), dtype, {{3, 2}, {1}, {}, {2, 4}, {0}, {}}, rng);
  }
  // 100 * 2 + 100 * 1 = 300 wraps to 44 in Int8 (two's complement), as XLA.
  Tensor got = testing::Run1(
      Backend(), [](const std::vector<Node>& p) { return graph::DotGeneral(p[0], {0}, {}, p[1], {0}, {}); },
      {tensors::FromValue(std::vector<int8_t>{100, 100}), tensors::FromValue(std::vector<int8_t>{2, 1})});
  EXPECT_EQ(got.Value<int8_t>(), static_cast<int8_t>(44));
}

TEST_P(DotConvTest, DotGeneralNonFiniteValues) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  for (DType dtype : {dtypes::Float32, dtypes::Float64, dtypes::BFloat16, dtypes::Float16}) {
    Tensor lhs = testing::FromDoubles(Shape(dtype, {2, 2}), {inf, 1, nan, 1});
    Tensor rhs = testing::FromDoubles(Shape(dtype, {2, 1}), {1, 2});
    Tensor got = testing::Run1(
        Backend(), [](const std::vector<Node>& p) { return graph::DotGeneral(p[0], {1}, {}, p[1], {0}, {}); },
        {lhs, rhs});
    EXPECT_TRUE(AllClose(got, Shape(dtype, {2, 1}), {inf, nan}, 0, 0)) << dtypes::Name(dtype);
  }
}

TEST(DotGeneralErrors, Messages) {
  auto g = graph::NewGraph();
  Node a = graph::Parameter(g.get(), "a", Shape(dtypes::Float32, {2, 3, 4}));
  Node b = graph::Parameter(g.get(), "b", Shape(dtypes::Float32, {2, 4, 5}));
  Node i = graph::Parameter(g.get(), "i", Shape(dtypes::Int32, {2, 4, 5}));
  Node bools = graph::Parameter(g.get(), "bools", Shape(dtypes::Bool, {2, 3}));
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {2}, {0}, i, {1}, {0}),
                    "DotGeneral: dtypes differ: Float32[2, 3, 4] and Int32[2, 4, 5] (dot_conv_test.cc:");
  KILN_EXPECT_ERROR(graph::DotGeneral(bools, {1}, {}, bools, {1}, {}), "DotGeneral: Bool operands are not supported");
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {2}, {0}, b, {1}, {}),
                    "DotGeneral: lhs batch axes [0] and rhs batch axes [] differ in count");
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {2, 1}, {0}, b, {1}, {0}),
                    "DotGeneral: lhs contracting axes [2, 1] and rhs contracting axes [1] differ in count");
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {3}, {0}, b, {1}, {0}),
                    "DotGeneral: lhs contracting axis 3 is out of range for Float32[2, 3, 4]");
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {2}, {0}, b, {-4}, {0}),
                    "DotGeneral: rhs contracting axis -4 is out of range for Float32[2, 4, 5]");
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {2}, {0}, b, {1}, {7}), "DotGeneral: rhs batch axis 7 is out of range");
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {2}, {-4}, b, {1}, {0}), "DotGeneral: lhs batch axis -4 is out of range");
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {0}, {0}, b, {1}, {0}),
                    "DotGeneral: lhs contracting axis 0 of Float32[2, 3, 4] is used more than once");
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {2, -1}, {}, b, {1, 2}, {}), "lhs contracting axis -1");
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {2}, {0}, b, {1}, {2}),
                    "DotGeneral: batch axes differ in size: lhs Float32[2, 3, 4] axis 0 has 2, rhs Float32[2, 4, 5] "
                    "axis 2 has 5");
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {1}, {0}, b, {1}, {0}),
                    "DotGeneral: contracting axes differ in size: lhs Float32[2, 3, 4] axis 1 has 3, rhs "
                    "Float32[2, 4, 5] axis 1 has 4");
  auto other = graph::NewGraph("other");
  Node c = graph::Parameter(other.get(), "c", Shape(dtypes::Float32, {4, 5}));
  KILN_EXPECT_ERROR(graph::DotGeneral(a, {2}, {}, c, {0}, {}), "DotGeneral: operands belong to different graphs");
  KILN_EXPECT_ERROR(graph::DotGeneral(Node(), {}, {}, c, {}, {}), "DotGeneral: operand #0 is an empty Node");
}

// ------------------------------------------------------ ConvGeneral.

// Channels-last layouts: input N, spatial..., C; kernel spatial..., I, O;
// output N, spatial..., C.
ir::ConvAttrs ChannelsLast(int spatial) {
  ir::ConvAttrs a;
  a.input_batch_axis = 0;
  a.input_feature_axis = spatial + 1;
  a.kernel_input_feature_axis = spatial;
  a.kernel_output_feature_axis = spatial + 1;
  a.output_batch_axis = 0;
  a.output_feature_axis = spatial + 1;
  for (int i = 0; i < spatial; ++i) {
    a.input_spatial_axes.push_back(i + 1);
    a.kernel_spatial_axes.push_back(i);
    a.output_spatial_axes.push_back(i + 1);
  }
  return a;
}

// Channels-first layouts: input N, C, spatial...; kernel O, I, spatial...;
// output N, C, spatial....
ir::ConvAttrs ChannelsFirst(int spatial) {
  ir::ConvAttrs a;
  a.input_batch_axis = 0;
  a.input_feature_axis = 1;
  a.kernel_input_feature_axis = 1;
  a.kernel_output_feature_axis = 0;
  a.output_batch_axis = 0;
  a.output_feature_axis = 1;
  for (int i = 0; i < spatial; ++i) {
    a.input_spatial_axes.push_back(i + 2);
    a.kernel_spatial_axes.push_back(i + 2);
    a.output_spatial_axes.push_back(i + 2);
  }
  return a;
}

struct ConvCase {
  std::string name;
  std::vector<int64_t> input_dims, kernel_dims;
  ir::ConvAttrs attrs;
};

// `attrs` after `edit` (keeps the case table readable).
template <typename Edit>
ir::ConvAttrs With(ir::ConvAttrs attrs, Edit edit) {
  edit(attrs);
  return attrs;
}

std::vector<int64_t> OrOnes(const std::vector<int64_t>& v, size_t n) { return v.empty() ? std::vector<int64_t>(n, 1) : v; }
std::vector<int64_t> OrZeros(const std::vector<int64_t>& v, size_t n) {
  return v.empty() ? std::vector<int64_t>(n, 0) : v;
}

// The naive StableHLO convolution, in double, straight from the definition:
// output feature o belongs to feature group o / (O / feature_group_count)
// and batch group o / (O / batch_group_count).
std::vector<double> ReferenceConv(const ConvCase& c, const std::vector<double>& input,
                                  const std::vector<double>& kernel, std::vector<int64_t>& out_dims) {
  const ir::ConvAttrs& a = c.attrs;
  const size_t ns = a.input_spatial_axes.size();
  const auto strides = OrOnes(a.strides, ns), lhs_dil = OrOnes(a.input_dilation, ns),
             rhs_dil = OrOnes(a.kernel_dilation, ns), lo = OrZeros(a.padding_low, ns),
             hi = OrZeros(a.padding_high, ns);
  const int64_t out_features = c.kernel_dims[a.kernel_output_feature_axis];
  const int64_t in_batch = c.input_dims[a.input_batch_axis];
  const int64_t group_in = c.kernel_dims[a.kernel_input_feature_axis];
  out_dims.assign(c.input_dims.size(), 0);
  out_dims[a.output_batch_axis] = in_batch / a.batch_group_count;
  out_dims[a.output_feature_axis] = out_features;
  std::vector<int64_t> kernel_spatial;
  for (size_t i = 0; i < ns; ++i) {
    const int64_t in = c.input_dims[a.input_spatial_axes[i]], k = c.kernel_dims[a.kernel_spatial_axes[i]];
    const int64_t padded = (in == 0 ? 0 : (in - 1) * lhs_dil[i] + 1) + lo[i] + hi[i];
    const int64_t span = k == 0 ? 0 : (k - 1) * rhs_dil[i] + 1;
    int64_t n = 0;
    while (padded > 0 && n * strides[i] + span <= padded) ++n;
    out_dims[a.output_spatial_axes[i]] = n;
    kernel_spatial.push_back(k);
  }
  std::vector<double> out(static_cast<size_t>(NumElements(out_dims)), 0.0);
  if (out.empty() || NumElements(kernel_spatial) == 0) return out;
  std::vector<int64_t> oi(out_dims.size(), 0), ii(c.input_dims.size()), ki(c.kernel_dims.size());
  do {
    const int64_t o = oi[a.output_feature_axis];
    const int64_t fgroup = o / (out_features / a.feature_group_count);
    const int64_t bgroup = o / (out_features / a.batch_group_count);
    ii[a.input_batch_axis] = bgroup * (in_batch / a.batch_group_count) + oi[a.output_batch_axis];
    ki[a.kernel_output_feature_axis] = o;
    double sum = 0;
    std::vector<int64_t> kw(ns, 0);
    do {
      bool inside = true;
      for (size_t i = 0; i < ns; ++i) {
        const int64_t p = oi[a.output_spatial_axes[i]] * strides[i] + kw[i] * rhs_dil[i] - lo[i];
        if (p < 0 || p % lhs_dil[i] != 0 || p / lhs_dil[i] >= c.input_dims[a.input_spatial_axes[i]]) inside = false;
        ii[a.input_spatial_axes[i]] = inside ? p / lhs_dil[i] : 0;
        ki[a.kernel_spatial_axes[i]] = kw[i];
      }
      if (!inside) continue;
      for (int64_t ci = 0; ci < group_in; ++ci) {
        ii[a.input_feature_axis] = fgroup * group_in + ci;
        ki[a.kernel_input_feature_axis] = ci;
        sum += input[Ravel(ii, c.input_dims)] * kernel[Ravel(ki, c.kernel_dims)];
      }
    } while (NextIndex(kernel_spatial, kw));
    out[Ravel(oi, out_dims)] = sum;
  } while (NextIndex(out_dims, oi));
  return out;
}

void CheckConv(const std::shared_ptr<backends::Backend>& backend, DType dtype, const ConvCase& c, Rng& rng) {
  SCOPED_TRACE(::testing::Message() << dtypes::Name(dtype) << " " << c.name << ": input "
                                    << Shape(dtype, c.input_dims) << " kernel " << Shape(dtype, c.kernel_dims));
  Tensor input = testing::Random(Shape(dtype, c.input_dims), rng);
  Tensor kernel = testing::Random(Shape(dtype, c.kernel_dims), rng);
  std::vector<int64_t> out_dims;
  std::vector<double> want = ReferenceConv(c, testing::ToDoubles(input), testing::ToDoubles(kernel), out_dims);
  Tensor got = testing::Run1(
      backend, [&](const std::vector<Node>& p) { return graph::ConvGeneral(p[0], p[1], c.attrs); }, {input, kernel});
  const int64_t terms =
      NumElements(c.kernel_dims) / std::max<int64_t>(c.kernel_dims[c.attrs.kernel_output_feature_axis], 1);
  EXPECT_TRUE(AllClose(got, Shape(dtype, out_dims), want, DotRtol(dtype), DotAtol(dtype, terms)));
}

std::vector<ConvCase> ConvCases() {
  const auto nwc = ChannelsLast(1), ncw = ChannelsFirst(1), nhwc = ChannelsLast(2), nchw = ChannelsFirst(2);
  return {
      {"1-D NWC", {2, 9, 3}, {3, 3, 4}, nwc},
      {"1-D NCW strided padded", {2, 3, 9}, {4, 3, 3}, With(ncw, [](auto& a) {
         a.strides = {2};
         a.padding_low = {1};
         a.padding_high = {2};
       })},
      {"2-D NHWC", {2, 6, 7, 3}, {3, 3, 3, 5}, nhwc},
      {"2-D NCHW", {2, 3, 6, 7}, {5, 3, 3, 3}, nchw},
      {"2-D NHWC strides padding", {2, 7, 6, 3}, {3, 2, 3, 4}, With(nhwc, [](auto& a) {
         a.strides = {2, 1};
         a.padding_low = {1, 2};
         a.padding_high = {1, 0};
       })},
      {"2-D NCHW kernel dilation", {1, 2, 9, 8}, {3, 2, 3, 2}, With(nchw, [](auto& a) {
         a.kernel_dilation = {2, 3};
         a.padding_low = {2, 0};
         a.padding_high = {2, 1};
       })},
      {"2-D NHWC input dilation", {2, 4, 5, 2}, {3, 3, 2, 3}, With(nhwc, [](auto& a) {
         a.input_dilation = {2, 1};
         a.strides = {1, 2};
         a.padding_low = {1, 1};
         a.padding_high = {2, 1};
       })},
      {"2-D NHWC input and kernel dilation", {1, 5, 5, 2}, {2, 2, 2, 2}, With(nhwc, [](auto& a) {
         a.input_dilation = {2, 2};
         a.kernel_dilation = {2, 3};
       })},
      {"2-D NHWC negative padding", {1, 7, 6, 2}, {2, 2, 2, 3}, With(nhwc, [](auto& a) {
         a.padding_low = {-1, 1};
         a.padding_high = {-2, -1};
       })},
      {"2-D NHWC feature groups", {2, 5, 5, 4}, {3, 3, 2, 6}, With(nhwc, [](auto& a) { a.feature_group_count = 2; })},
      {"2-D NCHW feature groups", {2, 6, 5, 5}, {6, 2, 3, 3}, With(nchw, [](auto& a) {
         a.feature_group_count = 3;
         a.strides = {2, 2};
         a.padding_low = {1, 1};
         a.padding_high = {1, 1};
       })},
      {"2-D NHWC depthwise", {2, 6, 6, 3}, {3, 3, 1, 3}, With(nhwc, [](auto& a) { a.feature_group_count = 3; })},
      {"2-D NHWC depthwise x2", {1, 5, 6, 3}, {3, 3, 1, 6}, With(nhwc, [](auto& a) { a.feature_group_count = 3; })},
      {"2-D NHWC batch groups", {4, 5, 5, 2}, {3, 3, 2, 6}, With(nhwc, [](auto& a) { a.batch_group_count = 2; })},
      {"2-D NCHW batch groups strided", {6, 2, 6, 5}, {3, 2, 2, 2}, With(nchw, [](auto& a) {
         a.batch_group_count = 3;
         a.strides = {2, 1};
       })},
      {"3-D NDHWC", {1, 4, 5, 6, 2}, {2, 3, 2, 2, 3}, With(ChannelsLast(3), [](auto& a) {
         a.strides = {1, 2, 1};
         a.padding_low = {1, 0, 1};
         a.padding_high = {0, 1, 1};
       })},
      {"3-D NCDHW dilated", {2, 2, 5, 4, 5}, {2, 2, 2, 2, 2}, With(ChannelsFirst(3), [](auto& a) {
         a.kernel_dilation = {2, 1, 2};
       })},
      {"1-D odd layout [C, W, N]", {3, 8, 2}, {2, 4, 3}, With(ncw, [](auto& a) {
         a.input_batch_axis = 2;
         a.input_feature_axis = 0;
         a.input_spatial_axes = {1};
         a.kernel_output_feature_axis = 1;  // kernel [W, O, I]
         a.kernel_input_feature_axis = 2;
         a.kernel_spatial_axes = {0};
         a.output_batch_axis = 1;  // output [W, N, C]
         a.output_feature_axis = 2;
         a.output_spatial_axes = {0};
         a.padding_low = {1};
       })},
      {"2-D NHWC 1x1", {2, 3, 3, 4}, {1, 1, 4, 2}, nhwc},
      {"2-D NHWC parallel-size", {2, 16, 16, 8}, {3, 3, 8, 16}, With(nhwc, [](auto& a) {
         a.padding_low = {1, 1};
         a.padding_high = {1, 1};
       })},
      {"0-D (no spatial axes)", {3, 4}, {4, 5}, ChannelsLast(0)},
      // Kernels spatially larger than the output: how kernel gradients look
      // (the CPU backend runs Float32 ones as oneDNN backward-weights
      // convolutions; strides and kernel dilation swap roles there).
      {"2-D NHWC kernel larger than output", {3, 9, 8, 2}, {7, 6, 2, 4}, nhwc},
      {"2-D NHWC large kernel strided dilated padded", {2, 11, 10, 3}, {5, 4, 3, 2}, With(nhwc, [](auto& a) {
         a.strides = {2, 1};
         a.kernel_dilation = {2, 2};
         a.padding_low = {1, 2};
         a.padding_high = {2, 0};
       })},
      {"1-D NWC large kernel", {4, 12, 3}, {10, 3, 2}, nwc},
      {"3-D NDHWC large kernel", {1, 5, 5, 5, 2}, {4, 4, 3, 2, 3}, ChannelsLast(3)},
      {"2-D kernel-gradient layout", {4, 6, 6, 3}, {4, 6, 6, 5}, With(nhwc, [](auto& a) {
         a.input_batch_axis = 3;  // input [N, H, W, C]: C plays batch, N is summed
         a.input_feature_axis = 0;
         a.kernel_input_feature_axis = 0;  // kernel: the cotangent [N, H, W, O]
         a.kernel_output_feature_axis = 3;
         a.kernel_spatial_axes = {1, 2};
         a.output_batch_axis = 2;  // output [kH, kW, C, O]
         a.output_feature_axis = 3;
         a.output_spatial_axes = {0, 1};
         a.padding_low = {1, 1};
         a.padding_high = {1, 1};
       })},
  };
}

TEST_P(DotConvTest, ConvGeneralMatchesReference) {
  Rng rng(21);
  for (DType dtype : {dtypes::Float32, dtypes::Float64, dtypes::Int32, dtypes::BFloat16, dtypes::Float16}) {
    for (const auto& c : ConvCases()) CheckConv(Backend(), dtype, c, rng);
  }
}

TEST_P(DotConvTest, ConvGeneralSizeZero) {
  Rng rng(22);
  const auto nhwc = ChannelsLast(2);
  const std::vector<ConvCase> cases = {
      {"batch 0", {0, 4, 4, 2}, {3, 3, 2, 3}, nhwc},
      {"no input features", {2, 4, 4, 0}, {3, 3, 0, 3}, nhwc},
      {"no output features", {2, 4, 4, 2}, {3, 3, 2, 0}, nhwc},
      {"empty spatial axis, padded", {1, 0, 4, 2}, {1, 3, 2, 3}, With(nhwc, [](auto& a) {
         a.padding_low = {1, 0};
         a.padding_high = {1, 0};
       })},
      {"window larger than input", {1, 2, 4, 2}, {3, 3, 2, 3}, nhwc},
  };
  for (DType dtype : {dtypes::Float32, dtypes::Float64}) {
    for (const auto& c : cases) CheckConv(Backend(), dtype, c, rng);
  }
}

TEST_P(DotConvTest, ConvGeneralKnownValues) {
  // The StableHLO spec example: 4x4 input, 3x3 kernel of ones, lhs dilation 2, stride 4.
  Tensor input = tensors::FromValue(std::vector<float>{1, 2, 5, 6, 3, 4, 7, 8, 10, 11, 14, 15, 12, 13, 16, 17});
  Tensor kernel = tensors::FromValue(std::vector<float>(9, 1.0f));
  ir::ConvAttrs attrs = With(ChannelsLast(2), [](auto& a) {
    a.strides = {4, 4};
    a.input_dilation = {2, 2};
  });
  Tensor got = testing::Run1(
      Backend(),
      [&](const std::vector<Node>& p) {
        return graph::ConvGeneral(graph::Reshape(p[0], {1, 4, 4, 1}), graph::Reshape(p[1], {3, 3, 1, 1}), attrs);
      },
      {input, kernel});
  EXPECT_TRUE(AllClose(got, Shape(dtypes::Float32, {1, 2, 2, 1}), {10, 26, 46, 62}, 0, 0));
}

// Convolutions as layers use them, whose gradients are the convolutions
// backends run as backward-data and backward-filter calls (cuDNN's, or
// oneDNN's): strides with odd and even extents, patchify, dilation,
// asymmetric padding, 1-D to 3-D, depthwise.
std::vector<ConvCase> ConvGradCases() {
  const auto nwc = ChannelsLast(1), nhwc = ChannelsLast(2), nchw = ChannelsFirst(2);
  const auto pad = [](std::vector<int64_t> lo, std::vector<int64_t> hi) {
    return [=](ir::ConvAttrs& a) {
      a.padding_low = lo;
      a.padding_high = hi;
    };
  };
  return {
      {"NHWC 3x3 same", {2, 6, 6, 3}, {3, 3, 3, 4}, With(nhwc, pad({1, 1}, {1, 1}))},
      {"NHWC 3x3 stride 2, odd extent", {2, 9, 9, 3}, {3, 3, 3, 4}, With(With(nhwc, pad({1, 1}, {1, 1})), [](auto& a) {
         a.strides = {2, 2};
       })},
      {"NHWC 3x3 stride 2, even extent", {2, 8, 8, 2}, {3, 3, 2, 3}, With(nhwc, [](auto& a) { a.strides = {2, 2}; })},
      {"NHWC 2x2 stride 2 (patchify)", {2, 8, 8, 3}, {2, 2, 3, 4}, With(nhwc, [](auto& a) { a.strides = {2, 2}; })},
      {"NHWC kernel dilation", {1, 9, 8, 2}, {3, 3, 2, 3}, With(With(nhwc, pad({2, 2}, {2, 2})), [](auto& a) {
         a.kernel_dilation = {2, 2};
       })},
      {"NCHW stride 2, asymmetric padding", {2, 3, 7, 8}, {4, 3, 3, 2},
       With(With(nchw, pad({1, 0}, {0, 1})), [](auto& a) { a.strides = {2, 2}; })},
      {"NWC stride 3", {2, 11, 3}, {4, 3, 2}, With(With(nwc, pad({1}, {1})), [](auto& a) { a.strides = {3}; })},
      {"NDHWC stride 2", {1, 5, 6, 5, 2}, {3, 2, 3, 2, 3},
       With(With(ChannelsLast(3), pad({1, 0, 1}, {1, 0, 1})), [](auto& a) { a.strides = {2, 2, 1}; })},
      {"NHWC depthwise", {2, 6, 6, 3}, {3, 3, 1, 6}, With(With(nhwc, pad({1, 1}, {1, 1})), [](auto& a) {
         a.feature_group_count = 3;
       })},
  };
}

// The input and kernel gradients of sum(conv(x, w) * cotangent) in
// `dtype` on `backend`, against the same graph in Float64 on the CPU.
void CheckConvGradients(const std::shared_ptr<backends::Backend>& backend, DType dtype, const ConvCase& c, Rng& rng) {
  SCOPED_TRACE(::testing::Message() << dtypes::Name(dtype) << " " << c.name << ": input "
                                    << Shape(dtype, c.input_dims) << " kernel " << Shape(dtype, c.kernel_dims));
  static const auto cpu = backends::NewWithName("cpu");
  const auto to_f64 = [](const Tensor& t) {
    return testing::FromDoubles(Shape(dtypes::Float64, t.Shape().Dims()), testing::ToDoubles(t));
  };
  Tensor x = testing::Random(Shape(dtype, c.input_dims), rng);
  Tensor w = testing::Random(Shape(dtype, c.kernel_dims), rng);
  std::vector<int64_t> out_dims;
  ReferenceConv(c, testing::ToDoubles(x), testing::ToDoubles(w), out_dims);
  Tensor cotangent = testing::Random(Shape(dtype, out_dims), rng);
  const auto grads = [&](const std::vector<Node>& p) {
    return graph::Gradient(graph::ReduceAllSum(graph::ConvGeneral(p[0], p[1], c.attrs) * p[2]), {p[0], p[1]});
  };
  const std::vector<Tensor> got = testing::Run(backend, grads, {x, w, cotangent});
  const std::vector<Tensor> want = testing::Run(cpu, grads, {to_f64(x), to_f64(w), to_f64(cotangent)});
  // Terms per element: output features x taps (input), batch x positions (kernel).
  const int64_t taps = NumElements(c.kernel_dims) / std::max<int64_t>(c.kernel_dims[c.attrs.kernel_input_feature_axis], 1);
  const int64_t positions = NumElements(out_dims) / std::max<int64_t>(out_dims[c.attrs.output_feature_axis], 1);
  EXPECT_TRUE(AllClose(got[0], x.Shape(), testing::ToDoubles(want[0]), DotRtol(dtype), DotAtol(dtype, taps)));
  EXPECT_TRUE(AllClose(got[1], w.Shape(), testing::ToDoubles(want[1]), DotRtol(dtype), DotAtol(dtype, positions)));
}

TEST_P(DotConvTest, ConvGradientsMatchFloat64) {
  Rng rng(23);
  for (DType dtype : {dtypes::Float32, dtypes::BFloat16}) {
    for (const ConvCase& c : ConvGradCases()) CheckConvGradients(Backend(), dtype, c, rng);
  }
}

// A random convolution: 1-3 spatial axes, channels first or last, strides,
// padding (symmetric for half of them, else any, negative too), kernel and
// input dilation, feature groups; its output nonempty.
ConvCase RandomConvCase(Rng& rng, int index) {
  const auto pick = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  for (;;) {
    const int ns = static_cast<int>(pick(1, 3));
    const bool last = pick(0, 1) == 1;
    ConvCase c;
    c.attrs = last ? ChannelsLast(ns) : ChannelsFirst(ns);
    ir::ConvAttrs& a = c.attrs;
    const int64_t groups = pick(1, 3) == 3 ? 2 : 1;
    const int64_t batch = pick(1, 3), in_features = groups * pick(1, 3), out_features = groups * pick(1, 3);
    c.input_dims.assign(static_cast<size_t>(ns + 2), 0);
    c.kernel_dims.assign(static_cast<size_t>(ns + 2), 0);
    c.input_dims[static_cast<size_t>(a.input_batch_axis)] = batch;
    c.input_dims[static_cast<size_t>(a.input_feature_axis)] = in_features;
    c.kernel_dims[static_cast<size_t>(a.kernel_input_feature_axis)] = in_features / groups;
    c.kernel_dims[static_cast<size_t>(a.kernel_output_feature_axis)] = out_features;
    a.feature_group_count = groups;
    const bool input_dilated = pick(0, 3) == 0;
    const bool symmetric = pick(0, 1) == 1;  // nonnegative and symmetric padding: what cuDNN takes most
    bool nonempty = true;
    for (int j = 0; j < ns; ++j) {
      const int64_t size = pick(ns == 3 ? 2 : 3, ns == 3 ? 6 : 10), k = pick(1, 4);
      c.input_dims[static_cast<size_t>(a.input_spatial_axes[static_cast<size_t>(j)])] = size;
      c.kernel_dims[static_cast<size_t>(a.kernel_spatial_axes[static_cast<size_t>(j)])] = k;
      a.strides.push_back(pick(1, 3));
      a.kernel_dilation.push_back(pick(1, 2));
      a.input_dilation.push_back(input_dilated ? pick(1, 2) : 1);
      a.padding_low.push_back(pick(symmetric ? 0 : -1, 2));
      a.padding_high.push_back(symmetric ? a.padding_low.back() : pick(-1, 2));
      const int64_t padded = (size - 1) * a.input_dilation.back() + 1 + a.padding_low.back() + a.padding_high.back();
      nonempty = nonempty && padded >= (k - 1) * a.kernel_dilation.back() + 1;
    }
    if (!nonempty) continue;
    c.name = "random case " + std::to_string(index);
    return c;
  }
}

// Random convolutions and both their gradients, Float32, against Float64
// on the CPU: each backend's mapping of layouts, padding, strides and
// dilations (onto cuDNN's three calls, im2col or oneDNN) beyond the tables.
TEST_P(DotConvTest, RandomConvolutionsAndGradientsMatchFloat64) {
  Rng rng(29);
  for (int i = 0; i < 32; ++i) {
    const ConvCase c = RandomConvCase(rng, i);
    CheckConv(Backend(), dtypes::Float32, c, rng);
    CheckConvGradients(Backend(), dtypes::Float32, c, rng);
  }
}

TEST_P(DotConvTest, OneDnnKernelsRunConcurrently) {
  // One compiled executable (one oneDNN primitive each) called from several
  // threads at once: scratchpads must not be shared between calls.
  Rng rng(23);
  Tensor lhs = testing::Random(Shape(dtypes::Float32, {2, 64, 48}), rng);
  Tensor rhs = testing::Random(Shape(dtypes::Float32, {2, 48, 40}), rng);
  Tensor input = testing::Random(Shape(dtypes::Float32, {2, 12, 12, 8}), rng);
  Tensor kernel = testing::Random(Shape(dtypes::Float32, {3, 3, 8, 16}), rng);
  auto exec = graph::NewExec(Backend(), [](const std::vector<Node>& p) {
    return std::vector<Node>{graph::DotGeneral(p[0], {2}, {0}, p[1], {1}, {0}),
                             graph::ConvGeneral(p[2], p[3], ChannelsLast(2))};
  });
  const std::vector<Tensor> want = exec.CallVector({lhs, rhs, input, kernel});
  std::atomic<int> mismatches = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i) {
        const std::vector<Tensor> got = exec.CallVector({lhs, rhs, input, kernel});
        if (!AllClose(got[0], want[0], 0, 0) || !AllClose(got[1], want[1], 0, 0)) ++mismatches;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, 0);
}

TEST(ConvGeneralErrors, FillsDefaults) {
  auto g = graph::NewGraph();
  Node x = graph::Parameter(g.get(), "x", Shape(dtypes::Float32, {1, 5, 5, 2}));
  Node k = graph::Parameter(g.get(), "k", Shape(dtypes::Float32, {3, 3, 2, 4}));
  Node y = graph::ConvGeneral(x, k, ChannelsLast(2));
  const ir::ConvAttrs& a = ir::Attr<ir::ConvAttrs>(g->Function().instructions[static_cast<size_t>(y.Id())]);
  EXPECT_EQ(a.strides, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(a.padding_low, (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(a.padding_high, (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(a.input_dilation, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(a.kernel_dilation, (std::vector<int64_t>{1, 1}));
  EXPECT_EQ(y.Shape(), Shape(dtypes::Float32, {1, 3, 3, 4}));
  // Negative axes are normalized.
  Node z = graph::ConvGeneral(x, k, With(ChannelsLast(2), [](auto& a) { a.input_feature_axis = -1; }));
  EXPECT_EQ(ir::Attr<ir::ConvAttrs>(g->Function().instructions[static_cast<size_t>(z.Id())]).input_feature_axis, 3);
}

TEST(ConvGeneralErrors, Messages) {
  auto g = graph::NewGraph();
  Node x = graph::Parameter(g.get(), "x", Shape(dtypes::Float32, {4, 5, 5, 6}));
  Node k = graph::Parameter(g.get(), "k", Shape(dtypes::Float32, {3, 3, 6, 4}));
  Node ki = graph::Parameter(g.get(), "ki", Shape(dtypes::Int32, {3, 3, 6, 4}));
  Node k3 = graph::Parameter(g.get(), "k3", Shape(dtypes::Float32, {3, 6, 4}));
  Node v = graph::Parameter(g.get(), "v", Shape(dtypes::Float32, {4}));
  Node b = graph::Parameter(g.get(), "b", Shape(dtypes::Bool, {1, 3, 2}));
  const auto nhwc = ChannelsLast(2);
  auto conv = [&](Node in, Node kernel, auto edit) { return graph::ConvGeneral(in, kernel, With(nhwc, edit)); };
  auto none = [](auto&) {};
  KILN_EXPECT_ERROR(conv(x, ki, none),
                    "ConvGeneral: dtypes differ: Float32[4, 5, 5, 6] and Int32[3, 3, 6, 4] (dot_conv_test.cc:");
  KILN_EXPECT_ERROR(graph::ConvGeneral(b, b, ChannelsLast(1)), "ConvGeneral: Bool operands are not supported");
  KILN_EXPECT_ERROR(graph::ConvGeneral(v, v, ChannelsLast(0)),
                    "ConvGeneral: input Float32[4] must have rank >= 2 (batch and feature axes)");
  KILN_EXPECT_ERROR(conv(x, k3, none), "ConvGeneral: kernel Float32[3, 6, 4] must have the rank of input");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.input_spatial_axes = {1}; }),
                    "ConvGeneral: input spatial axes [1] must name 2 axes for rank 4");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.kernel_spatial_axes = {0, 1, 2}; }),
                    "ConvGeneral: kernel spatial axes [0, 1, 2] must name 2 axes");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.output_spatial_axes = {}; }),
                    "ConvGeneral: output spatial axes [] must name 2 axes");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.input_feature_axis = 4; }),
                    "ConvGeneral: input axis 4 is out of range for rank 4");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.kernel_input_feature_axis = 0; }),
                    "ConvGeneral: kernel axis 0 is named twice");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.output_batch_axis = -5; }),
                    "ConvGeneral: output axis -5 is out of range");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.strides = {1}; }),
                    "ConvGeneral: strides [1] must have 2 values (one per spatial axis)");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.strides = {1, 0}; }), "ConvGeneral: strides [1, 0] must be >= 1");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.padding_low = {1, 1, 1}; }),
                    "ConvGeneral: padding_low [1, 1, 1] must have 2 values");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.padding_high = {1}; }), "ConvGeneral: padding_high [1] must have 2");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.input_dilation = {0, 1}; }),
                    "ConvGeneral: input_dilation [0, 1] must be >= 1");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.kernel_dilation = {2}; }),
                    "ConvGeneral: kernel_dilation [2] must have 2 values");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.feature_group_count = 0; }),
                    "ConvGeneral: feature_group_count 0 must be >= 1");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.batch_group_count = -1; }),
                    "ConvGeneral: batch_group_count -1 must be >= 1");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) {
                      a.feature_group_count = 2;
                      a.batch_group_count = 2;
                    }),
                    "ConvGeneral: feature_group_count (2) and batch_group_count (2) cannot both be > 1");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.feature_group_count = 4; }),
                    "ConvGeneral: input features (6 in Float32[4, 5, 5, 6]) must be divisible by "
                    "feature_group_count 4");
  KILN_EXPECT_ERROR(conv(x, k, [](auto& a) { a.feature_group_count = 2; }),
                    "ConvGeneral: input features (6 in Float32[4, 5, 5, 6]) must equal kernel input features (6 in "
                    "Float32[3, 3, 6, 4]) * feature_group_count 2");
  Node k_in3_out4 = graph::Parameter(g.get(), "k34", Shape(dtypes::Float32, {3, 3, 2, 4}));
  KILN_EXPECT_ERROR(conv(x, k_in3_out4, [](auto& a) { a.feature_group_count = 3; }),
                    "ConvGeneral: kernel output features (4 in Float32[3, 3, 2, 4]) must be divisible by "
                    "feature_group_count 3");
  Node k_out5 = graph::Parameter(g.get(), "k5", Shape(dtypes::Float32, {3, 3, 6, 5}));
  KILN_EXPECT_ERROR(conv(x, k_out5, [](auto& a) { a.batch_group_count = 2; }),
                    "ConvGeneral: kernel output features (5 in Float32[3, 3, 6, 5]) must be divisible by "
                    "batch_group_count 2");
  Node k_out6 = graph::Parameter(g.get(), "k6", Shape(dtypes::Float32, {3, 3, 6, 6}));
  KILN_EXPECT_ERROR(conv(x, k_out6, [](auto& a) { a.batch_group_count = 3; }),
                    "ConvGeneral: input batch (4 in Float32[4, 5, 5, 6]) must be divisible by batch_group_count 3");
  auto other = graph::NewGraph("other");
  Node o = graph::Parameter(other.get(), "o", Shape(dtypes::Float32, {3, 3, 6, 4}));
  KILN_EXPECT_ERROR(conv(x, o, none), "ConvGeneral: operands belong to different graphs");
}

}  // namespace
}  // namespace kiln
