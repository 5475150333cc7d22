// Copyright 2026 The Kiln Authors.
// The CPU backend's optimization pipeline (the passes live in passes/).
#include "src/backends/cpu/passes.h"

#include <cstdlib>
#include <cstring>

#include "kiln/core/error.h"

namespace kiln::backends::cpu {

namespace {

// One round of every pass. Simplification first (it exposes constants and
// duplicates), then folding (whose new constants CSE merges), then CSE, and
// dead-code elimination last to drop what the others left unused.
bool RunRound(ir::Function& fn) {
  bool changed = SimplifyAlgebra(fn);
  changed |= FoldConstants(fn);
  changed |= EliminateCommonSubexpressions(fn);
  changed |= EliminateDeadCode(fn);
  return changed;
}

}  // namespace

std::shared_ptr<const ir::Function> OptimizeFunction(std::shared_ptr<const ir::Function> fn) {
  if (!fn) Throw("cpu: OptimizeFunction of a null function");
  fn->Validate();
  auto optimized = std::make_shared<ir::Function>(*fn);
  bool changed = false;
  for (int round = 0; round < kMaxOptimizeRounds && RunRound(*optimized); ++round) changed = true;
  if (!changed) return fn;
  optimized->Validate();  // a pass breaking the IR is a bug: fail here, not in a kernel
  return optimized;
}

bool OptimizationsEnabled() {
  const char* value = std::getenv("KILN_CPU_OPTIMIZE");
  return value == nullptr || std::strcmp(value, "0") != 0;
}

}  // namespace kiln::backends::cpu
