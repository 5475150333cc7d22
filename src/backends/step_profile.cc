// Copyright 2026 The Kiln Authors.
#include "src/backends/step_profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>

namespace kiln::backends {

bool ProfilingEnabled(const char* env_var) {
  const char* env = std::getenv(env_var);
  return env != nullptr && *env != '\0' && std::string(env) != "0";
}

StepProfile::StepProfile(std::string backend, const char* env_var, std::string function_name,
                         std::vector<std::string> labels, std::string what)
    : backend_(std::move(backend)),
      env_var_(env_var),
      function_name_(std::move(function_name)),
      what_(std::move(what)),
      labels_(std::move(labels)),
      total_(labels_.size(), 0.0) {}

void StepProfile::Add(const std::vector<double>& seconds, int64_t executions) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t s = 0; s < total_.size() && s < seconds.size(); ++s) total_[s] += seconds[s];
  executions_ += executions;
}

void StepProfile::AddWall(double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  wall_ += seconds;
  has_wall_ = true;
}

StepProfile::~StepProfile() {
  if (executions_ == 0) return;
  const double sum = std::accumulate(total_.begin(), total_.end(), 0.0);
  std::vector<size_t> order(total_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return total_[a] > total_[b]; });
  const auto per_call_ms = [&](double s) { return 1e3 * s / static_cast<double>(executions_); };
  std::string wall;
  if (has_wall_) {
    char buf[96];
    std::snprintf(buf, sizeof buf, " (%.3f ms per execution from call to results)", per_call_ms(wall_));
    wall = buf;
  }
  std::fprintf(stderr, "kiln %s profile of \"%s\": %lld executions, %.3f ms%s%s per execution in %zu steps%s\n",
               backend_.c_str(), function_name_.c_str(), static_cast<long long>(executions_), per_call_ms(sum),
               what_.empty() ? "" : " of ", what_.c_str(), total_.size(), wall.c_str());
  // =all lists every step; otherwise the 30 slowest.
  const char* env = std::getenv(env_var_.c_str());
  const size_t rows = env != nullptr && std::string(env) == "all" ? order.size() : 30;
  for (size_t i = 0; i < order.size() && i < rows && total_[order[i]] > 0; ++i) {
    const size_t s = order[i];
    std::fprintf(stderr, "  %9.3f ms %5.1f%%  step %4zu  %s\n", per_call_ms(total_[s]),
                 sum > 0 ? 100 * total_[s] / sum : 0.0, s, labels_[s].c_str());
  }
}

}  // namespace kiln::backends
