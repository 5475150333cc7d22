// Copyright 2026 The Kiln Authors.
// The shared state behind context::Context handles.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "kiln/context/context.h"

namespace kiln::context::internal {

/// The variables, parameters, seed and the trace in progress of a context.
struct Store {
  /// Guards everything below and every variable's value, and is held for
  /// the whole of each context::NewExec call (trace, compile and execution)
  /// and each checkpoint save and restore: one store's executions and value
  /// accesses are serialized (see the threads note on Context). Recursive:
  /// a trace creates variables and reads parameters under it.
  mutable std::recursive_mutex mu;
  std::vector<std::unique_ptr<Variable>> variables;  // creation order
  std::map<std::string, Variable*> by_name;          // full name -> variable
  /// Variables removed by DeleteVariablesInScope: kept alive (valueless, marked
  /// deleted) so a Variable* held by a user or a cached executable never dangles.
  std::vector<std::unique_ptr<Variable>> deleted;
  /// Full names deleted on purpose (and not created again since): a checkpoint
  /// may omit them without Save() calling it a loss of data.
  std::set<std::string> deleted_names;
  /// Counts DeleteVariablesInScope calls that removed something: cached
  /// executables compiled at an older count check their variables.
  uint64_t deletions = 0;
  std::map<std::string, std::map<std::string, Param>> params;  // scope -> key -> value
  uint64_t seed = 42;

  /// A graph being traced by a context exec (under `mu`): which variables it
  /// reads (implicit inputs) and sets (implicit outputs), in first-use order.
  struct Trace {
    graph::Graph* g = nullptr;
    std::map<Variable*, graph::Node> inputs, updates;
    std::vector<Variable*> input_order, update_order;
    std::vector<graph::Node> losses;  // Context::AddLoss
  };
  Trace* trace = nullptr;

  /// Values restored from a checkpoint for variables that did not exist yet
  /// (lazy restore): Create() takes the value from here (full name -> value).
  std::map<std::string, tensors::Tensor> pending_restore;
  /// Where those values come from, for messages: "checkpoint <dir>/<name>",
  /// "safetensors file <path>" (the latest load that left some).
  std::string pending_restore_origin;

  /// Creates a variable (the caller checked it does not exist); it takes a
  /// pending restored value if one exists (throws if its shape differs).
  Variable* Create(const std::string& scope, const std::string& name, const shapes::Shape& shape,
                   initializers::Initializer initializer);
};

/// The initializer used when a context has none set: GlorotUniform for float
/// shapes, Zeros otherwise.
initializers::Initializer DefaultInitializer(const shapes::Shape& shape);

/// Runs the initializers of `vars` (as one graph on `backend`) and stores the values.
void Initialize(backends::Backend& backend, const std::shared_ptr<backends::Backend>& owner,
                const std::vector<Variable*>& vars, uint64_t seed);

}  // namespace kiln::context::internal
