// Copyright 2026 The Kiln Authors.
// TokenWindows (see kiln/ml/datasets/text.h).
#include "kiln/ml/datasets/text.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

#include "src/ml/datasets/permutation.h"

namespace kiln::ml::datasets {

TokenWindows::TokenWindows(std::string name, std::vector<int32_t> tokens, int64_t length)
    : name_(std::move(name)), tokens_(std::move(tokens)), length_(length), stride_(length) {
  if (length < 1 || NumTokens() < length + 1) {
    Throw("TokenWindows(\"" + name_ + "\"): needs length >= 1 and at least length + 1 tokens, got length " +
          std::to_string(length) + " and " + std::to_string(NumTokens()) + " tokens");
  }
}

TokenWindows& TokenWindows::BatchSize(int64_t n) {
  if (n <= 0) Throw("TokenWindows(\"" + name_ + "\"): batch size must be positive, got " + std::to_string(n));
  batch_size_ = n;
  return *this;
}

TokenWindows& TokenWindows::Shuffle(uint64_t seed) {
  shuffle_ = true;
  seed_ = seed;
  starts_.clear();
  return *this;
}

TokenWindows& TokenWindows::Stride(int64_t stride) {
  if (stride < 1 || stride > length_) {
    Throw("TokenWindows(\"" + name_ + "\"): Stride needs 1 <= stride <= length (" + std::to_string(length_) +
          "), got " + std::to_string(stride));
  }
  stride_ = stride;
  return *this;
}

TokenWindows& TokenWindows::Infinite(bool infinite) {
  infinite_ = infinite;
  return *this;
}

TokenWindows& TokenWindows::InputNoise(double rate, int32_t vocab_size, uint64_t seed) {
  if (!(rate >= 0 && rate < 1) || vocab_size < 1) {
    std::ostringstream message;
    message << "TokenWindows(\"" << name_ << "\"): InputNoise needs 0 <= rate < 1 and vocab_size >= 1, got rate "
            << rate << " and vocab_size " << vocab_size;
    Throw(message.str());
  }
  noise_rate_ = rate;
  noise_vocab_ = vocab_size;
  noise_seed_ = seed;
  return *this;
}

// Shuffled: every start with a full window and its labels; else every
// stride-th one (the non-overlapping ones by default).
int64_t TokenWindows::NumStarts() const {
  const int64_t possible = NumTokens() - length_;
  return shuffle_ ? possible : possible / stride_ + (possible % stride_ != 0 ? 1 : 0);
}

int64_t TokenWindows::BatchesPerEpoch() const {
  const int64_t by_tokens = NumTokens() / (batch_size_ * (shuffle_ ? length_ : stride_));
  return std::min(shuffle_ ? std::max<int64_t>(by_tokens, 1) : by_tokens, NumStarts() / batch_size_);
}

bool TokenWindows::Next(Batch& batch) {
  if (shuffle_ && stride_ != length_) {
    Throw("TokenWindows(\"" + name_ + "\"): Stride is for evaluation, in stream order: it cannot be combined with "
          "Shuffle");
  }
  if (batch_ >= BatchesPerEpoch()) {
    if (!infinite_) return false;
    if (BatchesPerEpoch() == 0) {
      Throw("TokenWindows(\"" + name_ + "\"): infinite dataset yields no batch: " + std::to_string(NumTokens()) +
            " tokens, windows of " + std::to_string(length_) + ", batch size " + std::to_string(batch_size_));
    }
    Reset();
  }
  if (shuffle_ && starts_.empty()) starts_ = internal::EpochPermutation(NumStarts(), seed_, epoch_);
  const shapes::Shape shape(dtypes::Int32, {batch_size_, length_});
  tensors::Tensor inputs(shape), labels(shape);
  auto* in = static_cast<int32_t*>(inputs.MutableHostData());
  auto* out = static_cast<int32_t*>(labels.MutableHostData());
  for (int64_t i = 0; i < batch_size_; ++i) {
    const int64_t w = batch_ * batch_size_ + i;
    const int64_t start = shuffle_ ? starts_[static_cast<size_t>(w)] : w * stride_;
    const size_t bytes = static_cast<size_t>(length_) * sizeof(int32_t);
    std::memcpy(in + i * length_, tokens_.data() + start, bytes);
    std::memcpy(out + i * length_, tokens_.data() + start + 1, bytes);
  }
  if (noise_rate_ > 0) {
    // One generator per (seed, epoch, batch): the same batch is noised alike
    // in a resumed run that reaches it through Skip.
    std::seed_seq seq{static_cast<uint32_t>(noise_seed_), static_cast<uint32_t>(noise_seed_ >> 32),
                      static_cast<uint32_t>(epoch_), static_cast<uint32_t>(batch_)};
    std::mt19937_64 rng(seq);
    std::bernoulli_distribution replace(noise_rate_);
    std::uniform_int_distribution<int32_t> token(0, noise_vocab_ - 1);
    for (int64_t i = 0; i < batch_size_ * length_; ++i) {
      if (replace(rng)) in[i] = token(rng);
    }
  }
  batch.inputs = {std::move(inputs)};
  batch.labels = {std::move(labels)};
  if (stride_ < length_) {
    // The last `stride` positions of each window: the tokens the window
    // before did not score.
    tensors::Tensor mask(shapes::Shape(dtypes::Bool, {batch_size_, length_}));
    auto* keep = static_cast<bool*>(mask.MutableHostData());
    for (int64_t i = 0; i < batch_size_ * length_; ++i) keep[i] = i % length_ >= length_ - stride_;
    batch.labels.push_back(std::move(mask));
  }
  ++batch_;
  return true;
}

void TokenWindows::Reset() {
  ++epoch_;
  batch_ = 0;
  starts_.clear();
}

}  // namespace kiln::ml::datasets
