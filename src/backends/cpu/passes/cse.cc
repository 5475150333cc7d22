// Copyright 2026 The Kiln Authors.
// Common-subexpression elimination by hashing (op, operands, shape, attrs).
#include <string_view>
#include <unordered_map>
#include <variant>
#include <vector>

#include "src/backends/cpu/passes.h"
#include "src/backends/cpu/passes/rewrite.h"

namespace kiln::backends::cpu {

namespace {

using passes::Action;
using passes::HashCombine;

size_t HashInts(const std::vector<int64_t>& values) {
  size_t seed = values.size();
  for (int64_t v : values) HashCombine(seed, std::hash<int64_t>{}(v));
  return seed;
}

// A hash of the attributes consistent with their operator==. The fields that
// tell instructions of one operand apart in practice (axes, slice bounds,
// constant bytes) are hashed, so buckets stay small; the rarer attribute
// structs hash a few fields only, which keeps correctness (equality decides)
// at a negligible cost in collisions.
struct AttrsHasher {
  size_t operator()(const ir::NoAttrs&) const { return 0; }
  size_t operator()(const ir::ParameterAttrs& a) const { return std::hash<int>{}(a.index); }
  // Large constants (embedded data) are hashed by their size and ends only,
  // so that every round stays cheap; equality still compares all bytes.
  size_t operator()(const ir::ConstantAttrs& a) const {
    if (!a.data) return 0;
    constexpr size_t kEnd = 256;
    const std::string_view bytes(reinterpret_cast<const char*>(a.data->data()), a.data->size());
    if (bytes.size() <= 2 * kEnd) return std::hash<std::string_view>{}(bytes);
    size_t seed = std::hash<std::string_view>{}(bytes.substr(0, kEnd));
    HashCombine(seed, std::hash<std::string_view>{}(bytes.substr(bytes.size() - kEnd)));
    HashCombine(seed, bytes.size());
    return seed;
  }
  size_t operator()(const ir::AxesAttrs& a) const { return HashInts(a.axes); }
  size_t operator()(const ir::SliceAttrs& a) const {
    size_t seed = HashInts(a.starts);
    HashCombine(seed, HashInts(a.limits));
    HashCombine(seed, HashInts(a.strides));
    return seed;
  }
  size_t operator()(const ir::PadAttrs& a) const {
    size_t seed = HashInts(a.low);
    HashCombine(seed, HashInts(a.high));
    HashCombine(seed, HashInts(a.interior));
    return seed;
  }
  size_t operator()(const ir::DynamicSliceAttrs& a) const { return HashInts(a.sizes); }
  size_t operator()(const ir::ArgMinMaxAttrs& a) const { return static_cast<size_t>(a.axis) * 2 + a.is_min; }
  size_t operator()(const ir::DotGeneralAttrs& a) const {
    size_t seed = HashInts(a.lhs_contracting);
    HashCombine(seed, HashInts(a.rhs_contracting));
    return seed;
  }
  size_t operator()(const ir::ConvAttrs& a) const { return HashInts(a.strides); }
  size_t operator()(const ir::WindowAttrs& a) const { return HashInts(a.window_dimensions); }
  size_t operator()(const ir::GatherAttrs& a) const { return HashInts(a.slice_sizes); }
  size_t operator()(const ir::ScatterAttrs& a) const { return HashInts(a.update_window_dims); }
  size_t operator()(const ir::ControlFlowAttrs& a) const {
    size_t seed = a.subfunctions.size();
    for (int s : a.subfunctions) HashCombine(seed, std::hash<int>{}(s));
    return seed;
  }
  size_t operator()(const ir::SortAttrs& a) const { return HashInts(a.keys) * 31 + static_cast<size_t>(a.axis); }
  size_t operator()(const ir::TupleIndexAttrs& a) const { return std::hash<int64_t>{}(a.index); }
  size_t operator()(const ir::LinalgAttrs& a) const {
    return static_cast<size_t>(a.lower) | static_cast<size_t>(a.left_side) << 1 |
           static_cast<size_t>(a.transpose_a) << 2 | static_cast<size_t>(a.unit_diagonal) << 3 |
           static_cast<size_t>(a.full_matrices) << 4 | static_cast<size_t>(a.compute_uv) << 5;
  }
  size_t operator()(const ir::CollectiveAttrs& a) const {
    return static_cast<size_t>(a.kind) * 131 + static_cast<size_t>(a.reduce) * 17 + static_cast<size_t>(a.root) * 7 +
           static_cast<size_t>(a.world_size);
  }
  size_t operator()(const ir::FftAttrs& a) const { return HashInts(a.lengths) * 4 + static_cast<size_t>(a.type); }
  size_t operator()(const ir::AttentionAttrs& a) const {
    return std::hash<double>{}(a.scale) * 31 + std::hash<double>{}(a.masked_value) * 2 + static_cast<size_t>(a.causal);
  }
};

size_t HashInstruction(const ir::Instruction& instr) {
  size_t seed = static_cast<size_t>(instr.op);
  for (int operand : instr.operands) HashCombine(seed, std::hash<int>{}(operand));
  HashCombine(seed, shapes::Hash(instr.shape));
  HashCombine(seed, instr.attrs.index());
  HashCombine(seed, std::visit(AttrsHasher{}, instr.attrs));
  return seed;
}

// Equal instructions compute equal values (every op is pure); the location
// is a debugging aid and does not take part.
bool SameComputation(const ir::Instruction& a, const ir::Instruction& b) {
  return a.op == b.op && a.operands == b.operands && a.shape == b.shape && a.attrs == b.attrs;
}

}  // namespace

bool EliminateCommonSubexpressions(ir::Function& fn) {
  // hash -> ids in the rebuilt function with that hash.
  std::unordered_map<size_t, std::vector<int>> seen;
  seen.reserve(fn.instructions.size());
  return passes::Rewrite(fn, [&](const ir::Function& built, ir::Instruction& instr) {
    // Each collective is one exchange with the other processes, which count
    // theirs: two equal ones stay two.
    if (instr.op == ir::OpType::kCollective) return Action::Keep();
    std::vector<int>& bucket = seen[HashInstruction(instr)];
    for (int candidate : bucket) {
      if (SameComputation(passes::Def(built, candidate), instr)) return Action::Replace(candidate);
    }
    bucket.push_back(static_cast<int>(built.instructions.size()));
    return Action::Keep();
  });
}

}  // namespace kiln::backends::cpu
