// Copyright 2026 The Kiln Authors.
// Internal: tracing C++ functions into sub-graphs (the bodies of While and
// If, Sort comparators) and replaying a traced sub-graph into another graph
// (autodiff of control flow).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/graph/control_flow.h"

namespace kiln::graph::internal {

/// The graph an op built from `nodes` goes to: the innermost of their
/// graphs, or the sub-graph being traced on this thread when it lies inside
/// that one (a While inside a body whose init comes from outside it).
Graph* TargetGraph(const std::vector<Node>& nodes, std::string_view op, const Loc& loc);

/// The sub-graph being traced on this thread (inside a traced function).
Graph* Current();

/// The shapes of `nodes`.
std::vector<shapes::Shape> ShapesOf(const std::vector<Node>& nodes);

/// A function traced into a sealed sub-graph.
struct Traced {
  std::shared_ptr<Graph> graph;
  std::shared_ptr<const ir::Function> function;
  std::vector<shapes::Shape> results;
};

/// Traces `fn` into a new sub-graph of `outer`: its parameters are new ones
/// of the `leading` shapes, then `inputs` (nodes of `outer` or enclosing
/// graphs) captured; further captures follow as `fn` uses outer values. What
/// `fn` returns may be any node of the sub-graph or of an enclosing graph;
/// returning nothing is an error naming `name` and `op`.
Traced Trace(Graph* outer, const std::string& name, const std::vector<shapes::Shape>& leading,
             const std::vector<Node>& inputs, const BodyFn& fn, std::string_view op, const Loc& loc);

/// Emits a tuple-producing instruction (While, If, Sort) with `operands` and
/// `attrs`, and one GetTupleElement per element shape; returns those.
std::vector<Node> EmitTuple(Graph* g, ir::OpType op, const std::vector<Node>& operands, ir::Attributes attrs,
                            const std::vector<shapes::Shape>& elements, const Loc& loc);

/// Replays the function traced into `src` in graph `into`, with `args` for
/// its parameters (nodes of `into` or enclosing graphs), keeping locations,
/// custom gradients and nested sub-functions; returns its outputs.
std::vector<Node> Inline(const Graph& src, const std::vector<Node>& args, Graph* into);

}  // namespace kiln::graph::internal
