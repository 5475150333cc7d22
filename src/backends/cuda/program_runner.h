// Copyright 2026 The Kiln Authors.
// Running a Program (codegen.h) step by step: which values each step reads,
// when each value dies, which input an elementwise kernel may overwrite in
// place, and how many blocks a kernel is launched with. A template over the
// device interface (the CUDA backend's), kept apart from the CUDA runtime so
// its logic reads on its own; it runs in CI on the emulator's runtime
// (emulator.h).
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

/// The values a step reads (kernel inputs, product and solver operands, the
/// aliased value).
inline std::vector<int> StepReads(const Program& p, const Step& s) {
  switch (s.kind) {
    case StepKind::kKernel:
    case StepKind::kUpdate: return p.kernels[static_cast<size_t>(s.index)].inputs;
    case StepKind::kMatmul: {
      const MatmulSpec& m = p.matmuls[static_cast<size_t>(s.index)];
      if (m.bias >= 0) return {m.lhs, m.rhs, m.bias};
      return {m.lhs, m.rhs};
    }
    case StepKind::kConv: {
      const ConvSpec& c = p.convs[static_cast<size_t>(s.index)];
      return {c.a, c.b};
    }
    case StepKind::kLibrary: {  // reads (and overwrites) its own value too
      std::vector<int> reads = {s.value};
      const LibraryCall& m = p.library_calls[static_cast<size_t>(s.index)];
      reads.insert(reads.end(), m.inputs.begin(), m.inputs.end());
      return reads;
    }
    case StepKind::kAlias:
    case StepKind::kTupleElement: return {p.function.instructions[static_cast<size_t>(s.value)].operands[0]};
    case StepKind::kWhile:
    case StepKind::kIf: return p.function.instructions[static_cast<size_t>(s.value)].operands;
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

/// Per instruction id: a program's constants, each uploaded once by
/// `upload(const std::vector<std::byte>& data)`, which returns its memory.
template <class Mem, class Upload>
std::vector<std::shared_ptr<Mem>> UploadConstants(const Program& p, Upload upload) {
  std::vector<std::shared_ptr<Mem>> constants(p.function.instructions.size());
  for (const Step& s : p.steps) {
    if (s.kind != StepKind::kConstant) continue;
    const auto v = static_cast<size_t>(s.value);
    constants[v] = upload(*ir::Attr<ir::ConstantAttrs>(p.function.instructions[v]).data);
  }
  return constants;
}

/// The sub-functions a program's While and If instructions run, each listed
/// once: an executable compiles each into an executable of its own.
inline std::vector<int> ControlFlowSubfunctions(const Program& p) {
  std::vector<int> subs;
  for (const ir::Instruction& in : p.function.instructions) {
    if (in.op != ir::OpType::kWhile && in.op != ir::OpType::kIf) continue;
    for (int sub : ir::Attr<ir::ControlFlowAttrs>(in).subfunctions) {
      if (std::find(subs.begin(), subs.end(), sub) == subs.end()) subs.push_back(sub);
    }
  }
  return subs;
}

/// Blocks of kBlockSize threads a kernel is launched with: enough for its
/// work items, at most a few per multiprocessor (the kernels loop over the
/// rest with a grid stride), and at most as many as the multiprocessors hold
/// at once where `resident_per_sm` (the occupancy of this kernel, 0 where
/// unknown) says so: the blocks of a grid-stride loop share the work
/// equally, so blocks that wait for a second wave would double the time.
inline unsigned LaunchBlocks(const KernelSpec& k, int sm_count, int resident_per_sm = 0) {
  int64_t per_sm = k.block_per_item ? 32 : 8;
  if (resident_per_sm > 0) per_sm = std::min<int64_t>(per_sm, resident_per_sm);
  const int64_t max_blocks = int64_t{sm_count} * per_sm;
  const int64_t wanted = k.block_per_item ? k.work_items : (k.work_items + kBlockSize - 1) / kBlockSize;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(wanted, max_blocks)));
}

/// Operand k of `in`, read at step `si`: taken over (donated to a
/// sub-function, which may overwrite it) when it dies there, is writable
/// and is read once by `in`; shared otherwise.
template <class Mem>
std::shared_ptr<Mem> TakeOperand(const ir::Instruction& in, size_t k, int si, const std::vector<int>& last_use,
                                 std::vector<std::shared_ptr<Mem>>& values, const std::vector<bool>& writable,
                                 bool* donated) {
  const auto o = static_cast<size_t>(in.operands[k]);
  *donated = last_use[o] == si && writable[o] && std::count(in.operands.begin(), in.operands.end(), in.operands[k]) == 1;
  return *donated ? std::move(values[o]) : values[o];
}

/// Drops the references to `in`'s operands that die at step `si` before a
/// sub-function runs, so what it was handed (shared or donated) is not also
/// kept alive here for the whole loop.
template <class Mem>
void ReleaseDyingOperands(const ir::Instruction& in, int si, const std::vector<int>& last_use,
                          std::vector<std::shared_ptr<Mem>>& values) {
  for (int o : in.operands) {
    if (last_use[static_cast<size_t>(o)] == si) values[static_cast<size_t>(o)].reset();
  }
}

/// A While step, as the CPU backend runs it: cond and body run as
/// sub-functions (Device::RunSubfunction); cond's Bool is read on the host
/// each trip (Device::ReadPredicate). The carry moves from body run to body
/// run, donated so the body can update it in place; captures are shared.
template <class Mem, class Device>
std::vector<std::shared_ptr<Mem>> RunWhile(const ir::Instruction& in, int si, const std::vector<int>& last_use,
                                           std::vector<std::shared_ptr<Mem>>& values,
                                           const std::vector<bool>& writable, Device& device) {
  const auto& a = ir::Attr<ir::ControlFlowAttrs>(in);
  const auto n = static_cast<size_t>(a.num_carried);
  std::vector<std::shared_ptr<Mem>> carry(n), cond_captures, body_captures;
  std::vector<bool> donate(n + a.captures[1].size(), false);
  for (size_t k = 0; k < n; ++k) {
    bool donated = false;
    carry[k] = TakeOperand(in, k, si, last_use, values, writable, &donated);
    donate[k] = donated;
  }
  for (int64_t c : a.captures[0]) cond_captures.push_back(values[static_cast<size_t>(in.operands[static_cast<size_t>(c)])]);
  for (int64_t c : a.captures[1]) body_captures.push_back(values[static_cast<size_t>(in.operands[static_cast<size_t>(c)])]);
  ReleaseDyingOperands(in, si, last_use, values);
  for (int64_t trips = 0;; ++trips) {
    std::vector<std::shared_ptr<Mem>> args = carry;
    args.insert(args.end(), cond_captures.begin(), cond_captures.end());
    const std::vector<std::shared_ptr<Mem>> pred = device.RunSubfunction(a.subfunctions[0], std::move(args), {});
    if (!device.ReadPredicate(*pred[0])) break;
    if (a.max_trip_count >= 0 && trips == a.max_trip_count) {
      Throw("While (" + in.location + "): the loop did not end within its max_trip_count of " +
            std::to_string(a.max_trip_count) + " iterations");
    }
    args = std::move(carry);
    args.insert(args.end(), body_captures.begin(), body_captures.end());
    carry = device.RunSubfunction(a.subfunctions[1], std::move(args), donate);
    // The body's results are its own (or shared with a capture or a
    // constant, which RunProgram's use-count check protects).
    std::fill(donate.begin(), donate.begin() + static_cast<std::ptrdiff_t>(n), true);
  }
  return carry;
}

/// An If step: the predicate read on the host, then the chosen branch run on
/// its captures (donated where they die here).
template <class Mem, class Device>
std::vector<std::shared_ptr<Mem>> RunIf(const ir::Instruction& in, int si, const std::vector<int>& last_use,
                                        std::vector<std::shared_ptr<Mem>>& values, const std::vector<bool>& writable,
                                        Device& device) {
  const auto& a = ir::Attr<ir::ControlFlowAttrs>(in);
  const size_t branch = device.ReadPredicate(*values[static_cast<size_t>(in.operands[0])]) ? 0 : 1;
  std::vector<std::shared_ptr<Mem>> args;
  std::vector<bool> donate;
  for (int64_t c : a.captures[branch]) {
    bool donated = false;
    args.push_back(TakeOperand(in, static_cast<size_t>(c), si, last_use, values, writable, &donated));
    donate.push_back(donated);
  }
  ReleaseDyingOperands(in, si, last_use, values);
  return device.RunSubfunction(a.subfunctions[branch], std::move(args), donate);
}

/// Runs a program's steps. `Mem` is a block of device memory with `ptr` and
/// `bytes`; `Device` provides
///   std::shared_ptr<Mem> Allocate(size_t bytes);
///   void Launch(int kernel_index, const KernelSpec&, void** pointers);  // inputs..., output
///   // `bias`: the spec's row vector (nullptr when it has none).
///   void Matmul(int matmul_index, const void* lhs, const void* rhs, const void* bias, void* out);
///   // ConvSpec `conv_index`: out (allocated here) from its values a and b.
///   void Conv(int conv_index, const void* a, const void* b, void* out);
///   // LibraryCall `call_index` in place on `x`, reading the spec's
///   // `inputs` and writing its `outputs` (allocated here).
///   void CallLibrary(int call_index, void* x, void* const* inputs, void* const* outputs);
///   // While and If: runs sub-function `index` of the program's function
///   // (RunWithArguments on its own program); reads a Bool scalar.
///   std::vector<std::shared_ptr<Mem>> RunSubfunction(int index, std::vector<std::shared_ptr<Mem>> args,
///                                                    const std::vector<bool>& donate);
///   bool ReadPredicate(const Mem&);
/// and, optionally (a profile's timing: called around every step),
///   void StepBegins(int step);
///   void StepEnds(int step);
/// `values` holds the parameters (by instruction id) on entry, `writable`
/// marks donated ones; `constants` the uploaded constants. Values are
/// released after their last use; an elementwise kernel writes over an
/// input it reads only at its own index when that input dies there and
/// nobody else holds it. Returns the outputs' memory.
/// `preferred` (empty, or per instruction id): the value whose buffer an
/// elementwise kernel writing that instruction takes first when it may
/// (PairDonatedOutputs).
template <class Mem, class Device>
std::vector<std::shared_ptr<Mem>> RunProgram(const Program& p, const std::vector<int>& last_use,
                                              const std::vector<std::shared_ptr<Mem>>& constants,
                                              std::vector<std::shared_ptr<Mem>> values, std::vector<bool> writable,
                                              Device& device, const std::vector<int>& preferred = {}) {
  const auto& instrs = p.function.instructions;
  std::vector<std::vector<std::shared_ptr<Mem>>> tuples(instrs.size());  // While's and If's results
  std::vector<void*> pointers;
  for (size_t si = 0; si < p.steps.size(); ++si) {
    const Step& step = p.steps[si];
    const auto v = static_cast<size_t>(step.value);
    const ir::Instruction& in = instrs[v];
    const auto bytes = static_cast<size_t>(in.shape.ByteSize());
    if constexpr (requires { device.StepBegins(0); }) device.StepBegins(static_cast<int>(si));
    switch (step.kind) {
      case StepKind::kParameter: break;
      case StepKind::kConstant: values[v] = constants[v]; break;
      case StepKind::kAlias: values[v] = values[static_cast<size_t>(in.operands[0])]; break;
      case StepKind::kKernel:
      case StepKind::kUpdate: {
        const KernelSpec& k = p.kernels[static_cast<size_t>(step.index)];
        if (step.kind == StepKind::kKernel) {
          // Input i's buffer, if the output may take it over.
          auto reusable = [&](size_t i) {
            const auto id = static_cast<size_t>(k.inputs[i]);
            const std::shared_ptr<Mem>& m = values[id];
            return k.elementwise_input[i] && writable[id] && last_use[id] == static_cast<int>(si) && m &&
                   m.use_count() == 1 && m->bytes == bytes && bytes > 0;
          };
          const int want = preferred.empty() ? -1 : preferred[v];  // the preferred input first, then any
          for (size_t i = 0; want >= 0 && i < k.inputs.size() && !values[v]; ++i) {
            if (k.inputs[i] == want && reusable(i)) values[v] = values[static_cast<size_t>(want)];
          }
          for (size_t i = 0; i < k.inputs.size() && !values[v]; ++i) {
            if (reusable(i)) values[v] = values[static_cast<size_t>(k.inputs[i])];
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
                      m.bias >= 0 ? values[static_cast<size_t>(m.bias)]->ptr : nullptr, values[v]->ptr);
        break;
      }
      case StepKind::kConv: {
        values[v] = device.Allocate(bytes);
        writable[v] = true;
        const ConvSpec& c = p.convs[static_cast<size_t>(step.index)];
        device.Conv(step.index, values[static_cast<size_t>(c.a)]->ptr, values[static_cast<size_t>(c.b)]->ptr,
                    values[v]->ptr);
        break;
      }
      case StepKind::kLibrary: {
        const LibraryCall& s = p.library_calls[static_cast<size_t>(step.index)];
        pointers.clear();
        for (int i : s.inputs) pointers.push_back(values[static_cast<size_t>(i)]->ptr);
        for (int o : s.outputs) {
          const auto id = static_cast<size_t>(o);
          values[id] = device.Allocate(static_cast<size_t>(p.function.instructions[id].shape.ByteSize()));
          writable[id] = true;
          pointers.push_back(values[id]->ptr);
        }
        device.CallLibrary(step.index, values[v]->ptr, pointers.data(), pointers.data() + s.inputs.size());
        break;
      }
      case StepKind::kWhile: tuples[v] = RunWhile(in, static_cast<int>(si), last_use, values, writable, device); break;
      case StepKind::kIf: tuples[v] = RunIf(in, static_cast<int>(si), last_use, values, writable, device); break;
      case StepKind::kTupleElement: {
        // The element's last reader takes it over; then it may be updated in
        // place when nobody else holds it (a caller's argument that a
        // branch passed through is held by the caller's buffer too).
        std::shared_ptr<Mem>& element = tuples[static_cast<size_t>(in.operands[0])][static_cast<size_t>(step.index)];
        values[v] = step.take ? std::move(element) : element;
        writable[v] = step.take;
        break;
      }
    }
    if constexpr (requires { device.StepEnds(0); }) device.StepEnds(static_cast<int>(si));
    for (int r : StepReads(p, step)) {
      if (last_use[static_cast<size_t>(r)] == static_cast<int>(si)) {
        values[static_cast<size_t>(r)].reset();
        tuples[static_cast<size_t>(r)].clear();
      }
    }
  }
  std::vector<std::shared_ptr<Mem>> outputs;
  for (int o : p.function.outputs) outputs.push_back(values[static_cast<size_t>(o)]);
  return outputs;
}

/// Per instruction id: the donated parameter whose buffer the output it is
/// should take (-1: none). Donated parameters and outputs of the same shape
/// are paired in order from the last of each, as a While's carries and a
/// context's updated variables (listed after the other outputs, in the order
/// of their inputs) line up, so each value is updated in its own buffer and
/// its address stays the same from call to call (what graph_replay.h's
/// recordings are keyed by).
inline std::vector<int> PairDonatedOutputs(const ir::Function& fn, const std::vector<bool>& donate) {
  std::vector<int> preferred(fn.instructions.size(), -1);
  size_t o = fn.outputs.size();  // outputs before this one are still free
  for (size_t i = std::min(donate.size(), fn.parameters.size()); i-- > 0;) {
    if (!donate[i]) continue;
    const shapes::Shape& shape = fn.instructions[static_cast<size_t>(fn.parameters[i])].shape;
    for (size_t j = o; j-- > 0;) {
      const auto out = static_cast<size_t>(fn.outputs[j]);
      if (fn.instructions[out].shape != shape) continue;
      if (preferred[out] < 0) preferred[out] = fn.parameters[i];
      o = j;
      break;
    }
  }
  return preferred;
}

/// RunProgram on arguments given in parameter order (a sub-function's run),
/// each donated where `donate` says so (empty: none).
template <class Mem, class Device>
std::vector<std::shared_ptr<Mem>> RunWithArguments(const Program& p, const std::vector<int>& last_use,
                                                    const std::vector<std::shared_ptr<Mem>>& constants,
                                                    std::vector<std::shared_ptr<Mem>> args,
                                                    const std::vector<bool>& donate, Device& device) {
  const size_t n = p.function.instructions.size();
  std::vector<std::shared_ptr<Mem>> values(n);
  std::vector<bool> writable(n, false);
  for (size_t i = 0; i < args.size(); ++i) {
    const auto id = static_cast<size_t>(p.function.parameters[i]);
    values[id] = std::move(args[i]);
    writable[id] = !donate.empty() && donate[i];
  }
  std::vector<int> preferred;
  if (std::find(donate.begin(), donate.end(), true) != donate.end()) preferred = PairDonatedOutputs(p.function, donate);
  return RunProgram(p, last_use, constants, std::move(values), std::move(writable), device, preferred);
}

/// Runs a program step by step (RunWithArguments); graph_replay.h's
/// Replays runs recordings of it instead.
struct StepByStep {
  template <class Mem, class Device>
  std::vector<std::shared_ptr<Mem>> Run(const Program& p, const std::vector<int>& last_use,
                                        const std::vector<std::shared_ptr<Mem>>& constants,
                                        std::vector<std::shared_ptr<Mem>> args, const std::vector<bool>& donate,
                                        Device& device) {
    return RunWithArguments(p, last_use, constants, std::move(args), donate, device);
  }
};

/// Executable::Execute on RunProgram: checks `args` against the program's
/// parameters (their count, their shapes, and that `device.MemOf(buffer)`
/// finds this device's memory in each; `who` and `fn_name` name the backend
/// and the function in the errors), runs the steps with `runner` (its
/// `Run` as StepByStep's), and wraps each output's memory with
/// `device.Wrap(shape, memory)`. Besides RunProgram's interface, `Device`
/// provides
///   std::shared_ptr<Mem> MemOf(const Buffer&);  // nullptr: not this device's
///   BufferPtr Wrap(const shapes::Shape&, std::shared_ptr<Mem>);
template <class Mem, class Device, class Runner = StepByStep>
std::vector<BufferPtr> ExecuteProgram(const std::string& who, const std::string& fn_name, const Program& p,
                                      const std::vector<int>& last_use,
                                      const std::vector<std::shared_ptr<Mem>>& constants, std::vector<BufferPtr> args,
                                      const std::vector<bool>& donate, Device& device, Runner&& runner = {}) {
  const auto& instrs = p.function.instructions;
  if (args.size() != p.function.parameters.size()) {
    Throw(who + ": Execute got " + std::to_string(args.size()) + " arguments for " +
          std::to_string(p.function.parameters.size()) + " parameters of \"" + fn_name + "\"");
  }
  std::vector<std::shared_ptr<Mem>> memory(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    if (!args[i] || args[i]->Shape() != instrs[static_cast<size_t>(p.function.parameters[i])].shape) {
      Throw(who + ": argument " + std::to_string(i) + " of \"" + fn_name + "\" has the wrong shape");
    }
    memory[i] = device.MemOf(*args[i]);
    if (!memory[i]) {
      Throw(who + ": argument " + std::to_string(i) + " of \"" + fn_name + "\" is not a buffer of this device");
    }
  }
  args.clear();  // so donated memory can be uniquely ours
  std::vector<std::shared_ptr<Mem>> out_mem = runner.Run(p, last_use, constants, std::move(memory), donate, device);
  std::vector<BufferPtr> outputs;
  for (size_t i = 0; i < out_mem.size(); ++i) {
    outputs.push_back(device.Wrap(instrs[static_cast<size_t>(p.function.outputs[i])].shape, std::move(out_mem[i])));
  }
  return outputs;
}

}  // namespace kiln::backends::cuda
