// Copyright 2026 The Kiln Authors.
// Running a Program (codegen.h) step by step: which values each step reads,
// when each value dies, which input an elementwise kernel may overwrite in
// place, and how many blocks a kernel is launched with. Device-neutral, so
// the CUDA backend and its host emulator (emulator.h) share one executor and
// the emulator's tests check the CUDA backend's buffer logic too.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kiln/backends/backend.h"
#include "kiln/core/error.h"
#include "src/backends/cuda/codegen.h"

namespace kiln::backends::cuda {

/// The values a step reads (kernel inputs, product operands, the aliased value).
inline std::vector<int> StepReads(const Program& p, const Step& s) {
  switch (s.kind) {
    case StepKind::kKernel:
    case StepKind::kUpdate: return p.kernels[static_cast<size_t>(s.index)].inputs;
    case StepKind::kMatmul: {
      const MatmulSpec& m = p.matmuls[static_cast<size_t>(s.index)];
      return {m.lhs, m.rhs};
    }
    case StepKind::kAlias: return {p.function.instructions[static_cast<size_t>(s.value)].operands[0]};
    default: return {};
  }
}

/// Per instruction id: the index of the last step reading it (-1 for none);
/// outputs live past the last step.
inline std::vector<int> LastUses(const Program& p) {
  std::vector<int> last(p.function.instructions.size(), -1);
  for (size_t si = 0; si < p.steps.size(); ++si) {
    for (int v : StepReads(p, p.steps[si])) last[static_cast<size_t>(v)] = static_cast<int>(si);
  }
  for (int o : p.function.outputs) last[static_cast<size_t>(o)] = static_cast<int>(p.steps.size());
  return last;
}

/// Blocks of kBlockSize threads a kernel is launched with: enough for its
/// work items, at most a few per multiprocessor (the kernels loop over the
/// rest with a grid stride).
inline unsigned LaunchBlocks(const KernelSpec& k, int sm_count) {
  const int64_t max_blocks = int64_t{sm_count} * (k.block_per_item ? 32 : 8);
  const int64_t wanted = k.block_per_item ? k.work_items : (k.work_items + kBlockSize - 1) / kBlockSize;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(wanted, max_blocks)));
}

/// Runs a program's steps. `Mem` is a block of device memory with `ptr` and
/// `bytes`; `Device` provides
///   std::shared_ptr<Mem> Allocate(size_t bytes);
///   void Launch(int kernel_index, const KernelSpec&, void** pointers);  // inputs..., output
///   void Matmul(int matmul_index, const void* lhs, const void* rhs, void* out);
/// `values` holds the parameters (by instruction id) on entry, `writable`
/// marks donated ones; `constants` the uploaded constants. Values are
/// released after their last use; an elementwise kernel writes over an
/// input it reads only at its own index when that input dies there and
/// nobody else holds it. Returns the outputs' memory.
template <class Mem, class Device>
std::vector<std::shared_ptr<Mem>> RunProgram(const Program& p, const std::vector<int>& last_use,
                                              const std::vector<std::shared_ptr<Mem>>& constants,
                                              std::vector<std::shared_ptr<Mem>> values, std::vector<bool> writable,
                                              Device& device) {
  const auto& instrs = p.function.instructions;
  std::vector<void*> pointers;
  for (size_t si = 0; si < p.steps.size(); ++si) {
    const Step& step = p.steps[si];
    const auto v = static_cast<size_t>(step.value);
    const ir::Instruction& in = instrs[v];
    const auto bytes = static_cast<size_t>(in.shape.ByteSize());
    switch (step.kind) {
      case StepKind::kParameter: break;
      case StepKind::kConstant: values[v] = constants[v]; break;
      case StepKind::kAlias: values[v] = values[static_cast<size_t>(in.operands[0])]; break;
      case StepKind::kKernel:
      case StepKind::kUpdate: {
        const KernelSpec& k = p.kernels[static_cast<size_t>(step.index)];
        if (step.kind == StepKind::kKernel) {
          for (size_t i = 0; i < k.inputs.size() && !values[v]; ++i) {
            const auto id = static_cast<size_t>(k.inputs[i]);
            if (!k.elementwise_input[i] || !writable[id] || last_use[id] != static_cast<int>(si)) continue;
            const std::shared_ptr<Mem>& m = values[id];
            if (m && m.use_count() == 1 && m->bytes == bytes && bytes > 0) values[v] = m;
          }
          if (!values[v]) values[v] = device.Allocate(bytes);
          writable[v] = true;
        }
        if (k.work_items == 0) break;
        pointers.clear();
        for (int id : k.inputs) pointers.push_back(values[static_cast<size_t>(id)]->ptr);
        pointers.push_back(values[v]->ptr);
        device.Launch(step.index, k, pointers.data());
        break;
      }
      case StepKind::kMatmul: {
        values[v] = device.Allocate(bytes);
        writable[v] = true;
        const MatmulSpec& m = p.matmuls[static_cast<size_t>(step.index)];
        device.Matmul(step.index, values[static_cast<size_t>(m.lhs)]->ptr, values[static_cast<size_t>(m.rhs)]->ptr,
                      values[v]->ptr);
        break;
      }
    }
    for (int r : StepReads(p, step)) {
      if (last_use[static_cast<size_t>(r)] == static_cast<int>(si)) values[static_cast<size_t>(r)].reset();
    }
  }
  std::vector<std::shared_ptr<Mem>> outputs;
  for (int o : p.function.outputs) outputs.push_back(values[static_cast<size_t>(o)]);
  return outputs;
}

/// Executable::Execute on RunProgram: checks `args` against the program's
/// parameters (their count, their shapes, and that `device.MemOf(buffer)`
/// finds this device's memory in each; `who` and `fn_name` name the backend
/// and the function in the errors), runs the steps, and wraps each output's
/// memory with `device.Wrap(shape, memory)`. Besides RunProgram's interface,
/// `Device` provides
///   std::shared_ptr<Mem> MemOf(const Buffer&);  // nullptr: not this device's
///   BufferPtr Wrap(const shapes::Shape&, std::shared_ptr<Mem>);
template <class Mem, class Device>
std::vector<BufferPtr> ExecuteProgram(const std::string& who, const std::string& fn_name, const Program& p,
                                      const std::vector<int>& last_use,
                                      const std::vector<std::shared_ptr<Mem>>& constants, std::vector<BufferPtr> args,
                                      const std::vector<bool>& donate, Device& device) {
  const auto& instrs = p.function.instructions;
  if (args.size() != p.function.parameters.size()) {
    Throw(who + ": Execute got " + std::to_string(args.size()) + " arguments for " +
          std::to_string(p.function.parameters.size()) + " parameters of \"" + fn_name + "\"");
  }
  std::vector<std::shared_ptr<Mem>> values(instrs.size());
  std::vector<bool> writable(instrs.size(), false);
  for (size_t i = 0; i < args.size(); ++i) {
    const auto id = static_cast<size_t>(p.function.parameters[i]);
    if (!args[i] || args[i]->Shape() != instrs[id].shape) {
      Throw(who + ": argument " + std::to_string(i) + " of \"" + fn_name + "\" has the wrong shape");
    }
    values[id] = device.MemOf(*args[i]);
    if (!values[id]) {
      Throw(who + ": argument " + std::to_string(i) + " of \"" + fn_name + "\" is not a buffer of this device");
    }
    writable[id] = !donate.empty() && donate[i];
  }
  args.clear();  // so donated memory can be uniquely ours
  std::vector<std::shared_ptr<Mem>> out_mem = RunProgram(p, last_use, constants, std::move(values), std::move(writable), device);
  std::vector<BufferPtr> outputs;
  for (size_t i = 0; i < out_mem.size(); ++i) {
    outputs.push_back(device.Wrap(instrs[static_cast<size_t>(p.function.outputs[i])].shape, std::move(out_mem[i])));
  }
  return outputs;
}

}  // namespace kiln::backends::cuda
