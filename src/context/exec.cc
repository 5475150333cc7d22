// Copyright 2026 The Kiln Authors.
// context::Exec: traces with variables as implicit inputs/outputs, caches one
// executable per input-shape signature, runs with variable write-back.
#include "kiln/context/exec.h"

#include <algorithm>
#include <functional>

#include "kiln/graph/random.h"
#include "src/context/store.h"
#include "src/graph/compile.h"
#include "src/graph/signature_cache.h"

namespace kiln::context {

namespace internal {

namespace {

struct Compiled {
  std::unique_ptr<backends::Executable> executable;
  std::vector<Variable*> inputs;   // variables passed after the user arguments
  std::vector<Variable*> updates;  // variables written back, after the user outputs
  size_t num_outputs = 0;          // user outputs
  std::string text;
  uint64_t deletions = 0;  // Store::deletions when last checked: none of our variables was deleted
};

// Whether a variable the executable reads or writes was deleted since it was
// compiled (then it must trace again: the graph may create it anew).
bool UsesDeleted(const Compiled& c) {
  auto deleted = [](const Variable* v) { return v->Deleted(); };
  return std::any_of(c.inputs.begin(), c.inputs.end(), deleted) ||
         std::any_of(c.updates.begin(), c.updates.end(), deleted);
}

// A stable 64-bit hash (FNV-1a) of a variable's full name, mixed with the
// seed: each variable gets its own Philox key whatever the creation order.
uint64_t VariableKey(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull ^ (seed * 0x9e3779b97f4a7c15ull);
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

void Initialize(backends::Backend& backend, const std::shared_ptr<backends::Backend>& owner,
                const std::vector<Variable*>& vars, uint64_t seed) {
  (void)backend;
  if (vars.empty()) return;
  auto init = graph::Compile(owner, [&](graph::Graph* g) {
    std::vector<graph::Node> values;
    for (Variable* v : vars) {
      graph::Node state = graph::RandomStateFromSeed(g, VariableKey(seed, v->ScopeAndName()));
      graph::Node value = v->Initializer()(g, v->Shape(), state);
      if (value.Shape() != v->Shape()) {
        Throw("initializer of variable " + v->ScopeAndName() + " returned " + value.Shape().ToString() +
              ", the variable is " + v->Shape().ToString());
      }
      values.push_back(value);
    }
    return values;
  }, "initialize");
  std::vector<tensors::Tensor> outs = init.CallVector({});
  for (size_t i = 0; i < vars.size(); ++i) vars[i]->SetValueUnchecked(outs[i]);
}

struct ContextExecCore::State {
  std::shared_ptr<backends::Backend> backend;
  Context ctx;
  std::string name;
  // The same LRU-bounded cache as graph::NewExec's; calls hold the store's
  // lock, so builds of one context never overlap anyway.
  graph::internal::SignatureCache<Compiled> cache;
  mutable std::mutex text_mu;  // guards last_text (read without the store's lock)
  std::string last_text;
  std::function<void(const std::vector<Variable*>&)> after_build;

  std::shared_ptr<Compiled> Build(const std::vector<shapes::Shape>& signature, const ContextBuilder& builder) {
    Store& store = ctx.GetStore();  // locked by Call
    graph::Graph g(name);
    g.SetTarget(&backend->GetCapabilities());
    std::vector<graph::Node> params;
    for (size_t i = 0; i < signature.size(); ++i) {
      params.push_back(g.AddParameter("arg" + std::to_string(i), signature[i], graph::Loc::current()));
    }
    Store::Trace trace;
    trace.g = &g;
    const size_t vars_before = store.variables.size();
    store.trace = &trace;
    std::vector<graph::Node> outputs;
    try {
      outputs = builder(ctx, params);
    } catch (...) {
      store.trace = nullptr;
      throw;
    }
    store.trace = nullptr;

    auto compiled = std::make_shared<Compiled>();
    compiled->deletions = store.deletions;
    compiled->num_outputs = outputs.size();
    compiled->inputs = trace.input_order;
    // The updated variables' new values in the order of their inputs (those
    // never read last): the k-th donated input and the k-th update output are
    // then the same variable, which backends pair by position and shape to
    // update each variable in its own buffer (so its address stays put).
    compiled->updates = trace.update_order;
    auto input_position = [&](Variable* v) {
      return std::find(trace.input_order.begin(), trace.input_order.end(), v) - trace.input_order.begin();
    };
    std::stable_sort(compiled->updates.begin(), compiled->updates.end(),
                     [&](Variable* a, Variable* b) { return input_position(a) < input_position(b); });
    for (Variable* v : compiled->updates) outputs.push_back(trace.updates[v]);
    auto function = g.Finish(outputs, graph::Loc::current());
    compiled->text = function->ToString();
    compiled->executable = graph::internal::CompileFunction(*backend, std::move(function));

    // Variables created while tracing get their initial values now.
    std::vector<Variable*> fresh;
    for (size_t i = vars_before; i < store.variables.size(); ++i) {
      if (!store.variables[i]->HasValue()) fresh.push_back(store.variables[i].get());
    }
    Initialize(*backend, backend, fresh, ctx.Seed());
    if (after_build) {
      // The callback sees every input with a value (Call would initialize
      // the ones created outside this trace anyway, just before running).
      std::vector<Variable*> unset;
      for (Variable* v : compiled->inputs) {
        if (!v->HasValue()) unset.push_back(v);
      }
      Initialize(*backend, backend, unset, ctx.Seed());
      after_build(compiled->inputs);
    }
    return compiled;
  }
};

ContextExecCore::ContextExecCore(std::shared_ptr<backends::Backend> backend, Context ctx, std::string name)
    : state_(std::make_unique<State>()) {
  if (!backend) Throw("context::NewExec: null backend");
  state_->backend = std::move(backend);
  state_->ctx = std::move(ctx);
  state_->name = std::move(name);
}

ContextExecCore::~ContextExecCore() = default;

std::vector<tensors::Tensor> ContextExecCore::Call(std::vector<tensors::Tensor> args, const ContextBuilder& builder) {
  // The whole call under the store's lock: another thread's executions, reads
  // and saves on this context wait, so none sees a donated (emptied) variable.
  Store& store = state_->ctx.GetStore();
  std::lock_guard store_lock(store.mu);
  std::vector<shapes::Shape> signature;
  for (size_t i = 0; i < args.size(); ++i) {
    if (!args[i].Ok()) Throw(state_->name + ": argument #" + std::to_string(i) + " is an empty Tensor");
    signature.push_back(args[i].Shape());
  }
  auto build = [&] {
    std::shared_ptr<Compiled> built = state_->Build(signature, builder);
    std::lock_guard lock(state_->text_mu);
    state_->last_text = built->text;
    return built;
  };
  std::shared_ptr<Compiled> compiled = state_->cache.GetOrBuild(signature, build);
  if (compiled->deletions != store.deletions) {
    if (UsesDeleted(*compiled)) {  // a variable it used was deleted: trace again
      state_->cache.Erase(signature);
      compiled = state_->cache.GetOrBuild(signature, build);
    } else {
      compiled->deletions = store.deletions;
    }
  }

  // Inputs: the user's arguments, then the variables' current values. A
  // variable the graph updates is donated so the update happens in place.
  backends::Backend& backend = *state_->backend;
  const size_t n_args = args.size();
  std::vector<bool> donate(n_args, false);
  std::vector<backends::BufferPtr> buffers;
  for (auto& a : args) buffers.push_back(a.BufferFor(backend));
  args.clear();
  for (Variable* v : compiled->inputs) {
    if (!v->HasValue()) {
      // Created outside this trace and never initialized: initialize now.
      Initialize(backend, state_->backend, {v}, state_->ctx.Seed());
    }
    const bool updated =
        std::find(compiled->updates.begin(), compiled->updates.end(), v) != compiled->updates.end();
    tensors::Tensor value = v->Value();
    if (updated) {
      v->SetValueUnchecked(tensors::Tensor());  // drop our handle: the buffer is handed over
      buffers.push_back(value.TakeBuffer(backend));
    } else {
      buffers.push_back(value.BufferFor(backend));
    }
    donate.push_back(updated);
  }
  std::vector<backends::BufferPtr> outs = compiled->executable->Execute(std::move(buffers), donate);
  std::vector<tensors::Tensor> results;
  for (size_t i = 0; i < compiled->num_outputs; ++i) results.push_back(tensors::Tensor::FromBuffer(outs[i]));
  for (size_t i = 0; i < compiled->updates.size(); ++i) {
    compiled->updates[i]->SetValueUnchecked(tensors::Tensor::FromBuffer(outs[compiled->num_outputs + i]));
  }
  return results;
}

size_t ContextExecCore::CacheSize() const { return state_->cache.Size(); }

void ContextExecCore::SetMaxCacheSize(size_t n) { state_->cache.SetCapacity(n); }

void ContextExecCore::SetAfterBuild(std::function<void(const std::vector<Variable*>&)> fn) {
  state_->after_build = std::move(fn);
}

std::string ContextExecCore::LastGraphText() const {
  std::lock_guard lock(state_->text_mu);
  return state_->last_text;
}

}  // namespace internal

void InitializeVariables(const std::shared_ptr<backends::Backend>& backend, const Context& ctx) {
  if (!backend) Throw("context::InitializeVariables: null backend");
  std::vector<Variable*> fresh;
  for (Variable* v : ctx.Variables()) {
    if (!v->HasValue()) fresh.push_back(v);
  }
  internal::Initialize(*backend, backend, fresh, ctx.Seed());
}

}  // namespace kiln::context
