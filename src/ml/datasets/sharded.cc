// Copyright 2026 The Kiln Authors.
// Sharded: one process's slice of every global batch (data parallelism);
// Skip: resuming a dataset where a restored run left it.
#include <algorithm>

#include "kiln/distributed/distributed.h"
#include "kiln/ml/datasets/datasets.h"
#include "src/ml/datasets/rows.h"

namespace kiln::ml::datasets {

Sharded::Sharded(Dataset& source, int rank, int world_size) : source_(source), rank_(rank), world_size_(world_size) {
  if (world_size < 1 || rank < 0 || rank >= world_size) {
    Throw("datasets::Sharded(\"" + source.Name() + "\"): rank " + std::to_string(rank) + " is out of range for " +
          std::to_string(world_size) + " process(es)");
  }
}

Sharded::Sharded(Dataset& source) : Sharded(source, distributed::Rank(), distributed::WorldSize()) {}

std::string Sharded::Name() const {
  return source_.Name() + " (shard " + std::to_string(rank_) + " of " + std::to_string(world_size_) + ")";
}

bool Sharded::Next(Batch& batch) {
  Batch global;
  if (!source_.Next(global)) return false;
  int64_t rows = -1;
  auto check = [&](const std::vector<tensors::Tensor>& ts, const char* kind) {
    for (size_t i = 0; i < ts.size(); ++i) {
      if (ts[i].Rank() == 0) {
        Throw("datasets::Sharded(\"" + source_.Name() + "\"): " + kind + "[" + std::to_string(i) + "] is a scalar " +
              ts[i].Shape().ToString() + "; batches are split along axis 0");
      }
      if (rows >= 0 && ts[i].Shape().Dim(0) != rows) {
        Throw("datasets::Sharded(\"" + source_.Name() + "\"): " + kind + "[" + std::to_string(i) + "] " +
              ts[i].Shape().ToString() + " does not have the batch's " + std::to_string(rows) + " rows");
      }
      rows = ts[i].Shape().Dim(0);
    }
  };
  check(global.inputs, "inputs");
  check(global.labels, "labels");
  if (rows < 0) rows = 0;
  const int64_t base = rows / world_size_, extra = rows % world_size_;
  const int64_t first = rank_ * base + std::min<int64_t>(rank_, extra);
  const int64_t count = base + (rank_ < extra ? 1 : 0);
  batch.inputs.clear();
  batch.labels.clear();
  for (const auto& t : global.inputs) batch.inputs.push_back(internal::GatherRows(t, {}, first, count));
  for (const auto& t : global.labels) batch.labels.push_back(internal::GatherRows(t, {}, first, count));
  return true;
}

void Skip(Dataset& dataset, int64_t batches) {
  if (batches < 0) Throw("datasets::Skip: negative number of batches " + std::to_string(batches));
  Batch batch;
  for (int64_t i = 0; i < batches; ++i) {
    if (dataset.Next(batch)) continue;
    dataset.Reset();
    if (!dataset.Next(batch)) Throw("datasets::Skip: dataset \"" + dataset.Name() + "\" produced no batch");
  }
}

}  // namespace kiln::ml::datasets
