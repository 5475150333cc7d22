// Copyright 2026 The Kiln Authors.
// Resize on every backend: values PyTorch's F.interpolate gives on small
// ramps, a naive reference of the same rules on random inputs (several
// shapes, axes, methods, align_corners, dtypes), gradients against central
// finite differences in float64, and the error messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "kiln/graph/resize.h"
#include "tests/testing/gradcheck.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Interpolation;
using graph::Node;
using graph::ResizeOptions;
using tensors::Tensor;

class ResizeTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, ResizeTest, ::testing::ValuesIn(testing::BackendNames()));

Tensor Ramp(dtypes::DType dt, int64_t n) {
  std::vector<double> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<double>(i);
  return testing::FromDoubles(shapes::Shape(dt, {n}), v);
}

// Values printed by PyTorch 2.x for torch.arange(4.) viewed as [1, 1, 4].
TEST_P(ResizeTest, MatchesPyTorchOnRamps) {
  auto backend = Backend();
  auto run = [&](int64_t size, ResizeOptions o) {
    return testing::Run1(backend, [&](const std::vector<Node>& p) { return graph::Resize(p[0], {0}, {size}, o); },
                         {Ramp(dtypes::Float32, 4)});
  };
  // F.interpolate(x, size=8, mode="linear")
  EXPECT_TRUE(testing::AllClose(run(8, {}), shapes::Make(dtypes::Float32, 8),
                                {0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3}, 1e-6, 1e-6));
  // align_corners=True, size 7
  EXPECT_TRUE(testing::AllClose(run(7, {.align_corners = true}), shapes::Make(dtypes::Float32, 7),
                                {0, 0.5, 1, 1.5, 2, 2.5, 3}, 1e-6, 1e-6));
  // mode="nearest": size 8 and size 3
  EXPECT_TRUE(testing::AllClose(run(8, {.method = Interpolation::kNearest}), shapes::Make(dtypes::Float32, 8),
                                {0, 0, 1, 1, 2, 2, 3, 3}, 0, 0));
  EXPECT_TRUE(testing::AllClose(run(3, {.method = Interpolation::kNearest}), shapes::Make(dtypes::Float32, 3),
                                {0, 1, 2}, 0, 0));
  // linear, downsampling 4 -> 2: sources 0.5 and 2.5
  EXPECT_TRUE(testing::AllClose(run(2, {}), shapes::Make(dtypes::Float32, 2), {0.5, 2.5}, 1e-6, 1e-6));
  // Cubic convolution reproduces a ramp exactly away from the borders
  // (align_corners: outputs 0 and 6 sit on input samples 0 and 3).
  Tensor cubic = run(7, {.method = Interpolation::kCubic, .align_corners = true});
  const std::vector<double> c = testing::ToDoubles(cubic);
  for (int i : {0, 2, 3, 4, 6}) EXPECT_NEAR(c[static_cast<size_t>(i)], 0.5 * i, 1e-6) << i;
}

// The rules of resize.h written out directly, per output element and axis.
double SourcePosition(int64_t o, int64_t in, int64_t out, bool align, bool clamp0) {
  if (align) return out > 1 ? double(o) * double(in - 1) / double(out - 1) : 0.0;
  const double s = (double(o) + 0.5) * double(in) / double(out) - 0.5;
  return clamp0 ? std::max(s, 0.0) : s;
}

double CubicWeight(double x) {
  const double a = -0.75;
  x = std::abs(x);
  if (x <= 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
  return 0;
}

// Resizes axis `axis` of a row-major array.
std::vector<double> ReferenceAxis(const std::vector<double>& x, const std::vector<int64_t>& dims, int axis,
                                  int64_t out, ResizeOptions o, std::vector<int64_t>* out_dims) {
  const int64_t in = dims[static_cast<size_t>(axis)];
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= dims[static_cast<size_t>(d)];
  for (size_t d = static_cast<size_t>(axis) + 1; d < dims.size(); ++d) inner *= dims[d];
  std::vector<double> y(static_cast<size_t>(outer * out * inner));
  auto at = [&](int64_t a, int64_t i, int64_t b) {
    return x[static_cast<size_t>((a * in + std::clamp<int64_t>(i, 0, in - 1)) * inner + b)];
  };
  for (int64_t a = 0; a < outer; ++a) {
    for (int64_t i = 0; i < out; ++i) {
      for (int64_t b = 0; b < inner; ++b) {
        double v = 0;
        if (o.method == Interpolation::kNearest) {
          v = at(a, static_cast<int64_t>(std::floor(double(i) * double(in) / double(out))), b);
        } else if (o.method == Interpolation::kLinear) {
          const double s = SourcePosition(i, in, out, o.align_corners, true);
          const auto f = std::min<int64_t>(static_cast<int64_t>(std::floor(s)), in - 1);
          v = at(a, f, b) * (1 - (s - double(f))) + at(a, f + 1, b) * (s - double(f));
        } else {
          const double s = SourcePosition(i, in, out, o.align_corners, false);
          const auto f = static_cast<int64_t>(std::floor(s));
          for (int64_t k = -1; k <= 2; ++k) v += at(a, f + k, b) * CubicWeight(s - double(f + k));
        }
        y[static_cast<size_t>((a * out + i) * inner + b)] = v;
      }
    }
  }
  *out_dims = dims;
  (*out_dims)[static_cast<size_t>(axis)] = out;
  return y;
}

TEST_P(ResizeTest, MatchesReference) {
  auto backend = Backend();
  testing::Rng rng(23);
  struct Case {
    std::vector<int64_t> dims;
    std::vector<int> axes;
    std::vector<int64_t> sizes;
  };
  const std::vector<Case> cases = {
      {{5}, {0}, {9}},                    // upsample
      {{9}, {0}, {4}},                    // downsample
      {{2, 6, 5, 3}, {1, 2}, {11, 2}},    // NHWC, both spatial axes
      {{2, 3, 4, 4}, {-2, -1}, {1, 7}},   // NCHW, size 1
      {{1, 1}, {0, 1}, {3, 3}},           // from one sample
      {{3, 4}, {1}, {4}},                 // same size
  };
  const std::vector<ResizeOptions> options = {{Interpolation::kNearest, false}, {Interpolation::kLinear, false},
                                              {Interpolation::kLinear, true},   {Interpolation::kCubic, false},
                                              {Interpolation::kCubic, true}};
  for (const ResizeOptions& o : options) {
    for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64, dtypes::BFloat16, dtypes::Int32}) {
      if (dt == dtypes::Int32 && o.method != Interpolation::kNearest) continue;
      for (const Case& c : cases) {
        SCOPED_TRACE(std::to_string(static_cast<int>(o.method)) + (o.align_corners ? " align" : "") + " " +
                     shapes::Shape(dt, c.dims).ToString());
        Tensor x = testing::Random(shapes::Shape(dt, c.dims), rng, -4, 4);
        std::vector<double> want = testing::ToDoubles(x);
        std::vector<int64_t> dims = c.dims;
        for (size_t i = 0; i < c.axes.size(); ++i) {
          const int axis = c.axes[i] < 0 ? c.axes[i] + static_cast<int>(dims.size()) : c.axes[i];
          std::vector<int64_t> next;
          want = ReferenceAxis(want, dims, axis, c.sizes[i], o, &next);
          dims = next;
        }
        Tensor got = testing::Run1(
            backend, [&](const std::vector<Node>& p) { return graph::Resize(p[0], c.axes, c.sizes, o); }, {x});
        // bfloat16 rounds each tap's product and sum (4 taps, 2 axes).
        const double tol = dt == dtypes::BFloat16 ? 6e-2 : dt == dtypes::Float32 ? 1e-5 : dt == dtypes::Float64 ? 1e-12 : 0;
        EXPECT_TRUE(testing::AllClose(got, shapes::Shape(dt, dims), want, tol, tol));
      }
    }
  }
}

TEST_P(ResizeTest, GradientsMatchFiniteDifferences) {
  auto backend = Backend();
  testing::Rng rng(29);
  for (ResizeOptions o : {ResizeOptions{Interpolation::kNearest, false}, ResizeOptions{Interpolation::kLinear, false},
                          ResizeOptions{Interpolation::kLinear, true}, ResizeOptions{Interpolation::kCubic, false}}) {
    SCOPED_TRACE(static_cast<int>(o.method));
    Tensor x = testing::Random(shapes::Make(dtypes::Float64, 2, 4, 3), rng, -1, 1);
    Tensor w = testing::Random(shapes::Make(dtypes::Float64, 2, 7, 2), rng, -1, 1);
    EXPECT_TRUE(testing::CheckGradients(
        backend,
        [&](const std::vector<Node>& p) { return graph::ReduceAllSum(graph::Resize(p[0], {1, 2}, {7, 2}, o) * p[1]); },
        {x, w}, {.skip = {1}}));
  }
}

TEST(ResizeErrors, BadArguments) {
  auto g = graph::NewGraph("resize");
  Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float32, 2, 4, 4));
  KILN_EXPECT_ERROR(graph::Resize(x, {1, 2}, {8}), "Resize: 2 axes [1, 2] but 1 sizes [8] (resize_test.cc:");
  KILN_EXPECT_ERROR(graph::Resize(x, {3}, {8}), "Resize");
  KILN_EXPECT_ERROR(graph::Resize(x, {1}, {-1}), "Resize: size -1 is negative");
  KILN_EXPECT_ERROR(graph::Resize(x, {1}, {8}, {.method = Interpolation::kNearest, .align_corners = true}),
                    "Resize: align_corners applies to linear and cubic interpolation only");
  Node i = graph::Parameter(g.get(), "i", shapes::Make(dtypes::Int32, 4));
  KILN_EXPECT_ERROR(graph::Resize(i, {0}, {8}), "Resize: linear and cubic interpolation need a float operand, got Int32[4]");
  Node e = graph::Parameter(g.get(), "e", shapes::Make(dtypes::Float32, 0, 3));
  KILN_EXPECT_ERROR(graph::Resize(e, {0}, {2}), "Resize: axis 0 of Float32[0, 3] is empty and cannot be resized to 2");
  EXPECT_EQ(graph::Resize(x, {1}, {0}).Shape(), shapes::Make(dtypes::Float32, 2, 0, 4));
}

}  // namespace
}  // namespace kiln
