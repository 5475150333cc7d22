// Copyright 2026 The Kiln Authors.
#include "src/ir/sort_prefix.h"

#include <algorithm>
#include <vector>

namespace kiln::ir {

int64_t SortPrefixNeeded(const Function& fn, int sort) {
  const Instruction& in = fn.instructions[static_cast<size_t>(sort)];
  const auto axis = static_cast<size_t>(Attr<SortAttrs>(in).axis);
  const int64_t len = fn.instructions[static_cast<size_t>(in.operands[0])].shape.Dims()[axis];
  std::vector<int> elements;  // the GetTupleElements of the sort
  for (size_t id = static_cast<size_t>(sort) + 1; id < fn.instructions.size(); ++id) {
    const Instruction& user = fn.instructions[id];
    if (user.op == OpType::kGetTupleElement && user.operands[0] == sort) elements.push_back(static_cast<int>(id));
  }
  int64_t needed = 0;
  for (int e : elements) {
    if (std::find(fn.outputs.begin(), fn.outputs.end(), e) != fn.outputs.end()) return len;
    for (size_t id = static_cast<size_t>(e) + 1; id < fn.instructions.size(); ++id) {
      const Instruction& user = fn.instructions[id];
      if (std::find(user.operands.begin(), user.operands.end(), e) == user.operands.end()) continue;
      if (user.op != OpType::kSlice) return len;
      needed = std::max(needed, Attr<SliceAttrs>(user).limits[axis]);
    }
  }
  return needed;
}

}  // namespace kiln::ir
