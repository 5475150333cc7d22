// Copyright 2026 The Kiln Authors.
// Constant folding with the CPU backend's own kernels.
#include <cstring>
#include <memory>
#include <unordered_map>
#include <vector>

#include "kiln/backends/backend.h"
#include "src/backends/cpu/kernels.h"
#include "src/backends/cpu/denormals.h"
#include "src/backends/cpu/passes.h"
#include "src/backends/cpu/passes/rewrite.h"

namespace kiln::backends::cpu {

namespace {

using passes::Action;
using passes::Def;
using Bytes = std::shared_ptr<const std::vector<std::byte>>;

bool IsConstant(const ir::Function& fn, int id) { return Def(fn, id).op == ir::OpType::kConstant; }

// Whether `instr` is worth folding and allowed to be: a small output computed
// from constants only. Iota has no operands; folding a small one lets its
// constant users fold too.
bool Foldable(const ir::Function& built, const ir::Instruction& instr) {
  if (instr.shape.Size() > kMaxFoldedElements) return false;
  switch (instr.op) {
    case ir::OpType::kParameter:
    case ir::OpType::kConstant:
    case ir::OpType::kRNGBitGenerator:
    case ir::OpType::kCollective: return false;  // talks to the other processes at run time
    case ir::OpType::kIota: return true;
    default: break;
  }
  if (instr.operands.empty()) return false;
  for (int operand : instr.operands) {
    if (!IsConstant(built, operand)) return false;
  }
  return true;
}

// A copy of `bytes` in 64-byte aligned memory, as kernels expect.
std::shared_ptr<HostStorage> AlignedCopy(const std::vector<std::byte>& bytes) {
  auto storage = HostStorage::Allocate(bytes.size());
  if (!bytes.empty()) std::memcpy(storage->Data(), bytes.data(), bytes.size());
  return storage;
}

// Runs `instr`'s kernel on its constant operands: a function of just those
// constants and the instruction is handed to the kernel factory (never to
// OptimizeFunction). Returns null if the backend has no kernel for it or the
// factory rejects it; the executable will then report the error as usual.
Bytes EvaluateWithKernel(const ir::Function& built, const ir::Instruction& instr) {
  const KernelFactory factory = Kernels()[static_cast<size_t>(instr.op)];
  if (factory == nullptr) return nullptr;
  ir::Function mini;
  mini.name = "constant_folding";
  mini.subfunctions = built.subfunctions;
  ir::Instruction computed = instr;
  std::unordered_map<int, int> mini_id;  // operand id in `built` -> id in `mini`
  std::vector<std::shared_ptr<HostStorage>> inputs;
  std::vector<const void*> input_ptrs;
  for (int& operand : computed.operands) {
    auto [it, inserted] = mini_id.try_emplace(operand, static_cast<int>(mini.instructions.size()));
    if (inserted) {
      mini.instructions.push_back(Def(built, operand));
      inputs.push_back(AlignedCopy(passes::ConstantBytes(mini.instructions.back())));
    }
    input_ptrs.push_back(inputs[static_cast<size_t>(it->second)]->Data());
    operand = it->second;
  }
  mini.instructions.push_back(std::move(computed));
  mini.outputs = {static_cast<int>(mini.instructions.size()) - 1};
  const auto byte_size = static_cast<size_t>(instr.shape.ByteSize());
  auto output = HostStorage::Allocate(byte_size);
  try {
    const Kernel kernel = factory(mini, mini.instructions.back());
    // As in an execution, so a folded value equals the computed one.
    const ScopedFlushDenormals flush_denormals;
    FlushDenormalsOnWorkerThreads();
    kernel(input_ptrs.data(), output->Data());
  } catch (const kiln::Error&) {
    return nullptr;
  }
  const auto* begin = static_cast<const std::byte*>(output->Data());
  return std::make_shared<const std::vector<std::byte>>(begin, begin + byte_size);
}

// The value of a foldable instruction, or null if it cannot be computed here.
Bytes Evaluate(const ir::Function& built, const ir::Instruction& instr) {
  if (instr.op == ir::OpType::kReshape || instr.op == ir::OpType::kBitcast) {
    // The executor aliases these: the bytes stay as they are, so the new
    // constant shares its operand's data.
    const ir::Instruction& operand = Def(built, instr.operands[0]);
    if (operand.shape.ByteSize() != instr.shape.ByteSize()) return nullptr;
    return ir::Attr<ir::ConstantAttrs>(operand).data;
  }
  return EvaluateWithKernel(built, instr);
}

}  // namespace

bool FoldConstants(ir::Function& fn) {
  return passes::Rewrite(fn, [](const ir::Function& built, ir::Instruction& instr) {
    if (!Foldable(built, instr)) return Action::Keep();
    Bytes value = Evaluate(built, instr);
    if (!value) return Action::Keep();
    instr = passes::MakeConstant(instr.shape, std::move(value), std::move(instr.location));
    return Action::Modified();
  });
}

}  // namespace kiln::backends::cpu
