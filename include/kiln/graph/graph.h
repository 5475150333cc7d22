// Copyright 2026 The Kiln Authors.
// kiln::graph: Graph (a function being traced) and Node (a value in it).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <unordered_map>
#include <utility>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/shapes.h"
#include "kiln/core/tensors.h"
#include "kiln/ir/function.h"

namespace kiln::backends {
struct Capabilities;
}  // namespace kiln::backends

namespace kiln::graph {

class Graph;

/// Default argument capturing the caller's file:line; every op takes one so
/// shape errors point at the user's code.
using Loc = SourceLocation;

/// A value in a Graph: a cheap handle (graph pointer, the graph's generation
/// and the instruction id). Using a Node after its graph is destroyed (a Node
/// kept from an earlier trace) is a kiln::Error, even when a new graph sits at
/// the same address: each graph has a generation that is never reused.
class Node {
 public:
  Node() = default;
  /// Node `id` of the live graph `g`.
  Node(graph::Graph* g, int id);

  bool Ok() const { return graph_ != nullptr; }
  graph::Graph* Graph() const { return graph_; }
  int Id() const { return id_; }
  /// The generation of the node's graph (see Graph::Generation).
  uint64_t Generation() const { return generation_; }
  /// Whether the node's graph still exists (false for an empty Node).
  bool Alive() const;
  /// The node's shape; the reference stays valid as the graph grows. Throws
  /// kiln::Error if the node's graph was destroyed.
  const shapes::Shape& Shape() const;
  dtypes::DType DType() const { return Shape().DType(); }
  int Rank() const { return Shape().Rank(); }
  /// The op that produced this node.
  ir::OpType Op() const;

 private:
  graph::Graph* graph_ = nullptr;
  uint64_t generation_ = 0;
  int id_ = -1;
};

/// A computation being traced. Ops append instructions to it; Compile hands
/// the finished function to a backend.
///
/// A graph may be the sub-graph of another (a While body, an If branch, see
/// control_flow.h): a node of an enclosing graph used by an op in the
/// sub-graph is captured, i.e. it becomes an extra parameter of the
/// sub-graph, and the control-flow op passes the outer value to it. Once
/// traced, a sub-graph is sealed: its values cannot be used outside it.
class Graph {
 public:
  explicit Graph(std::string name = "graph");
  /// A sub-graph of `parent` (see above).
  Graph(std::string name, Graph* parent);
  ~Graph();
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  /// A number unique to this graph in the process (never reused, unlike its
  /// address): Nodes carry it, so a Node of a destroyed graph is detected.
  uint64_t Generation() const { return generation_; }

  const std::string& Name() const { return function_.name; }
  /// The IR built so far.
  const ir::Function& Function() const { return function_; }
  /// Shape of node `id`. Stable storage: references survive later ops.
  const shapes::Shape& ShapeOf(int id) const { return shapes_[static_cast<size_t>(id)]; }
  /// Parameters in declaration order.
  std::vector<Node> Parameters() const;
  /// The readable dump of the IR (see ir::Function::ToString).
  std::string ToString() const { return function_.ToString(); }

  /// Appends an instruction whose shape was already inferred. Used by op
  /// builders; users call the ops in ops.h instead. Operands of enclosing
  /// graphs are captured (see Capture).
  Node AddInstruction(ir::OpType op, const std::vector<Node>& operands, shapes::Shape shape,
                      ir::Attributes attrs, const Loc& loc);
  /// The same with the location already formatted ("file.cc:12"), for
  /// instructions copied from another graph.
  Node AddInstruction(ir::OpType op, const std::vector<Node>& operands, shapes::Shape shape,
                      ir::Attributes attrs, std::string location);

  /// The graph this one is a sub-graph of; nullptr for a top-level graph.
  Graph* Parent() const { return parent_; }
  /// Whether `other` is this graph or one of its enclosing graphs.
  bool IsWithin(const Graph* other) const;
  /// `n` itself if it belongs to this graph; for a node of an enclosing graph,
  /// the parameter of this graph standing for it (created on first use, and
  /// through every graph in between). Throws kiln::Error for a node of any
  /// other graph.
  Node Capture(const Node& n, const Loc& loc);
  /// The enclosing graph's nodes this sub-graph captured, in the order of the
  /// parameters standing for them (which follow the parameters declared
  /// before tracing).
  const std::vector<Node>& Captures() const { return captures_; }
  /// The capabilities of the backend the graph is traced for, set by the
  /// execs (graph::NewExec, context::NewExec) before tracing; a sub-graph
  /// asks its parent. Builders with a fused form (layers::DotProductAttention)
  /// emit it only where the target implements it. nullptr (a graph built by
  /// hand): unknown, so the composed forms are used.
  void SetTarget(const backends::Capabilities* target) { target_ = target; }
  const backends::Capabilities* Target() const {
    return target_ != nullptr || parent_ == nullptr ? target_ : parent_->Target();
  }
  /// Marks a traced sub-graph as finished: adding to it becomes an error.
  void Seal() { sealed_ = true; }

  /// Registers a traced sub-graph and its function as sub-function of this
  /// graph; returns its index in Function().subfunctions.
  int AddSubfunction(std::shared_ptr<const ir::Function> fn, std::shared_ptr<Graph> traced);
  /// The graph sub-function `index` was traced from (autodiff replays it).
  const std::shared_ptr<Graph>& Subgraph(int index) const { return subgraphs_.at(static_cast<size_t>(index)); }
  /// Declares the next parameter. Throws kiln::Error for a duplicate name.
  Node AddParameter(const std::string& name, const shapes::Shape& shape, const Loc& loc);
  /// Sets the outputs and returns the finished function.
  std::shared_ptr<const ir::Function> Finish(const std::vector<Node>& outputs, const Loc& loc);

  /// Autodiff metadata (see autodiff.h): a custom VJP for node `id`, or a
  /// null function to block gradients (StopGradient).
  using CustomGradient = std::function<Node(Node x, Node cotangent)>;
  void SetCustomGradient(int id, CustomGradient gradient) { custom_gradients_[id] = std::move(gradient); }
  /// nullptr if node `id` has no custom gradient; a pointer to an empty
  /// function if its gradient is stopped.
  const CustomGradient* FindCustomGradient(int id) const {
    auto it = custom_gradients_.find(id);
    return it == custom_gradients_.end() ? nullptr : &it->second;
  }
  /// Autodiff metadata: While `replay` (a node id) reruns While `original`
  /// with a tape of its carries, its results 1..n being `original`'s n
  /// results. Finish makes `original`'s readers read a replay that the
  /// outputs need (the first noted) and drops `original`, so the loop runs
  /// once.
  void SetLoopReplay(int replay, int original) { loop_replays_.emplace_back(original, replay); }
  /// The replays noted by SetLoopReplay: (original id, replay id), in order.
  const std::vector<std::pair<int, int>>& LoopReplays() const { return loop_replays_; }

 private:
  Node Append(ir::OpType op, const std::vector<Node>& operands, shapes::Shape shape, ir::Attributes attrs,
             std::string location, const Loc* loc);

  uint64_t generation_;
  Graph* parent_ = nullptr;
  const backends::Capabilities* target_ = nullptr;
  bool sealed_ = false;
  std::vector<Node> captures_;                       // enclosing graph's nodes, per capture parameter
  std::unordered_map<int, int> capture_ids_;         // parent's node id -> local parameter id
  std::vector<std::shared_ptr<Graph>> subgraphs_;    // parallel to function_.subfunctions
  ir::Function function_;
  std::deque<shapes::Shape> shapes_;  // shapes_[id] == function_.instructions[id].shape
  std::unordered_map<int, CustomGradient> custom_gradients_;
  std::vector<std::pair<int, int>> loop_replays_;  // (original While id, replay While id)
};

/// A new, empty graph.
std::unique_ptr<Graph> NewGraph(const std::string& name = "graph");

/// Declares an input of the graph with a fixed shape.
Node Parameter(Graph* g, const std::string& name, const shapes::Shape& shape, Loc loc = Loc::current());

/// A constant holding a tensor's value.
Node Const(Graph* g, const tensors::Tensor& value, Loc loc = Loc::current());

/// A constant from a C++ scalar, std::vector or nested vectors:
/// Const(g, 2.0f), Const(g, std::vector<int32_t>{1, 2, 3}).
template <typename T>
  requires(!std::is_same_v<T, tensors::Tensor>)
Node Const(Graph* g, const T& value, Loc loc = Loc::current()) {
  return Const(g, tensors::FromValue(value), loc);
}

/// A scalar constant of `dtype` holding `value` converted to that dtype.
Node Scalar(Graph* g, dtypes::DType dtype, double value, Loc loc = Loc::current());

/// A value and the location of the expression that produced it: lets binary
/// operators (which cannot take default arguments) report the caller's line.
template <typename T>
struct Located {
  T value;
  Loc loc;
  // NOLINTNEXTLINE(google-explicit-constructor): implicit on purpose.
  Located(T v, Loc l = Loc::current()) : value(v), loc(l) {}
  template <typename U>
    requires(std::is_arithmetic_v<U> && std::is_arithmetic_v<T> && !std::is_same_v<U, T>)
  // NOLINTNEXTLINE(google-explicit-constructor)
  Located(U v, Loc l = Loc::current()) : value(static_cast<T>(v)), loc(l) {}
};

}  // namespace kiln::graph
