// Copyright 2026 The Kiln Authors.
// KILN_CPU_PROFILE=1: per-step wall time of every CPU executable (its 30
// slowest steps; KILN_CPU_PROFILE=all: every step), printed to stderr when the executable is destroyed (the trainer's executables at
// program exit). What perf cannot say: which instruction of which graph (a
// convolution's gradient, a fusion group) the time went to.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::backends::cpu {

/// Whether KILN_CPU_PROFILE is set to something other than "" or "0".
bool ProfilingEnabled();

/// Accumulated time per step of one executable.
class StepProfile {
 public:
  /// `labels[s]` describes step s (op, shape, caller).
  StepProfile(std::string function_name, std::vector<std::string> labels);
  /// Prints the table (if anything was recorded).
  ~StepProfile();

  /// Adds one execution's per-step seconds (thread-safe).
  void Add(const std::vector<double>& seconds);

 private:
  std::string function_name_;
  std::vector<std::string> labels_;
  std::mutex mu_;
  std::vector<double> total_;
  int64_t executions_ = 0;
};

/// Seconds since `start` on the steady clock.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace kiln::backends::cpu
