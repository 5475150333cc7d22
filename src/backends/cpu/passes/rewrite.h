// Copyright 2026 The Kiln Authors.
// Shared machinery of the CPU graph passes: a forward rewrite that rebuilds a
// function instruction by instruction, letting a pass replace an instruction
// by an earlier value or modify it, and helpers to inspect constants.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <vector>

#include "kiln/ir/function.h"

namespace kiln::backends::cpu::passes {

/// What a pass decides for one instruction.
struct Action {
  enum class Kind { kKeep, kModified, kReplace };
  Kind kind = Kind::kKeep;
  int replacement = -1;  // kReplace: an id of the function being built

  /// Append the instruction unchanged.
  static Action Keep() { return {}; }
  /// Append the instruction, which the pass changed in place.
  static Action Modified() { return {Kind::kModified, -1}; }
  /// Drop the instruction; its users use value `id` (same shape) instead.
  static Action Replace(int id) { return {Kind::kReplace, id}; }
};

/// Decides the fate of `instr`, whose operands already refer to `built` (the
/// function rebuilt so far, where the instruction would get id
/// built.instructions.size()). May modify `instr` (then returns Modified).
using Visitor = std::function<Action(const ir::Function& built, ir::Instruction& instr)>;

/// Rebuilds `fn` in topological order, calling `visit` on every instruction
/// except Parameters (which are always kept), and remapping operands,
/// parameters and outputs. Returns whether anything was replaced or modified.
bool Rewrite(ir::Function& fn, const Visitor& visit);

/// The instruction `id` of `fn`.
inline const ir::Instruction& Def(const ir::Function& fn, int id) { return fn.instructions[static_cast<size_t>(id)]; }

/// Combines a hash value into `seed` (boost::hash_combine's mixing).
inline void HashCombine(size_t& seed, size_t value) { seed ^= value + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2); }

/// A Constant's bytes (never null: an absent data pointer reads as empty).
const std::vector<std::byte>& ConstantBytes(const ir::Instruction& constant);

/// A new Constant instruction of `shape` holding `bytes`, at `location`.
ir::Instruction MakeConstant(const shapes::Shape& shape, std::shared_ptr<const std::vector<std::byte>> bytes,
                             std::string location);

}  // namespace kiln::backends::cpu::passes
