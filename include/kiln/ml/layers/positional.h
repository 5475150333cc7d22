// Copyright 2026 The Kiln Authors.
// Positional information for sequence models: sinusoidal and learned
// position embeddings, rotary embeddings (RoPE, in both conventions) and
// ALiBi attention biases. Positions may start at an offset (a Node), so a
// decode step with a KV cache uses the same functions as the full pass.
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/ml/layers/layers.h"

namespace kiln::ml::layers {

/// The sinusoidal encodings of Vaswani et al. [length, dim] (dim even):
/// PE[p, 2i] = sin(p / base^(2i/dim)), PE[p, 2i+1] = cos(p / base^(2i/dim)),
/// for positions p = offset, ..., offset + length - 1. `offset` is an
/// integer scalar Node (empty: 0).
Node SinusoidalPositions(graph::Graph* g, int64_t length, int64_t dim, dtypes::DType dtype = dtypes::Float32,
                         Node offset = {}, double base = 10000);

/// x [batch, time, dim] plus learned position embeddings: rows offset ...
/// offset + time - 1 of the variable "positions" [max_length, dim] (the
/// context's initializer, normal(0, 0.02) by default as GPT-2). offset + time
/// beyond max_length is an error when offset is a constant (empty: 0); a Node
/// offset is clamped as DynamicSlice does. `offset` is an integer scalar or
/// a vector [batch] with each row's first position (rows clamped to the
/// table), as batched generation of left-padded prompts needs.
Node LearnedPositions(Context ctx, Node x, int64_t max_length, Node offset = {});

/// Options of ApplyRotary.
struct RotaryOptions {
  double base = 10000;
  /// false: rotate halves (GPT-NeoX, LLaMA as in Hugging Face): element i
  /// pairs with i + dim/2. true: interleaved pairs (GPT-J, RoFormer):
  /// element 2i pairs with 2i + 1.
  bool interleaved = false;
  /// Rotate only the first rotary_dim elements of the last axis (0: all).
  int64_t rotary_dim = 0;
};

/// Rotary position embedding of x [batch, time, heads, head_dim] (or
/// [time, heads, head_dim]): each pair (a, b) of the rotated dims at position
/// p turns by the angle p * base^(-2i/rotary_dim), i the pair's index.
/// Positions are offset + 0 ... offset + time - 1 (offset an integer scalar
/// Node, empty: 0, or for x with a batch axis a vector [batch], one offset
/// per row).
Node ApplyRotary(Node x, const RotaryOptions& options = {}, Node offset = {});

/// The ALiBi slopes of Press et al. for `num_heads` heads: 2^(-8 h / n) for
/// h = 1 ... n when n is a power of two; otherwise those of the next lower
/// power of two followed by every other slope of twice that many.
std::vector<double> AlibiSlopes(int num_heads);
/// The ALiBi bias [heads, q_len, kv_len] to add to attention scores:
/// slope_h * (j - (kv_len - q_len + i)), minus the slope times how far key j
/// lies behind query i (the queries being the last q_len positions, as in
/// decoding with a cache). Keys after the query get positive values; the
/// causal mask, which the caller applies, removes them.
Node AlibiBias(graph::Graph* g, int num_heads, int64_t q_len, int64_t kv_len, dtypes::DType dtype = dtypes::Float32);

}  // namespace kiln::ml::layers
