// Copyright 2026 The Kiln Authors.
// Trainer: compiles and runs the train and eval steps of a model.
//
//   auto trainer = train::NewTrainer(backend, ctx, ModelFn, losses::SparseCategoricalCrossEntropyLogits,
//                                    optimizers::Adam());
//   auto loop = train::NewLoop(trainer);
//   loop->RunSteps(train_dataset, 10'000);
//
// Gradient accumulation: with the context hyperparameter
// gradient_accumulation_steps = k, each TrainStep is a micro-batch and the
// variables are updated every k steps with the mean gradient (see
// optimizers.h), so batches k times larger than memory allows train the same.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "kiln/context/context.h"
#include "kiln/ml/datasets/datasets.h"
#include "kiln/ml/losses/losses.h"
#include "kiln/ml/optimizers/optimizers.h"
#include "kiln/ml/train/metrics.h"

namespace kiln::ml::train {

/// The model: (context, inputs) -> outputs (predictions). It reads
/// ctx.IsTraining() for training-only behaviour (dropout, batch norm).
using ModelFn = std::function<std::vector<graph::Node>(context::Context ctx, const std::vector<graph::Node>& inputs)>;

/// Metric values by name ("loss", "accuracy", ...).
using MetricValues = std::map<std::string, double>;

/// Data-parallel training (see Trainer::EnableDataParallel).
struct DataParallelOptions {
  /// Gradients are flattened into buckets of at most this many bytes, each
  /// all-reduced by one collective (PyTorch DDP's bucket_cap_mb, 25 MiB).
  int64_t bucket_bytes = 25 << 20;
};

/// Runs training and evaluation steps; each is compiled once per input-shape
/// signature. The train step computes the model, the loss (plus losses added
/// by layers with Context::AddLoss), the gradients and the optimizer's
/// updates in one graph, with variables updated in place.
class Trainer {
 public:
  Trainer(std::shared_ptr<backends::Backend> backend, context::Context ctx, ModelFn model, losses::LossFn loss,
          std::shared_ptr<optimizers::Optimizer> optimizer);
  ~Trainer();

  /// Trains data-parallel across the processes of the distributed job
  /// (distributed::Init first; a world of one process trains as usual):
  /// each process runs the step on its shard of the global batch
  /// (datasets::Sharded); the gradients are summed across processes in
  /// buckets, weighted by each shard's rows, so every process applies the
  /// gradient of the whole global batch and the optimizer step is identical
  /// everywhere. The variables start equal (broadcast from rank 0 when the
  /// train step is first built, after checking that every process has the
  /// same variables); train and eval metrics are reduced across processes.
  /// Call before the first train step.
  void EnableDataParallel(DataParallelOptions options = {});
  /// Whether EnableDataParallel was called.
  bool IsDataParallel() const;

  /// Metrics computed in the train step (the mean loss is always there as "loss").
  void AddTrainMetric(Metric metric);
  /// Metrics computed in the eval step ("loss" always there).
  void AddEvalMetric(Metric metric);

  /// One optimization step on a batch; returns this batch's metric values.
  /// Throws kiln::Error naming the global step if the loss is NaN or Inf.
  MetricValues TrainStep(const datasets::Batch& batch);
  /// The model's loss and eval metrics on a batch (no variable changes,
  /// ctx.IsTraining() false).
  MetricValues EvalStep(const datasets::Batch& batch);
  /// Eval metrics over a whole epoch of `dataset` (Reset first), aggregated
  /// (data-parallel: over every process's shard, weighted by rows).
  MetricValues Evaluate(datasets::Dataset& dataset);
  /// The model's outputs for `inputs` in inference mode.
  std::vector<tensors::Tensor> Predict(const std::vector<tensors::Tensor>& inputs);

  /// The number of train steps run (the "/global_step" variable).
  int64_t GlobalStep() const;
  /// The context holding the model's variables.
  context::Context Context() const;
  /// The train and eval metrics, "loss" first.
  const std::vector<Metric>& TrainMetrics() const;
  const std::vector<Metric>& EvalMetrics() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Creates a trainer; see Trainer.
std::shared_ptr<Trainer> NewTrainer(std::shared_ptr<backends::Backend> backend, context::Context ctx, ModelFn model,
                                    losses::LossFn loss, std::shared_ptr<optimizers::Optimizer> optimizer);

}  // namespace kiln::ml::train
