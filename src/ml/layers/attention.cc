// Copyright 2026 The Kiln Authors.
// Multi-head (scaled dot-product) attention.
#include <cmath>

#include "kiln/graph/ops.h"
#include "kiln/ml/layers/layers.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

using internal::LayerError;

namespace {

constexpr std::string_view kLayer = "MultiHeadAttention";

/// Checks query [batch, q_len, d] and key/value [batch, kv_len, d'] agree.
void CheckAttentionInputs(const Node& query, const Node& key, const Node& value, int num_heads, int64_t key_dim,
                          const AttentionOptions& options) {
  internal::CheckFloat(kLayer, query, "query");
  internal::CheckFloat(kLayer, key, "key");
  internal::CheckFloat(kLayer, value, "value");
  for (const Node* x : {&query, &key, &value}) {
    if (x->Rank() != 3) {
      LayerError(kLayer, "query, key and value must be [batch, len, d], got query " + query.Shape().ToString() +
                             ", key " + key.Shape().ToString() + ", value " + value.Shape().ToString());
    }
  }
  const auto& q = query.Shape().Dims();
  const auto& k = key.Shape().Dims();
  const auto& v = value.Shape().Dims();
  if (q[0] != k[0] || k[0] != v[0] || k[1] != v[1]) {
    LayerError(kLayer, "query, key and value must share the batch size, and key and value the length; got query " +
                           query.Shape().ToString() + ", key " + key.Shape().ToString() + ", value " +
                           value.Shape().ToString());
  }
  if (num_heads < 1 || key_dim < 1) {
    LayerError(kLayer, "num_heads and key_dim must be >= 1, got " + std::to_string(num_heads) + " and " +
                           std::to_string(key_dim));
  }
  if (!(options.dropout >= 0 && options.dropout < 1)) {
    LayerError(kLayer, "dropout must be in [0, 1), got " + internal::FormatNumber(options.dropout));
  }
}

/// Dense projection of x [batch, len, d] in scope `name`, split into heads:
/// [batch, len, heads, key_dim].
Node ProjectHeads(Context ctx, const std::string& name, Node x, int num_heads, int64_t key_dim) {
  Node projected = Dense(ctx.In(name), x, num_heads * key_dim);
  const auto& dims = x.Shape().Dims();
  return graph::Reshape(projected, {dims[0], dims[1], num_heads, key_dim});
}

/// The Bool mask (true = attend) broadcastable to scores [batch, heads,
/// q_len, kv_len], or an invalid Node when nothing is masked.
Node AttentionMask(const AttentionOptions& options, graph::Graph* g, int64_t q_len, int64_t kv_len) {
  Node mask;
  if (options.mask.Ok()) {
    mask = options.mask;
    if (mask.DType() != dtypes::Bool || mask.Rank() < 2 || mask.Rank() > 4) {
      LayerError(kLayer, "mask must be Bool [q_len, kv_len], [batch, q_len, kv_len] or [batch, heads, q_len, "
                         "kv_len], got " + mask.Shape().ToString());
    }
    // [batch, q, kv] gets the heads axis; [q, kv] broadcasts as is.
    if (mask.Rank() == 3) mask = graph::ExpandAxes(mask, {1});
  }
  if (options.causal) {
    const shapes::Shape positions = shapes::Make(dtypes::Int32, q_len, kv_len);
    Node causal = graph::GreaterOrEqual(graph::Iota(g, positions, 0), graph::Iota(g, positions, 1));
    mask = mask.Ok() ? graph::LogicalAnd(mask, causal) : causal;
  }
  return mask;
}

}  // namespace

Node MultiHeadAttention(Context ctx, Node query, Node key, Node value, int num_heads, int64_t key_dim,
                        const AttentionOptions& options) {
  CheckAttentionInputs(query, key, value, num_heads, key_dim, options);
  Node q = ProjectHeads(ctx, "query", query, num_heads, key_dim);
  Node k = ProjectHeads(ctx, "key", key, num_heads, key_dim);
  Node v = ProjectHeads(ctx, "value", value, num_heads, key_dim);
  // Scaling q rather than the scores touches fewer elements when kv_len > key_dim.
  q = q * (1 / std::sqrt(static_cast<double>(key_dim)));
  Node scores = graph::Einsum("bqhk,bvhk->bhqv", q, k);
  const auto& q_dims = query.Shape().Dims();
  Node mask = AttentionMask(options, query.Graph(), q_dims[1], key.Shape().Dims()[1]);
  if (mask.Ok()) scores = graph::Where(mask, scores, graph::ScalarLike(scores, internal::MaskedScore(scores.DType())));
  Node weights = graph::Softmax(scores, -1);
  if (options.dropout > 0) weights = Dropout(ctx, weights, options.dropout);  // identity in inference
  Node heads = graph::Einsum("bhqv,bvhk->bqhk", weights, v);
  Node merged = graph::Reshape(heads, {q_dims[0], q_dims[1], num_heads * key_dim});
  return Dense(ctx.In("output"), merged, q_dims[2]);
}

}  // namespace kiln::ml::layers
