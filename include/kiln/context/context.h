// Copyright 2026 The Kiln Authors.
// kiln::context: a hierarchical store of named, typed variables, with
// initializers, hyperparameters and random state — the third building block.
//
//   auto ctx = context::New();
//   context::Variable* w = ctx.In("layer1").WithInitializer(initializers::GlorotUniform())
//                              .VariableWithShape("weights", shapes::Make(dtypes::Float32, 784, 128));
//   // inside a graph traced by context::NewExec:  Node wv = w->ValueGraph(x.Graph());
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "kiln/context/initializers.h"
#include "kiln/core/tensors.h"
#include "kiln/graph/graph.h"

namespace kiln::context {

namespace internal {
struct Store;
}  // namespace internal
class Context;

/// A named, typed variable owned by a context's store. Its value lives in a
/// Tensor (on host or device); inside a graph traced by context::NewExec it is
/// read with ValueGraph and updated with SetValueGraph.
///
/// A Variable* stays valid as long as its context's store lives, even after
/// Context::DeleteVariablesInScope removes the variable: a deleted variable
/// keeps its name and shape, but reading, setting or tracing it throws
/// kiln::Error, and the executables that used it trace again on their next call.
class Variable {
 public:
  /// The name within its scope ("weights").
  const std::string& Name() const { return name_; }
  /// The scope ("/layer1"; "/" for the root).
  const std::string& Scope() const { return scope_; }
  /// Full name "/layer1/weights".
  std::string ScopeAndName() const;
  const shapes::Shape& Shape() const { return shape_; }
  dtypes::DType DType() const { return shape_.DType(); }
  /// Trainable variables are updated by optimizers (default true for float and
  /// complex variables; a complex one is updated as two real coordinates).
  bool Trainable() const { return trainable_; }
  void SetTrainable(bool trainable) { trainable_ = trainable; }

  /// Whether the value was initialized (or restored or set); false once deleted.
  bool HasValue() const;
  /// Whether Context::DeleteVariablesInScope removed the variable.
  bool Deleted() const;
  /// The current value; throws kiln::Error if the variable was never
  /// initialized (run a context::NewExec graph that uses it, or SetValue) or
  /// was deleted. Waits for a running execution of the same context, so the
  /// value is the one before or after a step, never one in between.
  tensors::Tensor Value() const;
  /// Replaces the value; the shape must match. Throws for a deleted variable.
  void SetValue(const tensors::Tensor& value);

  /// The value as a Node of graph `g` (which must be traced by
  /// context::NewExec): an implicit input of the graph.
  graph::Node ValueGraph(graph::Graph* g, graph::Loc loc = graph::Loc::current());
  /// Sets the variable's new value from within a graph: an implicit output,
  /// written back after each run (in place: the old buffer is donated).
  void SetValueGraph(graph::Node value, graph::Loc loc = graph::Loc::current());

  /// Sets the value without checks (used by restore and initialization).
  void SetValueUnchecked(tensors::Tensor value);
  /// The initializer used when the variable has no value yet.
  const initializers::Initializer& Initializer() const { return initializer_; }

 private:
  friend struct internal::Store;
  friend class Context;  // DeleteVariablesInScope retires variables
  Variable(internal::Store* store, std::string scope, std::string name, shapes::Shape shape,
           initializers::Initializer initializer);
  internal::Store* store_;
  std::string scope_, name_;
  shapes::Shape shape_;
  initializers::Initializer initializer_;
  bool trainable_ = true;
  tensors::Tensor value_;
  bool deleted_ = false;
};

/// Hyperparameter values.
using Param = std::variant<bool, int64_t, double, std::string, std::vector<int64_t>, std::vector<double>,
                           std::vector<std::string>>;

/// A value handle on a shared store of variables and hyperparameters, with a
/// current scope, a reuse mode and a default initializer. Copies share the
/// store; In(), Reuse(), WithInitializer() return modified handles.
///
/// Threads: every method may be called from any thread. The executions of
/// context::NewExec functions on one store, variable reads and writes,
/// checkpoint saves and restores are serialized by the store's lock: each runs
/// whole, so a thread that evaluates or serves while another trains sees each
/// variable as it was before or after a training step, never in between (and
/// never uninitialized). Executions on different contexts run concurrently.
class Context {
 public:
  /// A new context at scope "/" (use context::New()).
  Context();

  /// A handle on the sub-scope `name` (no '/' in it): "/layer1/dense".
  Context In(const std::string& name) const;
  /// A handle on the same store at the root scope "/" (other settings kept).
  Context Root() const;
  /// The current scope, "/" at the root.
  const std::string& Scope() const { return scope_; }
  /// A handle in reuse mode: VariableWithShape returns existing variables
  /// (and fails if missing); without reuse, creating an existing one fails.
  Context Reuse() const;
  bool IsReuse() const { return reuse_; }
  /// A handle whose new variables use `initializer` (the per-scope default).
  Context WithInitializer(initializers::Initializer initializer) const;
  /// Whether this handle sets an initializer (else new variables get the
  /// default for their shape).
  bool HasInitializer() const { return static_cast<bool>(initializer_); }

  /// Creates (or, in reuse mode, returns) the variable `name` in the current
  /// scope. Errors: an existing variable without reuse, a missing one with
  /// reuse, a shape or dtype different from the existing one's.
  Variable* VariableWithShape(const std::string& name, const shapes::Shape& shape,
                              graph::Loc loc = graph::Loc::current());
  /// Like VariableWithShape, with an initial value instead of an initializer.
  Variable* VariableWithValue(const std::string& name, const tensors::Tensor& value,
                              graph::Loc loc = graph::Loc::current());
  /// The variable `name` in the current scope, or nullptr.
  Variable* GetVariable(const std::string& name) const;
  /// The variable with full name "/scope/name", or nullptr.
  Variable* GetVariableByScopeAndName(const std::string& scope_and_name) const;
  /// Every variable, in creation order.
  std::vector<Variable*> Variables() const;
  /// Variables in the current scope and its sub-scopes.
  std::vector<Variable*> VariablesInScope() const;
  /// Removes every variable whose full name starts with `prefix` (e.g. a
  /// scope), and the values a checkpoint restore keeps for such names. The
  /// removed Variable* stay valid but throw on use (see Variable); executables
  /// that used them trace again; a checkpoint saved afterwards may omit them.
  void DeleteVariablesInScope(const std::string& prefix);

  /// Sets a hyperparameter in the current scope ("learning_rate").
  void SetParam(const std::string& key, Param value);
  /// The hyperparameter's value, searched from the current scope up to the root.
  /// Throws kiln::Error if missing or of another type (ints convert to double).
  template <typename T>
  T GetParam(const std::string& key) const;
  /// Like GetParam, with a default for a missing key.
  template <typename T>
  T GetParamOr(const std::string& key, T default_value) const;
  /// Whether the key is set in this scope or a parent.
  bool HasParam(const std::string& key) const;
  /// Sets parameters from "k=v;k2=v2;/scope/k3=v3": each value is parsed as the
  /// type of the existing parameter with that key (searched from its scope up);
  /// an unknown key or unparsable value is a kiln::Error.
  void SetParams(const std::string& settings);
  /// Every parameter as (full key "/scope/key", value).
  std::vector<std::pair<std::string, Param>> Params() const;

  /// The context's seed for initializers and random numbers (default 42).
  void SetSeed(uint64_t seed);
  uint64_t Seed() const;

  /// Random values drawn from the context's Philox state inside graph `g`
  /// (traced by context::NewExec): the state is a variable "/rng_state" that
  /// advances with every draw, so runs are reproducible from the seed and
  /// differ from call to call.
  graph::Node RandomUniform(graph::Graph* g, const shapes::Shape& shape, graph::Loc loc = graph::Loc::current());
  graph::Node RandomNormal(graph::Graph* g, const shapes::Shape& shape, graph::Loc loc = graph::Loc::current());
  /// Bool values, true with probability `p`.
  graph::Node RandomBernoulli(graph::Graph* g, double p, const std::vector<int64_t>& dims,
                              graph::Loc loc = graph::Loc::current());

  /// Whether the graph being built is for training (layers such as Dropout
  /// and BatchNorm read it); set by the trainer on the handle it passes to
  /// the model. Default false.
  bool IsTraining() const { return training_; }
  Context WithTraining(bool training) const;

  /// Adds a scalar loss term (e.g. a layer's regularization) to the graph
  /// being traced; the trainer adds these to the model's loss.
  void AddLoss(graph::Node loss, graph::Loc loc = graph::Loc::current());
  /// The loss terms added to graph `g` during the current trace.
  std::vector<graph::Node> AddedLosses(graph::Graph* g) const;

  /// The shared store (for context::NewExec and checkpoints).
  internal::Store& GetStore() const { return *store_; }

 private:
  std::shared_ptr<internal::Store> store_;
  std::string scope_ = "/";
  bool reuse_ = false;
  bool training_ = false;
  initializers::Initializer initializer_;  // empty: the store's default
};

/// A new context with an empty store.
Context New();

/// Joins a scope and a name: ("/a", "b") -> "/a/b"; ("/", "b") -> "/b".
std::string JoinScope(const std::string& scope, const std::string& name);

}  // namespace kiln::context

// ------------------------------------------------------------ Implementation.

namespace kiln::context {

namespace internal {
/// A copy of the parameter `key` from `scope` up to the root, or nothing.
std::optional<Param> FindParam(const Store& store, const std::string& scope, const std::string& key);
[[noreturn]] void ThrowParamType(const std::string& key, const Param& value, const char* wanted);

template <typename T>
constexpr const char* ParamTypeName() {
  if constexpr (std::is_same_v<T, bool>) return "bool";
  else if constexpr (std::is_integral_v<T>) return "int";
  else if constexpr (std::is_floating_point_v<T>) return "double";
  else if constexpr (std::is_same_v<T, std::string>) return "string";
  else if constexpr (std::is_same_v<T, std::vector<int64_t>>) return "int list";
  else if constexpr (std::is_same_v<T, std::vector<double>>) return "double list";
  else return "string list";
}

template <typename T>
T ConvertParam(const std::string& key, const Param& p) {
  if constexpr (std::is_same_v<T, bool>) {
    if (const auto* v = std::get_if<bool>(&p)) return *v;
  } else if constexpr (std::is_integral_v<T>) {
    if (const auto* v = std::get_if<int64_t>(&p)) return static_cast<T>(*v);
  } else if constexpr (std::is_floating_point_v<T>) {
    if (const auto* v = std::get_if<double>(&p)) return static_cast<T>(*v);
    if (const auto* v = std::get_if<int64_t>(&p)) return static_cast<T>(*v);
  } else if constexpr (std::is_same_v<T, std::vector<double>>) {
    if (const auto* v = std::get_if<std::vector<double>>(&p)) return *v;
    if (const auto* v = std::get_if<std::vector<int64_t>>(&p)) return T(v->begin(), v->end());
  } else {
    if (const auto* v = std::get_if<T>(&p)) return *v;
  }
  ThrowParamType(key, p, ParamTypeName<T>());
}
}  // namespace internal

template <typename T>
T Context::GetParam(const std::string& key) const {
  const std::optional<Param> p = internal::FindParam(*store_, scope_, key);
  if (!p) Throw("Context::GetParam: no parameter \"" + key + "\" in scope \"" + scope_ + "\" or its parents");
  return internal::ConvertParam<T>(key, *p);
}

template <typename T>
T Context::GetParamOr(const std::string& key, T default_value) const {
  const std::optional<Param> p = internal::FindParam(*store_, scope_, key);
  return !p ? default_value : internal::ConvertParam<T>(key, *p);
}

}  // namespace kiln::context
