// Copyright 2026 The Kiln Authors.
// Loop: train steps with hooks, progress output, periodic eval/checkpoints,
// and the metrics history.
#include "kiln/ml/train/loop.h"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <sstream>

#include "kiln/distributed/distributed.h"
#include "src/ml/train/plot.h"

namespace kiln::ml::train {

namespace {

using Clock = std::chrono::steady_clock;

std::string Duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  auto s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%lld:%02lld:%02lld", static_cast<long long>(s / 3600),
                               static_cast<long long>(s / 60 % 60), static_cast<long long>(s % 60));
  else std::snprintf(buf, sizeof(buf), "%02lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}

// The terminal's width in columns: the tty's size, else $COLUMNS, else 80.
int TerminalColumns() {
  winsize ws{};
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* columns = std::getenv("COLUMNS")) {
    const int n = std::atoi(columns);
    if (n > 0) return n;
  }
  return 80;
}

std::string MetricsText(const MetricValues& metrics, const std::string& prefix = "") {
  std::ostringstream os;
  for (const auto& [name, value] : metrics) {
    char buf[64];
    std::snprintf(buf, sizeof(buf), "%.4f", value);
    os << " " << prefix << name << "=" << buf;
  }
  return os.str();
}

}  // namespace

struct Loop::Impl {
  std::shared_ptr<Trainer> trainer;
  std::vector<Hook> on_start, on_step, on_end;
  struct Periodic {
    int64_t n = 0;
    double seconds = 0;
    Hook hook;
    Clock::time_point last;
  };
  std::vector<Periodic> every_steps, every_seconds;
  std::ostream* progress = &std::cout;
  double progress_seconds = 5;
  bool live_bar = false;
  int64_t record_every = 50;
  std::vector<HistoryRow> history;
  MetricValues last_eval;
  bool stop = false;
  double time_limit = 0;  // RunFor's seconds while it runs (the progress bar counts time), else 0
  // Actions run at the end of each Run*: final eval and checkpoint.
  std::vector<std::function<void(const StepInfo&)>> finalizers;

  std::vector<MetricAccumulator> MakeAccumulators() const {
    std::vector<MetricAccumulator> acc;
    for (const Metric& m : trainer->TrainMetrics()) acc.emplace_back(m.aggregation, m.decay);
    return acc;
  }

  // Data-parallel: only rank 0 shows progress and writes files.
  bool Quiet() const { return trainer->IsDataParallel() && distributed::Rank() != 0; }

  void Progress(const StepInfo& info, bool final) {
    if (progress == nullptr || Quiet()) return;
    // A live bar must fit the terminal's line: a wrapped line cannot be
    // redrawn with '\r', and each redraw would scroll a new line.
    const size_t width = live_bar ? static_cast<size_t>(std::max(TerminalColumns() - 1, 20)) : SIZE_MAX;
    const std::string line = ProgressLine(info, width);
    if (live_bar) {
      *progress << "\r" << line << "\033[K" << (final ? "\n" : "") << std::flush;
    } else {
      *progress << line << "\n" << std::flush;
    }
  }

  // The progress line in at most `width` characters: it drops the global
  // step, narrows the bar, drops the rate, then metrics from the last, then
  // cuts what is left (as tqdm and indicatif shorten theirs).
  std::string ProgressLine(const StepInfo& info, size_t width) const {
    const double rate = info.elapsed_seconds > 0 ? info.loop_step / info.elapsed_seconds : 0;
    auto head = [&](int bar) {
      std::ostringstream os;
      // "[=====>    ] " filled to `fraction`.
      auto draw = [&](double fraction) {
        const int filled = std::clamp(static_cast<int>(fraction * bar), 0, bar);
        os << "[" << std::string(static_cast<size_t>(filled), '=') << (filled < bar ? ">" : "")
           << std::string(static_cast<size_t>(std::max(0, bar - filled - 1)), ' ') << "] ";
      };
      if (time_limit > 0) {  // RunFor: the bar counts seconds
        draw(info.elapsed_seconds / time_limit);
        os << Duration(info.elapsed_seconds) << "/" << Duration(time_limit) << " step " << info.loop_step;
      } else if (info.total_steps > 0) {
        draw(static_cast<double>(info.loop_step) / static_cast<double>(info.total_steps));
        os << info.loop_step << "/" << info.total_steps;
        const double eta = rate > 0 ? (info.total_steps - info.loop_step) / rate : NAN;
        os << " " << Duration(info.elapsed_seconds) << "<" << Duration(eta);
      } else {
        os << "step " << info.loop_step << " " << Duration(info.elapsed_seconds);
      }
      return os.str();
    };
    char buf[32];
    std::snprintf(buf, sizeof(buf), " %.1f steps/s", rate);
    const std::string rate_text = buf;
    const std::string step_text = " (global step " + std::to_string(info.step) + ")";
    std::vector<std::string> metrics;
    for (const auto* values : {&info.metrics, &last_eval}) {
      const std::string prefix = values == &last_eval ? "eval_" : "";
      for (const auto& [name, value] : *values) metrics.push_back(MetricsText({{name, value}}, prefix));
    }
    int bar = 24;
    bool with_rate = true, with_step = true;
    auto compose = [&] {
      std::string line = head(bar) + (with_rate ? rate_text : "") + (with_step ? step_text : "");
      for (const std::string& m : metrics) line += m;
      return line;
    };
    std::string line = compose();
    if (line.size() > width) with_step = false, line = compose();
    if (line.size() > width) bar = 10, line = compose();
    if (line.size() > width) with_rate = false, line = compose();
    while (line.size() > width && !metrics.empty()) metrics.pop_back(), line = compose();
    if (line.size() > width) line.resize(width);
    return line;
  }

  void Record(const StepInfo& info) {
    history.push_back({info.step, info.elapsed_seconds, "train", info.metrics});
  }

  // Runs steps until `more()` is false or Stop(); `next_batch` fills the batch or returns false.
  void Run(datasets::Dataset& dataset, int64_t total, const std::function<bool(datasets::Batch&)>& next_batch,
           Loop& loop, double seconds = 0) {
    stop = false;
    time_limit = seconds;
    const auto start = Clock::now();
    std::vector<MetricAccumulator> acc = MakeAccumulators();
    StepInfo info;
    info.total_steps = total;
    info.step = trainer->GlobalStep();
    for (const Hook& h : on_start) h(loop, info);
    for (auto& p : every_seconds) p.last = start;
    auto last_progress = start;
    datasets::Batch batch;
    while (!stop && (total < 0 || info.loop_step < total) && (seconds <= 0 || info.elapsed_seconds < seconds)) {
      if (!next_batch(batch)) break;
      MetricValues values = trainer->TrainStep(batch);
      const auto& metrics = trainer->TrainMetrics();
      const auto weight = static_cast<double>(batch.labels[0].Rank() > 0 ? batch.labels[0].Shape().Dim(0) : 1);
      for (size_t i = 0; i < metrics.size(); ++i) acc[i].Add(values[metrics[i].name], weight);
      ++info.loop_step;
      const int64_t previous_step = info.step;
      info.step = trainer->GlobalStep();
      // With gradient accumulation the global step (optimizer updates) stays
      // put for several calls: step-periodic hooks fire once per update.
      const bool updated = info.step != previous_step;
      info.elapsed_seconds = std::chrono::duration<double>(Clock::now() - start).count();
      for (size_t i = 0; i < metrics.size(); ++i) info.metrics[metrics[i].name] = acc[i].Value();
      for (const Hook& h : on_step) h(loop, info);
      for (auto& p : every_steps) {
        if (updated && info.step % p.n == 0) p.hook(loop, info);
      }
      const auto now = Clock::now();
      for (auto& p : every_seconds) {
        if (std::chrono::duration<double>(now - p.last).count() >= p.seconds) {
          p.last = now;
          p.hook(loop, info);
        }
      }
      if (updated && record_every > 0 && info.step % record_every == 0) Record(info);
      const double since = std::chrono::duration<double>(now - last_progress).count();
      if (since >= (live_bar ? 0.2 : progress_seconds)) {
        last_progress = now;
        Progress(info, false);
      }
    }
    if (info.loop_step == 0 && !stop) {
      Throw("Loop: dataset \"" + dataset.Name() + "\" produced no batch");
    }
    if (history.empty() || history.back().step != info.step || history.back().split != "train") Record(info);
    for (const auto& f : finalizers) f(info);
    for (const Hook& h : on_end) h(loop, info);
    Progress(info, true);
    time_limit = 0;
  }
};

Loop::Loop(std::shared_ptr<Trainer> trainer) : impl_(std::make_unique<Impl>()) {
  if (!trainer) Throw("NewLoop: null trainer");
  impl_->trainer = std::move(trainer);
  impl_->live_bar = isatty(STDOUT_FILENO) != 0;
}

Loop::~Loop() = default;

namespace {

// The next batch, across epochs: the dataset starts over when it ends.
std::function<bool(datasets::Batch&)> Cycling(datasets::Dataset& dataset) {
  return [&dataset](datasets::Batch& batch) {
    if (dataset.Next(batch)) return true;
    dataset.Reset();  // next epoch
    if (dataset.Next(batch)) return true;
    Throw("Loop: dataset \"" + dataset.Name() + "\" produced no batch");
  };
}

}  // namespace

void Loop::RunSteps(datasets::Dataset& dataset, int64_t steps) {
  if (steps < 0) Throw("Loop::RunSteps: negative number of steps " + std::to_string(steps));
  impl_->Run(dataset, steps, Cycling(dataset), *this);
}

void Loop::RunFor(datasets::Dataset& dataset, double seconds) {
  if (!(seconds > 0)) Throw("Loop::RunFor: seconds must be positive, got " + std::to_string(seconds));
  impl_->Run(dataset, -1, Cycling(dataset), *this, seconds);
}

void Loop::RunEpochs(datasets::Dataset& dataset, int epochs) {
  if (epochs < 0) Throw("Loop::RunEpochs: negative number of epochs " + std::to_string(epochs));
  int64_t total = -1;
  if (auto* in_memory = dynamic_cast<datasets::InMemory*>(&dataset)) total = in_memory->BatchesPerEpoch() * epochs;
  int epoch = 0;
  dataset.Reset();
  impl_->Run(
      dataset, total,
      [&](datasets::Batch& batch) {
        while (epoch < epochs) {
          if (dataset.Next(batch)) return true;
          ++epoch;
          dataset.Reset();
        }
        return false;
      },
      *this);
}

void Loop::Stop() { impl_->stop = true; }
void Loop::OnStart(Hook hook) { impl_->on_start.push_back(std::move(hook)); }
void Loop::OnStep(Hook hook) { impl_->on_step.push_back(std::move(hook)); }
void Loop::OnEnd(Hook hook) { impl_->on_end.push_back(std::move(hook)); }

namespace {
// Every n steps needs n > 0; the message names the user's call.
void CheckPeriod(int64_t n, const char* call, const graph::Loc& loc) {
  if (n <= 0) ThrowAt(loc, std::string("Loop::") + call + ": n (the period in steps) must be > 0, got " + std::to_string(n));
}
}  // namespace

void Loop::EveryNSteps(int64_t n, Hook hook, graph::Loc loc) {
  CheckPeriod(n, "EveryNSteps", loc);
  impl_->every_steps.push_back({n, 0, std::move(hook), {}});
}

void Loop::EveryNSeconds(double seconds, Hook hook, graph::Loc loc) {
  if (!(seconds > 0)) ThrowAt(loc, "Loop::EveryNSeconds: seconds must be > 0, got " + std::to_string(seconds));
  impl_->every_seconds.push_back({0, seconds, std::move(hook), {}});
}

void Loop::AddPeriodicEval(datasets::Dataset& dataset, int64_t n, graph::Loc loc) {
  CheckPeriod(n, "AddPeriodicEval", loc);
  auto eval = [this, &dataset](const StepInfo& info) {
    impl_->last_eval = impl_->trainer->Evaluate(dataset);
    impl_->history.push_back({info.step, info.elapsed_seconds, "eval", impl_->last_eval});
  };
  EveryNSteps(n, [eval](Loop&, const StepInfo& info) { eval(info); }, loc);
  impl_->finalizers.push_back([this, eval](const StepInfo& info) {
    // Skip if the last step already evaluated.
    const auto& h = impl_->history;
    for (auto it = h.rbegin(); it != h.rend(); ++it) {
      if (it->split == "eval") {
        if (it->step == info.step) return;
        break;
      }
    }
    eval(info);
  });
}

void Loop::AddPeriodicCheckpoint(context::checkpoints::Handler& handler, int64_t n, graph::Loc loc) {
  CheckPeriod(n, "AddPeriodicCheckpoint", loc);
  auto last_saved = std::make_shared<int64_t>(-1);
  // Data-parallel: every process holds the same variables; rank 0 writes
  // (atomically, as always) between barriers, so no process runs ahead of
  // a checkpoint or reads a half-written one.
  Trainer* trainer = impl_->trainer.get();
  auto save = [&handler, trainer] {
    if (!trainer->IsDataParallel()) {
      handler.Save();
      return;
    }
    distributed::Barrier();
    std::exception_ptr failed;  // rank 0 still meets the others at the barrier, then reports
    if (distributed::Rank() == 0) {
      try {
        handler.Save();
      } catch (...) {
        failed = std::current_exception();
      }
    }
    distributed::Barrier();
    if (failed) std::rethrow_exception(failed);
  };
  EveryNSteps(n, [save, last_saved](Loop&, const StepInfo& info) {
    save();
    *last_saved = info.step;
  }, loc);
  impl_->finalizers.push_back([save, last_saved](const StepInfo& info) {
    if (*last_saved != info.step) save();
    *last_saved = info.step;
  });
}

void Loop::SetProgress(std::ostream* out, double seconds) {
  impl_->progress = out;
  impl_->progress_seconds = seconds > 0 ? seconds : 5;
  impl_->live_bar = out == &std::cout && isatty(STDOUT_FILENO) != 0;
}

void Loop::DisableProgress() { impl_->progress = nullptr; }

void Loop::RecordEveryNSteps(int64_t n, graph::Loc loc) {
  CheckPeriod(n, "RecordEveryNSteps", loc);
  impl_->record_every = n;
}
const std::vector<HistoryRow>& Loop::History() const { return impl_->history; }

void Loop::WriteHistoryCsv(const std::string& path) const {
  if (impl_->Quiet()) return;
  std::ofstream out(path);
  if (!out) Throw("Loop::WriteHistoryCsv: cannot write \"" + path + "\"");
  out << "step,elapsed_seconds,split,metric,value\n";
  for (const HistoryRow& row : impl_->history) {
    for (const auto& [name, value] : row.metrics) {
      out << row.step << "," << row.elapsed_seconds << "," << row.split << "," << name << "," << value << "\n";
    }
  }
  if (!out) Throw("Loop::WriteHistoryCsv: error writing \"" + path + "\"");
}

void Loop::WritePlot(const std::string& path, const std::string& title) const {
  if (impl_->Quiet()) return;
  std::ofstream out(path);
  if (!out) Throw("Loop::WritePlot: cannot write \"" + path + "\"");
  out << internal::PlotHtml(impl_->history, title);
  if (!out) Throw("Loop::WritePlot: error writing \"" + path + "\"");
}

Trainer& Loop::GetTrainer() { return *impl_->trainer; }

std::unique_ptr<Loop> NewLoop(std::shared_ptr<Trainer> trainer) { return std::make_unique<Loop>(std::move(trainer)); }

}  // namespace kiln::ml::train
