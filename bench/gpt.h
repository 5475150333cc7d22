// Copyright 2026 The Kiln Authors.
// The GPT of examples/char_gpt as a benchmark workload, the same model on
// both sides: byte vocabulary, kGptLayers pre-norm blocks (RMSNorm, rotary
// positions, causal multi-head attention, SwiGLU MLP, no biases), tied
// embeddings; AdamW with global-norm clipping for training, greedy decoding
// with a key/value cache for generation.
#pragma once

#include <cstdint>

#include "bench/workloads.h"

namespace kiln::bench {

inline constexpr int64_t kGptVocab = 256;
inline constexpr int64_t kGptLayers = 4;
inline constexpr int64_t kGptDim = 256;
inline constexpr int64_t kGptHeads = 4;
inline constexpr int64_t kGptMlp = 704;  // SwiGLU hidden size: 8/3 dim rounded up to 64, as Kiln's default
inline constexpr int64_t kGptContext = 128;
inline constexpr int64_t kGptBatch = 32;
/// Decoding: kDecodeBatch prompts of kDecodePrompt tokens, kDecodeTokens new
/// tokens each, in a cache of kGptContext slots.
inline constexpr int64_t kDecodeBatch = 4;
inline constexpr int64_t kDecodePrompt = 16;
inline constexpr int64_t kDecodeTokens = 64;

/// One training step (forward, loss, backward, clipping, AdamW update) of
/// the GPT on a random batch of kGptBatch x kGptContext bytes.
Step GptTrainStep(const std::shared_ptr<backends::Backend>& backend);
/// One generation: kDecodeBatch prompts, then kDecodeTokens greedy tokens
/// each with the key/value cache.
Step GptDecode(const std::shared_ptr<backends::Backend>& backend);

}  // namespace kiln::bench
