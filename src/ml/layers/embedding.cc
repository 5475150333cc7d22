// Copyright 2026 The Kiln Authors.
// Embedding lookup, lowered to graph::Gather.
#include "kiln/graph/ops.h"
#include "kiln/ml/layers/layers.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

using internal::LayerError;

Node Embedding(Context ctx, Node indices, int64_t vocab_size, int64_t dim) {
  if (!indices.Ok()) LayerError("Embedding", "indices is an invalid (default-constructed) Node");
  if (!dtypes::IsInteger(indices.DType())) {
    LayerError("Embedding", "indices must have an integer dtype, got " + indices.Shape().ToString());
  }
  if (vocab_size < 1 || dim < 1) {
    LayerError("Embedding", "vocab_size and dim must be >= 1, got " + std::to_string(vocab_size) + " and " +
                                std::to_string(dim));
  }
  // Float32 like Keras's default; the context's initializer (GlorotUniform
  // unless set) initializes the table.
  context::Variable* table =
      internal::GetOrCreate(ctx, "embeddings", shapes::Make(dtypes::Float32, vocab_size, dim));
  // Each index is a one-element index vector (index_vector_dim past the last
  // axis) selecting a [1, dim] row whose first axis is collapsed. Gather
  // clamps out-of-range indices to the first or last row.
  ir::GatherAttrs attrs;
  attrs.index_vector_dim = indices.Rank();
  attrs.offset_dims = {static_cast<int64_t>(indices.Rank())};
  attrs.collapsed_slice_dims = {0};
  attrs.start_index_map = {0};
  attrs.slice_sizes = {1, dim};
  return graph::Gather(table->ValueGraph(indices.Graph()), indices, std::move(attrs));
}

}  // namespace kiln::ml::layers
