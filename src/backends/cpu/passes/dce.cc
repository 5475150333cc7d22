// Copyright 2026 The Kiln Authors.
// Dead-code elimination: keeps what the outputs depend on, the parameters and
// the collectives.
#include <vector>

#include "src/backends/cpu/passes.h"

namespace kiln::backends::cpu {

namespace {

// live[id]: whether an output depends on instruction `id`, or it is a
// parameter or a collective. A collective communicates with the other
// processes, which run it whether or not this one uses its result (a
// gradient that is zero on all but one process): dropping it here alone
// would leave them waiting. One backward sweep suffices because operands
// precede users.
std::vector<bool> LiveInstructions(const ir::Function& fn) {
  std::vector<bool> live(fn.instructions.size(), false);
  for (int o : fn.outputs) live[static_cast<size_t>(o)] = true;
  for (int p : fn.parameters) live[static_cast<size_t>(p)] = true;
  for (size_t id = 0; id < fn.instructions.size(); ++id) {
    if (fn.instructions[id].op == ir::OpType::kCollective) live[id] = true;
  }
  for (size_t id = fn.instructions.size(); id-- > 0;) {
    if (!live[id]) continue;
    for (int operand : fn.instructions[id].operands) live[static_cast<size_t>(operand)] = true;
  }
  return live;
}

}  // namespace

bool EliminateDeadCode(ir::Function& fn) {
  const std::vector<bool> live = LiveInstructions(fn);
  std::vector<int> remap(fn.instructions.size(), -1);
  size_t next = 0;
  for (size_t id = 0; id < fn.instructions.size(); ++id) {
    if (!live[id]) continue;
    ir::Instruction& instr = fn.instructions[id];
    for (int& operand : instr.operands) operand = remap[static_cast<size_t>(operand)];
    remap[id] = static_cast<int>(next);
    if (next != id) fn.instructions[next] = std::move(instr);
    ++next;
  }
  if (next == fn.instructions.size()) return false;
  fn.instructions.resize(next);
  for (int& p : fn.parameters) p = remap[static_cast<size_t>(p)];
  for (int& o : fn.outputs) o = remap[static_cast<size_t>(o)];
  return true;
}

}  // namespace kiln::backends::cpu
