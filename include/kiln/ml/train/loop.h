// Copyright 2026 The Kiln Authors.
// Loop: runs train steps over a dataset with hooks, a progress bar, periodic
// eval and checkpoints, and a metrics history with a plot.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "kiln/context/checkpoints.h"
#include "kiln/ml/train/trainer.h"

namespace kiln::ml::train {

class Loop;

/// What hooks see after each step.
struct StepInfo {
  int64_t step = 0;           // global step after the train step
  int64_t loop_step = 0;      // steps run by this Run* call
  int64_t total_steps = 0;    // steps this Run* call will run (-1 if unknown, as in RunFor)
  double elapsed_seconds = 0;
  MetricValues metrics;       // aggregated train metrics (moving/epoch means)
};

/// A hook: return normally to continue; throw to stop with an error.
using Hook = std::function<void(Loop& loop, const StepInfo& info)>;

/// One row of the metrics history.
struct HistoryRow {
  int64_t step;
  double elapsed_seconds;
  std::string split;  // "train" or "eval"
  MetricValues metrics;
};

class Loop {
 public:
  /// A loop over `trainer` (use NewLoop).
  explicit Loop(std::shared_ptr<Trainer> trainer);
  ~Loop();

  /// Runs `steps` train steps, resetting the dataset at the end of each epoch.
  void RunSteps(datasets::Dataset& dataset, int64_t steps);
  /// Runs whole epochs of the dataset.
  void RunEpochs(datasets::Dataset& dataset, int epochs);
  /// Runs train steps for `seconds` of wall time from this call (the step
  /// running when the time is up finishes), resetting the dataset at the
  /// end of each epoch; the progress bar shows the time. A non-positive or
  /// NaN `seconds` is a kiln::Error.
  void RunFor(datasets::Dataset& dataset, double seconds);
  /// Asks the loop to stop after the current step (e.g. from a hook).
  void Stop();

  /// Hooks run at the start of each Run*, after every step, when the global step is
  /// a multiple of n, every `seconds` of wall time, and at the end. A
  /// non-positive n or seconds is a kiln::Error naming the caller's line.
  void OnStart(Hook hook);
  void OnStep(Hook hook);
  void EveryNSteps(int64_t n, Hook hook, graph::Loc loc = graph::Loc::current());
  void EveryNSeconds(double seconds, Hook hook, graph::Loc loc = graph::Loc::current());
  void OnEnd(Hook hook);

  /// Evaluates on `dataset` every `n` steps (n > 0) and at the end, recording
  /// the results in the history (split "eval") and showing them in the progress.
  void AddPeriodicEval(datasets::Dataset& dataset, int64_t n, graph::Loc loc = graph::Loc::current());
  /// Saves a checkpoint every `n` steps (n > 0) and at the end (data-parallel:
  /// rank 0 saves, between barriers of every process).
  void AddPeriodicCheckpoint(context::checkpoints::Handler& handler, int64_t n,
                             graph::Loc loc = graph::Loc::current());

  /// Progress output (default std::cout; data-parallel: rank 0 only, as the
  /// history files): a live bar (steps/s, ETA, loss,
  /// metrics) on a terminal, else one line every `seconds` (default 5).
  void SetProgress(std::ostream* out, double seconds = 5);
  /// No progress output.
  void DisableProgress();

  /// Records train metrics in the history every `n` steps (n > 0, default 50).
  void RecordEveryNSteps(int64_t n, graph::Loc loc = graph::Loc::current());
  /// The recorded history (train rows and eval rows), in order.
  const std::vector<HistoryRow>& History() const;
  /// Writes the history as CSV (step,elapsed,split,metric,value).
  void WriteHistoryCsv(const std::string& path) const;
  /// Writes one self-contained HTML file with SVG plots of each metric
  /// (train and eval curves against the step), viewable in a browser.
  void WritePlot(const std::string& path, const std::string& title = "Kiln training") const;

  /// The trainer this loop drives.
  Trainer& GetTrainer();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Creates a loop for `trainer`.
std::unique_ptr<Loop> NewLoop(std::shared_ptr<Trainer> trainer);

}  // namespace kiln::ml::train
