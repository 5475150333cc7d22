// Copyright 2026 The Kiln Authors.
// Inverted dropout.
#include "kiln/graph/ops.h"
#include "kiln/ml/layers/layers.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

Node Dropout(Context ctx, Node x, double rate) {
  internal::CheckFloat("Dropout", x);
  // rate 1 would zero everything and divide by zero; NaN fails this test too.
  if (!(rate >= 0 && rate < 1)) {
    internal::LayerError("Dropout", "rate must be in [0, 1), got " + internal::FormatNumber(rate));
  }
  if (!ctx.IsTraining() || rate == 0) return x;
  // Scaling the kept values by 1 / (1 - rate) keeps the expected value, so
  // inference needs no rescaling.
  Node keep = ctx.RandomBernoulli(x.Graph(), 1 - rate, x.Shape().Dims());
  return graph::Where(keep, x * (1 / (1 - rate)), graph::ScalarLike(x, 0));
}

}  // namespace kiln::ml::layers
