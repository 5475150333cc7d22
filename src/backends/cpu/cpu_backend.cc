// Copyright 2026 The Kiln Authors.
// The CPU backend: buffers in host memory, and an executable that runs a
// function (after the graph passes of passes.h) as a sequence of steps —
// single instructions or fused elementwise groups (fusion.h) — with kernels
// prepared at compile time.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "kiln/backends/backend.h"
#include "src/backends/cpu/denormals.h"
#include "src/backends/cpu/fusion.h"
#include "src/backends/cpu/kernels.h"
#include "src/backends/cpu/passes.h"
#include "src/backends/cpu/sort.h"
#include "src/backends/step_profile.h"
#include "src/ir/sort_prefix.h"

namespace kiln::backends::cpu {

namespace {

// A buffer keeps its backend alive: tensors recognise their buffers by the
// owner's address, which a later backend could otherwise be given.
class CpuBuffer final : public Buffer {
 public:
  CpuBuffer(std::shared_ptr<Backend> owner, const shapes::Shape& shape, std::shared_ptr<HostStorage> storage)
      : Buffer(owner.get(), shape), owner_(std::move(owner)), storage_(std::move(storage)) {}
  void CopyToHost(void* dst) const override {
    if (Shape().ByteSize() > 0) std::memcpy(dst, storage_->Data(), static_cast<size_t>(Shape().ByteSize()));
  }
  std::shared_ptr<HostStorage> SharedHostStorage() const override { return storage_; }
  const std::shared_ptr<HostStorage>& Storage() const { return storage_; }

 private:
  std::shared_ptr<Backend> owner_;
  std::shared_ptr<HostStorage> storage_;
};

// How many leading operands the output may overwrite in place when they die
// here. Elementwise kernels read each input element only to write the same
// output element, so any operand of the output's byte size will do; the
// update ops (DynamicUpdateSlice, Scatter*) and the AllReduce and Broadcast
// collectives copy operand 0 into the output first and skip that copy when
// they are the same buffer.
size_t InPlaceOperands(const ir::Instruction& in) {
  switch (ir::CategoryOf(in.op)) {
    case ir::OpCategory::kUnary:
    case ir::OpCategory::kBinary:
    case ir::OpCategory::kComparison: return in.operands.size();
    default: break;
  }
  switch (in.op) {
    case ir::OpType::kWhere:
    case ir::OpType::kClamp: return in.operands.size();
    case ir::OpType::kCholesky:  // factors its operand's bytes in place
    case ir::OpType::kDynamicUpdateSlice:
    case ir::OpType::kScatterSum:
    case ir::OpType::kScatterMax:
    case ir::OpType::kScatterMin:
    case ir::OpType::kScatterUpdate: return 1;
    case ir::OpType::kCollective: {  // AllReduce and Broadcast work on their output in place
      const auto kind = ir::Attr<ir::CollectiveAttrs>(in).kind;
      return kind == ir::CollectiveKind::kAllReduce || kind == ir::CollectiveKind::kBroadcast ? 1 : 0;
    }
    default: return 0;
  }
}

// Reshape and a same-width Bitcast leave the bytes as they are.
bool IsAlias(const ir::Instruction& in) { return in.op == ir::OpType::kReshape || in.op == ir::OpType::kBitcast; }

class CpuExecutable;
std::unique_ptr<CpuExecutable> CompileForCpu(std::shared_ptr<Backend> backend, std::shared_ptr<const ir::Function> fn);

class CpuExecutable final : public Executable {
 public:
  CpuExecutable(std::shared_ptr<Backend> backend, std::shared_ptr<const ir::Function> fn)
      : backend_(std::move(backend)), fn_(std::move(fn)) {
    const auto& instrs = fn_->instructions;
    CompileSubfunctions();
    const FusionPlan plan = PlanFusion(*fn_, FusionEnabled());
    BuildKernels(plan);
    for (const FusionGroup& group : plan.groups) {
      fused_.push_back({group, FusedKernel(*fn_, group)});
      max_inputs_ = std::max(max_inputs_, group.inputs.size());
      max_outputs_ = std::max(max_outputs_, group.outputs.size());
    }
    for (const ScheduleEntry& entry : plan.schedule) {
      if (entry.is_group) {
        steps_.push_back({StepKind::kFused, entry.index});
        continue;
      }
      const ir::Instruction& in = instrs[static_cast<size_t>(entry.index)];
      const StepKind kind = in.op == ir::OpType::kConstant          ? StepKind::kConstant
                            : IsAlias(in)                            ? StepKind::kAlias
                            : in.op == ir::OpType::kWhile            ? StepKind::kWhile
                            : in.op == ir::OpType::kIf               ? StepKind::kIf
                            : in.op == ir::OpType::kSort             ? StepKind::kSort
                            : in.op == ir::OpType::kGetTupleElement ? StepKind::kTupleElement
                            : ir::IsMultiOutputKernel(in.op)         ? StepKind::kMultiOutput
                                                                     : StepKind::kKernel;
      steps_.push_back({kind, entry.index});
    }
    ComputeLastUses();
    if (ProfilingEnabled("KILN_CPU_PROFILE")) {
      profile_ = std::make_unique<StepProfile>("cpu", "KILN_CPU_PROFILE", fn_->name, StepLabels());
    }
    // Constants: allocated once, shared by every execution.
    constants_.resize(instrs.size());
    for (const Step& step : steps_) {
      if (step.kind != StepKind::kConstant) continue;
      const auto& data = ir::Attr<ir::ConstantAttrs>(instrs[static_cast<size_t>(step.index)]).data;
      auto storage = HostStorage::Allocate(data->size());
      if (!data->empty()) std::memcpy(storage->Data(), data->data(), data->size());
      constants_[static_cast<size_t>(step.index)] = std::move(storage);
    }
  }

  const ir::Function& Function() const override { return *fn_; }

  std::vector<BufferPtr> Execute(std::vector<BufferPtr> args, const std::vector<bool>& donate) override {
    const auto& instrs = fn_->instructions;
    if (args.size() != fn_->parameters.size()) {
      Throw("cpu: Execute got " + std::to_string(args.size()) + " arguments for " +
            std::to_string(fn_->parameters.size()) + " parameters of \"" + fn_->name + "\"");
    }
    std::vector<std::shared_ptr<HostStorage>> storage(args.size());
    for (size_t i = 0; i < args.size(); ++i) {
      const int id = fn_->parameters[i];
      if (!args[i] || args[i]->Shape() != instrs[id].shape) {
        Throw("cpu: argument " + std::to_string(i) + " of \"" + fn_->name + "\" has the wrong shape");
      }
      auto* cpu = dynamic_cast<CpuBuffer*>(args[i].get());
      if (cpu == nullptr) Throw("cpu: argument " + std::to_string(i) + " is not a CPU buffer");
      storage[i] = cpu->Storage();
    }
    args.clear();  // release our references so donated storage can be uniquely owned
    // Subnormals flush to zero while kernels run (see denormals.h).
    const ScopedFlushDenormals flush_denormals;
    FlushDenormalsOnWorkerThreads();
    std::vector<std::shared_ptr<HostStorage>> results = Run(std::move(storage), donate);
    std::vector<BufferPtr> outputs;
    outputs.reserve(results.size());
    for (size_t i = 0; i < results.size(); ++i) {
      outputs.push_back(std::make_shared<CpuBuffer>(backend_, instrs[fn_->outputs[i]].shape, std::move(results[i])));
    }
    return outputs;
  }

  // Runs the function on host storage (the arguments' shapes already
  // checked); a donated argument may be overwritten once no one else holds
  // it. Control-flow steps call their sub-functions' executables this way.
  std::vector<std::shared_ptr<HostStorage>> Run(std::vector<std::shared_ptr<HostStorage>> args,
                                                const std::vector<bool>& donate) const {
    const auto& instrs = fn_->instructions;
    const StateLease lease;
    State& state = lease.Get();
    state.values.resize(instrs.size());
    state.writable.assign(instrs.size(), false);
    if (has_control_flow_) state.tuples.resize(instrs.size());
    for (size_t i = 0; i < args.size(); ++i) {
      const int id = fn_->parameters[i];
      state.values[id] = std::move(args[i]);
      // A donated buffer may be reused once no one else references it.
      state.writable[id] = !donate.empty() && donate[i];
    }
    args.clear();
    state.inputs.resize(max_inputs_);
    state.outputs.resize(max_outputs_);
    state.output_storage.resize(max_outputs_);

    std::vector<double> step_seconds(profile_ ? steps_.size() : 0);
    for (size_t s = 0; s < steps_.size(); ++s) {
      const Step& step = steps_[s];
      const auto id = static_cast<size_t>(step.index);
      const auto start = profile_ ? std::chrono::steady_clock::now() : std::chrono::steady_clock::time_point{};
      switch (step.kind) {
        case StepKind::kConstant: state.values[id] = constants_[id]; break;
        case StepKind::kAlias: {  // same bytes, new shape: share the storage
          const auto operand = static_cast<size_t>(instrs[id].operands[0]);
          state.values[id] = state.values[operand];
          state.writable[id] = false;
          if (last_use_[operand] == static_cast<int>(s)) state.values[operand].reset();
          break;
        }
        case StepKind::kKernel: RunKernel(static_cast<int>(s), instrs[id], step.index, state); break;
        case StepKind::kFused: RunFused(static_cast<int>(s), fused_[id], state); break;
        case StepKind::kWhile: RunWhile(static_cast<int>(s), instrs[id], step.index, state); break;
        case StepKind::kIf: RunIf(static_cast<int>(s), instrs[id], step.index, state); break;
        case StepKind::kSort: RunSort(static_cast<int>(s), instrs[id], step.index, state); break;
        case StepKind::kTupleElement: RunTupleElement(static_cast<int>(s), instrs[id], step.index, state); break;
        case StepKind::kMultiOutput: RunMultiOutput(static_cast<int>(s), instrs[id], step.index, state); break;
      }
      if (profile_) step_seconds[s] = SecondsSince(start);
    }
    if (profile_) profile_->Add(step_seconds);

    std::vector<std::shared_ptr<HostStorage>> outputs;
    outputs.reserve(fn_->outputs.size());
    for (int o : fn_->outputs) outputs.push_back(state.values[o]);
    return outputs;
  }

 private:
  // What a step does: bind a constant, alias its operand's bytes (Reshape,
  // Bitcast), run one instruction's kernel, run a fusion group, run a
  // control-flow op's sub-functions, read an element of a tuple, or run a
  // factorization (several outputs).
  enum class StepKind : uint8_t { kConstant, kAlias, kKernel, kFused, kWhile, kIf, kSort, kTupleElement, kMultiOutput };
  struct Step {
    StepKind kind;
    int index;  // instruction id; for kFused, index into fused_
  };
  struct Fused {
    FusionGroup group;
    FusedKernel kernel;
  };
  // One execution's values (nullptr: not computed yet, or freed) and the
  // per-step pointer tables.
  struct State {
    std::vector<std::shared_ptr<HostStorage>> values;
    std::vector<std::vector<std::shared_ptr<HostStorage>>> tuples;  // per control-flow instruction
    std::vector<bool> writable;  // may be overwritten in place
    std::vector<const void*> inputs;
    std::vector<void*> outputs;
    std::vector<std::shared_ptr<HostStorage>> output_storage;
  };

  // A State for one execution, taken from this thread's spares and returned
  // to them emptied (no storage stays referenced), so executions reuse the
  // vectors' memory: allocating them was a fifth of a tiny graph's call. A
  // stack of spares, not one, in case a kernel runs another executable.
  class StateLease {
   public:
    StateLease() {
      std::vector<std::unique_ptr<State>>& spares = Spares();
      if (spares.empty()) {
        state_ = std::make_unique<State>();
      } else {
        state_ = std::move(spares.back());
        spares.pop_back();
      }
    }
    ~StateLease() {
      state_->values.clear();
      state_->tuples.clear();
      state_->output_storage.clear();
      Spares().push_back(std::move(state_));
    }
    StateLease(const StateLease&) = delete;
    StateLease& operator=(const StateLease&) = delete;
    State& Get() const { return *state_; }

   private:
    static std::vector<std::unique_ptr<State>>& Spares() {
      thread_local std::vector<std::unique_ptr<State>> spares;
      return spares;
    }
    std::unique_ptr<State> state_;
  };

  // The kernel of every instruction outside groups, dead ones included, so an
  // unsupported op or dtype is reported at compile time as before.
  void BuildKernels(const FusionPlan& plan) {
    const auto& instrs = fn_->instructions;
    const KernelTable& table = Kernels();
    kernels_.resize(instrs.size());
    for (size_t id = 0; id < instrs.size(); ++id) {
      const ir::Instruction& in = instrs[id];
      max_inputs_ = std::max(max_inputs_, in.operands.size());
      if (in.op == ir::OpType::kParameter || in.op == ir::OpType::kConstant || IsAlias(in)) continue;
      if (ir::IsMultiOutputKernel(in.op)) {
        multi_output_kernels_.resize(instrs.size());
        multi_output_kernels_[id] = in.op == ir::OpType::kAttentionGrad ? MakeAttentionGradKernel(*fn_, in)
                                                                          : MakeFactorizationKernel(*fn_, in);
        continue;
      }
      if (ir::ProducesTuple(in.op) || in.op == ir::OpType::kGetTupleElement) continue;  // run by this class
      if (plan.group_of[id] >= 0) continue;  // FusedKernel compiles it
      KernelFactory factory = table[static_cast<size_t>(in.op)];
      if (factory == nullptr) {
        Throw("backend \"cpu\" does not implement op " + std::string(ir::OpName(in.op)) + " (" + in.location + ")");
      }
      kernels_[id] = factory(*fn_, in);
    }
  }

  // What each step runs, for the profile: op, shape and caller, or a fusion
  // group's ops and output shape.
  std::vector<std::string> StepLabels() const {
    std::vector<std::string> labels;
    for (const Step& step : steps_) {
      std::ostringstream os;
      if (step.kind == StepKind::kFused) {
        const FusionGroup& group = fused_[static_cast<size_t>(step.index)].group;
        os << "fused " << group.members.size() << " ops ->";
        for (int o : group.outputs) os << " " << fn_->instructions[static_cast<size_t>(o)].shape;
        os << ":";
        for (int m : group.members) os << " " << ir::OpName(fn_->instructions[static_cast<size_t>(m)].op);
      } else {
        const ir::Instruction& in = fn_->instructions[static_cast<size_t>(step.index)];
        os << ir::OpName(in.op) << " -> " << in.shape;
        for (size_t k = 0; k < in.operands.size(); ++k) {
          os << (k == 0 ? " of " : ", ") << fn_->instructions[static_cast<size_t>(in.operands[k])].shape;
        }
        os << " (" << in.location << ")";
      }
      labels.push_back(os.str());
    }
    return labels;
  }

  // last_use_[v]: the last step reading value v (steps_.size() for the
  // function's outputs, which stay alive to the end; -1 if none).
  void ComputeLastUses() {
    last_use_.assign(fn_->instructions.size(), -1);
    for (size_t s = 0; s < steps_.size(); ++s) {
      const Step& step = steps_[s];
      const std::vector<int>& reads = step.kind == StepKind::kFused
                                          ? fused_[static_cast<size_t>(step.index)].group.inputs
                                          : fn_->instructions[static_cast<size_t>(step.index)].operands;
      for (int v : reads) last_use_[v] = static_cast<int>(s);
    }
    for (int o : fn_->outputs) last_use_[o] = static_cast<int>(steps_.size());
  }

  // Runs instruction `id` at step `s`, overwriting a dying operand in place
  // where the op allows it, and frees the operands whose last use this is.
  void RunKernel(int s, const ir::Instruction& in, int id, State& state) const {
    auto& values = state.values;
    const void** in_ptrs = state.inputs.data();
    for (size_t k = 0; k < in.operands.size(); ++k) in_ptrs[k] = values[in.operands[k]]->Data();

    std::shared_ptr<HostStorage> out;
    const auto bytes = static_cast<size_t>(in.shape.ByteSize());
    const size_t reusable = InPlaceOperands(in);
    for (size_t k = 0; k < reusable && !out; ++k) {
      const int o = in.operands[k];
      auto& candidate = values[o];
      // Update ops read their other operands while writing: they must not
      // be the same value.
      const bool also_read =
          reusable < in.operands.size() && std::count(in.operands.begin(), in.operands.end(), o) > 1;
      if (last_use_[o] == s && state.writable[o] && !also_read && candidate.use_count() == 1 &&
          candidate->Size() == bytes) {
        out = candidate;
      }
    }
    if (!out) out = HostStorage::Allocate(bytes);
    kernels_[static_cast<size_t>(id)](in_ptrs, out->Data());
    values[id] = std::move(out);
    state.writable[id] = true;
    for (int o : in.operands) {
      if (last_use_[o] == s) values[o].reset();
    }
  }

  // Runs a fusion group at step `s`: each output overwrites a dying input in
  // place where the group allows it, else gets a new buffer.
  void RunFused(int s, const Fused& fused, State& state) const {
    auto& values = state.values;
    const FusionGroup& group = fused.group;
    for (size_t i = 0; i < group.inputs.size(); ++i) state.inputs[i] = values[group.inputs[i]]->Data();
    for (size_t k = 0; k < group.outputs.size(); ++k) {
      const auto bytes = static_cast<size_t>(fn_->instructions[group.outputs[k]].shape.ByteSize());
      std::shared_ptr<HostStorage> out;
      for (int i : fused.kernel.InPlaceInputs(k)) {
        const int v = group.inputs[i];
        auto& candidate = values[v];  // empty if an earlier output took it
        if (candidate && last_use_[v] == s && state.writable[v] && candidate.use_count() == 1 &&
            candidate->Size() == bytes) {
          out = std::move(candidate);
          break;
        }
      }
      if (!out) out = HostStorage::Allocate(bytes);
      state.outputs[k] = out->Data();
      state.output_storage[k] = std::move(out);
    }
    fused.kernel.Run(state.inputs.data(), state.outputs.data());
    for (size_t k = 0; k < group.outputs.size(); ++k) {
      values[group.outputs[k]] = std::move(state.output_storage[k]);
      state.writable[group.outputs[k]] = true;
    }
    for (int v : group.inputs) {
      if (last_use_[v] == s) values[v].reset();
    }
  }

  // Compiles the sub-functions control-flow instructions call (each once),
  // with the same passes as a top-level function; counts how many
  // GetTupleElements read each tuple element, so a single reader can take it.
  void CompileSubfunctions() {
    const auto& instrs = fn_->instructions;
    subexecutables_.resize(fn_->subfunctions.size());
    tuple_readers_.resize(instrs.size());
    sort_prefix_.resize(instrs.size());
    for (size_t id = 0; id < instrs.size(); ++id) {
      const ir::Instruction& in = instrs[id];
      if (in.op == ir::OpType::kGetTupleElement) {
        auto& readers = tuple_readers_[static_cast<size_t>(in.operands[0])];
        const auto index = static_cast<size_t>(ir::Attr<ir::TupleIndexAttrs>(in).index);
        if (readers.size() <= index) readers.resize(index + 1, 0);
        ++readers[index];
      }
      if (!ir::ProducesTuple(in.op)) continue;
      has_control_flow_ = true;
      if (ir::IsMultiOutputKernel(in.op)) continue;  // no sub-function
      std::vector<int> subs;
      if (in.op == ir::OpType::kSort) {
        sort_prefix_[id] = ir::SortPrefixNeeded(*fn_, static_cast<int>(id));
        const int comparator = ir::Attr<ir::SortAttrs>(in).comparator;
        if (comparator >= 0) subs.push_back(comparator);
      } else {
        subs = ir::Attr<ir::ControlFlowAttrs>(in).subfunctions;
      }
      for (int sub : subs) {
        auto& exe = subexecutables_[static_cast<size_t>(sub)];
        if (!exe) exe = CompileForCpu(backend_, fn_->subfunctions[static_cast<size_t>(sub)]);
      }
    }
  }

  // Operand k of `in` at step s: taken over (the caller may overwrite it) when
  // it dies here, is writable and is not used twice by `in`; shared otherwise.
  std::shared_ptr<HostStorage> TakeOperand(int s, const ir::Instruction& in, size_t k, State& state,
                                           bool* writable) const {
    const int o = in.operands[k];
    const bool dying = last_use_[o] == s && state.writable[o] &&
                       std::count(in.operands.begin(), in.operands.end(), o) == 1;
    *writable = dying;
    return dying ? std::move(state.values[o]) : state.values[o];
  }

  void FreeDyingOperands(int s, const ir::Instruction& in, State& state) const {
    for (int o : in.operands) {
      if (last_use_[o] == s) state.values[o].reset();
    }
  }

  // While: the carry moves from body run to body run, donated so that the
  // body can update it in place; captured values are shared, never donated.
  void RunWhile(int s, const ir::Instruction& in, int id, State& state) const {
    const auto& a = ir::Attr<ir::ControlFlowAttrs>(in);
    const CpuExecutable& cond = *subexecutables_[static_cast<size_t>(a.subfunctions[0])];
    const CpuExecutable& body = *subexecutables_[static_cast<size_t>(a.subfunctions[1])];
    const auto n = static_cast<size_t>(a.num_carried);
    std::vector<std::shared_ptr<HostStorage>> carry(n);
    std::vector<bool> donate(n + a.captures[1].size(), false);
    for (size_t k = 0; k < n; ++k) {
      bool writable = false;
      carry[k] = TakeOperand(s, in, k, state, &writable);
      donate[k] = writable;
    }
    std::vector<std::shared_ptr<HostStorage>> cond_captures, body_captures;
    for (int64_t c : a.captures[0]) cond_captures.push_back(state.values[in.operands[static_cast<size_t>(c)]]);
    for (int64_t c : a.captures[1]) body_captures.push_back(state.values[in.operands[static_cast<size_t>(c)]]);
    FreeDyingOperands(s, in, state);
    for (int64_t trips = 0;; ++trips) {
      std::vector<std::shared_ptr<HostStorage>> args = carry;
      args.insert(args.end(), cond_captures.begin(), cond_captures.end());
      const std::vector<std::shared_ptr<HostStorage>> pred = cond.Run(std::move(args), {});
      if (*static_cast<const uint8_t*>(pred[0]->Data()) == 0) break;
      if (a.max_trip_count >= 0 && trips == a.max_trip_count) {
        Throw("While (" + in.location + "): the loop did not end within its max_trip_count of " +
              std::to_string(a.max_trip_count) + " iterations");
      }
      args = std::move(carry);
      args.insert(args.end(), body_captures.begin(), body_captures.end());
      carry = body.Run(std::move(args), donate);
      // The body's results are its own (or shared with a capture or a
      // constant, which Run's use-count check protects).
      std::fill(donate.begin(), donate.begin() + static_cast<long>(n), true);
    }
    state.tuples[static_cast<size_t>(id)] = std::move(carry);
  }

  // If: runs the chosen branch on its captures.
  void RunIf(int s, const ir::Instruction& in, int id, State& state) const {
    const auto& a = ir::Attr<ir::ControlFlowAttrs>(in);
    const bool pred = *static_cast<const uint8_t*>(state.values[in.operands[0]]->Data()) != 0;
    const size_t branch = pred ? 0 : 1;
    std::vector<std::shared_ptr<HostStorage>> args;
    std::vector<bool> donate;
    for (int64_t c : a.captures[branch]) {
      bool writable = false;
      args.push_back(TakeOperand(s, in, static_cast<size_t>(c), state, &writable));
      donate.push_back(writable);
    }
    FreeDyingOperands(s, in, state);
    const CpuExecutable& exe = *subexecutables_[static_cast<size_t>(a.subfunctions[branch])];
    state.tuples[static_cast<size_t>(id)] = exe.Run(std::move(args), donate);
  }

  // Sort: into new buffers; a comparator sub-function runs once per
  // comparison on scalar buffers refilled each time.
  void RunSort(int s, const ir::Instruction& in, int id, State& state) const {
    const auto& a = ir::Attr<ir::SortAttrs>(in);
    const size_t n = in.operands.size();
    std::vector<dtypes::DType> types;
    std::vector<const void*> inputs;
    std::vector<std::shared_ptr<HostStorage>> outputs;
    std::vector<void*> output_data;
    for (int o : in.operands) {
      const shapes::Shape& shape = fn_->instructions[static_cast<size_t>(o)].shape;
      types.push_back(shape.DType());
      inputs.push_back(state.values[o]->Data());
      outputs.push_back(HostStorage::Allocate(static_cast<size_t>(shape.ByteSize())));
      output_data.push_back(outputs.back()->Data());
    }
    const std::vector<int64_t>& dims = fn_->instructions[static_cast<size_t>(in.operands[0])].shape.Dims();
    if (a.comparator < 0) {
      SortAlongAxis(a, dims, types, inputs, output_data, nullptr, sort_prefix_[static_cast<size_t>(id)]);
    } else {
      const CpuExecutable& comparator = *subexecutables_[static_cast<size_t>(a.comparator)];
      std::vector<std::shared_ptr<HostStorage>> scalars;  // lhs_0, rhs_0, lhs_1, ...
      for (size_t i = 0; i < 2 * n; ++i) scalars.push_back(HostStorage::Allocate(dtypes::SizeOf(types[i / 2])));
      const ElementLess less = [&](const std::vector<const std::byte*>& lhs, const std::vector<const std::byte*>& rhs) {
        for (size_t i = 0; i < n; ++i) {
          std::memcpy(scalars[2 * i]->Data(), lhs[i], dtypes::SizeOf(types[i]));
          std::memcpy(scalars[2 * i + 1]->Data(), rhs[i], dtypes::SizeOf(types[i]));
        }
        return *static_cast<const uint8_t*>(comparator.Run(scalars, {})[0]->Data()) != 0;
      };
      SortAlongAxis(a, dims, types, inputs, output_data, &less, dims[static_cast<size_t>(a.axis)]);
    }
    FreeDyingOperands(s, in, state);
    state.tuples[static_cast<size_t>(id)] = std::move(outputs);
  }

  // A kernel with several outputs: they go to new buffers, read by
  // GetTupleElements.
  void RunMultiOutput(int s, const ir::Instruction& in, int id, State& state) const {
    std::vector<std::shared_ptr<HostStorage>> outputs;
    std::vector<void*> data;
    for (const shapes::Shape& shape : ir::TupleElementShapes(*fn_, in)) {
      outputs.push_back(HostStorage::Allocate(static_cast<size_t>(shape.ByteSize())));
      data.push_back(outputs.back()->Data());
    }
    std::vector<const void*> inputs;
    for (int o : in.operands) inputs.push_back(state.values[static_cast<size_t>(o)]->Data());
    multi_output_kernels_[static_cast<size_t>(id)](inputs.data(), data.data());
    FreeDyingOperands(s, in, state);
    state.tuples[static_cast<size_t>(id)] = std::move(outputs);
  }

  void RunTupleElement(int s, const ir::Instruction& in, int id, State& state) const {
    const auto tuple = static_cast<size_t>(in.operands[0]);
    const auto index = static_cast<size_t>(ir::Attr<ir::TupleIndexAttrs>(in).index);
    auto& element = state.tuples[tuple][index];
    state.values[static_cast<size_t>(id)] = tuple_readers_[tuple][index] == 1 ? std::move(element) : element;
    state.writable[static_cast<size_t>(id)] = true;  // Run's use-count check guards shared storage
    if (last_use_[tuple] == s) state.tuples[tuple].clear();
  }

  std::shared_ptr<Backend> backend_;  // alive while its executables are (CpuBuffer says why)
  std::shared_ptr<const ir::Function> fn_;
  std::vector<std::unique_ptr<CpuExecutable>> subexecutables_;  // per sub-function (null if unused)
  std::vector<std::vector<int>> tuple_readers_;  // per tuple instruction and element: GetTupleElement count
  std::vector<int64_t> sort_prefix_;  // per Sort instruction: see ir::SortPrefixNeeded
  bool has_control_flow_ = false;
  std::vector<Kernel> kernels_;  // per instruction outside groups
  std::vector<MultiOutputKernel> multi_output_kernels_;  // per IsMultiOutputKernel instruction (empty if none)
  std::vector<Fused> fused_;
  std::vector<Step> steps_;
  std::vector<int> last_use_;
  std::vector<std::shared_ptr<HostStorage>> constants_;
  size_t max_inputs_ = 0, max_outputs_ = 0;  // sizes of State's pointer tables
  std::unique_ptr<StepProfile> profile_;      // with KILN_CPU_PROFILE=1
};

class CpuBackend final : public Backend, public std::enable_shared_from_this<CpuBackend> {
 public:
  CpuBackend() {
    const KernelTable& table = Kernels();
    for (int op = 0; op < ir::kNumOpTypes; ++op) caps_.ops[op] = table[op] != nullptr;
    caps_.ops[static_cast<size_t>(ir::OpType::kParameter)] = true;
    caps_.ops[static_cast<size_t>(ir::OpType::kConstant)] = true;
    caps_.ops[static_cast<size_t>(ir::OpType::kReshape)] = true;
    caps_.ops[static_cast<size_t>(ir::OpType::kBitcast)] = true;
    caps_.ops[static_cast<size_t>(ir::OpType::kWhile)] = true;
    caps_.ops[static_cast<size_t>(ir::OpType::kIf)] = true;
    caps_.ops[static_cast<size_t>(ir::OpType::kGetTupleElement)] = true;
    caps_.ops[static_cast<size_t>(ir::OpType::kSort)] = true;
    for (int op = 0; op < ir::kNumOpTypes; ++op) {
      if (ir::IsMultiOutputKernel(static_cast<ir::OpType>(op))) caps_.ops[op] = true;
    }
    for (dtypes::DType d : dtypes::kAll) caps_.dtypes[static_cast<size_t>(d)] = true;
    // Measured (bench attention, gpt; 2-core Zen 4): the row-block kernel
    // runs causal self-attention forward 1.2x faster at 256 keys, 1.4x at
    // 512, 6.7x at 1024, 7x at 4096 (with 1/6 of the memory). In a training
    // step its gradient (AttentionGrad) recomputes the weights: at 128 keys
    // the char-GPT step is slower fused (2-core Zen 5: 254-262 ms against
    // 241-253 ms composed, whose products run at BFloat16 there); at 512 keys
    // forward and backward cost the same either way, at 1024 fused is 0.9x,
    // and the composed backward holds the weights.
    caps_.fused_attention_min_kv_length = 512;
  }

  std::string Name() const override { return "cpu"; }
  std::string Description() const override {
    std::ostringstream os;
    os << "CPU (" << omp_get_max_threads() << " OpenMP threads, oneDNN)";
    return os.str();
  }
  const Capabilities& GetCapabilities() const override { return caps_; }

  BufferPtr BufferFromHost(const shapes::Shape& shape, const void* data) override {
    auto storage = HostStorage::Allocate(static_cast<size_t>(shape.ByteSize()));
    if (shape.ByteSize() > 0) std::memcpy(storage->Data(), data, static_cast<size_t>(shape.ByteSize()));
    return std::make_shared<CpuBuffer>(shared_from_this(), shape, std::move(storage));
  }

  BufferPtr BufferFromHostStorage(const shapes::Shape& shape, std::shared_ptr<HostStorage> storage) override {
    return std::make_shared<CpuBuffer>(shared_from_this(), shape, std::move(storage));
  }

  std::unique_ptr<Executable> Compile(std::shared_ptr<const ir::Function> fn) override {
    if (!fn) Throw("cpu: Compile of a null function");
    fn->Validate();
    return CompileForCpu(shared_from_this(), std::move(fn));
  }

 private:
  Capabilities caps_;
};

// Simplify, fold, CSE and DCE before kernels are built (see passes.h); the
// executable compiles the sub-functions it calls the same way.
std::unique_ptr<CpuExecutable> CompileForCpu(std::shared_ptr<Backend> backend, std::shared_ptr<const ir::Function> fn) {
  if (OptimizationsEnabled()) fn = OptimizeFunction(std::move(fn));
  return std::make_unique<CpuExecutable>(std::move(backend), std::move(fn));
}

}  // namespace

void RegisterCpuBackend() {
  Register(Registration{"cpu", 10, [] { return true; }, [] { return std::make_shared<CpuBackend>(); }});
}

}  // namespace kiln::backends::cpu
