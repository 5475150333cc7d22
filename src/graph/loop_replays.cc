// Copyright 2026 The Kiln Authors.
// Merging a While into the replay its reverse-mode rule builds (see
// loop_replays.h).
#include "src/graph/loop_replays.h"

#include <algorithm>
#include <unordered_map>
#include <utility>
#include <vector>

namespace kiln::graph::internal {

namespace {

// Whether `replay` extends `original`: both Whiles, the replay's results
// 1..n the original's n results.
bool Extends(const ir::Function& fn, int replay, int original) {
  const auto size = static_cast<int>(fn.instructions.size());
  if (replay < 0 || replay >= size || original < 0 || original >= size) return false;
  const ir::Instruction& r = fn.instructions[static_cast<size_t>(replay)];
  const ir::Instruction& o = fn.instructions[static_cast<size_t>(original)];
  if (r.op != ir::OpType::kWhile || o.op != ir::OpType::kWhile) return false;
  const auto& rs = ir::Attr<ir::ControlFlowAttrs>(r).results;
  const auto& os = ir::Attr<ir::ControlFlowAttrs>(o).results;
  if (rs.size() < os.size() + 1) return false;
  for (size_t i = 0; i < os.size(); ++i) {
    if (rs[i + 1] != os[i]) return false;
  }
  return true;
}

// The instructions `roots` depend on (themselves included).
std::vector<bool> Reachable(const ir::Function& fn, const std::vector<int>& roots) {
  std::vector<bool> seen(fn.instructions.size(), false);
  std::vector<int> stack(roots.begin(), roots.end());
  while (!stack.empty()) {
    const auto id = static_cast<size_t>(stack.back());
    stack.pop_back();
    if (seen[id]) continue;
    seen[id] = true;
    for (int o : fn.instructions[id].operands) stack.push_back(o);
  }
  return seen;
}

}  // namespace

void MergeLoopReplays(ir::Function& fn, const std::vector<std::pair<int, int>>& replays) {
  const size_t size = fn.instructions.size();
  const std::vector<bool> live = Reachable(fn, fn.outputs);
  // Each tuple's GetTupleElements, per element index (a copied graph may
  // hold several per element), and whether anything else reads the tuple.
  std::unordered_map<int, std::vector<std::vector<int>>> elements;
  std::vector<bool> other_reader(size, false);
  for (size_t id = 0; id < size; ++id) {
    const ir::Instruction& in = fn.instructions[id];
    if (in.op == ir::OpType::kGetTupleElement) {
      auto& slots = elements[in.operands[0]];
      const auto i = static_cast<size_t>(ir::Attr<ir::TupleIndexAttrs>(in).index);
      if (slots.size() <= i) slots.resize(i + 1);
      slots[i].push_back(static_cast<int>(id));
    } else {
      for (int o : in.operands) other_reader[static_cast<size_t>(o)] = true;
    }
  }
  for (int o : fn.outputs) other_reader[static_cast<size_t>(o)] = true;
  auto reader = [&](int tuple, size_t i) {
    auto it = elements.find(tuple);
    return it == elements.end() || i >= it->second.size() || it->second[i].empty() ? -1 : it->second[i].front();
  };

  // 1. Where each reader of an original's element reads from now. In id
  // order, so that along a chain (W replayed by T, T by T2) each replay takes
  // its original's location before passing it on.
  std::vector<std::pair<int, int>> pairs = replays;
  std::stable_sort(pairs.begin(), pairs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<int> redirect(size, -1);
  std::vector<bool> dropped(size, false);
  for (const auto& [original, replay] : pairs) {
    if (!Extends(fn, replay, original) || dropped[static_cast<size_t>(original)] ||
        !live[static_cast<size_t>(replay)] || other_reader[static_cast<size_t>(original)] ||
        Reachable(fn, {replay})[static_cast<size_t>(original)]) {
      continue;
    }
    const size_t n = ir::Attr<ir::ControlFlowAttrs>(fn.instructions[static_cast<size_t>(original)]).results.size();
    bool complete = true;
    for (size_t i = 0; i < n; ++i) complete &= reader(original, i) < 0 || reader(replay, i + 1) >= 0;
    if (!complete) continue;
    if (auto it = elements.find(original); it != elements.end()) {
      for (size_t i = 0; i < it->second.size(); ++i) {
        for (int gte : it->second[i]) {
          redirect[static_cast<size_t>(gte)] = reader(replay, i + 1);
          dropped[static_cast<size_t>(gte)] = true;
        }
      }
    }
    dropped[static_cast<size_t>(original)] = true;
    // The replay now is the user's loop: its run-time errors (an exceeded
    // max_trip_count) name the user's line, not the gradient's.
    fn.instructions[static_cast<size_t>(replay)].location = fn.instructions[static_cast<size_t>(original)].location;
  }
  if (std::find(dropped.begin(), dropped.end(), true) == dropped.end()) return;
  auto target = [&](int id) {
    while (redirect[static_cast<size_t>(id)] >= 0) id = redirect[static_cast<size_t>(id)];  // chains of replays
    return id;
  };
  for (ir::Instruction& in : fn.instructions) {
    for (int& o : in.operands) o = target(o);
  }
  for (int& o : fn.outputs) o = target(o);

  // 2. A topological order of what is left: depth first from each
  // instruction in id order (iteratively: graphs can be deep chains), so the
  // order only changes where a reader now needs a later replay.
  std::vector<int> new_id(size, -1);
  std::vector<ir::Instruction> order;
  order.reserve(size);
  std::vector<std::pair<int, size_t>> stack;  // (instruction, next operand to visit)
  std::vector<bool> on_stack(size, false);
  for (size_t root = 0; root < size; ++root) {
    if (dropped[root] || new_id[root] >= 0) continue;
    stack.emplace_back(static_cast<int>(root), 0);
    on_stack[root] = true;
    while (!stack.empty()) {
      auto& [id, next] = stack.back();
      const ir::Instruction& in = fn.instructions[static_cast<size_t>(id)];
      if (next < in.operands.size()) {
        // An operand on the stack would be a cycle, which no checked pair
        // creates (a replay never depends on its original); were there one,
        // Validate would report the operand that comes later.
        const auto o = static_cast<size_t>(in.operands[next++]);
        if (new_id[o] < 0 && !on_stack[o]) {
          stack.emplace_back(static_cast<int>(o), 0);
          on_stack[o] = true;
        }
        continue;
      }
      new_id[static_cast<size_t>(id)] = static_cast<int>(order.size());
      order.push_back(in);
      on_stack[static_cast<size_t>(id)] = false;
      stack.pop_back();
    }
  }
  for (ir::Instruction& in : order) {
    for (int& o : in.operands) o = new_id[static_cast<size_t>(o)];
  }
  for (int& p : fn.parameters) p = new_id[static_cast<size_t>(p)];
  for (int& o : fn.outputs) o = new_id[static_cast<size_t>(o)];
  fn.instructions = std::move(order);
}

}  // namespace kiln::graph::internal
