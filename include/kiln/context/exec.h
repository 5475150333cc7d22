// Copyright 2026 The Kiln Authors.
// Context-aware execution: graphs whose variables are implicit inputs and
// whose variable updates are implicit outputs, written back in place.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "kiln/context/context.h"
#include "kiln/graph/exec.h"

namespace kiln::context {

namespace internal {

/// Builds the user outputs of a graph from the context and the parameters.
using ContextBuilder = std::function<std::vector<graph::Node>(Context ctx, const std::vector<graph::Node>& params)>;

/// The type-erased engine of context::Exec (one compile per input-shape
/// signature, in the same LRU-bounded cache as graph::NewExec's; calls are
/// serialized by the context's store because they update variables).
class ContextExecCore {
 public:
  ContextExecCore(std::shared_ptr<backends::Backend> backend, Context ctx, std::string name);
  ~ContextExecCore();
  std::vector<tensors::Tensor> Call(std::vector<tensors::Tensor> args, const ContextBuilder& builder);
  size_t CacheSize() const;
  void SetMaxCacheSize(size_t n);
  std::string LastGraphText() const;
  /// Called after each trace, once new variables have their initial values
  /// and before the graph first runs, with the variables the graph reads
  /// (data-parallel training makes them equal on every process here).
  void SetAfterBuild(std::function<void(const std::vector<Variable*>& inputs)> fn);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace internal

/// A compiled function of a Context and Nodes; see context::NewExec.
template <typename Fn>
class Exec {
 public:
  Exec(std::shared_ptr<backends::Backend> backend, Context ctx, Fn fn, const std::string& name)
      : core_(std::make_shared<internal::ContextExecCore>(std::move(backend), std::move(ctx), name)),
        fn_(std::move(fn)) {}

  /// Runs with Tensors or C++ values (one per Node argument of the function);
  /// returns a Tensor, std::vector<Tensor> or tuple, as the function returns
  /// a Node, std::vector<Node> or tuple. Variables the graph reads are
  /// passed implicitly; variables it sets are updated after the run.
  template <typename... Args>
  auto Call(const Args&... args) {
    std::vector<tensors::Tensor> ts{graph::internal::ToTensor(args)...};
    return CallImpl(std::move(ts), std::make_index_sequence<sizeof...(Args)>{});
  }

  /// The number of executables cached (one per input-shape signature).
  size_t CacheSize() const { return core_->CacheSize(); }
  /// Keeps at most `n` executables (default 32), dropping the least recently used.
  void SetMaxCacheSize(size_t n) { core_->SetMaxCacheSize(n); }
  /// The IR dump of the last compiled graph.
  std::string GraphText() const { return core_->LastGraphText(); }

 private:
  template <size_t... I>
  auto CallImpl(std::vector<tensors::Tensor> ts, std::index_sequence<I...>) {
    using R = std::decay_t<std::invoke_result_t<Fn, Context, std::conditional_t<true, graph::Node, decltype(I)>...>>;
    using Traits = graph::internal::ResultTraits<R>;
    internal::ContextBuilder builder = [this](Context ctx, const std::vector<graph::Node>& params) {
      return Traits::Flatten(fn_(std::move(ctx), params[I]...));
    };
    auto outs = core_->Call(std::move(ts), builder);
    return Traits::Unflatten(outs);
  }

  std::shared_ptr<internal::ContextExecCore> core_;
  Fn fn_;
};

/// Initializes every variable of `ctx` that has no value yet (one graph on
/// `backend`), deterministically from the context's seed.
void InitializeVariables(const std::shared_ptr<backends::Backend>& backend, const Context& ctx);

/// Wraps `fn(Context, Node...)`, traced and compiled per input-shape
/// signature. Variables used by the graph become implicit inputs; variables
/// set with SetValueGraph become implicit outputs, written back after each
/// run with their old buffers donated (in-place update); variables created
/// while tracing are initialized (on the backend) before the first run.
template <typename Fn>
Exec<Fn> NewExec(std::shared_ptr<backends::Backend> backend, Context ctx, Fn fn, const std::string& name = "context_exec") {
  return Exec<Fn>(std::move(backend), std::move(ctx), std::move(fn), name);
}

}  // namespace kiln::context
