// Copyright 2026 The Kiln Authors.
// Resize (see kiln/graph/resize.h): per axis, the taps and weights of
// PyTorch's interpolation, applied as Gathers of the input along the axis
// and a weighted sum.
#include "kiln/graph/resize.h"

#include <algorithm>
#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "kiln/graph/ops.h"
#include "src/graph/op_builder.h"

namespace kiln::graph {

namespace {

constexpr std::string_view kOp = "Resize";

// Source taps of one axis: taps[k][o] is the input index of tap k for output
// o, weights[k][o] its weight.
struct Taps {
  std::vector<std::vector<int64_t>> index;
  std::vector<std::vector<double>> weight;
};

// PyTorch's source coordinate of output `o` (area_pixel_compute_source_index).
double SourcePosition(int64_t o, int64_t in, int64_t out, bool align_corners, bool clamp_negative) {
  if (align_corners) return out > 1 ? static_cast<double>(o) * static_cast<double>(in - 1) / static_cast<double>(out - 1) : 0.0;
  const double src = (static_cast<double>(o) + 0.5) * static_cast<double>(in) / static_cast<double>(out) - 0.5;
  return clamp_negative && src < 0 ? 0.0 : src;
}

// Keys' cubic convolution kernel with a = -0.75 (PyTorch's bicubic).
double Cubic1(double x) {  // |x| <= 1
  constexpr double a = -0.75;
  return ((a + 2) * x - (a + 3)) * x * x + 1;
}
double Cubic2(double x) {  // 1 < |x| < 2
  constexpr double a = -0.75;
  return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

Taps AxisTaps(int64_t in, int64_t out, const ResizeOptions& o) {
  Taps t;
  const auto clamp = [in](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
  switch (o.method) {
    case Interpolation::kNearest: {
      t.index.assign(1, std::vector<int64_t>(static_cast<size_t>(out)));
      t.weight.assign(1, std::vector<double>(static_cast<size_t>(out), 1.0));
      const double scale = static_cast<double>(in) / static_cast<double>(out);
      for (int64_t i = 0; i < out; ++i) {
        t.index[0][static_cast<size_t>(i)] = clamp(static_cast<int64_t>(std::floor(static_cast<double>(i) * scale)));
      }
      break;
    }
    case Interpolation::kLinear: {
      t.index.assign(2, std::vector<int64_t>(static_cast<size_t>(out)));
      t.weight.assign(2, std::vector<double>(static_cast<size_t>(out)));
      for (int64_t i = 0; i < out; ++i) {
        const double src = SourcePosition(i, in, out, o.align_corners, /*clamp_negative=*/true);
        const int64_t i0 = clamp(static_cast<int64_t>(std::floor(src)));
        const double l = src - static_cast<double>(i0);
        t.index[0][static_cast<size_t>(i)] = i0;
        t.index[1][static_cast<size_t>(i)] = clamp(i0 + 1);
        t.weight[0][static_cast<size_t>(i)] = 1 - l;
        t.weight[1][static_cast<size_t>(i)] = l;
      }
      break;
    }
    case Interpolation::kCubic: {
      t.index.assign(4, std::vector<int64_t>(static_cast<size_t>(out)));
      t.weight.assign(4, std::vector<double>(static_cast<size_t>(out)));
      for (int64_t i = 0; i < out; ++i) {
        const double src = SourcePosition(i, in, out, o.align_corners, /*clamp_negative=*/false);
        const auto f = static_cast<int64_t>(std::floor(src));
        const double u = src - static_cast<double>(f);
        const double w[4] = {Cubic2(u + 1), Cubic1(u), Cubic1(1 - u), Cubic2(2 - u)};
        for (int k = 0; k < 4; ++k) {
          t.index[static_cast<size_t>(k)][static_cast<size_t>(i)] = clamp(f - 1 + k);
          t.weight[static_cast<size_t>(k)][static_cast<size_t>(i)] = w[k];
        }
      }
      break;
    }
  }
  return t;
}

// x's elements at `index` along `axis` (the axis becomes index.size() long).
Node GatherAlong(Node x, int axis, const std::vector<int64_t>& index, const Loc& loc) {
  const auto n = static_cast<int64_t>(index.size());
  Node idx = Const(x.Graph(), tensors::FromValue(index), loc);
  idx = Reshape(idx, {n, 1}, loc);
  ir::GatherAttrs a;
  for (int d = 0; d < x.Rank(); ++d) {
    if (d != axis) a.offset_dims.push_back(d);
  }
  a.collapsed_slice_dims = {axis};
  a.start_index_map = {axis};
  a.index_vector_dim = 1;
  a.slice_sizes = x.Shape().Dims();
  a.slice_sizes[static_cast<size_t>(axis)] = 1;
  return Gather(x, idx, std::move(a), loc);
}

Node ResizeAxis(Node x, int axis, int64_t out, const ResizeOptions& o, const Loc& loc) {
  const int64_t in = x.Shape().Dims()[static_cast<size_t>(axis)];
  if (in == out) return x;
  const Taps t = AxisTaps(in, out, o);
  if (o.method == Interpolation::kNearest) return GatherAlong(x, axis, t.index[0], loc);
  std::vector<int64_t> dims = x.Shape().Dims();
  dims[static_cast<size_t>(axis)] = out;
  Node sum;
  for (size_t k = 0; k < t.index.size(); ++k) {
    Node w = Const(x.Graph(), tensors::FromValue(t.weight[k]), loc);
    w = BroadcastInDim(ConvertDType(w, x.DType(), loc), dims, {axis}, loc);
    Node term = Mul(GatherAlong(x, axis, t.index[k], loc), w, loc);
    sum = k == 0 ? term : Add(sum, term, loc);
  }
  return sum;
}

}  // namespace

Node Resize(Node x, const std::vector<int>& axes, const std::vector<int64_t>& sizes, ResizeOptions options, Loc loc) {
  internal::CheckNode(x, kOp, loc);
  if (axes.size() != sizes.size()) {
    internal::OpError(loc, kOp, std::to_string(axes.size()) + " axes " + internal::ListToString(axes) + " but " +
                                    std::to_string(sizes.size()) + " sizes " + internal::ListToString(sizes));
  }
  const std::vector<int64_t> norm = internal::NormalizeAxes(axes, x.Rank(), kOp, loc);
  if (options.method != Interpolation::kNearest && !dtypes::IsFloat(x.DType())) {
    internal::OpError(loc, kOp, "linear and cubic interpolation need a float operand, got " + x.Shape().ToString());
  }
  if (options.method == Interpolation::kNearest && options.align_corners) {
    internal::OpError(loc, kOp, "align_corners applies to linear and cubic interpolation only");
  }
  for (size_t i = 0; i < norm.size(); ++i) {
    const int64_t in = x.Shape().Dims()[static_cast<size_t>(norm[i])];
    if (sizes[i] < 0) internal::OpError(loc, kOp, "size " + std::to_string(sizes[i]) + " is negative");
    if (in == 0 && sizes[i] > 0) {
      internal::OpError(loc, kOp, "axis " + std::to_string(norm[i]) + " of " + x.Shape().ToString() +
                                      " is empty and cannot be resized to " + std::to_string(sizes[i]));
    }
  }
  Node y = x;
  for (size_t i = 0; i < norm.size(); ++i) {
    const int axis = static_cast<int>(norm[i]);
    if (sizes[i] == 0) {
      std::vector<int64_t> limits = y.Shape().Dims();
      limits[static_cast<size_t>(axis)] = 0;
      y = Slice(y, std::vector<int64_t>(limits.size(), 0), limits, {}, loc);
      continue;
    }
    y = ResizeAxis(y, axis, sizes[i], options, loc);
  }
  return y;
}

}  // namespace kiln::graph
