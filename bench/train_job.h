// Copyright 2026 The Kiln Authors.
// The protocol of the training jobs kiln_compare runs in child processes
// (kiln_train_job, torch_train_job): each trains a model on Fashion-MNIST
// for --steps steps in a fresh process, so its peak resident memory is its
// own, and prints
//   rss STEP KB SECONDS    every --rss_every steps: the resident set then,
//                          and the seconds since the loop started
//   result SECONDS PEAK_KB LOSS
// where SECONDS is the wall time of the training loop (data loading and
// process start-up excluded, the first step's compile included), PEAK_KB the
// process's peak resident set (getrusage: what /usr/bin/time -v reports)
// and LOSS the mean training loss of the last 100 steps (both sides must
// learn alike for the times to mean anything).
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace kiln::bench::train_job {

/// One epoch of Fashion-MNIST's 60,000 training images at this batch size
/// (the last partial batch dropped).
inline constexpr int64_t kBatch = 128;
inline constexpr int64_t kStepsPerEpoch = 60000 / kBatch;

struct Flags {
  std::string model = "mlp";  // mlp (784-512-512-10) or cnn (bench/workloads.h's Cnn)
  int64_t steps = kStepsPerEpoch;
  int64_t rss_every = 0;  // 0: no trace
  int threads = 0;        // 0: the framework's default
  std::string data = "/usr/share/datasets/fashion-mnist";
};

/// Parses --model, --steps, --rss_every, --threads, --data; exits with a
/// usage message on anything else.
inline Flags ParseFlags(int argc, char** argv) {
  Flags f;
  bool bad = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const std::string& flag) -> const char* {
      return arg.rfind(flag + "=", 0) == 0 ? argv[i] + flag.size() + 1 : nullptr;
    };
    if (const char* v = value("--model")) f.model = v;
    else if (const char* v = value("--steps")) f.steps = std::atoll(v);
    else if (const char* v = value("--rss_every")) f.rss_every = std::atoll(v);
    else if (const char* v = value("--threads")) f.threads = std::atoi(v);
    else if (const char* v = value("--data")) f.data = v;
    else bad = true;
  }
  if (bad || (f.model != "mlp" && f.model != "cnn") || f.steps < 1) {
    std::fprintf(stderr, "usage: %s --model=mlp|cnn [--steps=N] [--rss_every=N] [--threads=N] [--data=DIR]\n",
                 argv[0]);
    std::exit(2);
  }
  return f;
}

/// The current resident set in KiB (/proc/self/statm).
inline long CurrentRssKb() {
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/// The peak resident set in KiB.
inline long PeakRssKb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

/// Runs `step(i)` (returning the loss) for i in [0, steps), printing the
/// trace and the result lines described in the file comment.
template <typename StepFn>
void Run(const Flags& f, StepFn step) {
  double recent_loss = 0;
  int64_t recent = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < f.steps; ++i) {
    const double loss = step(i);
    if (i >= f.steps - 100) {
      recent_loss += loss;
      ++recent;
    }
    if (f.rss_every > 0 && (i + 1) % f.rss_every == 0) {
      const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("rss %lld %ld %.3f\n", static_cast<long long>(i + 1), CurrentRssKb(), elapsed);
      std::fflush(stdout);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("result %.6f %ld %.6f\n", seconds, PeakRssKb(), recent_loss / static_cast<double>(recent));
}

}  // namespace kiln::bench::train_job
