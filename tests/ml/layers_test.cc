// Copyright 2026 The Kiln Authors.
// Layers: output shapes, known values (by hand or from naive references in
// double), training vs inference behaviour, gradients, variable reuse on
// re-trace, and error messages.
#include "kiln/ml/layers/layers.h"

#include <cmath>
#include <functional>
#include <numeric>

#include "kiln/context/exec.h"
#include "kiln/graph/autodiff.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using context::Context;
using context::Variable;
using graph::Node;
using tensors::Tensor;
namespace layers = ml::layers;
namespace initializers = context::initializers;

using LayerFn = std::function<Node(Context, Node)>;

class LayersTest : public ::testing::TestWithParam<std::string> {
 protected:
  /// Runs `layer` on `x` in a graph traced with `ctx`.
  Tensor Apply(Context ctx, const LayerFn& layer, const Tensor& x) {
    auto exec = context::NewExec(backend_, ctx, [&](Context c, Node n) { return layer(c, n); });
    return exec.Call(x);
  }

  std::shared_ptr<backends::Backend> backend_ = backends::NewWithName(GetParam());
};

INSTANTIATE_TEST_SUITE_P(Backends, LayersTest, ::testing::ValuesIn(testing::BackendNames()));

/// A tensor of `dims` from doubles.
Tensor Make(dtypes::DType dtype, std::vector<int64_t> dims, const std::vector<double>& values) {
  return testing::FromDoubles(shapes::Make(dtype, std::move(dims)), values);
}

/// 0, 1, 2, ... as a Float32 tensor of `dims`.
Tensor Counting(std::vector<int64_t> dims, double start = 0) {
  std::vector<double> v(static_cast<size_t>(testing::NumElements(dims)));
  std::iota(v.begin(), v.end(), start);
  return Make(dtypes::Float32, std::move(dims), v);
}

Tensor RandomTensor(dtypes::DType dtype, std::vector<int64_t> dims, uint64_t seed, double lo = -2, double hi = 2) {
  testing::Rng rng(seed);
  return testing::Random(shapes::Make(dtype, std::move(dims)), rng, lo, hi);
}

// ------------------------------------------------- Naive references (double).

/// TF "same" padding (low side) of one axis, computed independently of the library.
int64_t SamePadLow(int64_t in, int64_t k, int64_t stride, int64_t dilation) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + (k - 1) * dilation + 1 - in, 0);
  return total / 2;
}

struct WindowSpec {
  std::vector<int64_t> window, strides, dilations;
  bool same = false;
};

/// Output spatial sizes of a window op.
std::vector<int64_t> WindowOutDims(const std::vector<int64_t>& in, const WindowSpec& w) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < in.size(); ++i) {
    const int64_t effective = (w.window[i] - 1) * w.dilations[i] + 1;
    out.push_back(w.same ? (in[i] + w.strides[i] - 1) / w.strides[i] : (in[i] - effective) / w.strides[i] + 1);
  }
  return out;
}

/// Channels-last convolution x [B, S..., C] * kernel [K..., C, F] in double.
Tensor NaiveConv(const Tensor& x, const Tensor& kernel, const std::vector<double>& bias, const WindowSpec& w) {
  const auto& xd = x.Shape().Dims();
  const auto& kd = kernel.Shape().Dims();
  const size_t n = xd.size() - 2;
  const std::vector<int64_t> in(xd.begin() + 1, xd.end() - 1);
  const std::vector<int64_t> out_spatial = WindowOutDims(in, w);
  const int64_t channels = xd.back(), filters = kd.back();
  std::vector<int64_t> out_dims = {xd[0]};
  out_dims.insert(out_dims.end(), out_spatial.begin(), out_spatial.end());
  out_dims.push_back(filters);
  const auto xv = testing::ToDoubles(x), kv = testing::ToDoubles(kernel);
  std::vector<double> out(static_cast<size_t>(testing::NumElements(out_dims)), 0);
  const std::vector<int64_t> kspatial(kd.begin(), kd.begin() + static_cast<long>(n));
  std::vector<int64_t> o(out_dims.size(), 0);
  do {
    double sum = bias.empty() ? 0 : bias[static_cast<size_t>(o.back())];
    std::vector<int64_t> k(n, 0);
    do {
      std::vector<int64_t> xi = {o[0]};
      bool inside = true;
      for (size_t i = 0; i < n; ++i) {
        const int64_t pad = w.same ? SamePadLow(in[i], w.window[i], w.strides[i], w.dilations[i]) : 0;
        const int64_t p = o[i + 1] * w.strides[i] + k[i] * w.dilations[i] - pad;
        inside = inside && p >= 0 && p < in[i];
        xi.push_back(p);
      }
      if (!inside) continue;
      for (int64_t c = 0; c < channels; ++c) {
        xi.push_back(c);
        std::vector<int64_t> ki = k;
        ki.push_back(c);
        ki.push_back(o.back());
        sum += xv[static_cast<size_t>(testing::Ravel(xi, xd))] * kv[static_cast<size_t>(testing::Ravel(ki, kd))];
        xi.pop_back();
      }
    } while (testing::NextIndex(kspatial, k));
    out[static_cast<size_t>(testing::Ravel(o, out_dims))] = sum;
  } while (testing::NextIndex(out_dims, o));
  return Make(x.DType(), out_dims, out);
}

/// Max or average (over non-padding elements) pooling of x [B, S..., C].
Tensor NaivePool(const Tensor& x, const WindowSpec& w, bool max) {
  const auto& xd = x.Shape().Dims();
  const size_t n = xd.size() - 2;
  const std::vector<int64_t> in(xd.begin() + 1, xd.end() - 1);
  std::vector<int64_t> out_dims = {xd[0]};
  for (int64_t d : WindowOutDims(in, w)) out_dims.push_back(d);
  out_dims.push_back(xd.back());
  const auto xv = testing::ToDoubles(x);
  std::vector<double> out(static_cast<size_t>(testing::NumElements(out_dims)));
  std::vector<int64_t> o(out_dims.size(), 0);
  do {
    double acc = max ? -INFINITY : 0;
    int count = 0;
    std::vector<int64_t> k(n, 0);
    do {
      std::vector<int64_t> xi = {o[0]};
      bool inside = true;
      for (size_t i = 0; i < n; ++i) {
        const int64_t pad = w.same ? SamePadLow(in[i], w.window[i], w.strides[i], 1) : 0;
        const int64_t p = o[i + 1] * w.strides[i] + k[i] - pad;
        inside = inside && p >= 0 && p < in[i];
        xi.push_back(p);
      }
      if (!inside) continue;
      xi.push_back(o.back());
      const double v = xv[static_cast<size_t>(testing::Ravel(xi, xd))];
      acc = max ? std::max(acc, v) : acc + v;
      ++count;
    } while (testing::NextIndex(w.window, k));
    out[static_cast<size_t>(testing::Ravel(o, out_dims))] = max ? acc : acc / count;
  } while (testing::NextIndex(out_dims, o));
  return Make(x.DType(), out_dims, out);
}

/// Checks d sum(layer(x) * R) / dx against central differences in float64
/// (the layer's variables are created by the first trace and reused by the
/// others). Tolerance: rtol 1e-6, atol 1e-8 (step 1e-6).
::testing::AssertionResult CheckInputGradient(const std::shared_ptr<backends::Backend>& backend, Context ctx,
                                              const LayerFn& layer, const Tensor& x) {
  Tensor projection;
  auto loss = [&](Context c, Node n) {
    Node y = layer(c, n);
    if (!projection.Ok()) projection = RandomTensor(dtypes::Float64, y.Shape().Dims(), 99, -1, 1);
    return graph::ReduceAllSum(y * graph::Const(n.Graph(), projection));
  };
  auto forward = context::NewExec(backend, ctx, loss);
  auto backward = context::NewExec(backend, ctx, [&](Context c, Node n) { return graph::Gradient(loss(c, n), {n})[0]; });
  const std::vector<double> analytic = testing::ToDoubles(backward.Call(x));
  std::vector<double> values = testing::ToDoubles(x);
  constexpr double kStep = 1e-6;
  for (size_t e = 0; e < values.size(); ++e) {
    auto eval = [&](double delta) {
      std::vector<double> shifted = values;
      shifted[e] += delta;
      return forward.Call(testing::FromDoubles(x.Shape(), shifted)).Value<double>();
    };
    const double numeric = (eval(kStep) - eval(-kStep)) / (2 * kStep);
    if (!(std::abs(analytic[e] - numeric) <= 1e-8 + 1e-6 * std::abs(numeric))) {
      return ::testing::AssertionFailure() << "element " << e << ": analytic " << analytic[e] << ", numeric " << numeric;
    }
  }
  return ::testing::AssertionSuccess();
}

// --------------------------------------------------------------------- Dense.

TEST_P(LayersTest, DenseKnownValues) {
  Context ctx = context::New();
  // W = [[1, 2], [3, 4], [5, 6]], b = [0.5, -1].
  ctx.In("dense").VariableWithValue("weights", Make(dtypes::Float32, {3, 2}, {1, 2, 3, 4, 5, 6}));
  ctx.In("dense").VariableWithValue("biases", Make(dtypes::Float32, {2}, {0.5, -1}));
  auto dense = [](Context c, Node x) { return layers::Dense(c.In("dense"), x, 2); };
  // [1, 0, -1] W + b = [1 - 5, 2 - 6] + b; [1, 1, 1] W + b = [9, 12] + b.
  Tensor y = Apply(ctx, dense, Make(dtypes::Float32, {2, 3}, {1, 0, -1, 1, 1, 1}));
  EXPECT_TRUE(testing::AllClose(y, shapes::Make(dtypes::Float32, 2, 2), {-3.5, -5, 9.5, 11}, 0, 0));
  // Rank 3: the weights apply to the last axis; a re-trace reuses the variables.
  Tensor y3 = Apply(ctx, dense, Make(dtypes::Float32, {2, 1, 3}, {1, 0, -1, 1, 1, 1}));
  EXPECT_TRUE(testing::AllClose(y3, shapes::Make(dtypes::Float32, 2, 1, 2), {-3.5, -5, 9.5, 11}, 0, 0));
  EXPECT_EQ(ctx.Variables().size(), 2u);
}

TEST_P(LayersTest, DenseCreatesVariablesOnceAndReusesThemOnRetrace) {
  Context ctx = context::New();
  auto exec = context::NewExec(backend_, ctx, [](Context c, Node x) { return layers::Dense(c.In("d"), x, 5); });
  EXPECT_EQ(exec.Call(RandomTensor(dtypes::Float32, {4, 3}, 1)).Shape(), shapes::Make(dtypes::Float32, 4, 5));
  EXPECT_EQ(exec.Call(RandomTensor(dtypes::Float32, {1, 7, 3}, 2)).Shape(), shapes::Make(dtypes::Float32, 1, 7, 5));
  EXPECT_EQ(exec.CacheSize(), 2u);
  ASSERT_EQ(ctx.Variables().size(), 2u);
  Variable* w = ctx.GetVariableByScopeAndName("/d/weights");
  Variable* b = ctx.GetVariableByScopeAndName("/d/biases");
  ASSERT_NE(w, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(w->Shape(), shapes::Make(dtypes::Float32, 3, 5));
  // GlorotUniform: |w| <= sqrt(6 / (3 + 5)), not all zero; biases zeros.
  double max_abs = 0;
  for (double v : testing::ToDoubles(w->Value())) max_abs = std::max(max_abs, std::abs(v));
  EXPECT_GT(max_abs, 0);
  EXPECT_LE(max_abs, std::sqrt(6.0 / 8));
  EXPECT_TRUE(testing::AllClose(b->Value(), shapes::Make(dtypes::Float32, 5), std::vector<double>(5, 0), 0, 0));
  // Another input width is an error naming the variable.
  KILN_EXPECT_ERROR(exec.Call(RandomTensor(dtypes::Float32, {4, 2}, 3)),
                    "variable /d/weights exists with shape Float32[3, 5], requested Float32[2, 5]");
}

TEST_P(LayersTest, DenseUsesTheContextInitializerForWeightsOnly) {
  Context ctx = context::New();
  auto dense = [](Context c, Node x) { return layers::Dense(c.WithInitializer(initializers::Constant(0.5)), x, 2); };
  Tensor y = Apply(ctx, dense, Make(dtypes::Float64, {1, 2}, {1, 3}));
  EXPECT_TRUE(testing::AllClose(y, shapes::Make(dtypes::Float64, 1, 2), {2, 2}, 0, 0));  // biases stay zero
  Context no_bias = context::New();
  Apply(no_bias, [](Context c, Node x) { return layers::Dense(c, x, 4, /*use_bias=*/false); },
        RandomTensor(dtypes::Float32, {2, 3}, 4));
  ASSERT_EQ(no_bias.Variables().size(), 1u);
  EXPECT_EQ(no_bias.Variables()[0]->ScopeAndName(), "/weights");
}

TEST_P(LayersTest, DenseGradientWithRespectToInput) {
  EXPECT_TRUE(CheckInputGradient(backend_, context::New(), [](Context c, Node x) { return layers::Dense(c, x, 3); },
                                 RandomTensor(dtypes::Float64, {2, 4}, 5)));
}

// ---------------------------------------------------------------------- Conv.

TEST_P(LayersTest, ConvHandComputed1D) {
  // x = [1, 2, 3, 4], kernel = [1, 0, -1]: y[i] = x[i] - x[i + 2] (cross-correlation).
  auto run = [&](const layers::ConvOptions& options) {
    Context ctx = context::New();
    ctx.VariableWithValue("weights", Make(dtypes::Float32, {3, 1, 1}, {1, 0, -1}));
    return Apply(ctx, [&](Context c, Node x) { return layers::Conv(c, x, 1, {3}, options); },
                 Make(dtypes::Float32, {1, 4, 1}, {1, 2, 3, 4}));
  };
  EXPECT_TRUE(testing::AllClose(run({}), shapes::Make(dtypes::Float32, 1, 2, 1), {-2, -2}, 0, 0));
  // "same", stride 1: pad 1 each side, [0, 1, 2, 3, 4, 0].
  EXPECT_TRUE(testing::AllClose(run({.padding = layers::Padding::kSame}), shapes::Make(dtypes::Float32, 1, 4, 1),
                                {-2, -2, -2, 3}, 0, 0));
  // "same", stride 2: total pad 1, all on the high side: [1, 2, 3, 4, 0] at 0 and 2.
  EXPECT_TRUE(testing::AllClose(run({.strides = {2}, .padding = layers::Padding::kSame}),
                                shapes::Make(dtypes::Float32, 1, 2, 1), {-2, 3}, 0, 0));
  // "valid", stride 2 over a length-4 input: one window.
  EXPECT_TRUE(testing::AllClose(run({.strides = {2}}), shapes::Make(dtypes::Float32, 1, 1, 1), {-2}, 0, 0));
  // Dilation 2 with a 3-tap kernel spans 5 positions: "same" pads 2 each side.
  EXPECT_TRUE(testing::AllClose(run({.padding = layers::Padding::kSame, .dilations = {2}}),
                                shapes::Make(dtypes::Float32, 1, 4, 1), {-3, -4, 1, 2}, 0, 0));
}

TEST_P(LayersTest, ConvMatchesNaiveReference) {
  struct Case {
    std::vector<int64_t> x_dims, kernel;
    layers::ConvOptions options;
  };
  const std::vector<Case> cases = {
      {{2, 7, 3}, {3}, {.strides = {2}, .padding = layers::Padding::kSame}},
      {{2, 5, 6, 3}, {3, 2}, {}},
      {{1, 5, 6, 2}, {3, 3}, {.strides = {2, 1}, .padding = layers::Padding::kSame}},
      {{1, 6, 6, 2}, {2, 3}, {.strides = {1, 2}, .padding = layers::Padding::kSame, .dilations = {2, 1}}},
      {{1, 4, 5, 3, 2}, {2, 2, 2}, {.padding = layers::Padding::kSame, .use_bias = false}},
  };
  uint64_t seed = 10;
  for (const Case& c : cases) {
    SCOPED_TRACE(shapes::Make(dtypes::Float32, c.x_dims).ToString());
    Context ctx = context::New();
    Tensor x = RandomTensor(dtypes::Float64, c.x_dims, ++seed);
    Tensor y = Apply(ctx, [&](Context cc, Node n) { return layers::Conv(cc, n, 4, c.kernel, c.options); }, x);
    const size_t n = c.kernel.size();
    WindowSpec spec{c.kernel, c.options.strides, c.options.dilations, c.options.padding == layers::Padding::kSame};
    if (spec.strides.empty()) spec.strides.assign(n, 1);
    if (spec.dilations.empty()) spec.dilations.assign(n, 1);
    // Biases are zeros at creation; set them to known values to check they are added.
    std::vector<double> bias;
    if (c.options.use_bias) {
      bias = {0.5, -1, 2, 0};
      ctx.GetVariable("biases")->SetValue(Make(dtypes::Float64, {4}, bias));
      y = Apply(ctx, [&](Context cc, Node n) { return layers::Conv(cc, n, 4, c.kernel, c.options); }, x);
    }
    Tensor want = NaiveConv(x, ctx.GetVariable("weights")->Value(), bias, spec);
    EXPECT_TRUE(testing::AllClose(y, want, 1e-12, 1e-12));  // Float64: only rounding differences
  }
}

TEST_P(LayersTest, ConvGradientWithRespectToInput) {
  layers::ConvOptions options{.strides = {2, 1}, .padding = layers::Padding::kSame};
  EXPECT_TRUE(CheckInputGradient(backend_, context::New(),
                                 [&](Context c, Node x) { return layers::Conv(c, x, 2, {3, 2}, options); },
                                 RandomTensor(dtypes::Float64, {1, 4, 3, 2}, 6)));
}

// --------------------------------------------------------------------- Pools.

TEST_P(LayersTest, PoolsHandComputed) {
  Tensor x = Counting({1, 3, 3, 1}, 1);  // [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
  auto pool = [&](bool max, layers::PoolOptions options) {
    return Apply(context::New(),
                 [&](Context, Node n) { return max ? layers::MaxPool(n, options) : layers::AvgPool(n, options); }, x);
  };
  const auto out22 = shapes::Make(dtypes::Float32, 1, 2, 2, 1);
  EXPECT_TRUE(testing::AllClose(pool(true, {.window = {2, 2}, .strides = {1, 1}}), out22, {5, 6, 8, 9}, 0, 0));
  EXPECT_TRUE(testing::AllClose(pool(false, {.window = {2, 2}, .strides = {1, 1}}), out22, {3, 4, 6, 7}, 0, 0));
  // "same", stride 2 (the default strides = window): windows {1,2,4,5}, {3,6}, {7,8}, {9}.
  const layers::PoolOptions same{.window = {2, 2}, .padding = layers::Padding::kSame};
  EXPECT_TRUE(testing::AllClose(pool(true, same), out22, {5, 6, 8, 9}, 0, 0));
  EXPECT_TRUE(testing::AllClose(pool(false, same), out22, {3, 4.5, 7.5, 9}, 0, 0));
  // "valid" with the default strides drops the last row and column.
  EXPECT_TRUE(testing::AllClose(pool(false, {.window = {2, 2}}), shapes::Make(dtypes::Float32, 1, 1, 1, 1), {3}, 0, 0));
  // Max pooling of negative values: the padding never wins.
  Tensor neg = Make(dtypes::Float32, {1, 3, 1}, {-5, -4, -3});
  Tensor y = Apply(context::New(),
                   [](Context, Node n) { return layers::MaxPool(n, {.window = {2}, .padding = layers::Padding::kSame}); },
                   neg);
  EXPECT_TRUE(testing::AllClose(y, shapes::Make(dtypes::Float32, 1, 2, 1), {-4, -3}, 0, 0));
}

TEST_P(LayersTest, PoolsMatchNaiveReference) {
  struct Case {
    std::vector<int64_t> x_dims, window, strides;
    bool same;
  };
  const std::vector<Case> cases = {
      {{2, 7, 3}, {3}, {2}, true},
      {{2, 7, 3}, {3}, {1}, false},
      {{1, 5, 6, 2}, {2, 3}, {2, 2}, true},
      {{2, 6, 5, 3}, {3, 2}, {1, 2}, false},
      {{1, 3, 4, 5, 2}, {2, 2, 3}, {2, 2, 2}, true},
  };
  uint64_t seed = 20;
  for (const Case& c : cases) {
    SCOPED_TRACE(shapes::Make(dtypes::Float32, c.x_dims).ToString());
    Tensor x = RandomTensor(dtypes::Float32, c.x_dims, ++seed);
    layers::PoolOptions options{c.window, c.strides, c.same ? layers::Padding::kSame : layers::Padding::kValid};
    WindowSpec spec{c.window, c.strides, std::vector<int64_t>(c.window.size(), 1), c.same};
    Tensor max = Apply(context::New(), [&](Context, Node n) { return layers::MaxPool(n, options); }, x);
    Tensor avg = Apply(context::New(), [&](Context, Node n) { return layers::AvgPool(n, options); }, x);
    EXPECT_TRUE(testing::AllClose(max, NaivePool(x, spec, true), 0, 0));
    EXPECT_TRUE(testing::AllClose(avg, NaivePool(x, spec, false), 1e-6, 1e-6));  // Float32 sums of <= 12 terms
  }
}

// ------------------------------------------------------------- Normalization.

/// Mean and (biased) variance of each column of a [rows, cols] array.
std::pair<std::vector<double>, std::vector<double>> ColumnMoments(const std::vector<double>& v, int64_t rows,
                                                                  int64_t cols) {
  std::vector<double> mean(static_cast<size_t>(cols), 0), var(static_cast<size_t>(cols), 0);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) mean[c] += v[r * cols + c] / static_cast<double>(rows);
  }
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) var[c] += std::pow(v[r * cols + c] - mean[c], 2) / static_cast<double>(rows);
  }
  return {mean, var};
}

TEST_P(LayersTest, BatchNormTrainingUsesBatchStatsAndUpdatesMovingAverages) {
  Context ctx = context::New();
  constexpr double kMomentum = 0.9, kEps = 1e-3;
  auto bn = [&](Context c, Node x) { return layers::BatchNorm(c.In("bn"), x, -1, kMomentum, kEps); };
  auto train = context::NewExec(backend_, ctx.WithTraining(true), bn);
  auto infer = context::NewExec(backend_, ctx, bn);
  Tensor x = RandomTensor(dtypes::Float64, {6, 3}, 7, -1, 5);
  const auto xv = testing::ToDoubles(x);
  auto [mean, var] = ColumnMoments(xv, 6, 3);

  std::vector<double> want(xv.size()), want_mean(3, 0), want_var(3, 1);
  for (size_t i = 0; i < xv.size(); ++i) want[i] = (xv[i] - mean[i % 3]) / std::sqrt(var[i % 3] + kEps);
  for (int step = 0; step < 2; ++step) {
    EXPECT_TRUE(testing::AllClose(train.Call(x), x.Shape(), want, 1e-12, 1e-12));
    for (size_t c = 0; c < 3; ++c) {
      want_mean[c] = kMomentum * want_mean[c] + (1 - kMomentum) * mean[c];
      want_var[c] = kMomentum * want_var[c] + (1 - kMomentum) * var[c];
    }
    Variable* moving_mean = ctx.GetVariableByScopeAndName("/bn/mean");
    ASSERT_NE(moving_mean, nullptr);
    EXPECT_TRUE(testing::AllClose(moving_mean->Value(), shapes::Make(dtypes::Float64, 3), want_mean, 1e-12, 1e-12));
    EXPECT_TRUE(testing::AllClose(ctx.GetVariableByScopeAndName("/bn/variance")->Value(),
                                  shapes::Make(dtypes::Float64, 3), want_var, 1e-12, 1e-12));
  }
  EXPECT_FALSE(ctx.GetVariableByScopeAndName("/bn/mean")->Trainable());
  EXPECT_FALSE(ctx.GetVariableByScopeAndName("/bn/variance")->Trainable());
  EXPECT_TRUE(ctx.GetVariableByScopeAndName("/bn/scale")->Trainable());

  // Inference normalizes with the moving averages, with learned scale/offset,
  // and leaves the averages alone.
  ctx.GetVariableByScopeAndName("/bn/scale")->SetValue(Make(dtypes::Float64, {3}, {2, 1, 0.5}));
  ctx.GetVariableByScopeAndName("/bn/offset")->SetValue(Make(dtypes::Float64, {3}, {1, 0, -1}));
  const std::vector<double> scale = {2, 1, 0.5}, offset = {1, 0, -1};
  for (size_t i = 0; i < xv.size(); ++i) {
    const size_t c = i % 3;
    want[i] = (xv[i] - want_mean[c]) / std::sqrt(want_var[c] + kEps) * scale[c] + offset[c];
  }
  EXPECT_TRUE(testing::AllClose(infer.Call(x), x.Shape(), want, 1e-12, 1e-12));
  EXPECT_TRUE(testing::AllClose(ctx.GetVariableByScopeAndName("/bn/mean")->Value(), shapes::Make(dtypes::Float64, 3),
                                want_mean, 1e-12, 1e-12));
}

TEST_P(LayersTest, BatchNormOverAnInnerAxis) {
  // Channels-first [batch, C, h, w], axis 1: statistics over batch, h and w.
  Context ctx = context::New();
  Tensor x = RandomTensor(dtypes::Float64, {3, 2, 2, 2}, 8, 0, 4);
  Tensor y = Apply(ctx.WithTraining(true), [](Context c, Node n) { return layers::BatchNorm(c, n, 1); }, x);
  EXPECT_EQ(ctx.GetVariable("scale")->Shape(), shapes::Make(dtypes::Float64, 2));
  const auto yv = testing::ToDoubles(y);
  for (int64_t ch = 0; ch < 2; ++ch) {
    double m = 0, s = 0;
    for (size_t i = 0; i < yv.size(); ++i) {
      if ((static_cast<int64_t>(i) / 4) % 2 == ch) m += yv[i] / 12;
    }
    for (size_t i = 0; i < yv.size(); ++i) {
      if ((static_cast<int64_t>(i) / 4) % 2 == ch) s += (yv[i] - m) * (yv[i] - m) / 12;
    }
    EXPECT_NEAR(m, 0, 1e-12);
    EXPECT_GT(s, 0.99);  // var / (var + 1e-3) for a variance of ~1.3
    EXPECT_LT(s, 1.0);
  }
}

TEST_P(LayersTest, BatchNormGradientInTraining) {
  EXPECT_TRUE(CheckInputGradient(backend_, context::New().WithTraining(true),
                                 [](Context c, Node x) { return layers::BatchNorm(c, x); },
                                 RandomTensor(dtypes::Float64, {4, 3}, 9)));
}

TEST_P(LayersTest, LayerNormNormalizesEachRow) {
  Context ctx = context::New();
  Tensor x = RandomTensor(dtypes::Float64, {3, 8}, 11, 50, 60);  // a large mean tests the centering
  Tensor y = Apply(ctx, [](Context c, Node n) { return layers::LayerNorm(c, n); }, x);
  const auto xv = testing::ToDoubles(x), yv = testing::ToDoubles(y);
  for (size_t r = 0; r < 3; ++r) {
    double m = 0, v = 0, ym = 0, yvar = 0;
    for (size_t c = 0; c < 8; ++c) m += xv[r * 8 + c] / 8;
    for (size_t c = 0; c < 8; ++c) v += std::pow(xv[r * 8 + c] - m, 2) / 8;
    for (size_t c = 0; c < 8; ++c) ym += yv[r * 8 + c] / 8;
    for (size_t c = 0; c < 8; ++c) yvar += std::pow(yv[r * 8 + c] - ym, 2) / 8;
    EXPECT_NEAR(ym, 0, 1e-12);
    EXPECT_NEAR(yvar, v / (v + 1e-5), 1e-12);
  }
  // Learned scale and offset: mean = offset, std ~ scale.
  ctx.GetVariable("scale")->SetValue(tensors::FromValue(std::vector<double>(8, 2.0)));
  ctx.GetVariable("offset")->SetValue(tensors::FromValue(std::vector<double>(8, 1.0)));
  const auto zv = testing::ToDoubles(Apply(ctx, [](Context c, Node n) { return layers::LayerNorm(c, n); }, x));
  for (size_t i = 0; i < zv.size(); ++i) EXPECT_NEAR(zv[i], 2 * yv[i] + 1, 1e-12);
}

TEST_P(LayersTest, LayerNormOverSeveralAxes) {
  Context ctx = context::New();
  Tensor x = RandomTensor(dtypes::Float32, {2, 3, 4}, 12);
  Tensor y = Apply(ctx, [](Context c, Node n) { return layers::LayerNorm(c, n, {-1, 1}); }, x);
  EXPECT_EQ(ctx.GetVariable("scale")->Shape(), shapes::Make(dtypes::Float32, 3, 4));
  EXPECT_EQ(ctx.GetVariable("offset")->Shape(), shapes::Make(dtypes::Float32, 3, 4));
  const auto yv = testing::ToDoubles(y);
  for (size_t b = 0; b < 2; ++b) {
    double m = 0, s = 0;
    for (size_t i = 0; i < 12; ++i) m += yv[b * 12 + i] / 12;
    for (size_t i = 0; i < 12; ++i) s += std::pow(yv[b * 12 + i] - m, 2) / 12;
    EXPECT_NEAR(m, 0, 1e-6);  // Float32
    EXPECT_NEAR(s, 1, 1e-4);  // minus eps / var ~ 1e-5
  }
}

TEST_P(LayersTest, LayerNormGradient) {
  EXPECT_TRUE(CheckInputGradient(backend_, context::New(), [](Context c, Node x) { return layers::LayerNorm(c, x); },
                                 RandomTensor(dtypes::Float64, {2, 5}, 13)));
}

TEST_P(LayersTest, RMSNormHasUnitMeanSquare) {
  Context ctx = context::New();
  Tensor x = RandomTensor(dtypes::Float64, {4, 6}, 14, -3, 3);
  Tensor y = Apply(ctx, [](Context c, Node n) { return layers::RMSNorm(c, n, 1e-6); }, x);
  EXPECT_EQ(ctx.Variables().size(), 1u);
  const auto xv = testing::ToDoubles(x), yv = testing::ToDoubles(y);
  for (size_t r = 0; r < 4; ++r) {
    double ms = 0;
    for (size_t c = 0; c < 6; ++c) ms += xv[r * 6 + c] * xv[r * 6 + c] / 6;
    for (size_t c = 0; c < 6; ++c) EXPECT_NEAR(yv[r * 6 + c], xv[r * 6 + c] / std::sqrt(ms + 1e-6), 1e-12);
  }
}

// -------------------------------------------------------------------- Dropout.

TEST_P(LayersTest, DropoutInTrainingZeroesAboutRateAndKeepsTheMean) {
  constexpr int64_t kN = 200000;
  constexpr double kRate = 0.3;
  Context ctx = context::New().WithTraining(true);
  auto exec = context::NewExec(backend_, ctx, [&](Context c, Node x) { return layers::Dropout(c, x, kRate); });
  Tensor ones = Make(dtypes::Float32, {kN}, std::vector<double>(kN, 1));
  const auto first = testing::ToDoubles(exec.Call(ones));
  const auto second = testing::ToDoubles(exec.Call(ones));
  int64_t zeros = 0;
  double sum = 0;
  for (double v : first) {
    if (v == 0) ++zeros;
    else EXPECT_NEAR(v, 1 / (1 - kRate), 1e-6);
    sum += v;
  }
  // Standard errors: sqrt(0.21 / 2e5) ~ 0.001 for the fraction, ~0.0015 for the mean: 5-sigma bounds.
  EXPECT_NEAR(static_cast<double>(zeros) / kN, kRate, 0.005);
  EXPECT_NEAR(sum / kN, 1, 0.008);
  EXPECT_NE(first, second);  // a new mask per call
}

TEST_P(LayersTest, DropoutIsIdentityInInferenceAndForRateZero) {
  Tensor x = RandomTensor(dtypes::Float32, {3, 50}, 15);
  EXPECT_TRUE(testing::AllClose(Apply(context::New(), [](Context c, Node n) { return layers::Dropout(c, n, 0.5); }, x),
                                x, 0, 0));
  EXPECT_TRUE(testing::AllClose(
      Apply(context::New().WithTraining(true), [](Context c, Node n) { return layers::Dropout(c, n, 0); }, x), x, 0, 0));
}

// ------------------------------------------------------------------ Embedding.

TEST_P(LayersTest, EmbeddingPicksRows) {
  for (dtypes::DType index_dtype : {dtypes::Int32, dtypes::Int64, dtypes::Uint8}) {
    SCOPED_TRACE(dtypes::Name(index_dtype));
    Context ctx = context::New();
    ctx.In("emb").VariableWithValue("embeddings", Counting({5, 3}));  // row r = [3r, 3r + 1, 3r + 2]
    Tensor y = Apply(ctx, [](Context c, Node n) { return layers::Embedding(c.In("emb"), n, 5, 3); },
                     Make(index_dtype, {2, 2}, {0, 4, 2, 2}));
    EXPECT_TRUE(testing::AllClose(y, shapes::Make(dtypes::Float32, 2, 2, 3), {0, 1, 2, 12, 13, 14, 6, 7, 8, 6, 7, 8}, 0, 0));
  }
  Context ctx = context::New();
  Tensor y = Apply(ctx, [](Context c, Node n) { return layers::Embedding(c, n, 10, 4); }, tensors::FromValue(int32_t{3}));
  EXPECT_EQ(y.Shape(), shapes::Make(dtypes::Float32, 4));  // a scalar index gives one row
  EXPECT_EQ(ctx.GetVariable("embeddings")->Shape(), shapes::Make(dtypes::Float32, 10, 4));
}

// ------------------------------------------------------------------ Attention.

/// Sets identity projections and zero biases for attention with d = key_dim.
void SetIdentityProjections(Context ctx, int64_t d) {
  std::vector<double> eye(static_cast<size_t>(d * d), 0);
  for (int64_t i = 0; i < d; ++i) eye[static_cast<size_t>(i * d + i)] = 1;
  for (const char* name : {"query", "key", "value", "output"}) {
    ctx.In(name).VariableWithValue("weights", Make(dtypes::Float64, {d, d}, eye));
    ctx.In(name).VariableWithValue("biases", Make(dtypes::Float64, {d}, std::vector<double>(d, 0)));
  }
}

/// Single-head attention of x [len, d] with itself in double; `allowed(q, k)`.
std::vector<double> NaiveSelfAttention(const std::vector<double>& x, int64_t len, int64_t d,
                                       const std::function<bool(int64_t, int64_t)>& allowed) {
  std::vector<double> out(static_cast<size_t>(len * d), 0);
  for (int64_t q = 0; q < len; ++q) {
    std::vector<double> w(static_cast<size_t>(len));
    double max = -INFINITY, total = 0;
    for (int64_t k = 0; k < len; ++k) {
      double s = 0;
      for (int64_t j = 0; j < d; ++j) s += x[q * d + j] * x[k * d + j];
      w[k] = allowed(q, k) ? s / std::sqrt(static_cast<double>(d)) : -INFINITY;
      max = std::max(max, w[k]);
    }
    for (double& v : w) total += (v = std::exp(v - max));
    for (int64_t k = 0; k < len; ++k) {
      for (int64_t j = 0; j < d; ++j) out[q * d + j] += w[k] / total * x[k * d + j];
    }
  }
  return out;
}

TEST_P(LayersTest, AttentionHandCheckable) {
  constexpr int64_t kLen = 3, kD = 2;
  Tensor x = Make(dtypes::Float64, {1, kLen, kD}, {1, 0, 0, 1, 1, 1});
  const auto xv = testing::ToDoubles(x);
  auto run = [&](layers::AttentionOptions options, const Tensor& mask) {
    Context ctx = context::New();
    SetIdentityProjections(ctx, kD);
    auto exec = context::NewExec(backend_, ctx, [&](Context c, Node n, Node m) {
      layers::AttentionOptions o = options;
      if (mask.Ok()) o.mask = m;
      return layers::MultiHeadAttention(c, n, n, n, 1, kD, o);
    });
    return exec.Call(x, mask.Ok() ? mask : tensors::FromValue(true));
  };
  auto all = [](int64_t, int64_t) { return true; };
  EXPECT_TRUE(testing::AllClose(run({}, Tensor()), x.Shape(), NaiveSelfAttention(xv, kLen, kD, all), 1e-12, 1e-12));
  // Causal: position 0 attends only to itself, so its output is its value.
  Tensor causal = run({.causal = true}, Tensor());
  auto lower = [](int64_t q, int64_t k) { return k <= q; };
  EXPECT_TRUE(testing::AllClose(causal, x.Shape(), NaiveSelfAttention(xv, kLen, kD, lower), 1e-12, 1e-12));
  EXPECT_EQ(testing::ToDoubles(causal)[0], 1);
  EXPECT_EQ(testing::ToDoubles(causal)[1], 0);
  // A [batch, q, kv] mask allowing only key 2: every output is value 2.
  Tensor only2 = Make(dtypes::Bool, {1, kLen, kLen}, {0, 0, 1, 0, 0, 1, 0, 0, 1});
  EXPECT_TRUE(testing::AllClose(run({}, only2), x.Shape(), {1, 1, 1, 1, 1, 1}, 1e-12, 1e-12));
  // Mask and causal combine: query 1 may see keys 0 and 1, the mask removes key 0.
  Tensor no0 = Make(dtypes::Bool, {kLen, kLen}, {1, 1, 1, 0, 1, 1, 0, 1, 1});
  auto both = [](int64_t q, int64_t k) { return k <= q && (k != 0 || q == 0); };
  EXPECT_TRUE(testing::AllClose(run({.causal = true}, no0), x.Shape(), NaiveSelfAttention(xv, kLen, kD, both), 1e-12,
                                1e-12));
}

TEST_P(LayersTest, AttentionShapesAndVariables) {
  Context ctx = context::New();
  auto exec = context::NewExec(backend_, ctx, [](Context c, Node q, Node kv) {
    return layers::MultiHeadAttention(c.In("mha"), q, kv, kv, 2, 4, {.causal = true});
  });
  Tensor y = exec.Call(RandomTensor(dtypes::Float32, {2, 3, 6}, 16), RandomTensor(dtypes::Float32, {2, 5, 6}, 17));
  EXPECT_EQ(y.Shape(), shapes::Make(dtypes::Float32, 2, 3, 6));
  EXPECT_EQ(ctx.GetVariableByScopeAndName("/mha/query/weights")->Shape(), shapes::Make(dtypes::Float32, 6, 8));
  EXPECT_EQ(ctx.GetVariableByScopeAndName("/mha/value/biases")->Shape(), shapes::Make(dtypes::Float32, 8));
  EXPECT_EQ(ctx.GetVariableByScopeAndName("/mha/output/weights")->Shape(), shapes::Make(dtypes::Float32, 8, 6));
  EXPECT_EQ(ctx.Variables().size(), 8u);
  for (double v : testing::ToDoubles(y)) EXPECT_TRUE(std::isfinite(v));
}

TEST_P(LayersTest, AttentionDropoutOnlyInTraining) {
  Tensor x = RandomTensor(dtypes::Float32, {2, 4, 8}, 18);
  auto attention = [](Context c, Node n, double dropout) {
    return layers::MultiHeadAttention(c, n, n, n, 2, 4, {.dropout = dropout});
  };
  Context ctx = context::New();
  Tensor plain = Apply(ctx, [&](Context c, Node n) { return attention(c, n, 0); }, x);
  // Same variables (reused), dropout configured but inference: identical.
  Tensor inference = Apply(ctx, [&](Context c, Node n) { return attention(c, n, 0.5); }, x);
  EXPECT_TRUE(testing::AllClose(inference, plain, 0, 0));
  Tensor training = Apply(ctx.WithTraining(true), [&](Context c, Node n) { return attention(c, n, 0.5); }, x);
  EXPECT_EQ(training.Shape(), plain.Shape());
  EXPECT_FALSE(testing::AllClose(training, plain, 1e-3, 1e-3));
}

// ----------------------------------------------------------------- Activation.

TEST_P(LayersTest, ActivationsByName) {
  const std::vector<double> xs = {-3, -0.5, 0, 0.25, 2};
  const std::vector<std::pair<std::string, std::function<double(double)>>> cases = {
      {"relu", [](double v) { return std::max(v, 0.0); }},
      {"leaky_relu", [](double v) { return v > 0 ? v : 0.01 * v; }},
      {"gelu", [](double v) { return v * (1 + std::erf(v / std::sqrt(2.0))) / 2; }},
      {"silu", [](double v) { return v / (1 + std::exp(-v)); }},
      {"swish", [](double v) { return v / (1 + std::exp(-v)); }},
      {"tanh", [](double v) { return std::tanh(v); }},
      {"sigmoid", [](double v) { return 1 / (1 + std::exp(-v)); }},
      {"softplus", [](double v) { return std::log1p(std::exp(v)); }},
      {"linear", [](double v) { return v; }},
      {"none", [](double v) { return v; }},
  };
  Tensor x = Make(dtypes::Float64, {5}, xs);
  for (const auto& [activation, fn] : cases) {
    const std::string name = activation;  // a variable: Clang 14 cannot capture a structured binding
    SCOPED_TRACE(name);
    std::vector<double> want;
    for (double v : xs) want.push_back(fn(v));
    Tensor y = Apply(context::New(), [&](Context, Node n) { return layers::Activation(name, n); }, x);
    EXPECT_TRUE(testing::AllClose(y, x.Shape(), want, 1e-12, 1e-14));
  }
}

// ----------------------------------------------------------------- Sequential.

TEST_P(LayersTest, SequentialMlpScopesAndShapes) {
  Context ctx = context::New();
  auto model = layers::Sequential().Dense(8).Activation("relu").Dropout(0.5).Dense(3);
  Tensor y = Apply(ctx.WithTraining(true), [&](Context c, Node x) { return model.Apply(c, x); },
                   RandomTensor(dtypes::Float32, {4, 5}, 19));
  EXPECT_EQ(y.Shape(), shapes::Make(dtypes::Float32, 4, 3));
  EXPECT_EQ(ctx.GetVariableByScopeAndName("/0_dense/weights")->Shape(), shapes::Make(dtypes::Float32, 5, 8));
  EXPECT_EQ(ctx.GetVariableByScopeAndName("/3_dense/biases")->Shape(), shapes::Make(dtypes::Float32, 3));
  // Variables: 2 per Dense, plus the random state used by Dropout.
  EXPECT_EQ(ctx.Variables().size(), 5u);
}

TEST_P(LayersTest, SequentialConvNet) {
  Context ctx = context::New();
  auto model = layers::Sequential()
                   .Conv(4, {3, 3}, {.padding = layers::Padding::kSame})
                   .BatchNorm()
                   .Activation("relu")
                   .MaxPool({.window = {2, 2}})
                   .AvgPool({.window = {3, 3}, .strides = {1, 1}, .padding = layers::Padding::kSame})
                   .LayerNorm()
                   .Flatten()
                   .Add("scale", [](Context, Node x) { return x * 2.0; })
                   .Dense(2);
  auto exec = context::NewExec(backend_, ctx.WithTraining(true), [&](Context c, Node x) { return model.Apply(c, x); });
  EXPECT_EQ(exec.Call(RandomTensor(dtypes::Float32, {2, 6, 6, 1}, 20)).Shape(), shapes::Make(dtypes::Float32, 2, 2));
  EXPECT_NE(ctx.GetVariableByScopeAndName("/0_conv/weights"), nullptr);
  EXPECT_NE(ctx.GetVariableByScopeAndName("/1_batch_norm/mean"), nullptr);
  EXPECT_NE(ctx.GetVariableByScopeAndName("/5_layer_norm/scale"), nullptr);
  EXPECT_EQ(ctx.GetVariableByScopeAndName("/8_dense/weights")->Shape(), shapes::Make(dtypes::Float32, 36, 2));
  // A second batch size re-traces and reuses every variable.
  const size_t count = ctx.Variables().size();
  EXPECT_EQ(exec.Call(RandomTensor(dtypes::Float32, {3, 6, 6, 1}, 21)).Shape(), shapes::Make(dtypes::Float32, 3, 2));
  EXPECT_EQ(ctx.Variables().size(), count);
}

// ---------------------------------------------------------------- Half types.

TEST_P(LayersTest, HalfPrecisionModelsRun) {
  for (dtypes::DType dtype : {dtypes::Float16, dtypes::BFloat16}) {
    SCOPED_TRACE(dtypes::Name(dtype));
    Context ctx = context::New();
    auto model = layers::Sequential()
                     .Conv(3, {3}, {.padding = layers::Padding::kSame})
                     .BatchNorm()
                     .AvgPool({.window = {2}, .padding = layers::Padding::kSame})
                     .LayerNorm()
                     .Activation("gelu")
                     .Dropout(0.25)
                     .Flatten()
                     .Dense(2);
    Tensor x = RandomTensor(dtype, {2, 5, 2}, 22);
    Tensor y = Apply(ctx.WithTraining(true), [&](Context c, Node n) { return model.Apply(c, n); }, x);
    EXPECT_EQ(y.Shape(), shapes::Make(dtype, 2, 2));
    for (double v : testing::ToDoubles(y)) EXPECT_TRUE(std::isfinite(v));
    Tensor attention = Apply(ctx, [](Context c, Node n) {
      return layers::MultiHeadAttention(c.In("mha"), n, n, n, 2, 2, {.causal = true});
    }, RandomTensor(dtype, {1, 4, 3}, 23));
    for (double v : testing::ToDoubles(attention)) EXPECT_TRUE(std::isfinite(v));
  }
}

// --------------------------------------------------------------------- Errors.

TEST_P(LayersTest, ErrorMessages) {
  Context ctx = context::New();
  auto fails = [&](const LayerFn& layer, std::vector<int64_t> dims, dtypes::DType dtype = dtypes::Float32) {
    Apply(ctx, layer, Make(dtype, dims, std::vector<double>(static_cast<size_t>(testing::NumElements(dims)), 1)));
  };
  Context training = ctx.WithTraining(true);
  KILN_EXPECT_ERROR(Apply(training, [](Context c, Node x) { return layers::Dropout(c, x, 1); }, Counting({2})),
                    "layers::Dropout: rate must be in [0, 1), got 1");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Dropout(c, x, -0.1); }, {2}),
                    "layers::Dropout: rate must be in [0, 1), got -0.1");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Dropout(c, x, NAN); }, {2}),
                    "layers::Dropout: rate must be in [0, 1), got nan");
  KILN_EXPECT_ERROR(layers::Sequential().Dropout(1.5), "layers::Dropout: rate must be in [0, 1), got 1.5");
  KILN_EXPECT_ERROR(fails([](Context, Node x) { return layers::Activation("rleu", x); }, {2}),
                    "layers::Activation: unknown activation \"rleu\"; known: relu, leaky_relu, gelu, silu, swish, tanh, "
                    "sigmoid, softplus, linear, none");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Conv(c, x, 2, {3}); }, {4, 3}),
                    "layers::Conv: x must be [batch, spatial..., channels] with 1 to 3 spatial axes (rank 3 to 5), got "
                    "Float32[4, 3]");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Conv(c, x, 2, {3}); }, {1, 5, 5, 1}),
                    "layers::Conv: kernel_size [3] must have one value per spatial axis (2) of x Float32[1, 5, 5, 1]");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Conv(c, x, 2, {3, 3}, {.strides = {1}}); }, {1, 5, 5, 1}),
                    "layers::Conv: strides [1] must have one value per spatial axis (2)");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Conv(c, x, 2, {3, 3}, {.dilations = {1, 0}}); },
                          {1, 5, 5, 1}),
                    "layers::Conv: dilations [1, 0] must all be >= 1");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Conv(c, x, 2, {3, 6}); }, {1, 5, 5, 1}),
                    "layers::Conv: the (dilated) kernel [3, 6] is larger than the spatial dims of x Float32[1, 5, 5, 1]");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Conv(c, x, 0, {3}); }, {1, 5, 1}),
                    "layers::Conv: filters must be >= 1, got 0");
  KILN_EXPECT_ERROR(fails([](Context, Node x) { return layers::MaxPool(x, {.window = {2}}); }, {4, 3}),
                    "layers::MaxPool: x must be [batch, spatial..., channels] with at least 1 spatial axis (rank >= 3), "
                    "got Float32[4, 3]");
  KILN_EXPECT_ERROR(fails([](Context, Node x) { return layers::AvgPool(x, {.window = {2}}); }, {1, 4, 4, 3}),
                    "layers::AvgPool: window [2] must have one value per spatial axis (2) of x Float32[1, 4, 4, 3]");
  KILN_EXPECT_ERROR(fails([](Context, Node x) { return layers::AvgPool(x, {.window = {5}}); }, {1, 4, 3}),
                    "layers::AvgPool: window [5] is larger than the spatial dims of x Float32[1, 4, 3]");
  KILN_EXPECT_ERROR(fails([](Context, Node x) { return layers::MaxPool(x, {.window = {2}, .strides = {0}}); }, {1, 4, 3}),
                    "layers::MaxPool: strides [0] must all be >= 1");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Dense(c, x, 2); }, {2, 3}, dtypes::Int32),
                    "layers::Dense: x must have a float dtype, got Int32[2, 3]");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Dense(c, x, 0); }, {2, 3}),
                    "layers::Dense: units must be >= 1, got 0");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Embedding(c, x, 4, 2); }, {3}),
                    "layers::Embedding: indices must have an integer dtype, got Float32[3]");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::BatchNorm(c, x, 2); }, {4, 3}),
                    "layers::BatchNorm: axis 2 is out of range for rank 2");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::BatchNorm(c, x, -1, 1.5); }, {4, 3}),
                    "layers::BatchNorm: momentum must be in [0, 1], got 1.5");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::LayerNorm(c, x, {1, -1}); }, {4, 3}),
                    "layers::LayerNorm: axes [1, -1] repeat an axis (rank 2)");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::RMSNorm(c, x, -1); }, {4, 3}),
                    "layers::RMSNorm: epsilon must be >= 0, got -1");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::MultiHeadAttention(c, x, x, x, 1, 2); }, {4, 3}),
                    "layers::MultiHeadAttention: query, key and value must be [batch, len, d], got query Float32[4, 3]");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::MultiHeadAttention(c, x, x, x, 0, 2); }, {1, 4, 3}),
                    "layers::MultiHeadAttention: num_heads and key_dim must be >= 1, got 0 and 2");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) {
                      return layers::MultiHeadAttention(c, x, x, x, 1, 2, {.mask = graph::OnesLike(x)});
                    }, {1, 4, 3}),
                    "layers::MultiHeadAttention: mask must be Bool [q_len, kv_len], [batch, q_len, kv_len] or "
                    "[batch, heads, q_len, kv_len], got Float32[1, 4, 3]");
  KILN_EXPECT_ERROR(fails([](Context c, Node x) { return layers::Sequential().Flatten().Apply(c, x); }, {}),
                    "layers::Flatten: x must have rank >= 1 ([batch, ...]), got Float32");
  KILN_EXPECT_ERROR(layers::Sequential().Add("custom", nullptr), "layers::Sequential: layer \"custom\" is an empty function");
}

}  // namespace
}  // namespace kiln
