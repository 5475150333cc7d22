// Copyright 2026 The Kiln Authors.
// Scaled dot-product attention as one op of the IR (Attention), for backends
// that run it in one fused kernel (the CPU and CUDA: blocks of query rows with a
// running softmax, never the whole score matrix), and its gradient likewise. Most code calls
// ml::layers::DotProductAttention, which emits this op where the backend
// prefers it (Capabilities::fused_attention_min_kv_length) and the composed
// products and softmax elsewhere.
#pragma once

#include "kiln/graph/graph.h"

namespace kiln::graph {

/// Options of Attention.
struct AttentionOptions {
  /// Multiplies q kᵀ (typically 1 / sqrt(head_dim)).
  double scale = 1;
  /// Query i (of q_len) sits at key position kv_len - q_len + i and sees only
  /// the keys up to it.
  bool causal = false;
  /// The score of a masked key (finite, so a row with no visible key gets
  /// uniform weights instead of NaN). 0: the dtype's layers default, -1e9 for
  /// Float32 and Float64 (below any real score, exp underflows to 0).
  double masked_value = 0;
};

/// softmax(scale q kᵀ with masked scores replaced) v, per head: q [batch,
/// heads, q_len, head_dim], k and v [batch, kv_heads, kv_len, head_dim] with
/// heads a multiple of kv_heads (query head h reads kv head h / (heads /
/// kv_heads)); `mask` (optional) Bool [batch or 1, heads or 1, q_len,
/// kv_len], false where a key is hidden. Float32 or Float64. Returns [batch,
/// heads, q_len, head_dim]. Differentiable in q, k and v, to any order: where
/// the backend has the AttentionGrad op (the CPU, CUDA), the gradient is that one
/// fused op, which recomputes the weights block by block, so neither pass of
/// a training step holds the [q_len, kv_len] weights; elsewhere it is
/// composed of products and a softmax. scale and masked_value must be finite.
Node Attention(Node q, Node k, Node v, Node mask = {}, AttentionOptions options = {}, Loc loc = Loc::current());

}  // namespace kiln::graph
