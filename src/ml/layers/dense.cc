// Copyright 2026 The Kiln Authors.
// Dense (fully connected) layer.
#include "kiln/graph/ops.h"
#include "kiln/ml/layers/layers.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

using internal::LayerError;

Node Dense(Context ctx, Node x, int64_t units, bool use_bias) {
  internal::CheckFloat("Dense", x);
  if (x.Rank() < 1) LayerError("Dense", "x must have rank >= 1 ([..., in]), got " + x.Shape().ToString());
  if (units < 1) LayerError("Dense", "units must be >= 1, got " + std::to_string(units));
  const int64_t in = x.Shape().Dims().back();
  context::Variable* weights = internal::GetOrCreate(ctx, "weights", shapes::Make(x.DType(), in, units));
  // DotGeneral contracts the last axis directly: no broadcast copy of the
  // weights for the leading axes of x (as MatMul would make).
  Node y = graph::DotGeneral(x, {x.Rank() - 1}, {}, weights->ValueGraph(x.Graph()), {0}, {});
  internal::AddL2Regularization(ctx, weights->ValueGraph(x.Graph()));
  if (!use_bias) return y;
  context::Variable* biases = internal::GetOrCreateZeros(ctx, "biases", shapes::Make(x.DType(), units));
  return y + biases->ValueGraph(x.Graph());
}

}  // namespace kiln::ml::layers
