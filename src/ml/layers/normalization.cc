// Copyright 2026 The Kiln Authors.
// Normalization layers: BatchNorm, LayerNorm, RMSNorm.
#include <algorithm>

#include "kiln/graph/autodiff.h"
#include "kiln/graph/ops.h"
#include "kiln/ml/layers/layers.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

using internal::LayerError;

namespace {

/// `axes` normalized against `rank`, sorted; checks range and duplicates.
std::vector<int> SortedAxes(std::string_view layer, const std::vector<int>& axes, int rank) {
  if (axes.empty()) LayerError(layer, "axes must not be empty");
  std::vector<int> out;
  for (int a : axes) out.push_back(internal::NormalizeAxis(layer, a, rank));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end()) {
    LayerError(layer, "axes " + internal::DimsToString(std::vector<int64_t>(axes.begin(), axes.end())) +
                          " repeat an axis (rank " + std::to_string(rank) + ")");
  }
  return out;
}

/// Every axis of `rank` not in (sorted) `axes`.
std::vector<int> OtherAxes(const std::vector<int>& axes, int rank) {
  std::vector<int> out;
  for (int a = 0; a < rank; ++a) {
    if (!std::binary_search(axes.begin(), axes.end(), a)) out.push_back(a);
  }
  return out;
}

/// The mean over `axes` with those axes kept as size 1 (broadcasts against x).
Node MeanKeepAxes(Node x, const std::vector<int>& axes) {
  std::vector<int64_t> dims = x.Shape().Dims();
  for (int a : axes) dims[static_cast<size_t>(a)] = 1;
  return graph::Reshape(graph::ReduceMean(x, axes), dims);
}

/// The dims of x at (sorted) `axes`: the shape of per-feature parameters.
std::vector<int64_t> DimsAt(const Node& x, const std::vector<int>& axes) {
  std::vector<int64_t> dims;
  for (int a : axes) dims.push_back(x.Shape().Dims()[static_cast<size_t>(a)]);
  return dims;
}

void CheckEpsilon(std::string_view layer, double epsilon) {
  if (!(epsilon >= 0)) LayerError(layer, "epsilon must be >= 0, got " + internal::FormatNumber(epsilon));
}

/// moving = momentum * moving + (1 - momentum) * batch, written back after
/// the run. The batch statistic is a constant for autodiff: the update is
/// bookkeeping, not part of the loss.
void UpdateMovingAverage(context::Variable* moving, Node batch, double momentum) {
  Node current = moving->ValueGraph(batch.Graph());
  moving->SetValueGraph(current * momentum + graph::StopGradient(batch) * (1 - momentum));
}

}  // namespace

Node BatchNorm(Context ctx, Node x, int axis, double momentum, double epsilon) {
  internal::CheckFloat("BatchNorm", x);
  if (x.Rank() < 2) LayerError("BatchNorm", "x must have rank >= 2 (a batch and features), got " + x.Shape().ToString());
  if (!(momentum >= 0 && momentum <= 1)) {
    LayerError("BatchNorm", "momentum must be in [0, 1], got " + internal::FormatNumber(momentum));
  }
  CheckEpsilon("BatchNorm", epsilon);
  const std::vector<int> feature = {internal::NormalizeAxis("BatchNorm", axis, x.Rank())};
  const shapes::Shape param_shape = shapes::Make(x.DType(), DimsAt(x, feature));
  graph::Graph* g = x.Graph();
  Node scale = internal::GetOrCreateOnes(ctx, "scale", param_shape)->ValueGraph(g);
  Node offset = internal::GetOrCreateZeros(ctx, "offset", param_shape)->ValueGraph(g);
  context::Variable* moving_mean = internal::GetOrCreateZeros(ctx, "mean", param_shape);
  context::Variable* moving_variance = internal::GetOrCreateOnes(ctx, "variance", param_shape);
  moving_mean->SetTrainable(false);
  moving_variance->SetTrainable(false);

  Node mean, variance;
  if (ctx.IsTraining()) {
    // Biased batch variance (divides by the count), for normalization and
    // the moving average alike, as Keras does.
    const std::vector<int> reduce = OtherAxes(feature, x.Rank());
    mean = graph::ReduceMean(x, reduce);
    variance = graph::ReduceMean(graph::Square(x - internal::ReshapeForAxes(mean, feature, x.Rank())), reduce);
    UpdateMovingAverage(moving_mean, mean, momentum);
    UpdateMovingAverage(moving_variance, variance, momentum);
  } else {
    mean = moving_mean->ValueGraph(g);
    variance = moving_variance->ValueGraph(g);
  }
  // Fold scale into the per-feature multiplier: one broadcast multiply of x.
  Node multiplier = graph::Rsqrt(variance + epsilon) * scale;
  Node shift = offset - mean * multiplier;
  return x * internal::ReshapeForAxes(multiplier, feature, x.Rank()) + internal::ReshapeForAxes(shift, feature, x.Rank());
}

Node LayerNorm(Context ctx, Node x, std::vector<int> axes, double epsilon) {
  internal::CheckFloat("LayerNorm", x);
  if (x.Rank() < 1) LayerError("LayerNorm", "x must have rank >= 1, got " + x.Shape().ToString());
  CheckEpsilon("LayerNorm", epsilon);
  const std::vector<int> norm_axes = SortedAxes("LayerNorm", axes, x.Rank());
  const shapes::Shape param_shape = shapes::Make(x.DType(), DimsAt(x, norm_axes));
  Node scale = internal::GetOrCreateOnes(ctx, "scale", param_shape)->ValueGraph(x.Graph());
  Node offset = internal::GetOrCreateZeros(ctx, "offset", param_shape)->ValueGraph(x.Graph());
  // Two-pass variance (of the centered values): stable for large means.
  Node centered = x - MeanKeepAxes(x, norm_axes);
  Node normalized = centered * graph::Rsqrt(MeanKeepAxes(graph::Square(centered), norm_axes) + epsilon);
  return normalized * internal::ReshapeForAxes(scale, norm_axes, x.Rank()) +
         internal::ReshapeForAxes(offset, norm_axes, x.Rank());
}

Node RMSNorm(Context ctx, Node x, double epsilon) {
  internal::CheckFloat("RMSNorm", x);
  if (x.Rank() < 1) LayerError("RMSNorm", "x must have rank >= 1, got " + x.Shape().ToString());
  CheckEpsilon("RMSNorm", epsilon);
  const std::vector<int> last = {x.Rank() - 1};
  context::Variable* scale = internal::GetOrCreateOnes(ctx, "scale", shapes::Make(x.DType(), x.Shape().Dims().back()));
  Node mean_square = MeanKeepAxes(graph::Square(x), last);
  return x * graph::Rsqrt(mean_square + epsilon) * scale->ValueGraph(x.Graph());
}

}  // namespace kiln::ml::layers
