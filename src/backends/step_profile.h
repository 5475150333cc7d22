// Copyright 2026 The Kiln Authors.
// Per-step times of an executable, printed to stderr when it is destroyed
// (the trainer's executables at program exit): KILN_CPU_PROFILE=1 on the
// CPU (wall time of each step), KILN_CUDA_PROFILE=1 on CUDA (GPU time of
// each step, from events around its work). The 30 slowest steps are listed;
// `=all` lists every step. What perf or Nsight cannot say: which
// instruction of which graph (a convolution's gradient, a fusion group) the
// time went to, named by op, shape and the caller's line.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace kiln::backends {

/// Whether the environment variable `env_var` (KILN_CPU_PROFILE,
/// KILN_CUDA_PROFILE) is set to something other than "" or "0".
bool ProfilingEnabled(const char* env_var);

/// Accumulated time per step of one executable.
class StepProfile {
 public:
  /// `backend` names the table ("cpu": "kiln cpu profile of ..."),
  /// `env_var` is read again at print time (`=all`), `labels[s]` describes
  /// step s (op, shape, caller), `what` says what the times are ("" for
  /// wall time; "GPU time" on CUDA).
  StepProfile(std::string backend, const char* env_var, std::string function_name, std::vector<std::string> labels,
              std::string what = "");
  /// Prints the table (if anything was recorded).
  ~StepProfile();
  StepProfile(const StepProfile&) = delete;
  StepProfile& operator=(const StepProfile&) = delete;

  /// Adds per-step seconds summed over `executions` runs (thread-safe).
  void Add(const std::vector<double>& seconds, int64_t executions = 1);
  /// Adds the host's wall time from call to results of one or more
  /// executions, printed beside the steps' sum where it was given.
  void AddWall(double seconds);

 private:
  std::string backend_, env_var_, function_name_, what_;
  std::vector<std::string> labels_;
  std::mutex mu_;
  std::vector<double> total_;
  int64_t executions_ = 0;
  double wall_ = 0;
  bool has_wall_ = false;
};

/// Seconds since `start` on the steady clock.
inline double SecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace kiln::backends
