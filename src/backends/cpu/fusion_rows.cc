// Copyright 2026 The Kiln Authors.
// Row groups: fusion of reductions over the last axis with the elementwise
// ops around them (softmax, log-softmax, normalizations), one pass over
// blocks of whole rows. See fusion.h.
#include <omp.h>

#include <algorithm>
#include <cstring>

#include "src/backends/cpu/fusion.h"

namespace kiln::backends::cpu {

namespace {

using ir::OpType;

const ir::Instruction& Instr(const ir::Function& fn, int id) { return fn.instructions[static_cast<size_t>(id)]; }

// Per-row buffers of one row group are at most this many bytes per thread
// (every member value of a block of rows); rows longer than that leave the
// reduction unfused.
constexpr int64_t kMaxRowGroupBytes = int64_t{1} << 20;
// Rows per block: enough elements per block that the per-block overhead is
// small, while the block's values stay in the L2 cache.
constexpr int64_t kBlockElements = 4096;

// Whether BroadcastInDim `b` repeats each element of its operand along the
// last axis of its output and nothing else: the operand has one element per
// output row, in row order (e.g. [R] or [R, 1] to [R, C]).
bool IsRowBroadcast(const ir::Function& fn, const ir::Instruction& b, int64_t row_len) {
  if (b.op != OpType::kBroadcastInDim || b.shape.Rank() < 1 || b.shape.Dims().back() != row_len) return false;
  const shapes::Shape& x = Instr(fn, b.operands[0]).shape;
  const auto& axes = ir::Attr<ir::AxesAttrs>(b).axes;
  const int last = b.shape.Rank() - 1;
  // Each output axis but the last must come from an operand axis of the same
  // size, in order; the last from nothing or from a size-1 axis.
  int64_t covered = 0;  // output axes [0, covered) are matched
  for (size_t i = 0; i < axes.size(); ++i) {
    const int64_t out_axis = axes[i];
    if (out_axis == last) {
      if (x.Dims()[i] != 1) return false;
      continue;
    }
    if (out_axis != covered || x.Dims()[i] != b.shape.Dims()[static_cast<size_t>(out_axis)]) return false;
    ++covered;
  }
  // Output axes skipped by the operand must have size 1.
  for (int64_t a = covered; a < last; ++a) {
    if (b.shape.Dims()[static_cast<size_t>(a)] != 1) return false;
  }
  return x.Size() * row_len == b.shape.Size();
}

}  // namespace

std::vector<RowGroupPlan> PlanRowGroups(const ir::Function& fn, const std::vector<bool>& live) {
  std::vector<RowGroupPlan> plans;
  const size_t n = fn.instructions.size();
  std::vector<bool> claimed(n, false);
  for (size_t seed = 0; seed < n; ++seed) {
    const ir::Instruction& red = fn.instructions[seed];
    if (!live[seed] || claimed[seed] || LastAxisRowReducer(fn, red) == nullptr) continue;
    const shapes::Shape& full = Instr(fn, red.operands[0]).shape;
    const int64_t row_len = full.Dims().back(), size = full.Size(), rows = size / row_len;
    if (row_len < 2 || rows < 2) continue;
    // Forward sweep from the seed: an instruction joins when each operand is
    // a member or independent of the group (so no path leaves the group and
    // comes back: the group stays convex).
    std::vector<int> members = {static_cast<int>(seed)};
    std::vector<int8_t> level(n, -1);         // of members: 0 row, 1 full
    std::vector<bool> depends(n, false);      // on a member (members included)
    level[seed] = 0;
    depends[seed] = true;
    int full_members = 0, elementwise = 0;
    for (size_t id = seed + 1; id < n; ++id) {
      const ir::Instruction& in = fn.instructions[id];
      bool touches = false;
      for (int o : in.operands) touches |= depends[static_cast<size_t>(o)];
      if (!touches) continue;
      depends[id] = true;
      if (!live[id] || claimed[id] || TouchesComplex(fn, in)) continue;
      // The level of every member operand, and whether the others are usable
      // as inputs (independent of the group).
      int member_level = -1;
      bool ok = true;
      for (int o : in.operands) {
        const int8_t l = level[static_cast<size_t>(o)];
        if (l >= 0) {
          if (member_level >= 0 && member_level != l) ok = false;
          member_level = l;
        } else if (depends[static_cast<size_t>(o)]) {
          ok = false;  // computed outside the group from a member
        }
      }
      if (!ok || member_level < 0) continue;
      int8_t out_level = -1;
      if (HasTileKernel(in.op)) {
        const int64_t want = member_level == 1 ? size : rows;
        bool sizes = in.shape.Size() == want;
        for (int o : in.operands) sizes &= Instr(fn, o).shape.Size() == want;
        if (sizes) out_level = static_cast<int8_t>(member_level);
        elementwise += sizes;
      } else if (in.op == OpType::kReshape && in.shape.Size() == (member_level == 1 ? size : rows)) {
        out_level = static_cast<int8_t>(member_level);
      } else if (member_level == 0 && IsRowBroadcast(fn, in, row_len) && in.shape.Size() == size) {
        out_level = 1;
      } else if (member_level == 1 && LastAxisRowReducer(fn, in) != nullptr &&
                 Instr(fn, in.operands[0]).shape.Dims().back() == row_len && in.shape.Size() == rows) {
        out_level = 0;
      }
      if (out_level < 0) continue;
      level[id] = out_level;
      full_members += out_level == 1;
      members.push_back(static_cast<int>(id));
    }
    // Worth it only with elementwise work on the rows; and the block of one
    // row of every full member must fit the buffer budget.
    if (elementwise == 0 || full_members == 0) continue;
    if (static_cast<int64_t>(members.size()) * row_len * 8 > kMaxRowGroupBytes) continue;
    RowGroupPlan plan;
    plan.full_level.reserve(members.size());
    for (int m : members) {
      plan.full_level.push_back(level[static_cast<size_t>(m)] == 1);
      claimed[static_cast<size_t>(m)] = true;
    }
    plan.members = std::move(members);
    plan.row_len = row_len;
    plan.rows = rows;
    plans.push_back(std::move(plan));
  }
  return plans;
}

// ------------------------------------------------------------ The kernel.

RowFusedKernel::RowFusedKernel(const ir::Function& fn, const FusionGroup& group) : row_len_(group.row_len) {
  rows_ = group.size / row_len_;
  block_rows_ = std::max<int64_t>(1, kBlockElements / row_len_);
  std::vector<int> slot_of(fn.instructions.size(), -1);
  size_t offset = 0;
  auto input_index = [&](int v) {
    return static_cast<int>(std::lower_bound(group.inputs.begin(), group.inputs.end(), v) - group.inputs.begin());
  };
  for (size_t p = 0; p < group.members.size(); ++p) {
    const int id = group.members[p];
    const ir::Instruction& in = Instr(fn, id);
    Step step;
    step.full = group.full_level[p];
    step.elem = dtypes::SizeOf(in.shape.DType());
    for (int o : in.operands) {
      Arg arg;
      const int s = slot_of[static_cast<size_t>(o)];
      if (s >= 0) {
        arg.slot = s;
      } else {
        arg.input = input_index(o);
        arg.full = Instr(fn, o).shape.Size() == group.size;
        arg.elem = dtypes::SizeOf(Instr(fn, o).shape.DType());
      }
      step.args.push_back(arg);
    }
    if (HasTileKernel(in.op)) {
      step.kind = StepKind::kTile;
      step.tile = MakeTileKernel(fn, in);
    } else if (in.op == OpType::kReshape) {
      step.kind = StepKind::kAlias;
    } else if (in.op == OpType::kBroadcastInDim) {
      step.kind = StepKind::kExpand;
    } else {
      step.kind = StepKind::kReduce;
      step.reduce = LastAxisRowReducer(fn, in);
    }
    const auto out = std::find(group.outputs.begin(), group.outputs.end(), id);
    step.output = out == group.outputs.end() ? -1 : static_cast<int>(out - group.outputs.begin());
    step.slot = static_cast<int>(slots_.size());
    if (step.kind == StepKind::kAlias && step.args[0].slot >= 0 && step.output < 0) {
      step.slot = step.args[0].slot;  // same bytes: no copy
    } else {
      const size_t bytes = RoundUp(static_cast<size_t>(block_rows_ * (step.full ? row_len_ : 1)) * step.elem, 64);
      slots_.push_back(offset);
      offset += bytes;
    }
    slot_of[static_cast<size_t>(id)] = step.slot;
    steps_.push_back(std::move(step));
  }
  scratch_bytes_ = offset;
  int64_t cost = 0;
  for (int m : group.members) cost += HasTileKernel(Instr(fn, m).op) ? TileCost(Instr(fn, m).op) : 1;
  parallel_ = group.size * cost > kParallelThreshold;
}

void RowFusedKernel::Run(const void* const* inputs, void* const* outputs) const {
  const int64_t blocks = (rows_ + block_rows_ - 1) / block_rows_;
#pragma omp parallel if (parallel_)
  {
    std::byte* scratch = ThreadScratch(scratch_bytes_);
    std::vector<std::byte*> at(slots_.size());
#pragma omp for schedule(static)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t r0 = b * block_rows_, nr = std::min(block_rows_, rows_ - r0);
      for (size_t s = 0; s < slots_.size(); ++s) at[s] = scratch + slots_[s];
      for (const Step& step : steps_) RunStep(step, inputs, outputs, r0, nr, at);
    }
  }
}

template <typename W>
void RowFusedKernel::Expand(const std::byte* src, std::byte* dst, int64_t nr) const {
  const W* s = reinterpret_cast<const W*>(src);
  W* d = reinterpret_cast<W*>(dst);
  for (int64_t r = 0; r < nr; ++r) std::fill_n(d + r * row_len_, row_len_, s[r]);
}

void RowFusedKernel::RunStep(const Step& step, const void* const* inputs, void* const* outputs, int64_t r0,
                             int64_t nr, std::vector<std::byte*>& at) const {
  auto arg_ptr = [&](const Arg& a) -> const std::byte* {
    if (a.slot >= 0) return at[static_cast<size_t>(a.slot)];
    const int64_t first = a.full ? r0 * row_len_ : r0;
    return static_cast<const std::byte*>(inputs[a.input]) + first * static_cast<int64_t>(a.elem);
  };
  // The member's value for these rows: in its output's memory if the group
  // writes it, else in its slot.
  std::byte* dst = at[static_cast<size_t>(step.slot)];
  if (step.output >= 0) {
    const int64_t first = step.full ? r0 * row_len_ : r0;
    dst = static_cast<std::byte*>(outputs[step.output]) + first * static_cast<int64_t>(step.elem);
    at[static_cast<size_t>(step.slot)] = dst;  // later members read it there
  }
  const int64_t len = step.full ? nr * row_len_ : nr;
  switch (step.kind) {
    case StepKind::kTile: {
      const void* args[3];
      for (size_t k = 0; k < step.args.size(); ++k) args[k] = arg_ptr(step.args[k]);
      step.tile(args, dst, len);
      return;
    }
    case StepKind::kAlias: {
      const std::byte* src = arg_ptr(step.args[0]);
      if (src != dst) std::memmove(dst, src, static_cast<size_t>(len) * step.elem);
      return;
    }
    case StepKind::kExpand: {
      const std::byte* src = arg_ptr(step.args[0]);
      switch (step.elem) {
        case 1: return Expand<uint8_t>(src, dst, nr);
        case 2: return Expand<uint16_t>(src, dst, nr);
        case 4: return Expand<uint32_t>(src, dst, nr);
        default: return Expand<uint64_t>(src, dst, nr);
      }
    }
    case StepKind::kReduce: {
      // Sum, max and min keep the dtype: the row's elements are step.elem wide too.
      const std::byte* src = arg_ptr(step.args[0]);
      const auto elem = static_cast<int64_t>(step.elem);
      for (int64_t r = 0; r < nr; ++r) step.reduce(src + r * row_len_ * elem, row_len_, dst + r * elem);
      return;
    }
  }
}

}  // namespace kiln::backends::cpu
