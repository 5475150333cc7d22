// Copyright 2026 The Kiln Authors.
// Datasets: sources of batches of (inputs, labels) tensors.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/core/tensors.h"

namespace kiln::ml::datasets {

/// One batch: the model's inputs and the labels.
struct Batch {
  std::vector<tensors::Tensor> inputs;
  std::vector<tensors::Tensor> labels;
};

/// A source of batches. Next returns false at the end of an epoch; Reset
/// starts the next epoch (reshuffling if the dataset shuffles).
class Dataset {
 public:
  virtual ~Dataset() = default;
  /// A name for messages and progress output.
  virtual std::string Name() const = 0;
  /// Fills `batch` and returns true, or returns false at the end of the epoch.
  virtual bool Next(Batch& batch) = 0;
  /// Rewinds to the start of a new epoch (also on a fresh dataset: the first
  /// Reset moves to epoch 1).
  virtual void Reset() = 0;
};

/// An in-memory dataset: examples are the rows (first axis) of `inputs` and
/// `labels` (all with the same number of rows).
class InMemory : public Dataset {
 public:
  /// Throws kiln::Error if the tensors' first dimensions differ.
  InMemory(std::string name, std::vector<tensors::Tensor> inputs, std::vector<tensors::Tensor> labels);
  /// Examples per batch (default 32).
  InMemory& BatchSize(int64_t n);
  /// Shuffles the examples each epoch with this seed (deterministic; epoch e
  /// uses a permutation of (seed, e)). Set it before iterating.
  InMemory& Shuffle(uint64_t seed);
  /// Keep (true) or drop (false, default) the last partial batch.
  InMemory& KeepPartialBatch(bool keep);
  /// Repeats forever: Next never returns false (Reset is automatic).
  InMemory& Infinite(bool infinite);
  /// Examples (rows) in the dataset.
  int64_t NumExamples() const;
  /// Batches per epoch.
  int64_t BatchesPerEpoch() const;

  std::string Name() const override { return name_; }
  bool Next(Batch& batch) override;
  void Reset() override;

 private:
  std::string name_;
  std::vector<tensors::Tensor> inputs_, labels_;
  int64_t batch_size_ = 32, num_examples_ = 0, position_ = 0, epoch_ = 0;
  bool shuffle_ = false, keep_partial_ = false, infinite_ = false;
  uint64_t seed_ = 0;
  std::vector<int64_t> order_;
};

/// One process's share of each batch of `source`, for data-parallel
/// training (train::Trainer::EnableDataParallel): every process iterates the
/// same global batches (give each the same shuffle seed) and keeps its slice
/// of the rows, the b rows of a batch split as evenly as possible in rank
/// order (the first b % world_size processes get one more). So each example
/// is seen once per epoch across processes, and a last, partial global batch
/// is split too, never dropped on some processes only: with fewer rows than
/// processes, some shards are empty (0 rows), which the data-parallel train
/// step and Trainer::Evaluate handle. `source` must outlive this dataset.
class Sharded : public Dataset {
 public:
  /// Throws kiln::Error unless 0 <= rank < world_size.
  Sharded(Dataset& source, int rank, int world_size);
  /// With distributed::Rank() and distributed::WorldSize().
  explicit Sharded(Dataset& source);

  std::string Name() const override;
  bool Next(Batch& batch) override;
  void Reset() override { source_.Reset(); }

 private:
  Dataset& source_;
  int rank_, world_size_;
};

/// Advances `dataset` by `batches` batches as train::Loop::RunSteps reads
/// them (Reset at the end of each epoch), so a run restored from a
/// checkpoint at global step n sees the data an uninterrupted run would:
/// Skip(dataset, n), then RunSteps. Throws kiln::Error if an epoch is empty.
void Skip(Dataset& dataset, int64_t batches);

/// Reads batches of `source` on a background thread, `depth` batches ahead.
/// Errors in the source are rethrown by Next.
std::unique_ptr<Dataset> Prefetch(std::unique_ptr<Dataset> source, int depth = 2);

/// Reads an IDX file (the MNIST format: magic, dims, big-endian data;
/// gzip-compressed or plain, recognised by content) into a tensor of its dtype
/// (Uint8, Int8, Int16, Int32, Float32, Float64). Missing, truncated or
/// malformed files are kiln::Errors naming the file.
tensors::Tensor ReadIdx(const std::string& path);

/// MNIST-style data: images Float32 [n, 28, 28, 1] scaled to [0, 1] and
/// labels Int32 [n].
struct ImageData {
  tensors::Tensor images, labels;
};
/// Loads "<dir>/<prefix>-images-idx3-ubyte.gz" and "-labels-idx1-ubyte.gz"
/// (prefix "train" or "t10k"). Throws if the files are missing or their
/// counts differ.
ImageData LoadMnistLike(const std::string& dir, const std::string& prefix);

/// Per-feature normalization: (x - mean) / std, with mean and population std
/// computed over the first axis of `x` (returned so test data can use them);
/// std is floored at 1e-6 so constant features map to 0.
struct Normalization {
  tensors::Tensor mean, stddev;
};
/// The per-feature mean and std of x over axis 0.
Normalization ComputeNormalization(const tensors::Tensor& x);
/// (x - n.mean) / n.stddev, broadcast over axis 0.
tensors::Tensor Normalize(const tensors::Tensor& x, const Normalization& n);

}  // namespace kiln::ml::datasets
