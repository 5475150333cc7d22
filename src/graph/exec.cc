// Copyright 2026 The Kiln Authors.
// ExecCore: traces, compiles and caches executables per input-shape signature.
#include "kiln/graph/exec.h"

#include <mutex>

#include "kiln/core/error.h"
#include "src/graph/compile.h"
#include "src/graph/signature_cache.h"

namespace kiln::graph::internal {

namespace {

struct Compiled {
  std::shared_ptr<const ir::Function> function;
  std::unique_ptr<backends::Executable> executable;
  std::vector<shapes::Shape> param_shapes;
  std::vector<std::string> param_names;
};

// Fails with a clear message if the backend lacks an op or dtype the function uses.
void CheckCapabilities(const backends::Backend& backend, const ir::Function& fn) {
  const backends::Capabilities& caps = backend.GetCapabilities();
  for (const ir::Instruction& in : fn.instructions) {
    if (!caps.SupportsOp(in.op)) {
      Throw("backend \"" + backend.Name() + "\" does not implement op " + std::string(ir::OpName(in.op)) + " (" +
            in.location + ")");
    }
    if (!caps.SupportsDType(in.shape.DType())) {
      Throw("backend \"" + backend.Name() + "\" does not support dtype " + dtypes::Name(in.shape.DType()) +
            " (op " + std::string(ir::OpName(in.op)) + " at " + in.location + ")");
    }
  }
  for (const auto& sub : fn.subfunctions) CheckCapabilities(backend, *sub);
}

}  // namespace

std::unique_ptr<backends::Executable> CompileFunction(backends::Backend& backend,
                                                      std::shared_ptr<const ir::Function> function) {
  CheckCapabilities(backend, *function);
  return backend.Compile(std::move(function));
}

struct ExecCore::State {
  std::shared_ptr<backends::Backend> backend;
  std::string name;
  bool fixed_params;
  SignatureCache<Compiled> cache;
  mutable std::mutex mu;  // guards last_graph_text
  std::string last_graph_text;

  std::shared_ptr<Compiled> Build(const std::vector<shapes::Shape>& signature, const Builder& builder,
                                  const Loc& loc) {
    Graph g(name);
    g.SetTarget(&backend->GetCapabilities());
    std::vector<Node> params;
    if (!fixed_params) {
      for (size_t i = 0; i < signature.size(); ++i) {
        params.push_back(g.AddParameter("arg" + std::to_string(i), signature[i], loc));
      }
    }
    std::vector<Node> outputs = builder(&g, params);
    auto compiled = std::make_shared<Compiled>();
    compiled->function = g.Finish(outputs, loc);
    for (int id : compiled->function->parameters) {
      const auto& instr = compiled->function->instructions[id];
      compiled->param_shapes.push_back(instr.shape);
      compiled->param_names.push_back(std::get<ir::ParameterAttrs>(instr.attrs).name);
    }
    compiled->executable = CompileFunction(*backend, compiled->function);
    {
      std::lock_guard lock(mu);
      last_graph_text = compiled->function->ToString();
    }
    return compiled;
  }

  // The compiled entry for `signature`, compiled once (see SignatureCache).
  std::shared_ptr<Compiled> Get(const std::vector<shapes::Shape>& signature, const Builder& builder,
                                const Loc& loc) {
    return cache.GetOrBuild(signature, [&] { return Build(signature, builder, loc); });
  }
};

ExecCore::ExecCore(std::shared_ptr<backends::Backend> backend, std::string name, bool fixed_params)
    : state_(std::make_unique<State>()) {
  if (!backend) Throw("graph::Compile/NewExec: null backend");
  state_->backend = std::move(backend);
  state_->name = std::move(name);
  state_->fixed_params = fixed_params;
}

ExecCore::~ExecCore() = default;

void ExecCore::Precompile(const Builder& builder, const Loc& loc) { state_->Get({}, builder, loc); }

std::vector<tensors::Tensor> ExecCore::Call(std::vector<tensors::Tensor> args, const Builder& builder,
                                            const std::vector<bool>& donate, const Loc& loc) {
  for (size_t i = 0; i < args.size(); ++i) {
    if (!args[i].Ok()) Throw(state_->name + ": argument #" + std::to_string(i) + " is an empty Tensor");
  }
  if (!donate.empty() && donate.size() != args.size()) {
    Throw(state_->name + ": " + std::to_string(donate.size()) + " donation flags for " +
                     std::to_string(args.size()) + " arguments");
  }
  // A graph with declared parameters has one executable; otherwise the
  // arguments' shapes pick (or trace) one.
  std::shared_ptr<Compiled> compiled;
  if (state_->fixed_params) {
    compiled = state_->Get({}, builder, loc);
  } else {
    std::vector<shapes::Shape> signature;
    signature.reserve(args.size());
    for (const tensors::Tensor& a : args) signature.push_back(a.Shape());
    compiled = state_->Get(signature, builder, loc);
  }

  if (args.size() != compiled->param_shapes.size()) {
    Throw(state_->name + ": called with " + std::to_string(args.size()) + " arguments, but the graph has " +
                     std::to_string(compiled->param_shapes.size()) + " parameters");
  }
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i].Shape() != compiled->param_shapes[i]) {
      Throw(state_->name + ": argument #" + std::to_string(i) + " (\"" + compiled->param_names[i] +
                       "\") has shape " + args[i].Shape().ToString() + ", but the graph expects " +
                       compiled->param_shapes[i].ToString());
    }
  }

  backends::Backend& backend = *state_->backend;
  std::vector<backends::BufferPtr> buffers;
  buffers.reserve(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    bool give = !donate.empty() && donate[i];
    buffers.push_back(give ? args[i].TakeBuffer(backend) : args[i].BufferFor(backend));
  }
  args.clear();  // drop our handles so donated buffers are uniquely owned
  std::vector<backends::BufferPtr> outs = compiled->executable->Execute(std::move(buffers), donate);
  std::vector<tensors::Tensor> results;
  results.reserve(outs.size());
  for (auto& b : outs) results.push_back(tensors::Tensor::FromBuffer(std::move(b)));
  return results;
}

void ExecCore::SetMaxCacheSize(size_t n) { state_->cache.SetCapacity(n); }

size_t ExecCore::CacheSize() const { return state_->cache.Size(); }

std::string ExecCore::LastGraphText() const {
  std::lock_guard lock(state_->mu);
  return state_->last_graph_text;
}

const std::shared_ptr<backends::Backend>& ExecCore::Backend() const { return state_->backend; }

}  // namespace kiln::graph::internal
