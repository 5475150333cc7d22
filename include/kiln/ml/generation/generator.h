// Copyright 2026 The Kiln Authors.
// Text generation with a key/value cache: a batch of prompts of different
// lengths (left-padded) runs through the model once, then one token per
// step, each step a call of one compiled graph per (batch, cache length) that
// samples inside the graph, so only the chosen token ids come back. Sampling
// (greedy, temperature, top-k, top-p, repetition penalty) or beam search
// with a length penalty; stop tokens; reproducible from a seed.
//
//   generation::Generator gen(backend, ctx, generation::DecoderModel(options), /*cache_length=*/512);
//   auto out = gen.Generate({tok.Encode("Q: "), tok.Encode("Why")},
//                           {.max_new_tokens = 100, .sampling = {.temperature = 0.8, .top_k = 40}});
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/backends/backend.h"
#include "kiln/context/context.h"
#include "kiln/ml/generation/sampling.h"
#include "kiln/ml/layers/transformer.h"

namespace kiln::ml::generation {

/// What a decoder sees in one generation call: the tokens and the state of
/// its key/value cache (layers::TransformerOptions's fields of the same names).
struct DecodeInputs {
  /// Int32 [batch, time]: the prompts (left-padded) in the first call, then one token.
  Node tokens;
  /// Int32 [batch]: the position of each row's first token (its padding excluded).
  Node position_offset;
  /// Int32 scalar: the cache slot of the first token.
  Node cache_offset;
  /// Bool [batch, cache_length]: false at the slots holding padding.
  Node padding_mask;
  int64_t cache_length = 0;
};

/// A model for generation: logits [batch, time, vocab] of inputs.tokens,
/// reading and writing a key/value cache of inputs.cache_length slots.
using DecoderFn = std::function<Node(context::Context ctx, const DecodeInputs& inputs)>;

/// The DecoderFn of layers::Decoder with `options` (its cache fields are set
/// from the inputs).
DecoderFn DecoderModel(layers::DecoderOptions options);

/// Options of Generator::Generate.
struct GenerateOptions {
  /// Tokens to generate per prompt at most.
  int64_t max_new_tokens = 64;
  /// How each token is chosen (temperature 0: greedy). The repetition
  /// penalty sees the prompt and the tokens generated so far.
  SamplingOptions sampling;
  /// A row ends after generating one of these (which is kept in its output).
  std::vector<int32_t> stop_tokens;
  /// The same seed, prompts and options give the same tokens.
  uint64_t seed = 0;
  /// > 1: beam search with this many beams per prompt (the sampling options
  /// are then unused): the hypothesis with the best score sum(log p) /
  /// length^length_penalty, length counting the generated tokens.
  int num_beams = 1;
  double length_penalty = 1.0;
  /// Beam search of a prompt ends once num_beams hypotheses are finished
  /// (true), or (false, the default) once, in addition, the best candidate of
  /// the step scored at the current length does not beat the worst of them
  /// (Hugging Face's heuristic), or at max_new_tokens.
  bool early_stopping = false;
};

/// Timings of the last Generate.
struct GenerateStats {
  int64_t prompt_tokens = 0;     // the padded prompt length times the rows
  int64_t generated_tokens = 0;  // tokens returned, over all prompts
  int64_t steps = 0;             // decode steps after the prompt
  double prefill_seconds = 0, decode_seconds = 0;
};

/// Generates from a decoder whose variables are in `ctx` (trained or
/// restored). The caches live in ctx under layers::kKvCacheScope while the
/// Generator lives, sized for the last call: its rows and the smallest power
/// of two from 64 that holds the padded prompt and max_new_tokens (at most
/// cache_length). A call of another size replaces them (and traces the step
/// graphs again); the destructor deletes them. So one Generator per context
/// at a time: a second one would replace the first one's caches.
class Generator {
 public:
  /// `cache_length`: the longest prompt plus max_new_tokens must fit.
  Generator(std::shared_ptr<backends::Backend> backend, context::Context ctx, DecoderFn model, int64_t cache_length);
  ~Generator();
  Generator(const Generator&) = delete;
  Generator& operator=(const Generator&) = delete;

  /// The generated tokens of each prompt (not the prompt), up to and
  /// including a stop token. Prompts must be non-empty, with ids in
  /// [0, vocab); errors are kiln::Errors.
  std::vector<std::vector<int32_t>> Generate(const std::vector<std::vector<int32_t>>& prompts,
                                             const GenerateOptions& options);
  /// Token counts and timings of the last Generate.
  const GenerateStats& LastStats() const { return stats_; }

 private:
  struct Steps;  // the compiled graphs
  struct Batch;  // the host-side state of one Generate

  void CheckPromptTokens(const Batch& b) const;
  std::vector<std::vector<int32_t>> Sample(Batch& b, const GenerateOptions& options);
  std::vector<std::vector<int32_t>> BeamSearch(Batch& b, const GenerateOptions& options);

  std::shared_ptr<backends::Backend> backend_;
  context::Context ctx_;
  DecoderFn model_;
  int64_t cache_length_;
  std::unique_ptr<Steps> steps_;
  std::pair<int64_t, int64_t> cache_shape_{-1, -1};  // the (rows, length) the caches were made for
  GenerateStats stats_;
};

}  // namespace kiln::ml::generation
