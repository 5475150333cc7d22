// Copyright 2026 The Kiln Authors.
#include "src/backends/cpu/step_profile.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>

namespace kiln::backends::cpu {

bool ProfilingEnabled() {
  const char* env = std::getenv("KILN_CPU_PROFILE");
  return env != nullptr && *env != '\0' && std::string(env) != "0";
}

StepProfile::StepProfile(std::string function_name, std::vector<std::string> labels)
    : function_name_(std::move(function_name)), labels_(std::move(labels)), total_(labels_.size(), 0.0) {}

void StepProfile::Add(const std::vector<double>& seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t s = 0; s < total_.size() && s < seconds.size(); ++s) total_[s] += seconds[s];
  ++executions_;
}

StepProfile::~StepProfile() {
  if (executions_ == 0) return;
  const double sum = std::accumulate(total_.begin(), total_.end(), 0.0);
  std::vector<size_t> order(total_.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return total_[a] > total_[b]; });
  const auto per_call_ms = [&](double s) { return 1e3 * s / static_cast<double>(executions_); };
  std::fprintf(stderr, "kiln cpu profile of \"%s\": %lld executions, %.3f ms per execution in %zu steps\n",
               function_name_.c_str(), static_cast<long long>(executions_), per_call_ms(sum), total_.size());
  // KILN_CPU_PROFILE=all lists every step; otherwise the 30 slowest.
  const char* env = std::getenv("KILN_CPU_PROFILE");
  const size_t rows = env != nullptr && std::string(env) == "all" ? order.size() : 30;
  for (size_t i = 0; i < order.size() && i < rows && total_[order[i]] > 0; ++i) {
    const size_t s = order[i];
    std::fprintf(stderr, "  %9.3f ms %5.1f%%  step %4zu  %s\n", per_call_ms(total_[s]),
                 sum > 0 ? 100 * total_[s] / sum : 0.0, s, labels_[s].c_str());
  }
}

}  // namespace kiln::backends::cpu
