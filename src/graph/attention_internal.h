// Copyright 2026 The Kiln Authors.
// The composed form of attention, shared by the Attention op's VJP and by
// layers::DotProductAttention where the backend has no fused kernel: one
// definition of the scores, masks and softmax, so both agree.
#pragma once

#include <string>

#include "kiln/graph/graph.h"

namespace kiln::graph::internal {

/// The attention weights and the Bool of the visible keys (empty when all are).
struct AttentionWeights {
  Node p;        // [batch, kv_heads, group, q_len, kv_len]
  Node allowed;  // broadcastable to p
};

/// softmax over keys of (scale q) kᵀ, with masked_value where `mask`
/// (optional, Bool, broadcastable to [batch, heads, q_len, kv_len]) is false
/// and, when causal, after each query's position (query i at kv_len - q_len
/// + i). `q` holds the queries grouped per kv head, its axes named by
/// `q_axes`: "bqngd" ([batch, q_len, kv_heads, group, head_dim], the layers'
/// layout) or "bngqd" (heads-major); k is [batch, kv_heads, kv_len, head_dim].
AttentionWeights ComposedAttentionWeights(const Node& q, const std::string& q_axes, const Node& k, const Node& mask,
                                          double scale, bool causal, double masked_value, const Loc& loc);

}  // namespace kiln::graph::internal
