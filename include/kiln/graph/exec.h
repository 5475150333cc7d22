// Copyright 2026 The Kiln Authors.
// Compiling and calling graph functions: graph::Compile and graph::NewExec.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kiln/backends/backend.h"
#include "kiln/graph/graph.h"

namespace kiln::graph {

namespace internal {

/// Builds the outputs of a graph given its parameters (already declared).
using Builder = std::function<std::vector<Node>(Graph* g, const std::vector<Node>& params)>;

/// The type-erased engine behind Exec: a cache of executables keyed by the
/// input-shape signature, thread-safe, compiling each signature once.
class ExecCore {
 public:
  /// `fixed_params`: the graph declares its own parameters (Compile); else
  /// one parameter per call argument is declared from its shape (NewExec).
  ExecCore(std::shared_ptr<backends::Backend> backend, std::string name, bool fixed_params);
  ~ExecCore();

  /// Runs with `args`; `builder` traces the graph on a cache miss. donate[i]
  /// hands args[i]'s device buffer to the execution (it may be updated in place).
  std::vector<tensors::Tensor> Call(std::vector<tensors::Tensor> args, const Builder& builder,
                                    const std::vector<bool>& donate, const Loc& loc);
  /// Traces and compiles the graph now (Compile with fixed parameters).
  void Precompile(const Builder& builder, const Loc& loc);

  void SetMaxCacheSize(size_t n);
  size_t CacheSize() const;
  /// The IR dump of the most recently compiled graph ("" if none).
  std::string LastGraphText() const;
  const std::shared_ptr<backends::Backend>& Backend() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

template <typename R>
struct ResultTraits;  // maps a builder result type to the Call result type

template <>
struct ResultTraits<Node> {
  using Type = tensors::Tensor;
  static std::vector<Node> Flatten(const Node& n) { return {n}; }
  static Type Unflatten(std::vector<tensors::Tensor>& t) { return t.at(0); }
};
template <>
struct ResultTraits<std::vector<Node>> {
  using Type = std::vector<tensors::Tensor>;
  static std::vector<Node> Flatten(const std::vector<Node>& n) { return n; }
  static Type Unflatten(std::vector<tensors::Tensor>& t) { return t; }
};
template <typename... Ns>
struct ResultTraits<std::tuple<Ns...>> {
  static_assert((std::is_same_v<Ns, Node> && ...), "a returned tuple must hold only Nodes");
  using Type = std::tuple<std::conditional_t<true, tensors::Tensor, Ns>...>;
  static std::vector<Node> Flatten(const std::tuple<Ns...>& n) {
    return std::apply([](const auto&... x) { return std::vector<Node>{x...}; }, n);
  }
  static Type Unflatten(std::vector<tensors::Tensor>& t) {
    return [&]<size_t... I>(std::index_sequence<I...>) { return Type{t.at(I)...}; }(
               std::index_sequence_for<Ns...>{});
  }
};

template <typename T>
tensors::Tensor ToTensor(const T& v) {
  if constexpr (std::is_same_v<T, tensors::Tensor>) return v;
  else return tensors::FromValue(v);
}

}  // namespace internal

/// A compiled (per input-shape signature) graph function. Cheap to copy;
/// copies share the cache. Call is thread-safe.
template <typename Fn, bool kFixedParams>
class Exec {
 public:
  Exec(std::shared_ptr<backends::Backend> backend, Fn fn, const std::string& name)
      : core_(std::make_shared<internal::ExecCore>(std::move(backend), name, kFixedParams)), fn_(std::move(fn)) {}

  /// Runs the function. Arguments are Tensors or C++ values (converted with
  /// tensors::FromValue). Returns a Tensor, a std::vector<Tensor> or a tuple
  /// of Tensors, mirroring what the function returns.
  template <typename... Args>
  auto Call(const Args&... args) {
    std::vector<tensors::Tensor> ts{internal::ToTensor(args)...};
    return CallImpl<sizeof...(Args)>(std::move(ts), {}, Loc::current());
  }

  /// Runs with a vector of inputs; donate[i] lets the execution reuse input
  /// i's buffer for an output (the input tensor is emptied).
  std::vector<tensors::Tensor> CallVector(std::vector<tensors::Tensor> args, const std::vector<bool>& donate = {},
                                          Loc loc = Loc::current()) {
    internal::Builder builder = MakeDynamicBuilder();
    return core_->Call(std::move(args), builder, donate, loc);
  }

  /// Bounds the number of compiled signatures kept (least recently used are
  /// dropped). Default 32.
  void SetMaxCacheSize(size_t n) { core_->SetMaxCacheSize(n); }
  size_t CacheSize() const { return core_->CacheSize(); }
  /// The IR dump of the last compiled graph, for debugging.
  std::string GraphText() const { return core_->LastGraphText(); }
  /// Traces and compiles now (only for Compile, whose parameters are fixed).
  void Precompile(Loc loc = Loc::current()) { core_->Precompile(MakeDynamicBuilder(), loc); }

 private:
  template <size_t N>
  auto CallImpl(std::vector<tensors::Tensor> ts, const std::vector<bool>& donate, const Loc& loc) {
    if constexpr (kFixedParams) {
      using Traits = internal::ResultTraits<std::decay_t<std::invoke_result_t<Fn, Graph*>>>;
      auto outs = core_->Call(std::move(ts), MakeDynamicBuilder(), donate, loc);
      return Traits::Unflatten(outs);
    } else if constexpr (std::is_invocable_v<Fn, const std::vector<Node>&>) {
      using Traits = internal::ResultTraits<std::decay_t<std::invoke_result_t<Fn, const std::vector<Node>&>>>;
      auto outs = core_->Call(std::move(ts), MakeDynamicBuilder(), donate, loc);
      return Traits::Unflatten(outs);
    } else {
      return CallNodes<N>(std::move(ts), donate, loc, std::make_index_sequence<N>{});
    }
  }

  template <size_t N, size_t... I>
  auto CallNodes(std::vector<tensors::Tensor> ts, const std::vector<bool>& donate, const Loc& loc,
                 std::index_sequence<I...>) {
    using R = std::decay_t<std::invoke_result_t<Fn, std::conditional_t<true, Node, decltype(I)>...>>;
    using Traits = internal::ResultTraits<R>;
    internal::Builder builder = [this](Graph*, const std::vector<Node>& params) {
      return Traits::Flatten(fn_(params[I]...));
    };
    auto outs = core_->Call(std::move(ts), builder, donate, loc);
    return Traits::Unflatten(outs);
  }

  internal::Builder MakeDynamicBuilder() {
    if constexpr (kFixedParams) {
      return [this](Graph* g, const std::vector<Node>&) {
        return internal::ResultTraits<std::decay_t<std::invoke_result_t<Fn, Graph*>>>::Flatten(fn_(g));
      };
    } else if constexpr (std::is_invocable_v<Fn, const std::vector<Node>&>) {
      return [this](Graph*, const std::vector<Node>& params) {
        using R = std::decay_t<std::invoke_result_t<Fn, const std::vector<Node>&>>;
        return internal::ResultTraits<R>::Flatten(fn_(params));
      };
    } else {
      return [this](Graph*, const std::vector<Node>& params) {
        return CallWithArity(params, std::make_index_sequence<kMaxArity + 1>{});
      };
    }
  }

  // Calls fn_ with params.size() Nodes, for functions of individual Nodes.
  static constexpr size_t kMaxArity = 12;
  template <size_t... N>
  std::vector<Node> CallWithArity(const std::vector<Node>& params, std::index_sequence<N...>) {
    std::vector<Node> result;
    bool called = ((params.size() == N && TryCall<N>(params, result, std::make_index_sequence<N>{})) || ...);
    if (!called) {
      Throw("NewExec: the function cannot be called with " + std::to_string(params.size()) + " Nodes");
    }
    return result;
  }
  template <size_t N, size_t... I>
  bool TryCall(const std::vector<Node>& params, std::vector<Node>& result, std::index_sequence<I...>) {
    if constexpr (std::is_invocable_v<Fn, std::conditional_t<true, Node, decltype(I)>...>) {
      using R = std::decay_t<std::invoke_result_t<Fn, std::conditional_t<true, Node, decltype(I)>...>>;
      result = internal::ResultTraits<R>::Flatten(fn_(params[I]...));
      return true;
    } else {
      return false;
    }
  }

  std::shared_ptr<internal::ExecCore> core_;
  Fn fn_;
};

/// Compiles `fn`, a function of Graph* that declares its inputs with
/// Parameter(g, name, shape) and returns a Node, std::vector<Node> or a tuple
/// of Nodes. The graph is traced and compiled at once; errors surface here.
///   auto add = graph::Compile(backend, [](graph::Graph* g) {
///     return graph::Parameter(g, "a", shape) + graph::Parameter(g, "b", shape); });
///   tensors::Tensor sum = add.Call(a, b);
template <typename Fn>
  requires std::is_invocable_v<Fn, Graph*>
Exec<Fn, true> Compile(std::shared_ptr<backends::Backend> backend, Fn fn, const std::string& name = "graph",
                       Loc loc = Loc::current()) {
  Exec<Fn, true> exec(std::move(backend), std::move(fn), name);
  exec.Precompile(loc);
  return exec;
}

/// Wraps `fn`, a function of Nodes (one per argument, or one
/// std::vector<Node>), traced and compiled once per input-shape signature on
/// first use; later calls with the same shapes reuse the executable.
template <typename Fn>
Exec<Fn, false> NewExec(std::shared_ptr<backends::Backend> backend, Fn fn, const std::string& name = "exec") {
  return Exec<Fn, false>(std::move(backend), std::move(fn), name);
}

}  // namespace kiln::graph
