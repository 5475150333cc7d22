// Copyright 2026 The Kiln Authors.
// N-d convolution layer (channels-last), lowered to graph::ConvGeneral.
#include <numeric>

#include "kiln/graph/ops.h"
#include "kiln/ml/layers/layers.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

using internal::LayerError;

namespace {

/// Number of spatial axes of x [batch, spatial..., channels]; checks 1 to 3.
int SpatialRank(const Node& x, const std::vector<int64_t>& kernel_size) {
  const int n = x.Rank() - 2;
  if (n < 1 || n > 3) {
    LayerError("Conv", "x must be [batch, spatial..., channels] with 1 to 3 spatial axes (rank 3 to 5), got " +
                           x.Shape().ToString());
  }
  if (static_cast<int>(kernel_size.size()) != n) {
    LayerError("Conv", "kernel_size " + internal::DimsToString(kernel_size) + " must have one value per spatial axis (" +
                           std::to_string(n) + ") of x " + x.Shape().ToString());
  }
  for (int64_t k : kernel_size) {
    if (k < 1) LayerError("Conv", "kernel_size " + internal::DimsToString(kernel_size) + " must all be >= 1");
  }
  return n;
}

/// ConvAttrs for channels-last x [batch, spatial..., C] and a kernel
/// [spatial..., C, filters]; the output keeps x's layout.
ir::ConvAttrs ChannelsLastAttrs(int n) {
  ir::ConvAttrs attrs;
  attrs.input_batch_axis = attrs.output_batch_axis = 0;
  attrs.input_feature_axis = attrs.output_feature_axis = n + 1;
  attrs.input_spatial_axes.resize(static_cast<size_t>(n));
  std::iota(attrs.input_spatial_axes.begin(), attrs.input_spatial_axes.end(), 1);
  attrs.output_spatial_axes = attrs.input_spatial_axes;
  attrs.kernel_spatial_axes.resize(static_cast<size_t>(n));
  std::iota(attrs.kernel_spatial_axes.begin(), attrs.kernel_spatial_axes.end(), 0);
  attrs.kernel_input_feature_axis = n;
  attrs.kernel_output_feature_axis = n + 1;
  return attrs;
}

}  // namespace

Node Conv(Context ctx, Node x, int64_t filters, std::vector<int64_t> kernel_size, const ConvOptions& options) {
  internal::CheckFloat("Conv", x);
  const int n = SpatialRank(x, kernel_size);
  if (filters < 1) LayerError("Conv", "filters must be >= 1, got " + std::to_string(filters));
  const std::vector<int64_t> ones(static_cast<size_t>(n), 1);
  ir::ConvAttrs attrs = ChannelsLastAttrs(n);
  attrs.strides = internal::SpatialOption("Conv", "strides", options.strides, ones);
  attrs.kernel_dilation = internal::SpatialOption("Conv", "dilations", options.dilations, ones);
  attrs.padding_low.assign(static_cast<size_t>(n), 0);
  attrs.padding_high.assign(static_cast<size_t>(n), 0);
  const std::vector<int64_t>& dims = x.Shape().Dims();
  for (int i = 0; i < n; ++i) {
    const auto s = static_cast<size_t>(i);
    if (options.padding == Padding::kSame) {
      std::tie(attrs.padding_low[s], attrs.padding_high[s]) =
          internal::SamePadding(dims[s + 1], kernel_size[s], attrs.strides[s], attrs.kernel_dilation[s]);
    } else if ((kernel_size[s] - 1) * attrs.kernel_dilation[s] + 1 > dims[s + 1]) {
      LayerError("Conv", "the (dilated) kernel " + internal::DimsToString(kernel_size) +
                             " is larger than the spatial dims of x " + x.Shape().ToString() + " with \"valid\" padding");
    }
  }
  std::vector<int64_t> kernel_dims = kernel_size;
  kernel_dims.push_back(dims.back());
  kernel_dims.push_back(filters);
  context::Variable* weights = internal::GetOrCreate(ctx, "weights", shapes::Make(x.DType(), kernel_dims));
  Node y = graph::ConvGeneral(x, weights->ValueGraph(x.Graph()), std::move(attrs));
  internal::AddL2Regularization(ctx, weights->ValueGraph(x.Graph()));
  if (!options.use_bias) return y;
  context::Variable* biases = internal::GetOrCreateZeros(ctx, "biases", shapes::Make(x.DType(), filters));
  return y + biases->ValueGraph(x.Graph());
}

}  // namespace kiln::ml::layers
