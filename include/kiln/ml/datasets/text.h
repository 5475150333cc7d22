// Copyright 2026 The Kiln Authors.
// Language-model batches from a token stream: windows of `length` tokens as
// inputs and the same windows shifted by one (the next tokens) as labels.
//
//   datasets::TokenWindows train("train", tokens, 256);
//   train.BatchSize(32).Shuffle(seed);   // random windows, fresh each epoch
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "kiln/ml/datasets/datasets.h"

namespace kiln::ml::datasets {

/// Windows of a token stream: inputs Int32 [batch, length] = tokens[s, s +
/// length), labels Int32 [batch, length] = tokens[s + 1, s + length + 1).
/// An epoch has NumTokens() / (batch * length) batches (at least one when
/// shuffled; stride instead of length with Stride; never more than the
/// distinct windows allow), so it predicts about as many tokens as the
/// stream holds. With Stride below the length,
/// the labels also hold a Bool mask [batch, length] of the positions to score
/// (see Stride).
class TokenWindows : public Dataset {
 public:
  /// Throws kiln::Error unless length >= 1 and the stream holds at least
  /// length + 1 tokens.
  TokenWindows(std::string name, std::vector<int32_t> tokens, int64_t length);
  /// Windows per batch (default 32).
  TokenWindows& BatchSize(int64_t n);
  /// Each epoch draws its windows' starts from every possible start without
  /// repetition, in an order given by (seed, epoch). Without it, windows are
  /// consecutive and do not overlap (s = 0, length, 2 length, ...): each token
  /// is predicted once, as an evaluation wants.
  TokenWindows& Shuffle(uint64_t seed);
  /// Sliding-window evaluation (as fixed-context language models are
  /// evaluated: Al-Rfou et al. 2018, GPT-2): without Shuffle, consecutive
  /// windows start `stride` tokens apart (default: the length, no overlap),
  /// and with 1 <= stride < length the labels are {next tokens, mask}, the
  /// Bool mask keeping each window's last `stride` positions only. Each
  /// token is then scored at most once, predicted from at least length -
  /// stride + 1 tokens (the inputs up to its position), where non-overlapping
  /// windows predict a window's first tokens from almost nothing. Not scored:
  /// the first length - stride tokens of the stream, and as without a
  /// stride, the windows that do not fill a last batch and the tokens after
  /// the last window. Every batch scores batch * stride tokens, so
  /// Trainer::Evaluate's mean over batches is the mean over tokens. Throws
  /// kiln::Error unless 1 <= stride <= length; Next throws if the dataset
  /// is also shuffled with stride < length.
  TokenWindows& Stride(int64_t stride);
  /// Repeats forever: Next never returns false (Reset is automatic).
  TokenWindows& Infinite(bool infinite);
  /// Input noising (Xie et al. 2017, "Data noising as smoothing in neural
  /// network language models"): each input token is replaced, with
  /// probability `rate`, by one drawn uniformly from [0, vocab_size); the
  /// labels stay the true next tokens. A regularizer for training on a
  /// stream seen many times; the draws follow (seed, epoch, batch), so a run
  /// is reproducible (with one C++ standard library: the distributions are
  /// the library's). rate 0 (the default) turns it off. Throws kiln::Error
  /// unless 0 <= rate < 1 and vocab_size >= 1.
  TokenWindows& InputNoise(double rate, int32_t vocab_size, uint64_t seed = 0);
  /// Tokens in the stream.
  int64_t NumTokens() const { return static_cast<int64_t>(tokens_.size()); }
  /// Batches per epoch (see the class comment).
  int64_t BatchesPerEpoch() const;

  std::string Name() const override { return name_; }
  bool Next(Batch& batch) override;
  void Reset() override;

 private:
  int64_t NumStarts() const;

  std::string name_;
  std::vector<int32_t> tokens_;
  int64_t length_, stride_, batch_size_ = 32, batch_ = 0, epoch_ = 0;
  bool shuffle_ = false, infinite_ = false;
  uint64_t seed_ = 0;
  double noise_rate_ = 0;
  int32_t noise_vocab_ = 0;
  uint64_t noise_seed_ = 0;
  std::vector<int64_t> starts_;  // this epoch's order of the possible starts (shuffled)
};

}  // namespace kiln::ml::datasets
