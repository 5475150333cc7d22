// Copyright 2026 The Kiln Authors.
// graph_replay.h's process-wide counters.
#include "src/backends/cuda/graph_replay.h"

#include <mutex>

namespace kiln::backends::cuda {

namespace {

std::mutex& StatsMutex() {
  static std::mutex mu;
  return mu;
}

GraphStats& Stats() {
  static GraphStats stats;
  return stats;
}

}  // namespace

GraphStats GetGraphStats() {
  std::lock_guard lock(StatsMutex());
  return Stats();
}

void CountGraphEvent(int64_t GraphStats::*counter) {
  std::lock_guard lock(StatsMutex());
  ++(Stats().*counter);
}

}  // namespace kiln::backends::cuda
