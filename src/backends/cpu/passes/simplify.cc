// Copyright 2026 The Kiln Authors.
// Algebraic simplification: exact identities only (see SimplifyAlgebra in
// passes.h for the list and why x + 0.0 is not one of them).
#include <cmath>
#include <cstring>
#include <optional>
#include <unordered_map>
#include <vector>

#include "src/backends/cpu/passes.h"
#include "src/backends/cpu/passes/rewrite.h"

namespace kiln::backends::cpu {

namespace {

using passes::Action;
using passes::Def;

// The value every element of a constant operand has, looked up through
// Reshapes and BroadcastInDims (which only repeat or rearrange elements).
// Each constant is scanned once per pass: ids of the function being rebuilt
// are stable while it grows.
class SplatFinder {
 public:
  std::optional<double> Value(const ir::Function& built, int id) {
    while (Def(built, id).op == ir::OpType::kReshape || Def(built, id).op == ir::OpType::kBroadcastInDim) {
      id = Def(built, id).operands[0];
    }
    if (Def(built, id).op != ir::OpType::kConstant) return std::nullopt;
    auto [it, inserted] = cache_.try_emplace(id);
    if (inserted) it->second = Scan(Def(built, id));
    return it->second;
  }

 private:
  // The common value as a double (exact for 0, 1 and -0.0 in every dtype),
  // or nothing if elements differ, the constant is empty, Bool or complex
  // (whose identities, with signed zeros in two parts, are left alone).
  static std::optional<double> Scan(const ir::Instruction& constant) {
    const dtypes::DType dtype = constant.shape.DType();
    if (dtype == dtypes::Bool || dtypes::IsComplex(dtype) || constant.shape.Size() == 0) return std::nullopt;
    const std::vector<std::byte>& bytes = passes::ConstantBytes(constant);
    const size_t width = dtypes::SizeOf(dtype);
    if (bytes.size() != static_cast<size_t>(constant.shape.ByteSize())) return std::nullopt;
    for (size_t offset = width; offset < bytes.size(); offset += width) {
      if (std::memcmp(bytes.data(), bytes.data() + offset, width) != 0) return std::nullopt;
    }
    return DispatchDType(dtype, [&](auto zero) -> double {
      using T = decltype(zero);
      T first;
      std::memcpy(&first, bytes.data(), sizeof(T));
      if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) {
        return static_cast<double>(static_cast<float>(first));
      } else {
        return static_cast<double>(first);
      }
    });
  }

  std::unordered_map<int, std::optional<double>> cache_;
};

// x + c == x for all x: c = 0 for integers; for floats only c = -0.0, since
// (-0.0) + (+0.0) is +0.0.
bool IsAdditiveIdentity(std::optional<double> c, dtypes::DType dtype) {
  return c && *c == 0 && (!dtypes::IsFloat(dtype) || std::signbit(*c));
}

// x - c == x for all x: c = 0 for integers; for floats c = +0.0 (x - (+0.0)
// is x + (-0.0)).
bool IsSubtractiveIdentity(std::optional<double> c, dtypes::DType dtype) {
  return c && *c == 0 && (!dtypes::IsFloat(dtype) || !std::signbit(*c));
}

bool IsOne(std::optional<double> c) { return c && *c == 1; }

// Replaces `instr` by `id` when shapes agree (they always should: the
// replaced value must be interchangeable with the instruction's).
Action ReplaceBy(const ir::Function& built, const ir::Instruction& instr, int id) {
  return Def(built, id).shape == instr.shape ? Action::Replace(id) : Action::Keep();
}

Action SimplifyArithmetic(const ir::Function& built, const ir::Instruction& instr, SplatFinder& splats) {
  const dtypes::DType dtype = instr.shape.DType();
  if (dtype == dtypes::Bool) return Action::Keep();
  const int a = instr.operands[0], b = instr.operands[1];
  switch (instr.op) {
    case ir::OpType::kAdd:
      if (IsAdditiveIdentity(splats.Value(built, b), dtype)) return ReplaceBy(built, instr, a);
      if (IsAdditiveIdentity(splats.Value(built, a), dtype)) return ReplaceBy(built, instr, b);
      break;
    case ir::OpType::kSub:
      if (IsSubtractiveIdentity(splats.Value(built, b), dtype)) return ReplaceBy(built, instr, a);
      break;
    case ir::OpType::kMul:
      if (IsOne(splats.Value(built, b))) return ReplaceBy(built, instr, a);
      if (IsOne(splats.Value(built, a))) return ReplaceBy(built, instr, b);
      break;
    case ir::OpType::kDiv:
      if (IsOne(splats.Value(built, b))) return ReplaceBy(built, instr, a);
      break;
    default: break;
  }
  return Action::Keep();
}

bool IsIdentityPermutation(const std::vector<int64_t>& axes) {
  for (size_t i = 0; i < axes.size(); ++i) {
    if (axes[i] != static_cast<int64_t>(i)) return false;
  }
  return true;
}

// Reshape(Reshape(x)) -> Reshape(x); a Reshape to its operand's shape -> x.
Action SimplifyReshape(const ir::Function& built, ir::Instruction& instr) {
  const ir::Instruction& operand = Def(built, instr.operands[0]);
  if (operand.shape == instr.shape) return Action::Replace(instr.operands[0]);
  if (operand.op != ir::OpType::kReshape) return Action::Keep();
  instr.operands[0] = operand.operands[0];
  return Def(built, instr.operands[0]).shape == instr.shape ? Action::Replace(instr.operands[0])
                                                            : Action::Modified();
}

// Output axis i of a Transpose is operand axis axes[i], so Transpose(p2) of
// Transpose(p1) of x takes x's axis p1[p2[i]].
Action SimplifyTranspose(const ir::Function& built, ir::Instruction& instr) {
  auto& axes = std::get<ir::AxesAttrs>(instr.attrs).axes;
  const ir::Instruction& operand = Def(built, instr.operands[0]);
  bool modified = false;
  if (operand.op == ir::OpType::kTranspose) {
    const auto& inner = ir::Attr<ir::AxesAttrs>(operand).axes;
    if (inner.size() != axes.size()) return Action::Keep();  // malformed hand-built IR
    for (int64_t& axis : axes) axis = inner[static_cast<size_t>(axis)];
    instr.operands[0] = operand.operands[0];
    modified = true;
  }
  if (IsIdentityPermutation(axes) && Def(built, instr.operands[0]).shape == instr.shape) {
    return Action::Replace(instr.operands[0]);
  }
  // A permutation that only moves axes of size 1 keeps every element where
  // it is: a Reshape, which the CPU runs as an alias instead of a copy.
  // (The composed attention's scores, [batch, kv_heads, q, group, k] to
  // [batch, kv_heads, group, q, k] with one query head per kv head, are
  // such a move.)
  const std::vector<int64_t>& dims = Def(built, instr.operands[0]).shape.Dims();
  int64_t last_moved = -1;
  bool in_order = dims.size() == axes.size();
  for (size_t i = 0; in_order && i < axes.size(); ++i) {
    if (axes[i] < 0 || axes[i] >= static_cast<int64_t>(dims.size())) return Action::Keep();  // malformed IR
    if (dims[static_cast<size_t>(axes[i])] == 1) continue;
    in_order = axes[i] > last_moved;
    last_moved = axes[i];
  }
  if (in_order) {
    instr.op = ir::OpType::kReshape;
    instr.attrs = ir::NoAttrs{};
    return Action::Modified();
  }
  return modified ? Action::Modified() : Action::Keep();
}

// Operand axis i of a BroadcastInDim maps to output axis axes[i], so an
// outer (a2) of an inner (a1) broadcast maps x's axis i to a2[a1[i]]; the
// composition is strictly increasing and each x dimension is 1 or the final
// one, so it is a valid BroadcastInDim.
Action SimplifyBroadcast(const ir::Function& built, ir::Instruction& instr) {
  const ir::Instruction& operand = Def(built, instr.operands[0]);
  auto& axes = std::get<ir::AxesAttrs>(instr.attrs).axes;
  if (operand.shape == instr.shape && IsIdentityPermutation(axes)) return Action::Replace(instr.operands[0]);
  if (operand.op != ir::OpType::kBroadcastInDim) return Action::Keep();
  std::vector<int64_t> composed;
  composed.reserve(ir::Attr<ir::AxesAttrs>(operand).axes.size());
  for (int64_t axis : ir::Attr<ir::AxesAttrs>(operand).axes) composed.push_back(axes[static_cast<size_t>(axis)]);
  axes = std::move(composed);
  instr.operands[0] = operand.operands[0];
  return Def(built, instr.operands[0]).shape == instr.shape ? Action::Replace(instr.operands[0])
                                                            : Action::Modified();
}

Action Simplify(const ir::Function& built, ir::Instruction& instr, SplatFinder& splats) {
  switch (instr.op) {
    case ir::OpType::kAdd:
    case ir::OpType::kSub:
    case ir::OpType::kMul:
    case ir::OpType::kDiv: return SimplifyArithmetic(built, instr, splats);
    case ir::OpType::kNeg: {
      const ir::Instruction& operand = Def(built, instr.operands[0]);
      return operand.op == ir::OpType::kNeg ? ReplaceBy(built, instr, operand.operands[0]) : Action::Keep();
    }
    case ir::OpType::kConvertDType: return ReplaceBy(built, instr, instr.operands[0]);
    case ir::OpType::kReshape: return SimplifyReshape(built, instr);
    case ir::OpType::kTranspose: return SimplifyTranspose(built, instr);
    case ir::OpType::kBroadcastInDim: return SimplifyBroadcast(built, instr);
    default: return Action::Keep();
  }
}

// Transpose(DotGeneral(a, b)) whose permutation swaps the lhs-free and
// rhs-free axes (batch axes in place) is DotGeneral(b, a): the Transpose
// becomes that dot, and the original dot, used only by it, is left for DCE.
// Autodiff makes these for every dense layer (the kernel gradient comes out
// as [out, in] and is transposed to [in, out]); the MLP's two large ones
// cost 10% of its train step.
bool FoldTransposesIntoDots(ir::Function& fn) {
  std::vector<int> uses(fn.instructions.size(), 0);
  for (const ir::Instruction& instr : fn.instructions) {
    for (int o : instr.operands) ++uses[static_cast<size_t>(o)];
  }
  for (int o : fn.outputs) ++uses[static_cast<size_t>(o)];
  bool changed = false;
  for (ir::Instruction& instr : fn.instructions) {
    if (instr.op != ir::OpType::kTranspose) continue;
    const ir::Instruction& dot = Def(fn, instr.operands[0]);
    if (dot.op != ir::OpType::kDotGeneral || uses[static_cast<size_t>(instr.operands[0])] != 1) continue;
    const auto& d = ir::Attr<ir::DotGeneralAttrs>(dot);
    const auto batch = static_cast<int64_t>(d.lhs_batch.size());
    const int64_t lhs_free =
        Def(fn, dot.operands[0]).shape.Rank() - batch - static_cast<int64_t>(d.lhs_contracting.size());
    const int64_t rhs_free =
        Def(fn, dot.operands[1]).shape.Rank() - batch - static_cast<int64_t>(d.rhs_contracting.size());
    std::vector<int64_t> swapped;  // DotGeneral(b, a)'s axes in terms of DotGeneral(a, b)'s
    for (int64_t i = 0; i < batch; ++i) swapped.push_back(i);
    for (int64_t i = 0; i < rhs_free; ++i) swapped.push_back(batch + lhs_free + i);
    for (int64_t i = 0; i < lhs_free; ++i) swapped.push_back(batch + i);
    if (ir::Attr<ir::AxesAttrs>(instr).axes != swapped || IsIdentityPermutation(swapped)) continue;
    ir::DotGeneralAttrs attrs{d.rhs_batch, d.rhs_contracting, d.lhs_batch, d.lhs_contracting, d.precision};
    instr.operands = {dot.operands[1], dot.operands[0]};
    instr.op = ir::OpType::kDotGeneral;
    instr.attrs = std::move(attrs);
    changed = true;
  }
  return changed;
}

}  // namespace

bool SimplifyAlgebra(ir::Function& fn) {
  SplatFinder splats;
  bool changed = passes::Rewrite(fn, [&](const ir::Function& built, ir::Instruction& instr) {
    return Simplify(built, instr, splats);
  });
  changed |= FoldTransposesIntoDots(fn);
  return changed;
}

}  // namespace kiln::backends::cpu
