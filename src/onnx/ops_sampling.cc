// Copyright 2026 The Kiln Authors.
// ONNX operators that read an image at computed positions: GridSample
// (PyTorch's grid_sample: bilinear, nearest, bicubic; zeros, border and
// reflection padding) and MaxUnpool.
#include <algorithm>

#include "kiln/graph/ops.h"
#include "kiln/graph/sort.h"
#include "src/onnx/converter.h"

namespace kiln::onnx::internal {
namespace {

using graph::Node;

Node S(Node x, double v) { return graph::ScalarLike(x, v); }

// Source coordinate from a normalized one in [-1, 1].
Node Unnormalize(Node g, int64_t size, bool align_corners) {
  if (align_corners) return (g + S(g, 1)) * S(g, 0.5 * static_cast<double>(size - 1));
  return ((g + S(g, 1)) * S(g, static_cast<double>(size)) - S(g, 1)) * S(g, 0.5);
}

// PyTorch's reflect_coordinates over [twice_low / 2, twice_high / 2].
Node Reflect(Node x, double twice_low, double twice_high) {
  using namespace graph;  // NOLINT
  if (twice_low == twice_high) return ZerosLike(x);
  const double min = twice_low / 2, span = (twice_high - twice_low) / 2;
  Node in = Abs(x - S(x, min));
  Node extra = Rem(in, S(x, span));
  Node flips = Floor(in / S(x, span));
  Node even = Equal(Rem(flips, S(x, 2)), ZerosLike(x));
  return Where(even, extra + S(x, min), S(x, span) - extra + S(x, min));
}

Node ApplyPadding(Node x, int64_t size, const std::string& padding, bool align_corners) {
  using namespace graph;  // NOLINT
  auto clip = [&](Node v) { return Clamp(ZerosLike(v), v, S(v, static_cast<double>(size - 1))); };
  if (padding == "border") return clip(x);
  if (padding == "reflection") {
    return clip(align_corners ? Reflect(x, 0, 2.0 * static_cast<double>(size - 1))
                              : Reflect(x, -1, 2.0 * static_cast<double>(size) - 1));
  }
  return x;
}

}  // namespace

void RegisterSamplingOps() {
  using namespace graph;  // NOLINT

  RegisterOp("GridSample", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), grid = c.In(1);
    if (x.Rank() != 4 || grid.Rank() != 4 || grid.Shape().Dim(3) != 2) {
      c.Fail("needs X [N, C, H, W] and grid [N, H_out, W_out, 2]");
    }
    const std::string mode = c.Str("mode", "bilinear"), padding = c.Str("padding_mode", "zeros");
    const bool align = c.Int("align_corners", 0) != 0;
    if (padding != "zeros" && padding != "border" && padding != "reflection") c.Fail("padding_mode \"" + padding + "\" is not supported");
    const int64_t n = x.Shape().Dim(0), ch = x.Shape().Dim(1), h = x.Shape().Dim(2), w = x.Shape().Dim(3);
    const int64_t ho = grid.Shape().Dim(1), wo = grid.Shape().Dim(2);
    // Coordinates and weights in Float32 (Float64 for Float64 images): half
    // types cannot hold pixel indices above 2048 (256 for bfloat16).
    const dtypes::DType cd = x.DType() == dtypes::Float64 ? dtypes::Float64 : dtypes::Float32;
    if (!dtypes::IsFloat(grid.DType())) c.Fail("the grid must be floats");
    Node g = grid.DType() == cd ? grid : ConvertDType(grid, cd);
    Node gx = Unnormalize(Reshape(SliceAxis(g, 3, 0, 1), {n, ho * wo}), w, align);
    Node gy = Unnormalize(Reshape(SliceAxis(g, 3, 1, 2), {n, ho * wo}), h, align);
    Node flat = Reshape(x.DType() == cd ? x : ConvertDType(x, cd), {n, ch, h * w});
    // One tap: the value at integer (iy, ix) (zero outside the image) times weight.
    auto tap = [&](Node iy, Node ix, Node weight) {
      Node inside = LogicalAnd(LogicalAnd(GreaterOrEqual(ix, ZerosLike(ix)), LessThan(ix, S(ix, static_cast<double>(w)))),
                               LogicalAnd(GreaterOrEqual(iy, ZerosLike(iy)), LessThan(iy, S(iy, static_cast<double>(h)))));
      Node cx = Clamp(ZerosLike(ix), ix, S(ix, static_cast<double>(w - 1)));
      Node cy = Clamp(ZerosLike(iy), iy, S(iy, static_cast<double>(h - 1)));
      Node idx = ConvertDType(cy, dtypes::Int64) * ScalarLike(ConvertDType(cy, dtypes::Int64), static_cast<double>(w)) +
                 ConvertDType(cx, dtypes::Int64);
      Node v = TakeAlongAxis(flat, BroadcastTo(Reshape(idx, {n, 1, ho * wo}), {n, ch, ho * wo}), 2);
      Node wt = Where(inside, weight, ZerosLike(weight));
      return v * Reshape(wt, {n, 1, ho * wo});
    };
    Node out;
    if (mode == "nearest") {
      Node ix = Round(ApplyPadding(gx, w, padding, align)), iy = Round(ApplyPadding(gy, h, padding, align));
      out = tap(iy, ix, OnesLike(ix));
    } else if (mode == "bilinear") {
      Node fx = ApplyPadding(gx, w, padding, align), fy = ApplyPadding(gy, h, padding, align);
      Node x0 = Floor(fx), y0 = Floor(fy);
      Node tx = fx - x0, ty = fy - y0;
      Node one = OnesLike(tx);
      out = tap(y0, x0, (one - tx) * (one - ty)) + tap(y0, x0 + one, tx * (one - ty)) +
            tap(y0 + one, x0, (one - tx) * ty) + tap(y0 + one, x0 + one, tx * ty);
    } else if (mode == "bicubic") {
      Node x0 = Floor(gx), y0 = Floor(gy);
      Node tx = gx - x0, ty = gy - y0;
      const double a = -0.75;
      // Keys' weights as polynomials of t (so they stay graph ops).
      auto coeff = [&](Node t, int k) {
        Node d = k == 0 ? t + S(t, 1) : k == 1 ? t : k == 2 ? S(t, 1) - t : S(t, 2) - t;
        if (k == 1 || k == 2) return ((S(d, a + 2) * d - S(d, a + 3)) * d * d) + S(d, 1);
        return ((S(d, a) * d - S(d, 5 * a)) * d + S(d, 8 * a)) * d - S(d, 4 * a);
      };
      for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 4; ++j) {
          // Each tap's coordinate gets the padding rule (PyTorch's get_value_bounded).
          Node iy = ApplyPadding(y0 + S(y0, i - 1), h, padding, align);
          Node ix = ApplyPadding(x0 + S(x0, j - 1), w, padding, align);
          Node t = tap(iy, ix, coeff(ty, i) * coeff(tx, j));
          out = out.Ok() ? out + t : t;
        }
      }
    } else {
      c.Fail("mode \"" + mode + "\" is not supported");
    }
    out = Reshape(out, {n, ch, ho, wo});
    return {out.DType() == x.DType() ? out : ConvertDType(out, x.DType())};
  });

  RegisterOp("MaxUnpool", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), idx = c.In(1);
    const int r = x.Rank();
    const auto kernel = c.IntsAttr("kernel_shape");
    const size_t sp = static_cast<size_t>(r - 2);
    if (kernel.size() != sp) c.Fail("kernel_shape must have one entry per spatial axis");
    const auto strides = c.IntsAttr("strides", std::vector<int64_t>(sp, 1));
    const auto pads = c.IntsAttr("pads", std::vector<int64_t>(2 * sp, 0));
    if (pads.size() != 2 * sp || strides.size() != sp) c.Fail("pads and strides must match the spatial axes");
    // The indices are flat positions in the pooled input, whose shape is
    // the default output shape; an explicit output_shape moves each value to
    // the same coordinates in a larger output.
    std::vector<int64_t> natural = {x.Shape().Dim(0), x.Shape().Dim(1)};
    for (size_t i = 0; i < sp; ++i) {
      if (kernel[i] < 1 || strides[i] < 1 || kernel[i] > (int64_t{1} << 32) || pads[i] < 0 || pads[i + sp] < 0 ||
          pads[i] > (int64_t{1} << 32) || pads[i + sp] > (int64_t{1} << 32)) {
        c.Fail("invalid kernel_shape, strides or pads");
      }
      const int64_t span = CheckedMul(c, x.Shape().Dim(static_cast<int>(i + 2)) - 1, strides[i]);
      natural.push_back(span + kernel[i] - pads[i] - pads[i + sp]);
      if (natural.back() < 0) c.Fail("the output would be empty");
    }
    std::vector<int64_t> out = natural;
    idx = ConvertDType(idx, dtypes::Int64);
    if (c.Has(2)) {
      out = c.Ints(2, "output_shape");
      if (out.size() != static_cast<size_t>(r)) c.Fail("output_shape must have the input's rank");
      Node rem = idx, moved = ZerosLike(idx);
      int64_t stride = 1;
      for (size_t d = natural.size(); d-- > 0;) {
        Node coord = Rem(rem, ScalarLike(rem, static_cast<double>(natural[d])));
        rem = Div(rem, ScalarLike(rem, static_cast<double>(natural[d])));
        moved = moved + coord * ScalarLike(coord, static_cast<double>(stride));
        stride *= out[d];
      }
      idx = moved;
    }
    int64_t total = 1;
    for (int64_t d : out) {
      if (d < 0) c.Fail("negative output dimension");
      total = CheckedMul(c, total, d);
    }
    ir::ScatterAttrs a;
    a.index_vector_dim = 1;
    a.inserted_window_dims = {0};
    a.scatter_dims_to_operand_dims = {0};
    Node zeros = Zeros(x.Graph(), shapes::Shape(x.DType(), {total}));
    Node y = ScatterUpdate(zeros, Reshape(idx, {-1, 1}), Reshape(x, {-1}), a);
    return {Reshape(y, out)};
  });
}

}  // namespace kiln::onnx::internal
