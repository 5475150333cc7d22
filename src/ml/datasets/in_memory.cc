// Copyright 2026 The Kiln Authors.
// InMemory: batches of rows of host tensors, optionally shuffled per epoch;
// internal::GatherRows, the row copy the datasets share.
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <utility>

#include "kiln/ml/datasets/datasets.h"
#include "src/ml/datasets/permutation.h"
#include "src/ml/datasets/rows.h"

namespace kiln::ml::datasets {

namespace {

using tensors::Tensor;

// The number of rows of `t`, or an error naming the dataset and the tensor.
int64_t NumRows(const std::string& name, const Tensor& t, const char* kind, size_t index) {
  std::ostringstream where;
  where << "InMemory(\"" << name << "\"): " << kind << "[" << index << "]";
  if (!t.Ok()) Throw(where.str() + " is an empty tensor handle");
  if (t.Rank() == 0) {
    Throw(where.str() + " is a scalar (" + t.Shape().ToString() + "); examples are rows of the first axis");
  }
  return t.Shape().Dim(0);
}

}  // namespace

InMemory::InMemory(std::string name, std::vector<Tensor> inputs, std::vector<Tensor> labels)
    : name_(std::move(name)), inputs_(std::move(inputs)), labels_(std::move(labels)) {
  if (inputs_.empty() && labels_.empty()) Throw("InMemory(\"" + name_ + "\"): no input or label tensors");
  const bool from_inputs = !inputs_.empty();
  num_examples_ = from_inputs ? NumRows(name_, inputs_[0], "inputs", 0) : NumRows(name_, labels_[0], "labels", 0);
  auto check = [&](const std::vector<Tensor>& ts, const char* kind) {
    for (size_t i = 0; i < ts.size(); ++i) {
      const int64_t rows = NumRows(name_, ts[i], kind, i);
      if (rows == num_examples_) continue;
      std::ostringstream msg;
      msg << "InMemory(\"" << name_ << "\"): " << kind << "[" << i << "] " << ts[i].Shape().ToString() << " has "
          << rows << " rows, but " << (from_inputs ? "inputs" : "labels") << "[0] "
          << (from_inputs ? inputs_[0] : labels_[0]).Shape().ToString() << " has " << num_examples_;
      Throw(msg.str());
    }
  };
  check(inputs_, "inputs");
  check(labels_, "labels");
}

InMemory& InMemory::BatchSize(int64_t n) {
  if (n <= 0) Throw("InMemory(\"" + name_ + "\"): batch size must be positive, got " + std::to_string(n));
  batch_size_ = n;
  return *this;
}

InMemory& InMemory::Shuffle(uint64_t seed) {
  shuffle_ = true;
  seed_ = seed;
  // Recomputed with the new seed at the next Next(); meant to be set before
  // iterating (mid-epoch, the rest of the epoch follows the new order).
  order_.clear();
  return *this;
}

InMemory& InMemory::KeepPartialBatch(bool keep) {
  keep_partial_ = keep;
  return *this;
}

InMemory& InMemory::Infinite(bool infinite) {
  infinite_ = infinite;
  return *this;
}

int64_t InMemory::NumExamples() const { return num_examples_; }

int64_t InMemory::BatchesPerEpoch() const {
  const int64_t full = num_examples_ / batch_size_;
  return keep_partial_ && num_examples_ % batch_size_ != 0 ? full + 1 : full;
}

bool InMemory::Next(Batch& batch) {
  // Rows left this epoch that still make a batch (a partial one only if kept).
  auto batch_rows = [&] {
    const int64_t left = num_examples_ - position_;
    if (left >= batch_size_) return batch_size_;
    return keep_partial_ ? left : int64_t{0};
  };
  int64_t count = batch_rows();
  if (count == 0) {
    if (!infinite_) return false;
    // An infinite dataset with no batch per epoch would loop forever.
    if (BatchesPerEpoch() == 0) {
      Throw("InMemory(\"" + name_ + "\"): infinite dataset yields no batch: " + std::to_string(num_examples_) +
            " examples, batch size " + std::to_string(batch_size_) + ", partial batches dropped");
    }
    Reset();
    count = batch_rows();
  }
  if (shuffle_ && order_.empty()) order_ = internal::EpochPermutation(num_examples_, seed_, epoch_);
  batch.inputs.clear();
  batch.labels.clear();
  for (const Tensor& t : inputs_) batch.inputs.push_back(internal::GatherRows(t, order_, position_, count));
  for (const Tensor& t : labels_) batch.labels.push_back(internal::GatherRows(t, order_, position_, count));
  position_ += count;
  return true;
}

void InMemory::Reset() {
  ++epoch_;
  position_ = 0;
  order_.clear();  // The next epoch's permutation is computed lazily.
}

namespace internal {

Tensor GatherRows(const Tensor& source, const std::vector<int64_t>& order, int64_t first, int64_t count) {
  std::vector<int64_t> dims = source.Shape().Dims();
  const int64_t row_bytes = dims[0] == 0 ? 0 : source.Shape().ByteSize() / dims[0];
  dims[0] = count;
  Tensor batch(shapes::Shape(source.DType(), std::move(dims)));
  if (row_bytes == 0 || count == 0) return batch;
  const auto* src = static_cast<const std::byte*>(source.HostData());
  auto* dst = static_cast<std::byte*>(batch.MutableHostData());
  if (order.empty()) {  // Contiguous rows: one copy.
    std::memcpy(dst, src + first * row_bytes, static_cast<size_t>(count * row_bytes));
    return batch;
  }
  for (int64_t i = 0; i < count; ++i) {
    std::memcpy(dst + i * row_bytes, src + order[first + i] * row_bytes, static_cast<size_t>(row_bytes));
  }
  return batch;
}

}  // namespace internal

}  // namespace kiln::ml::datasets
