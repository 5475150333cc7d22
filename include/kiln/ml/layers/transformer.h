// Copyright 2026 The Kiln Authors.
// Transformer building blocks: scaled dot-product attention with grouped
// query heads, and a pre-norm decoder/encoder block (LayerNorm or RMSNorm,
// multi-head or grouped-query attention with optional rotary positions,
// causal and padding masks, GELU or SwiGLU MLP, dropout, residuals).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "kiln/ml/layers/layers.h"
#include "kiln/ml/layers/positional.h"

namespace kiln::ml::layers {

/// Scaled dot-product attention on split heads: q [batch, q_len, heads,
/// head_dim], k and v [batch, kv_len, kv_heads, head_dim], heads a multiple
/// of kv_heads (grouped-query attention: query head h reads kv head
/// h / (heads / kv_heads); kv_heads = 1 is multi-query). `causal`: the
/// queries are the last q_len positions and see the keys up to their own
/// (what a decode step with a cache needs). `mask` (optional) is Bool,
/// broadcastable to [batch, heads, q_len, kv_len], true where attention is
/// allowed. Returns [batch, q_len, heads, head_dim]. A query that may see no
/// key gets uniform weights (masked scores are large and negative, not -Inf).
Node DotProductAttention(Node q, Node k, Node v, bool causal = false, Node mask = {});

/// Options of TransformerBlock.
struct TransformerOptions {
  int num_heads = 8;
  /// Key/value heads: 0 for num_heads (multi-head); fewer for grouped-query.
  int num_kv_heads = 0;
  /// 0: model dim / num_heads.
  int64_t head_dim = 0;
  /// Hidden size of the MLP; 0: 4 * dim for "gelu", 8/3 * dim rounded up to
  /// a multiple of 64 for "swiglu" (as LLaMA).
  int64_t mlp_dim = 0;
  /// "gelu" (GPT-2: up, GELU, down), "swiglu" (LLaMA: silu(gate) * up,
  /// down) or "relu2" (Primer: up, relu(.)^2, down).
  std::string mlp = "gelu";
  /// "layer" (LayerNorm) or "rms" (RMSNorm), applied before each sub-block.
  std::string norm = "layer";
  /// Biases in the projections (GPT-2 has them, LLaMA not).
  bool bias = true;
  /// RMS-normalize each head's queries and keys (with learned scales
  /// "query_norm" and "key_norm" [head_dim]) before the rotary positions, as
  /// Qwen3: bounded attention logits allow higher learning rates.
  bool qk_norm = false;
  bool causal = true;
  /// Bool [batch, time] (with a cache: [batch, cache_length], over the
  /// cache's slots), false at padded positions: no query attends to them.
  Node padding_mask;
  /// Rotary positions on queries and keys (none when false).
  bool rotary = false;
  RotaryOptions rotary_options;
  /// The position of the first step, for rotary: an integer scalar (empty:
  /// 0), or a vector [batch] with one per row (left-padded prompts start
  /// their positions after their padding).
  Node position_offset;
  /// Token shift (RWKV's, as DecoderOptions::smear): the normalized inputs
  /// of the attention and of the MLP each add a learned per-channel
  /// multiple of the previous position's, in "attention_shift/lambda" and
  /// "mlp_shift/lambda" [dim] (zero at first: the plain block); nothing at
  /// the first position or after a padded one. With a cache the last
  /// position's inputs are kept for the next call, in "last" variables of
  /// the cache scope. In the char-GPT example (with smear) the held-out loss
  /// after 1,000 steps is 0.019 bits per byte lower, for 4% more time per step.
  bool token_shift = false;
  /// Dropout on each sub-block's output (before the residual sum), in training.
  double dropout = 0;
  /// Incremental decoding: > 0 keeps the keys and values of this many
  /// positions in the variables "key" and "value" [batch, kv_heads,
  /// cache_length, head_dim] (not trainable; head-major, so attention reads
  /// them in place) of the scope kKvCacheScope + the
  /// block's scope. Each call writes its time steps at cache_offset and
  /// attends causally to everything cached before them, so a prompt then one
  /// token per call gives the outputs of a full pass over the same sequence,
  /// with one compiled graph per (batch, time) shape whatever the offset.
  /// Needs causal; cache_offset + time beyond cache_length is clamped
  /// (DynamicUpdateSlice).
  int64_t cache_length = 0;
  /// The cache slot of the first step (integer scalar); empty: the scalar
  /// position_offset (or 0).
  Node cache_offset;
};

/// The root scope of every TransformerBlock's key/value cache
/// (Context::DeleteVariablesInScope(kKvCacheScope) frees them all).
inline constexpr std::string_view kKvCacheScope = "/kv_cache";

/// One pre-norm block on x [batch, time, dim]: x + Attention(Norm(x)), then
/// + MLP(Norm(.)). Variables in ctx's scope: "attention_norm", "query",
/// "key", "value", "output", "mlp_norm", and "up", "down" (plus "gate" for
/// SwiGLU; "query_norm", "key_norm" with qk_norm; "attention_shift",
/// "mlp_shift" with token_shift), each a Dense or norm layer's variables.
Node TransformerBlock(Context ctx, Node x, const TransformerOptions& options = {});

/// Options of Decoder.
struct DecoderOptions {
  /// Tokens are in [0, vocab_size).
  int64_t vocab_size = 0;
  int64_t dim = 256;
  int num_layers = 6;
  /// "rotary" (rotary positions in every block's attention, with
  /// block.rotary_options) or "learned" (GPT-2: a table of max_length
  /// position embeddings added to the token embeddings).
  std::string positions = "rotary";
  /// Rows of the learned position table (unused for rotary).
  int64_t max_length = 1024;
  /// true: the output projection is the token embedding table transposed
  /// (weight tying, as GPT-2); false: a Dense layer "logits" without bias.
  bool tie_embeddings = true;
  /// > 0: the logits are soft-capped to (-c, c) as c * tanh(logits / c)
  /// (Gemma 2); 0: not capped.
  double logit_softcap = 0;
  /// Token shift ("smear", as modded-nanogpt's smear module and RWKV's token
  /// shift): each position's embedding adds a learned per-channel multiple
  /// of the previous position's, lambda * x[t - 1] with "smear/lambda"
  /// [dim] (zero at first: the plain decoder); the first position, and one
  /// after a padded position, adds nothing. The next byte depends most on
  /// the last ones, and this hands them to the first block directly: the
  /// char-GPT example's held-out loss after 1,000 steps is 0.023 bits per
  /// byte lower with it. With a cache, each call keeps its last position's
  /// embedding in "/kv_cache/smear/last" for the next call (as the blocks
  /// keep keys and values), so decoding gives the full pass's outputs.
  bool smear = false;
  /// Every block's options. Their position_offset, cache_offset,
  /// cache_length and padding_mask are the decoder's: one cache per block.
  TransformerOptions block;
};

/// A decoder-only language model (GPT): integer tokens [batch, time] ->
/// logits [batch, time, vocab_size]. Token embeddings "embedding" (Float32,
/// dropout block.dropout in training; with smear, shifted first),
/// num_layers TransformerBlocks
/// "block0", "block1", ..., a final norm "final_norm" of block.norm's kind,
/// then the tied (or "logits") projection.
Node Decoder(Context ctx, Node tokens, const DecoderOptions& options);

}  // namespace kiln::ml::layers
