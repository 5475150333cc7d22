// Copyright 2026 The Kiln Authors.
// Choosing the next token from a model's logits, inside a compiled graph:
// greedy, temperature, top-k, top-p (nucleus) and a repetition penalty, as
// Hugging Face's generation utilities define them, with the randomness drawn
// from the context's RNG state (reproducible from ctx.SetSeed, different on
// every call).
//
//   Node next = generation::SampleTokens(ctx, logits, {.temperature = 0.8, .top_k = 40, .top_p = 0.95});
#pragma once

#include <cstdint>

#include "kiln/context/context.h"

namespace kiln::ml::generation {

using graph::Node;

/// How to choose a token. The filters apply in this order: repetition
/// penalty, temperature, top-k, top-p.
struct SamplingOptions {
  /// Divides the logits; 0 means greedy (the most likely token, no randomness).
  double temperature = 1.0;
  /// Keeps the k most likely tokens (and those tied with the k-th); 0 keeps all.
  int64_t top_k = 0;
  /// Keeps the smallest set of most likely tokens whose probabilities sum to
  /// at least top_p (and those tied with its least likely); 1 keeps all.
  double top_p = 1.0;
  /// Tokens already in `previous`: positive logits divided by it, negative
  /// ones multiplied (Keskar et al. 2019, as Hugging Face); 1 is off.
  double repetition_penalty = 1.0;
};

/// The logits [batch, vocab] with the options applied: penalized, divided by
/// the temperature (unless 0), and -Inf outside the top-k and top-p sets;
/// Float32 for Float16/BFloat16 logits, else their dtype. `previous`
/// (optional) holds integer token ids [batch, n] (out-of-range ids, e.g.
/// padding with -1, are ignored).
Node ProcessLogits(Node logits, const SamplingOptions& options, Node previous = {});

/// One token per row of logits [batch, vocab]: Int32 [batch], drawn from
/// softmax(ProcessLogits(...)) with the Gumbel-max trick (or its argmax when
/// temperature is 0). The draws advance ctx's RNG state. A row whose logits
/// are all -Inf (or NaN) has no distribution; it gives token 0.
Node SampleTokens(context::Context ctx, Node logits, const SamplingOptions& options, Node previous = {});

}  // namespace kiln::ml::generation
