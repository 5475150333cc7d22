// Copyright 2026 The Kiln Authors.
// Fusion of elementwise chains in the CPU executor.
//
// PlanFusion partitions a function's elementwise instructions (unary, binary,
// comparisons, Where, Clamp, ConvertDType) into groups of one element count
// that run as a single pass over cache-sized tiles: for each tile, the
// members are computed in order into small per-thread buffers, and only the
// values needed outside the group are written to memory. BroadcastInDim
// operands of members are evaluated inside the group by index mapping (a
// broadcast scalar is filled once per thread), so e.g. x * 2 never
// materializes the broadcast 2. The tile loops are the per-op kernels' own
// (fusion_tiles.h), so a fused group computes exactly what its ops would one
// by one, for every dtype.
//
// Row groups fuse reductions over the last axis with what surrounds them:
// from a ReduceSum/Max/Min over the last axis of a Float32/Float64 value
// [..., C] (its rows), the group takes every later instruction that reads
// it and is elementwise on the rows' elements or on one value per row, a
// Reshape, a broadcast of one value per row along the rows, or another
// last-axis reduction of those rows, as long as its other operands do not
// depend on the group. Softmax, log-softmax and normalizations then make one
// pass over blocks of whole rows instead of one per op. The row reductions
// call the reduce kernel's own row function, so results stay bit-identical
// with the unfused ops (where that kernel would split a row across threads,
// the reduction is not fused).
//
// Not fused otherwise: other reductions, Reshape and Bitcast between
// elementwise members (the value is materialized, then aliased) and the
// other layout ops (their results are read from memory).
//
// FusedKernel runs one group; the executor (cpu_backend.cc) runs the plan's
// schedule, with liveness, donation and in-place reuse over its steps.
// Setting the environment variable KILN_CPU_FUSION=0 turns fusion off (for
// debugging and side-by-side comparisons).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "src/backends/cpu/fusion_tiles.h"
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

/// Most axes a broadcast evaluated inside a group may have once simplified
/// (size-1 axes dropped, contiguous runs merged); beyond, it is read from memory.
inline constexpr int kMaxFusedBroadcastRank = 8;

/// Elementwise instructions of one element count run as one pass over tiles.
/// A group is convex: no path leaves it and comes back, so it can run as one
/// step once its inputs exist.
struct FusionGroup {
  /// Elements of every member's value.
  int64_t size = 0;
  /// Instruction ids, ascending (a topological order).
  std::vector<int> members;
  /// Values the group reads from memory, ascending: the members' operands
  /// from outside the group, and the operands of the BroadcastInDim operands
  /// evaluated inside it.
  std::vector<int> inputs;
  /// Members written to memory, ascending: those used outside the group or
  /// returned by the function. Every other member lives only in tiles.
  std::vector<int> outputs;
  /// The BroadcastInDim operands evaluated inside the group (reading their
  /// operand), ascending. A broadcast computed in another group is read
  /// from memory instead: its operand may live only in that group's tiles.
  std::vector<int> inlined_broadcasts;
  /// Row groups: the row length C (> 0), and per member whether it is one of
  /// the rows' elements (size elements) or one value per row (size / C).
  int64_t row_len = 0;
  std::vector<bool> full_level;
};

/// A row group found by PlanRowGroups: members ascending, with their levels.
struct RowGroupPlan {
  std::vector<int> members;
  std::vector<bool> full_level;
  int64_t row_len = 0, rows = 0;
};

/// The row groups of `fn` (see the file comment); `live` marks the values
/// the function's outputs need. No instruction is in two groups.
std::vector<RowGroupPlan> PlanRowGroups(const ir::Function& fn, const std::vector<bool>& live);

/// Runs one row group: blocks of whole rows, each member computed for the
/// block in order into per-thread buffers (or straight into its output).
class RowFusedKernel {
 public:
  /// Prepares row group `group` of `fn` (group.row_len > 0): one step per
  /// member, buffers for a block of rows, the tile kernels and row reducers.
  RowFusedKernel(const ir::Function& fn, const FusionGroup& group);
  /// Computes the group: inputs[i] points at group.inputs[i]'s data,
  /// outputs[k] at group.outputs[k]'s buffer (never one of the inputs).
  void Run(const void* const* inputs, void* const* outputs) const;

 private:
  enum class StepKind : uint8_t { kTile, kAlias, kExpand, kReduce };
  struct Arg {
    int slot = -1;    // a member's buffer, or
    int input = -1;   // a group input, read at the block's rows
    bool full = false;
    size_t elem = 0;
  };
  struct Step {
    StepKind kind = StepKind::kTile;
    bool full = false;
    size_t elem = 0;
    std::vector<Arg> args;
    TileKernel tile = nullptr;
    RowReduceFn reduce = nullptr;
    int slot = 0;     // its buffer
    int output = -1;  // its output index, or -1
  };
  void RunStep(const Step& step, const void* const* inputs, void* const* outputs, int64_t r0, int64_t nr,
               std::vector<std::byte*>& at) const;
  // Each of the nr values at src repeated row_len_ times into dst.
  template <typename W>
  void Expand(const std::byte* src, std::byte* dst, int64_t nr) const;

  int64_t row_len_ = 0, rows_ = 0, block_rows_ = 1;
  std::vector<Step> steps_;
  std::vector<size_t> slots_;  // byte offset of each buffer in the thread's scratch
  size_t scratch_bytes_ = 0;
  bool parallel_ = false;
};

/// One step of an execution order: an instruction outside every group, or a group.
struct ScheduleEntry {
  bool is_group = false;
  int index = 0;  ///< a group index if is_group, else an instruction id
};

/// The fusion groups of a function and the order to run them in.
struct FusionPlan {
  std::vector<FusionGroup> groups;
  /// Per instruction: the index of its group, or -1.
  std::vector<int> group_of;
  /// Every group and every needed instruction outside groups except
  /// Parameters, in an order where each value is computed before it is read.
  /// Instructions whose values nothing needs are left out (dead code, and
  /// broadcasts that every reader evaluates inside its group).
  std::vector<ScheduleEntry> schedule;
};

/// Partitions `fn` into fusion groups (none if `fuse` is false) and
/// schedules them. Groups are maximal under a greedy pass in instruction
/// order; a single member with no broadcast to evaluate is left unfused (its
/// per-op kernel does the same work).
FusionPlan PlanFusion(const ir::Function& fn, bool fuse = true);

/// Whether the CPU backend fuses: true unless the environment variable
/// KILN_CPU_FUSION is "0". Read at each compile.
bool FusionEnabled();

/// This thread's scratch memory for the fused kernels: at least `bytes`,
/// 64-byte aligned, kept for the thread's lifetime (OpenMP reuses its
/// threads) and valid until the next call on this thread.
std::byte* ThreadScratch(size_t bytes);
/// `bytes` rounded up to a multiple of `to`.
size_t RoundUp(size_t bytes, size_t to);

/// Whether fusion forms row groups: true unless KILN_CPU_ROW_FUSION is "0"
/// (elementwise fusion alone then, for comparisons).
bool RowFusionEnabled();

/// The compiled form of one group: its tile program and buffers' layout.
class FusedKernel {
 public:
  /// Prepares `group` of `fn` (tile kernels, broadcast index maps, buffer
  /// slots); throws kiln::Error for a member dtype its op does not accept.
  FusedKernel(const ir::Function& fn, const FusionGroup& group);

  /// Computes the group: inputs[i] points at the data of group.inputs[i],
  /// outputs[k] at the (uninitialized) buffer of group.outputs[k]. An output
  /// may be the same buffer as an input listed in InPlaceInputs(k).
  void Run(const void* const* inputs, void* const* outputs) const;

  /// Indices (into group.inputs) of the inputs that output k may overwrite in
  /// place: read elementwise (not through a broadcast) and never after output
  /// k's member has written its tile.
  const std::vector<int>& InPlaceInputs(size_t k) const { return in_place_[k]; }

 private:
  // Where a value of the tile program lives during a tile: an input's or an
  // output's current tile in memory, or a per-thread scratch slot.
  enum class RefKind : uint8_t { kInput, kOutput, kScratch };
  struct Ref {
    RefKind kind;
    int index;    // input, output or slot index
    size_t elem;  // element width in bytes
  };
  // BroadcastInDim evaluated by index mapping: the simplified loop over the
  // output with the operand's stride per axis (0: repeated).
  struct Broadcast {
    int input = 0;  // index into the inputs
    size_t elem = 0;
    int rank = 0;
    std::array<int64_t, kMaxFusedBroadcastRank> dims{}, strides{};
  };
  // One step of the tile program: a member's tile kernel, or the gather of a
  // broadcast into a scratch slot.
  struct TileOp {
    TileKernel kernel = nullptr;  // nullptr: gather broadcasts_[broadcast]
    int broadcast = -1;
    int num_args = 0;
    std::array<int, 3> args{};  // ref ids
    int out = 0;                // ref id
  };

  friend class FusedKernelBuilder;

  void RunThread(const void* const* inputs, void* const* outputs, int64_t tile_begin, int64_t tile_end) const;
  void RunTiles(const void* const* inputs, void* const* outputs, int64_t tile_begin, int64_t tile_end,
                void** ptrs) const;
  void Gather(const Broadcast& b, const void* src, void* dst, int64_t start, int64_t len) const;

  int64_t size_ = 0;
  int64_t tile_ = 0;          // elements per tile
  size_t slot_bytes_ = 0;     // bytes per scratch slot
  int num_slots_ = 0;
  bool parallel_ = false;
  std::vector<Ref> refs_;
  std::vector<int> io_refs_;  // refs of input and output tiles: repointed per tile
  std::vector<Broadcast> broadcasts_;
  std::vector<TileOp> ops_;
  std::vector<TileOp> fills_;  // broadcast scalars: filled once per thread
  // Outputs computed into a scratch slot and streamed out after each tile.
  struct Streamed {
    int ref;     // the scratch ref holding the tile
    int output;  // output index
    size_t elem;
  };
  std::vector<Streamed> streamed_;
  std::shared_ptr<const RowFusedKernel> rows_;  // set for a row group
  std::vector<std::vector<int>> in_place_;
};

}  // namespace kiln::backends::cpu
