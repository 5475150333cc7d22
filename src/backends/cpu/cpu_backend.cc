// Copyright 2026 The Kiln Authors.
// The CPU backend: buffers in host memory, and an executable that runs a
// function's instructions in order with kernels prepared at compile time.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <sstream>

#include "kiln/backends/backend.h"
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

namespace {

class CpuBuffer final : public Buffer {
 public:
  CpuBuffer(Backend* owner, const shapes::Shape& shape, std::shared_ptr<HostStorage> storage)
      : Buffer(owner, shape), storage_(std::move(storage)) {}
  void CopyToHost(void* dst) const override {
    if (Shape().ByteSize() > 0) std::memcpy(dst, storage_->Data(), static_cast<size_t>(Shape().ByteSize()));
  }
  std::shared_ptr<HostStorage> SharedHostStorage() const override { return storage_; }
  const std::shared_ptr<HostStorage>& Storage() const { return storage_; }

 private:
  std::shared_ptr<HostStorage> storage_;
};

// How many leading operands the output may overwrite in place when they die
// here. Elementwise kernels read each input element only to write the same
// output element, so any operand of the output's byte size will do; the
// update ops (DynamicUpdateSlice, Scatter*) copy operand 0 into the output
// first and skip that copy when they are the same buffer.
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
    case ir::OpType::kDynamicUpdateSlice:
    case ir::OpType::kScatterSum:
    case ir::OpType::kScatterMax:
    case ir::OpType::kScatterMin:
    case ir::OpType::kScatterUpdate: return 1;
    default: return 0;
  }
}

// Reshape and a same-width Bitcast leave the bytes as they are.
bool IsAlias(const ir::Instruction& in) { return in.op == ir::OpType::kReshape || in.op == ir::OpType::kBitcast; }

class CpuExecutable final : public Executable {
 public:
  CpuExecutable(Backend* backend, std::shared_ptr<const ir::Function> fn) : backend_(backend), fn_(std::move(fn)) {
    const auto& instrs = fn_->instructions;
    const KernelTable& table = Kernels();
    steps_.resize(instrs.size());
    last_use_.assign(instrs.size(), -1);
    for (size_t id = 0; id < instrs.size(); ++id) {
      const ir::Instruction& in = instrs[id];
      for (int o : in.operands) last_use_[o] = static_cast<int>(id);
      if (in.op == ir::OpType::kParameter || in.op == ir::OpType::kConstant || IsAlias(in)) continue;
      KernelFactory factory = table[static_cast<size_t>(in.op)];
      if (factory == nullptr) {
        Throw("backend \"cpu\" does not implement op " + std::string(ir::OpName(in.op)) + " (" + in.location + ")");
      }
      steps_[id] = factory(*fn_, in);
    }
    // Outputs stay alive to the end.
    for (int o : fn_->outputs) last_use_[o] = static_cast<int>(instrs.size());
    // Constants: allocated once, shared by every execution.
    constants_.resize(instrs.size());
    for (size_t id = 0; id < instrs.size(); ++id) {
      if (instrs[id].op != ir::OpType::kConstant) continue;
      const auto& data = ir::Attr<ir::ConstantAttrs>(instrs[id]).data;
      auto storage = HostStorage::Allocate(data->size());
      if (!data->empty()) std::memcpy(storage->Data(), data->data(), data->size());
      constants_[id] = std::move(storage);
    }
  }

  const ir::Function& Function() const override { return *fn_; }

  std::vector<BufferPtr> Execute(std::vector<BufferPtr> args, const std::vector<bool>& donate) override {
    const auto& instrs = fn_->instructions;
    if (args.size() != fn_->parameters.size()) {
      Throw("cpu: Execute got " + std::to_string(args.size()) + " arguments for " +
            std::to_string(fn_->parameters.size()) + " parameters of \"" + fn_->name + "\"");
    }
    std::vector<std::shared_ptr<HostStorage>> values(instrs.size());
    std::vector<bool> writable(instrs.size(), false);  // may be overwritten in place
    for (size_t i = 0; i < args.size(); ++i) {
      const int id = fn_->parameters[i];
      if (!args[i] || args[i]->Shape() != instrs[id].shape) {
        Throw("cpu: argument " + std::to_string(i) + " of \"" + fn_->name + "\" has the wrong shape");
      }
      auto* cpu = dynamic_cast<CpuBuffer*>(args[i].get());
      if (cpu == nullptr) Throw("cpu: argument " + std::to_string(i) + " is not a CPU buffer");
      values[id] = cpu->Storage();
      // A donated buffer may be reused once no one else references it.
      writable[id] = !donate.empty() && donate[i];
    }
    args.clear();  // release our references so donated storage can be uniquely owned

    const void* inputs[16];
    std::vector<const void*> many_inputs;
    for (size_t id = 0; id < instrs.size(); ++id) {
      const ir::Instruction& in = instrs[id];
      if (in.op == ir::OpType::kParameter) continue;
      if (in.op == ir::OpType::kConstant) {
        values[id] = constants_[id];
        continue;
      }
      if (IsAlias(in)) {  // same bytes, new shape: share the storage
        values[id] = values[in.operands[0]];
        writable[id] = false;
        if (last_use_[in.operands[0]] == static_cast<int>(id)) values[in.operands[0]].reset();
        continue;
      }
      const void** in_ptrs = inputs;
      if (in.operands.size() > 16) {
        many_inputs.resize(in.operands.size());
        in_ptrs = many_inputs.data();
      }
      for (size_t k = 0; k < in.operands.size(); ++k) in_ptrs[k] = values[in.operands[k]]->Data();

      std::shared_ptr<HostStorage> out;
      const auto bytes = static_cast<size_t>(in.shape.ByteSize());
      const size_t reusable = InPlaceOperands(in);
      for (size_t k = 0; k < reusable && !out; ++k) {
        const int o = in.operands[k];
        auto& candidate = values[o];
        // Update ops read their other operands while writing: they must not
        // be the same value.
        const bool also_read = reusable < in.operands.size() &&
                               std::count(in.operands.begin(), in.operands.end(), o) > 1;
        if (last_use_[o] == static_cast<int>(id) && writable[o] && !also_read && candidate.use_count() == 1 &&
            candidate->Size() == bytes) {
          out = candidate;
        }
      }
      if (!out) out = HostStorage::Allocate(bytes);
      steps_[id](in_ptrs, out->Data());
      values[id] = std::move(out);
      writable[id] = true;
      // Free operands whose last use was this instruction.
      for (int o : in.operands) {
        if (last_use_[o] == static_cast<int>(id)) values[o].reset();
      }
    }

    std::vector<BufferPtr> outputs;
    outputs.reserve(fn_->outputs.size());
    for (int o : fn_->outputs) outputs.push_back(std::make_shared<CpuBuffer>(backend_, instrs[o].shape, values[o]));
    return outputs;
  }

 private:
  Backend* backend_;
  std::shared_ptr<const ir::Function> fn_;
  std::vector<Kernel> steps_;
  std::vector<int> last_use_;
  std::vector<std::shared_ptr<HostStorage>> constants_;
};

class CpuBackend final : public Backend {
 public:
  CpuBackend() {
    const KernelTable& table = Kernels();
    for (int op = 0; op < ir::kNumOpTypes; ++op) caps_.ops[op] = table[op] != nullptr;
    caps_.ops[static_cast<size_t>(ir::OpType::kParameter)] = true;
    caps_.ops[static_cast<size_t>(ir::OpType::kConstant)] = true;
    caps_.ops[static_cast<size_t>(ir::OpType::kReshape)] = true;
    caps_.ops[static_cast<size_t>(ir::OpType::kBitcast)] = true;
    for (dtypes::DType d : dtypes::kAll) caps_.dtypes[static_cast<size_t>(d)] = true;
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
    return std::make_shared<CpuBuffer>(this, shape, std::move(storage));
  }

  BufferPtr BufferFromHostStorage(const shapes::Shape& shape, std::shared_ptr<HostStorage> storage) override {
    return std::make_shared<CpuBuffer>(this, shape, std::move(storage));
  }

  std::unique_ptr<Executable> Compile(std::shared_ptr<const ir::Function> fn) override {
    if (!fn) Throw("cpu: Compile of a null function");
    fn->Validate();
    return std::make_unique<CpuExecutable>(this, std::move(fn));
  }

 private:
  Capabilities caps_;
};

}  // namespace

void RegisterCpuBackend() {
  Register(Registration{"cpu", 10, [] { return true; }, [] { return std::make_shared<CpuBackend>(); }});
}

}  // namespace kiln::backends::cpu
