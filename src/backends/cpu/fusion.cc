// Copyright 2026 The Kiln Authors.
// Fusion planning and fused execution of elementwise chains (see fusion.h).
#include "src/backends/cpu/fusion.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <iterator>
#include <memory>
#include <new>
#include <queue>
#include <string>
#include <unordered_map>

#include "src/backends/cpu/elementwise_math.h"
#include "src/backends/cpu/layout_util.h"

namespace kiln::backends::cpu {

namespace {

using ir::OpType;

const ir::Instruction& Instr(const ir::Function& fn, int id) { return fn.instructions[static_cast<size_t>(id)]; }

// ------------------------------------------------------------ Broadcasts.

// The index map of a BroadcastInDim over its output, simplified: per output
// axis the operand's stride (0 where the operand repeats), with axes merged
// where the operand is walked contiguously.
RowLoop BroadcastLoop(const ir::Function& fn, const ir::Instruction& b) {
  const shapes::Shape& x = OperandShape(fn, b, 0);
  const auto& axes = ir::Attr<ir::AxesAttrs>(b).axes;
  const std::vector<int64_t> x_strides = RowMajorStrides(x.Dims());
  RowLoop loop{b.shape.Dims(), std::vector<int64_t>(b.shape.Dims().size(), 0), RowMajorStrides(b.shape.Dims())};
  for (size_t i = 0; i < axes.size(); ++i) {
    if (x.Dims()[i] != 1) loop.a_strides[static_cast<size_t>(axes[i])] = x_strides[i];
  }
  return Simplify(loop);
}

// Whether readers in a group evaluate broadcast `id` themselves, reading its
// (smaller) operand, instead of reading the materialized broadcast. A
// same-size broadcast (a transposition in disguise) is not worth it, and the
// tile gather handles up to kMaxFusedBroadcastRank axes after simplification.
bool Inlinable(const ir::Function& fn, int id) {
  const ir::Instruction& b = Instr(fn, id);
  if (b.op != OpType::kBroadcastInDim || b.shape.Size() == 0) return false;
  if (OperandShape(fn, b, 0).Size() >= b.shape.Size()) return false;
  return BroadcastLoop(fn, b).Rank() <= kMaxFusedBroadcastRank;
}

// --------------------------------------------------------------- Liveness.

// Whether each instruction's value is needed by the function's outputs.
std::vector<bool> LiveValues(const ir::Function& fn) {
  std::vector<bool> live(fn.instructions.size(), false);
  for (int o : fn.outputs) live[static_cast<size_t>(o)] = true;
  for (size_t id = fn.instructions.size(); id-- > 0;) {
    if (!live[id]) continue;
    for (int o : fn.instructions[id].operands) live[static_cast<size_t>(o)] = true;
  }
  return live;
}

// ---------------------------------------------------------------- Grouping.

// Greedy grouping in instruction order: each elementwise instruction joins
// the groups of its operands when the union stays convex, else one of them,
// else starts its own.
class Grouper {
 public:
  Grouper(const ir::Function& fn, const std::vector<bool>& live, const std::vector<bool>& taken)
      : fn_(fn), live_(live), taken_(taken), group_of_(fn.instructions.size(), -1),
        in_set_(fn.instructions.size(), 0), visited_(fn.instructions.size(), 0) {}

  // Member lists of the groups, each ascending (some may be empty).
  std::vector<std::vector<int>> Run() {
    for (size_t id = 0; id < fn_.instructions.size(); ++id) {
      if (live_[id] && !taken_[id] && HasTileKernel(fn_.instructions[id].op) &&
          !TouchesComplex(fn_, fn_.instructions[id])) {
        Add(static_cast<int>(id));
      }
    }
    return std::move(members_);
  }

 private:
  void Add(int id) {
    std::vector<int> candidates;
    for (int o : Instr(fn_, id).operands) {
      const int g = group_of_[static_cast<size_t>(o)];
      if (g >= 0 && Instr(fn_, o).shape.Size() == Instr(fn_, id).shape.Size() &&
          std::find(candidates.begin(), candidates.end(), g) == candidates.end()) {
        candidates.push_back(g);
      }
    }
    if (candidates.size() > 1 && Convex(candidates, id)) return Join(candidates, id);
    // Else the largest group that admits it.
    std::sort(candidates.begin(), candidates.end(),
              [this](int a, int b) { return members_[a].size() > members_[b].size(); });
    for (int g : candidates) {
      if (Convex({g}, id)) return Join({g}, id);
    }
    group_of_[static_cast<size_t>(id)] = static_cast<int>(members_.size());
    members_.push_back({id});
  }

  // Merges `groups` and `id` into groups[0].
  void Join(const std::vector<int>& groups, int id) {
    std::vector<int>& target = members_[static_cast<size_t>(groups[0])];
    for (size_t k = 1; k < groups.size(); ++k) {
      std::vector<int>& other = members_[static_cast<size_t>(groups[k])];
      for (int m : other) group_of_[static_cast<size_t>(m)] = groups[0];
      std::vector<int> merged;
      merged.reserve(target.size() + other.size());
      std::merge(target.begin(), target.end(), other.begin(), other.end(), std::back_inserter(merged));
      target = std::move(merged);
      other.clear();
    }
    target.push_back(id);  // the largest id so far: the list stays sorted
    group_of_[static_cast<size_t>(id)] = groups[0];
  }

  // Whether the union S of `groups` and `id` is convex: no path from a member
  // of S to a member of S through an instruction outside S. Each group is
  // convex already, so such a path ends at `id` or, when several groups
  // merge, joins two of them: a backward search from those external
  // operands, over instructions after S's first member, must not reach S.
  bool Convex(const std::vector<int>& groups, int id) {
    ++stamp_;
    int lo = id;
    for (int g : groups) {
      for (int m : members_[static_cast<size_t>(g)]) in_set_[static_cast<size_t>(m)] = stamp_;
      lo = std::min(lo, members_[static_cast<size_t>(g)].front());
    }
    in_set_[static_cast<size_t>(id)] = stamp_;
    std::vector<int> stack;
    auto push_external = [&](int member) {
      for (int o : Instr(fn_, member).operands) {
        if (o > lo && in_set_[static_cast<size_t>(o)] != stamp_ && visited_[static_cast<size_t>(o)] != stamp_) {
          visited_[static_cast<size_t>(o)] = stamp_;
          stack.push_back(o);
        }
      }
    };
    push_external(id);
    if (groups.size() > 1) {
      for (int g : groups) {
        for (int m : members_[static_cast<size_t>(g)]) push_external(m);
      }
    }
    while (!stack.empty()) {
      const int u = stack.back();
      stack.pop_back();
      for (int w : Instr(fn_, u).operands) {
        if (in_set_[static_cast<size_t>(w)] == stamp_) return false;
        if (w > lo && visited_[static_cast<size_t>(w)] != stamp_) {
          visited_[static_cast<size_t>(w)] = stamp_;
          stack.push_back(w);
        }
      }
    }
    return true;
  }

  const ir::Function& fn_;
  const std::vector<bool>& live_;
  const std::vector<bool>& taken_;  // members of row groups
  std::vector<int> group_of_;
  std::vector<std::vector<int>> members_;
  std::vector<uint32_t> in_set_, visited_;  // == stamp_: in S / visited by the current search
  uint32_t stamp_ = 0;
};

// Adds `v` to the sorted vector `set` if absent.
void InsertSorted(std::vector<int>& set, int v) {
  const auto it = std::lower_bound(set.begin(), set.end(), v);
  if (it == set.end() || *it != v) set.insert(it, v);
}

// Whether member m of a group is written to memory: returned by the
// function, or read by a needed instruction outside the group.
template <class InGroup>
bool IsGroupOutput(int m, const std::vector<bool>& live, const std::vector<bool>& returned,
                   const std::vector<std::vector<int>>& consumers, const InGroup& in_group) {
  const auto& users = consumers[static_cast<size_t>(m)];
  return returned[static_cast<size_t>(m)] ||
         std::any_of(users.begin(), users.end(), [&](int c) { return live[static_cast<size_t>(c)] && !in_group(c); });
}

// The group for `members`, with its inputs and outputs; false if fusing it
// gains nothing (one member and no broadcast to evaluate).
bool MakeGroup(const ir::Function& fn, const std::vector<bool>& live, const std::vector<bool>& returned,
               const std::vector<std::vector<int>>& consumers, const std::vector<bool>& taken,
               std::vector<int> members, FusionGroup& group) {
  const auto in_group = [&](int v) { return std::binary_search(members.begin(), members.end(), v); };
  bool inlines_broadcast = false;
  group = FusionGroup{};
  for (int m : members) {
    for (int o : Instr(fn, m).operands) {
      if (in_group(o)) continue;
      // (`taken`: a member of a row group, whose operand may never be in memory.)
      if (Inlinable(fn, o) && !taken[static_cast<size_t>(o)]) {
        inlines_broadcast = true;
        InsertSorted(group.inlined_broadcasts, o);
        InsertSorted(group.inputs, Instr(fn, o).operands[0]);
      } else {
        InsertSorted(group.inputs, o);
      }
    }
    if (IsGroupOutput(m, live, returned, consumers, in_group)) group.outputs.push_back(m);
  }
  if (members.size() < 2 && !inlines_broadcast) return false;
  group.size = Instr(fn, members[0]).shape.Size();
  group.members = std::move(members);
  return true;
}

// The group of a row-group plan: inputs are the members' operands from
// outside, read as they are (a row group evaluates no broadcast of an
// input); outputs as in MakeGroup.
FusionGroup MakeRowGroup(const ir::Function& fn, const std::vector<bool>& live, const std::vector<bool>& returned,
                         const std::vector<std::vector<int>>& consumers, RowGroupPlan rows) {
  FusionGroup group;
  const auto in_group = [&](int v) { return std::binary_search(rows.members.begin(), rows.members.end(), v); };
  for (int m : rows.members) {
    for (int o : Instr(fn, m).operands) {
      if (!in_group(o)) InsertSorted(group.inputs, o);
    }
    if (IsGroupOutput(m, live, returned, consumers, in_group)) group.outputs.push_back(m);
  }
  group.size = rows.row_len * rows.rows;
  group.row_len = rows.row_len;
  group.members = std::move(rows.members);
  group.full_level = std::move(rows.full_level);
  return group;
}

// ---------------------------------------------------------------- Schedule.

// Instructions outside groups that must run: returned, or read by a needed
// instruction or by a group (groups are always needed: each has an output).
std::vector<bool> NeededValues(const ir::Function& fn, const FusionPlan& plan) {
  std::vector<bool> needed(fn.instructions.size(), false);
  std::vector<bool> group_done(plan.groups.size(), false);
  for (int o : fn.outputs) needed[static_cast<size_t>(o)] = true;
  for (size_t id = fn.instructions.size(); id-- > 0;) {
    const int g = plan.group_of[id];
    if (g >= 0) {
      if (group_done[static_cast<size_t>(g)]) continue;  // every input precedes the last member
      group_done[static_cast<size_t>(g)] = true;
      for (int v : plan.groups[static_cast<size_t>(g)].inputs) needed[static_cast<size_t>(v)] = true;
    } else if (needed[id]) {
      for (int o : fn.instructions[id].operands) needed[static_cast<size_t>(o)] = true;
    }
  }
  return needed;
}

// A topological order of the groups and needed instructions (Kahn's
// algorithm, preferring instruction order: a group ranks at its last member).
// Empty if the groups form a cycle.
std::vector<ScheduleEntry> Schedule(const ir::Function& fn, const FusionPlan& plan) {
  const std::vector<bool> needed = NeededValues(fn, plan);
  std::vector<ScheduleEntry> nodes;
  std::vector<int> key;
  std::vector<int> node_of(fn.instructions.size(), -1);  // the node producing each value
  for (size_t g = 0; g < plan.groups.size(); ++g) {
    for (int m : plan.groups[g].members) node_of[static_cast<size_t>(m)] = static_cast<int>(nodes.size());
    nodes.push_back({true, static_cast<int>(g)});
    key.push_back(plan.groups[g].members.back());
  }
  for (size_t id = 0; id < fn.instructions.size(); ++id) {
    if (plan.group_of[id] >= 0 || !needed[id] || fn.instructions[id].op == OpType::kParameter) continue;
    node_of[id] = static_cast<int>(nodes.size());
    nodes.push_back({false, static_cast<int>(id)});
    key.push_back(static_cast<int>(id));
  }
  std::vector<std::vector<int>> successors(nodes.size());
  std::vector<int> pending(nodes.size(), 0);  // unscheduled producers read
  for (size_t n = 0; n < nodes.size(); ++n) {
    const std::vector<int>& reads = nodes[n].is_group ? plan.groups[static_cast<size_t>(nodes[n].index)].inputs
                                                      : Instr(fn, nodes[n].index).operands;
    for (int v : reads) {
      const int producer = node_of[static_cast<size_t>(v)];
      if (producer < 0) continue;  // a parameter
      successors[static_cast<size_t>(producer)].push_back(static_cast<int>(n));
      ++pending[n];
    }
  }
  using Item = std::pair<int, int>;  // (key, node)
  std::priority_queue<Item, std::vector<Item>, std::greater<>> ready;
  for (size_t n = 0; n < nodes.size(); ++n) {
    if (pending[n] == 0) ready.emplace(key[n], static_cast<int>(n));
  }
  std::vector<ScheduleEntry> order;
  order.reserve(nodes.size());
  while (!ready.empty()) {
    const int n = ready.top().second;
    ready.pop();
    order.push_back(nodes[static_cast<size_t>(n)]);
    for (int s : successors[static_cast<size_t>(n)]) {
      if (--pending[static_cast<size_t>(s)] == 0) ready.emplace(key[static_cast<size_t>(s)], s);
    }
  }
  if (order.size() != nodes.size()) order.clear();
  return order;
}

// Tiles hold kMaxTile elements unless the scratch slots would outgrow
// kTileBudget bytes: a tile's working set (slots plus the input and output
// tiles streaming through) then stays in a 32 KiB L1 cache. Measured on the
// chain tanh(x * 2 + 1) * sigmoid(x) over 16M floats (Zen 4, 2 threads):
// 1024 elements is 20-30% faster than 2048 to 8192, and on par with 512.
constexpr int64_t kMaxTile = 1024;
constexpr int64_t kMinTile = 256;
constexpr size_t kTileBudget = 24 * 1024;

}  // namespace

// ----------------------------------------------------------- Tile buffers.

// Per-thread scratch memory of the fused kernels, grown on demand and kept
// for the thread's lifetime (OpenMP reuses its threads), 64-byte aligned.
std::byte* ThreadScratch(size_t bytes) {
  struct AlignedFree {
    void operator()(std::byte* p) const { ::operator delete[](p, std::align_val_t{64}); }
  };
  thread_local std::unique_ptr<std::byte[], AlignedFree> buffer;
  thread_local size_t capacity = 0;
  if (capacity < bytes) {
    buffer.reset();
    buffer.reset(static_cast<std::byte*>(::operator new[](bytes, std::align_val_t{64})));
    capacity = bytes;
  }
  return buffer.get();
}

size_t RoundUp(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }

bool RowFusionEnabled() {
  const char* env = std::getenv("KILN_CPU_ROW_FUSION");
  return env == nullptr || std::string(env) != "0";
}

bool FusionEnabled() {
  const char* env = std::getenv("KILN_CPU_FUSION");
  return env == nullptr || std::string(env) != "0";
}

FusionPlan PlanFusion(const ir::Function& fn, bool fuse) {
  FusionPlan plan;
  plan.group_of.assign(fn.instructions.size(), -1);
  if (fuse) {
    const std::vector<bool> live = LiveValues(fn);
    std::vector<bool> returned(fn.instructions.size(), false);
    for (int o : fn.outputs) returned[static_cast<size_t>(o)] = true;
    std::vector<std::vector<int>> consumers(fn.instructions.size());
    for (size_t id = 0; id < fn.instructions.size(); ++id) {
      for (int o : fn.instructions[id].operands) consumers[static_cast<size_t>(o)].push_back(static_cast<int>(id));
    }
    std::vector<bool> taken(fn.instructions.size(), false);
    if (RowFusionEnabled()) {
      for (RowGroupPlan& rows : PlanRowGroups(fn, live)) {
        FusionGroup group = MakeRowGroup(fn, live, returned, consumers, std::move(rows));
        for (int m : group.members) {
          plan.group_of[static_cast<size_t>(m)] = static_cast<int>(plan.groups.size());
          taken[static_cast<size_t>(m)] = true;
        }
        plan.groups.push_back(std::move(group));
      }
    }
    for (std::vector<int>& members : Grouper(fn, live, taken).Run()) {
      if (members.empty()) continue;
      FusionGroup group;
      if (!MakeGroup(fn, live, returned, consumers, taken, std::move(members), group)) continue;
      for (int m : group.members) plan.group_of[static_cast<size_t>(m)] = static_cast<int>(plan.groups.size());
      plan.groups.push_back(std::move(group));
    }
  }
  plan.schedule = Schedule(fn, plan);
  // Convex groups cannot form a cycle; should one appear anyway, running
  // unfused is always correct.
  if (plan.schedule.empty() && !plan.groups.empty()) return PlanFusion(fn, false);
  return plan;
}

// ------------------------------------------------------------ FusedKernel.

// Compiles a group into FusedKernel's tile program: walks the members in
// order, giving each value a ref (its input or output tile, or a scratch
// slot reused once the value's last reader has run).
class FusedKernelBuilder {
 public:
  FusedKernelBuilder(const ir::Function& fn, const FusionGroup& group, FusedKernel& k)
      : fn_(fn), group_(group), k_(k) {}

  void Build() {
    k_.size_ = group_.size;
    k_.in_place_.resize(group_.outputs.size());
    output_pos_.resize(group_.outputs.size());
    for (size_t p = 0; p < group_.members.size(); ++p) {
      for (int o : Instr(fn_, group_.members[p]).operands) last_read_[o] = static_cast<int>(p);
    }
    int64_t cost = 0;
    for (size_t p = 0; p < group_.members.size(); ++p) {
      AddMember(static_cast<int>(p));
      cost += TileCost(Instr(fn_, group_.members[p]).op);
    }
    cost += static_cast<int64_t>(k_.broadcasts_.size());
    k_.parallel_ = k_.size_ * cost > kParallelThreshold;
    StreamLargeOutputs();
    ChooseTile();
    SetInPlace();
  }

 private:
  using RefKind = FusedKernel::RefKind;

  void AddMember(int p) {
    const int id = group_.members[static_cast<size_t>(p)];
    const ir::Instruction& in = Instr(fn_, id);
    FusedKernel::TileOp op;
    op.kernel = MakeTileKernel(fn_, in);
    if (in.operands.size() > op.args.size()) {  // only malformed IR: elementwise ops take at most 3
      Throw("cpu " + std::string(ir::OpName(in.op)) + ": " + std::to_string(in.operands.size()) + " operands (" +
            in.location + ")");
    }
    op.num_args = static_cast<int>(in.operands.size());
    std::vector<int> dying;  // scratch refs whose last reader this is
    for (size_t k = 0; k < in.operands.size(); ++k) {
      const int o = in.operands[k];
      op.args[k] = OperandRef(o);
      const FusedKernel::Ref& ref = k_.refs_[static_cast<size_t>(op.args[k])];
      if (ref.kind == RefKind::kScratch && !IsPinned(op.args[k]) && last_read_[o] == p &&
          std::find(dying.begin(), dying.end(), op.args[k]) == dying.end()) {
        dying.push_back(op.args[k]);
      }
    }
    const size_t elem = dtypes::SizeOf(in.shape.DType());
    const auto out = std::find(group_.outputs.begin(), group_.outputs.end(), id);
    if (out != group_.outputs.end()) {
      const int k = static_cast<int>(out - group_.outputs.begin());
      op.out = NewRef(RefKind::kOutput, k, elem);
      output_pos_[static_cast<size_t>(k)] = p;
    } else {
      // Overwrite a dying operand of the same width in place (tile kernels
      // allow it), else take a free slot.
      const auto same = std::find_if(dying.begin(), dying.end(),
                                     [&](int r) { return k_.refs_[static_cast<size_t>(r)].elem == elem; });
      int slot;
      if (same != dying.end()) {
        slot = k_.refs_[static_cast<size_t>(*same)].index;
        dying.erase(same);
      } else {
        slot = AllocSlot();
      }
      op.out = NewRef(RefKind::kScratch, slot, elem);
    }
    ref_of_[id] = op.out;
    k_.ops_.push_back(op);
    for (int r : dying) free_slots_.push_back(k_.refs_[static_cast<size_t>(r)].index);
  }

  // The ref operand `o` of a member is read from: its member's, its input's,
  // or (first read of an inlined broadcast) a scratch slot it is gathered to.
  int OperandRef(int o) {
    if (const auto it = ref_of_.find(o); it != ref_of_.end()) return it->second;
    const ir::Instruction& in = Instr(fn_, o);
    if (!std::binary_search(group_.inlined_broadcasts.begin(), group_.inlined_broadcasts.end(), o)) {  // read from memory
      const int r = NewRef(RefKind::kInput, InputIndex(o), dtypes::SizeOf(in.shape.DType()));
      direct_inputs_.push_back(r);
      ref_of_[o] = r;
      return r;
    }
    FusedKernel::Broadcast b;
    b.input = InputIndex(in.operands[0]);
    b.elem = dtypes::SizeOf(in.shape.DType());
    const RowLoop loop = BroadcastLoop(fn_, in);
    b.rank = loop.Rank();
    for (int a = 0; a < b.rank; ++a) {
      b.dims[static_cast<size_t>(a)] = loop.dims[static_cast<size_t>(a)];
      b.strides[static_cast<size_t>(a)] = loop.a_strides[static_cast<size_t>(a)];
    }
    FusedKernel::TileOp gather;
    gather.broadcast = static_cast<int>(k_.broadcasts_.size());
    k_.broadcasts_.push_back(b);
    if (OperandShape(fn_, in, 0).Size() == 1) {
      // A scalar: filled once per thread before the first tile, so its slot
      // is its own for the whole program (never one freed earlier in it).
      gather.out = NewRef(RefKind::kScratch, k_.num_slots_++, b.elem);
      pinned_.push_back(gather.out);
      k_.fills_.push_back(gather);
    } else {
      gather.out = NewRef(RefKind::kScratch, AllocSlot(), b.elem);
      k_.ops_.push_back(gather);
    }
    ref_of_[o] = gather.out;
    return gather.out;
  }

  bool IsPinned(int ref) const { return std::find(pinned_.begin(), pinned_.end(), ref) != pinned_.end(); }

  int InputIndex(int value) const {
    const auto it = std::lower_bound(group_.inputs.begin(), group_.inputs.end(), value);
    if (it == group_.inputs.end() || *it != value) Throw("cpu fusion: internal error: %" + std::to_string(value) + " is not an input");
    return static_cast<int>(it - group_.inputs.begin());
  }

  int NewRef(RefKind kind, int index, size_t elem) {
    k_.refs_.push_back({kind, index, elem});
    return static_cast<int>(k_.refs_.size()) - 1;
  }

  int AllocSlot() {
    if (!free_slots_.empty()) {
      const int s = free_slots_.back();
      free_slots_.pop_back();
      return s;
    }
    return k_.num_slots_++;
  }

  // Outputs too large to stay in cache are computed into scratch slots and
  // copied out with non-temporal stores, which skip the read a normal store
  // miss makes of the line it writes (a third of the traffic of x -> y).
  void StreamLargeOutputs() {
    int64_t bytes = 0;
    for (int o : group_.outputs) bytes += Instr(fn_, o).shape.ByteSize();
    if (bytes < kStreamMinBytes) return;
    for (size_t r = 0; r < k_.refs_.size(); ++r) {
      FusedKernel::Ref& ref = k_.refs_[r];
      if (ref.kind != RefKind::kOutput) continue;
      k_.streamed_.push_back({static_cast<int>(r), ref.index, ref.elem});
      ref = {RefKind::kScratch, k_.num_slots_++, ref.elem};
    }
  }

  // The largest tile up to kMaxTile whose scratch fits kTileBudget.
  void ChooseTile() {
    size_t elem = 1;
    for (const auto& r : k_.refs_) {
      if (r.kind == RefKind::kScratch) elem = std::max(elem, r.elem);
    }
    int64_t tile = kMaxTile;
    while (tile > kMinTile && static_cast<size_t>(tile) * elem * static_cast<size_t>(k_.num_slots_) > kTileBudget) {
      tile /= 2;
    }
    k_.tile_ = tile;
    k_.slot_bytes_ = RoundUp(static_cast<size_t>(tile) * elem, 64);
  }

  // An output may overwrite an input read directly whose last reader is at
  // or before the output's member (which reads its tile before writing it).
  // The member's own operands come first, so that e.g. w - update reuses w,
  // as the per-op kernel would.
  void SetInPlace() {
    for (size_t k = 0; k < group_.outputs.size(); ++k) {
      const auto& operands = Instr(fn_, group_.outputs[k]).operands;
      std::vector<int>& list = k_.in_place_[k];
      for (bool own : {true, false}) {
        for (int r : direct_inputs_) {
          const int index = k_.refs_[static_cast<size_t>(r)].index;
          const int value = group_.inputs[static_cast<size_t>(index)];
          const bool is_operand = std::find(operands.begin(), operands.end(), value) != operands.end();
          if (is_operand == own && last_read_.at(value) <= output_pos_[k]) list.push_back(index);
        }
      }
    }
  }

  const ir::Function& fn_;
  const FusionGroup& group_;
  FusedKernel& k_;
  std::unordered_map<int, int> last_read_;  // value -> position of its last reader in the group
  std::unordered_map<int, int> ref_of_;     // value -> ref
  std::vector<int> direct_inputs_;          // refs of inputs read elementwise
  std::vector<int> output_pos_;             // per output, its member's position
  std::vector<int> free_slots_;
  std::vector<int> pinned_;                 // refs of broadcast scalars (never freed)
};

FusedKernel::FusedKernel(const ir::Function& fn, const FusionGroup& group) {
  if (group.row_len > 0) {
    rows_ = std::make_shared<const RowFusedKernel>(fn, group);
    in_place_.resize(group.outputs.size());  // none: inputs are read block by block after outputs are written
    return;
  }
  FusedKernelBuilder(fn, group, *this).Build();
  for (size_t r = 0; r < refs_.size(); ++r) {
    if (refs_[r].kind != RefKind::kScratch) io_refs_.push_back(static_cast<int>(r));
  }
}

void FusedKernel::Run(const void* const* inputs, void* const* outputs) const {
  if (rows_) return rows_->Run(inputs, outputs);
  if (size_ == 0) return;
  const int64_t tiles = (size_ + tile_ - 1) / tile_;
  if (!parallel_) return RunThread(inputs, outputs, 0, tiles);
#pragma omp parallel
  {
    const int64_t threads = omp_get_num_threads(), thread = omp_get_thread_num();
    RunThread(inputs, outputs, tiles * thread / threads, tiles * (thread + 1) / threads);
  }
}

void FusedKernel::RunThread(const void* const* inputs, void* const* outputs, int64_t tile_begin,
                            int64_t tile_end) const {
  // This thread's pointer table (one entry per ref), then its scratch slots.
  const size_t table_bytes = RoundUp(refs_.size() * sizeof(void*), 64);
  std::byte* scratch = ThreadScratch(table_bytes + static_cast<size_t>(num_slots_) * slot_bytes_);
  void** ptrs = reinterpret_cast<void**>(scratch);
  for (size_t r = 0; r < refs_.size(); ++r) {
    if (refs_[r].kind == RefKind::kScratch) {
      ptrs[r] = scratch + table_bytes + static_cast<size_t>(refs_[r].index) * slot_bytes_;
    }
  }
  for (const TileOp& fill : fills_) {
    const Broadcast& b = broadcasts_[static_cast<size_t>(fill.broadcast)];
    FillElements(ptrs[fill.out], inputs[b.input], std::min(tile_, size_), b.elem);
  }
  RunTiles(inputs, outputs, tile_begin, tile_end, ptrs);
}

void FusedKernel::RunTiles(const void* const* inputs, void* const* outputs, int64_t tile_begin, int64_t tile_end,
                           void** ptrs) const {
  for (int64_t t = tile_begin; t < tile_end; ++t) {
    const int64_t start = t * tile_;
    const int64_t len = std::min(tile_, size_ - start);
    for (int r : io_refs_) {
      const Ref& ref = refs_[static_cast<size_t>(r)];
      // Input tiles are only read: the const_cast just shares the table.
      void* base = ref.kind == RefKind::kInput ? const_cast<void*>(inputs[ref.index]) : outputs[ref.index];
      ptrs[r] = static_cast<std::byte*>(base) + start * static_cast<int64_t>(ref.elem);
    }
    for (const TileOp& op : ops_) {
      if (op.kernel == nullptr) {
        const Broadcast& b = broadcasts_[static_cast<size_t>(op.broadcast)];
        Gather(b, inputs[b.input], ptrs[op.out], start, len);
        continue;
      }
      const void* args[3];
      for (int a = 0; a < op.num_args; ++a) args[a] = ptrs[op.args[static_cast<size_t>(a)]];
      op.kernel(args, ptrs[op.out], len);
    }
    for (const Streamed& out : streamed_) {
      StreamCopy(static_cast<std::byte*>(outputs[out.output]) + start * static_cast<int64_t>(out.elem),
                 ptrs[out.ref], static_cast<size_t>(len) * out.elem);
    }
  }
  if (!streamed_.empty()) StreamFence();  // the next step (another thread) reads them
}

void FusedKernel::Gather(const Broadcast& b, const void* src, void* dst, int64_t start, int64_t len) const {
  DispatchWord(b.elem, [&](auto zero) {
    using W = decltype(zero);
    const W* s = static_cast<const W*>(src);
    W* d = static_cast<W*>(dst);
    const int inner = b.rank - 1;
    const int64_t row_len = b.dims[static_cast<size_t>(inner)], stride = b.strides[static_cast<size_t>(inner)];
    // Multi-index of the first row over the outer axes, and its offset.
    std::array<int64_t, kMaxFusedBroadcastRank> idx{};
    int64_t offset = 0;
    for (int64_t a = inner - 1, rem = start / row_len; a >= 0; --a) {
      idx[static_cast<size_t>(a)] = rem % b.dims[static_cast<size_t>(a)];
      rem /= b.dims[static_cast<size_t>(a)];
      offset += idx[static_cast<size_t>(a)] * b.strides[static_cast<size_t>(a)];
    }
    int64_t col = start % row_len;
    while (len > 0) {
      const int64_t n = std::min(row_len - col, len);
      CopyRow(s + offset + col * stride, stride, d, 1, n);
      d += n;
      len -= n;
      col = 0;
      for (int a = inner - 1; a >= 0; --a) {  // next row
        const auto ua = static_cast<size_t>(a);
        offset += b.strides[ua];
        if (++idx[ua] < b.dims[ua]) break;
        offset -= b.dims[ua] * b.strides[ua];
        idx[ua] = 0;
      }
    }
  });
}

}  // namespace kiln::backends::cpu
