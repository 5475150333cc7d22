// Copyright 2026 The Kiln Authors.
// Max and average pooling over the spatial axes, lowered to graph::ReduceWindow.
#include "kiln/graph/ops.h"
#include "kiln/ml/layers/layers.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

using internal::LayerError;

namespace {

/// WindowAttrs over every axis of x [batch, spatial..., channels]: the batch
/// and channel axes get windows and strides of 1.
ir::WindowAttrs PoolAttrs(std::string_view layer, const Node& x, const PoolOptions& options,
                          ir::WindowReduction reduction) {
  internal::CheckFloat(layer, x);
  const int n = x.Rank() - 2;
  if (n < 1) {
    LayerError(layer, "x must be [batch, spatial..., channels] with at least 1 spatial axis (rank >= 3), got " +
                          x.Shape().ToString());
  }
  if (static_cast<int>(options.window.size()) != n) {
    LayerError(layer, "window " + internal::DimsToString(options.window) + " must have one value per spatial axis (" +
                          std::to_string(n) + ") of x " + x.Shape().ToString());
  }
  const std::vector<int64_t> window =
      internal::SpatialOption(layer, "window", options.window, std::vector<int64_t>(static_cast<size_t>(n), 1));
  const std::vector<int64_t> strides = internal::SpatialOption(layer, "strides", options.strides, window);
  ir::WindowAttrs attrs;
  attrs.reduction = reduction;
  attrs.window_dimensions.assign(static_cast<size_t>(n) + 2, 1);
  attrs.strides.assign(static_cast<size_t>(n) + 2, 1);
  attrs.padding_low.assign(static_cast<size_t>(n) + 2, 0);
  attrs.padding_high.assign(static_cast<size_t>(n) + 2, 0);
  const std::vector<int64_t>& dims = x.Shape().Dims();
  for (size_t s = 0; s < static_cast<size_t>(n); ++s) {
    attrs.window_dimensions[s + 1] = window[s];
    attrs.strides[s + 1] = strides[s];
    if (options.padding == Padding::kSame) {
      std::tie(attrs.padding_low[s + 1], attrs.padding_high[s + 1]) =
          internal::SamePadding(dims[s + 1], window[s], strides[s], 1);
    } else if (window[s] > dims[s + 1]) {
      LayerError(layer, "window " + internal::DimsToString(window) + " is larger than the spatial dims of x " +
                            x.Shape().ToString() + " with \"valid\" padding");
    }
  }
  return attrs;
}

/// How many non-padding elements each window of `attrs` covers, shaped
/// [1, out_spatial..., 1]: the sum-window of ones over the spatial dims alone.
Node WindowCounts(const Node& x, ir::WindowAttrs attrs) {
  std::vector<int64_t> dims = x.Shape().Dims();
  dims.front() = dims.back() = 1;
  attrs.reduction = ir::WindowReduction::kSum;
  return graph::ReduceWindow(graph::Ones(x.Graph(), shapes::Make(x.DType(), dims)), std::move(attrs));
}

}  // namespace

Node MaxPool(Node x, const PoolOptions& options) {
  // ReduceWindow pads a max with -Inf, so padding never wins.
  return graph::ReduceWindow(x, PoolAttrs("MaxPool", x, options, ir::WindowReduction::kMax));
}

Node AvgPool(Node x, const PoolOptions& options) {
  ir::WindowAttrs attrs = PoolAttrs("AvgPool", x, options, ir::WindowReduction::kSum);
  Node sums = graph::ReduceWindow(x, attrs);
  if (options.padding == Padding::kValid) {
    int64_t size = 1;
    for (int64_t w : attrs.window_dimensions) size *= w;
    return sums / static_cast<double>(size);
  }
  // With "same" padding, border windows cover fewer real elements; the
  // counts are constants of the shapes, folded into one small tensor.
  return sums / WindowCounts(x, std::move(attrs));
}

}  // namespace kiln::ml::layers
