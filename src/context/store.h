// Copyright 2026 The Kiln Authors.
// The shared state behind context::Context handles.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "kiln/context/context.h"

namespace kiln::context::internal {

/// The variables, parameters, seed and the trace in progress of a context.
struct Store {
  /// Guards the maps below (not variable values: executions are serialized
  /// by their Exec, see exec.cc).
  mutable std::recursive_mutex mu;
  std::vector<std::unique_ptr<Variable>> variables;  // creation order
  std::map<std::string, Variable*> by_name;          // full name -> variable
  std::map<std::string, std::map<std::string, Param>> params;  // scope -> key -> value
  uint64_t seed = 42;

  /// A graph being traced by a context exec: which variables it reads
  /// (implicit inputs) and sets (implicit outputs), in first-use order.
  struct Trace {
    graph::Graph* g = nullptr;
    std::map<Variable*, graph::Node> inputs, updates;
    std::vector<Variable*> input_order, update_order;
    std::vector<graph::Node> losses;  // Context::AddLoss
  };
  /// Held for the whole trace: one trace at a time per store.
  std::mutex trace_mu;
  Trace* trace = nullptr;

  /// Values restored from a checkpoint for variables that did not exist yet
  /// (lazy restore): Create() takes the value from here (full name -> value).
  std::map<std::string, tensors::Tensor> pending_restore;
  /// The checkpoint ("<dir>/<name>") those values come from, for messages.
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
