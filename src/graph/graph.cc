// Copyright 2026 The Kiln Authors.
// Graph and Node: tracing a function into the IR.
#include "kiln/graph/graph.h"

#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <unordered_set>

#include "kiln/core/error.h"
#include "src/graph/loop_replays.h"

namespace kiln::graph {

namespace {

// The generations of the graphs alive in the process. A Node's graph pointer
// may be reused by a new graph after its own is destroyed; its generation
// never is, so this set tells whether the pointer is still its graph.
struct LiveGraphs {
  std::mutex mu;
  std::unordered_set<uint64_t> generations;
  uint64_t next = 1;
  // Counts destroyed graphs: a thread's cached answer is only valid while no
  // graph was destroyed since (see IsLive).
  std::atomic<uint64_t> destroyed{0};
};

LiveGraphs& Live() {
  static auto* live = new LiveGraphs();  // never destroyed: graphs may outlive static destruction order
  return *live;
}

// Node::Shape() asks this for every shape a trace reads, so the answer for
// the last generation found alive is cached per thread, valid until any graph
// is destroyed: one atomic load on the common path instead of a global lock.
bool IsLive(uint64_t generation) {
  thread_local uint64_t cached_generation = 0, cached_destroyed = 0;
  LiveGraphs& live = Live();
  const uint64_t destroyed = live.destroyed.load(std::memory_order_acquire);
  if (generation != 0 && generation == cached_generation && destroyed == cached_destroyed) return true;
  std::lock_guard lock(live.mu);
  if (!live.generations.contains(generation)) return false;
  cached_generation = generation;
  cached_destroyed = destroyed;
  return true;
}

[[noreturn]] void ThrowStale(const Node& n) {
  Throw("use of graph::Node #" + std::to_string(n.Id()) + " whose graph no longer exists (a Node kept from an "
        "earlier trace or a destroyed graph::Graph)");
}

}  // namespace

Node::Node(graph::Graph* g, int id) : graph_(g), generation_(g == nullptr ? 0 : g->Generation()), id_(id) {}

bool Node::Alive() const { return graph_ != nullptr && IsLive(generation_); }

const shapes::Shape& Node::Shape() const {
  if (graph_ == nullptr) Throw("use of an empty graph::Node");
  if (!IsLive(generation_)) ThrowStale(*this);
  return graph_->ShapeOf(id_);
}

ir::OpType Node::Op() const {
  if (graph_ == nullptr) Throw("use of an empty graph::Node");
  if (!IsLive(generation_)) ThrowStale(*this);
  return graph_->Function().instructions[static_cast<size_t>(id_)].op;
}

Graph::Graph(std::string name) {
  LiveGraphs& live = Live();
  {
    std::lock_guard lock(live.mu);
    generation_ = live.next++;
    live.generations.insert(generation_);
  }
  function_.name = std::move(name);
}

Graph::~Graph() {
  LiveGraphs& live = Live();
  std::lock_guard lock(live.mu);
  live.generations.erase(generation_);
  live.destroyed.fetch_add(1, std::memory_order_release);
}

std::vector<Node> Graph::Parameters() const {
  std::vector<Node> nodes;
  for (int id : function_.parameters) nodes.emplace_back(const_cast<Graph*>(this), id);
  return nodes;
}

Graph::Graph(std::string name, Graph* parent) : Graph(std::move(name)) { parent_ = parent; }

bool Graph::IsWithin(const Graph* other) const {
  for (const Graph* g = this; g != nullptr; g = g->parent_) {
    if (g == other) return true;
  }
  return false;
}

Node Graph::Capture(const Node& n, const Loc& loc) {
  if (n.Graph() == this && n.Generation() == generation_) return n;
  if (parent_ == nullptr || !n.Alive() || !IsWithin(n.Graph())) {
    ThrowAt(loc, "a Node of graph \"" + (n.Alive() ? n.Graph()->Name() : std::string("(destroyed)")) +
                     "\" cannot be used in graph \"" + Name() + "\"");
  }
  const Node outer = parent_->Capture(n, loc);  // through every graph in between
  auto it = capture_ids_.find(outer.Id());
  if (it != capture_ids_.end()) return Node(this, it->second);
  const Node local = AddParameter("capture:" + std::to_string(captures_.size()), outer.Shape(), loc);
  captures_.push_back(outer);
  capture_ids_[outer.Id()] = local.Id();
  return local;
}

int Graph::AddSubfunction(std::shared_ptr<const ir::Function> fn, std::shared_ptr<Graph> traced) {
  function_.subfunctions.push_back(std::move(fn));
  subgraphs_.push_back(std::move(traced));
  return static_cast<int>(subgraphs_.size()) - 1;
}

Node Graph::AddInstruction(ir::OpType op, const std::vector<Node>& operands, shapes::Shape shape,
                           ir::Attributes attrs, const Loc& loc) {
  return Append(op, operands, std::move(shape), std::move(attrs), FormatLocation(loc), &loc);
}

Node Graph::AddInstruction(ir::OpType op, const std::vector<Node>& operands, shapes::Shape shape,
                           ir::Attributes attrs, std::string location) {
  return Append(op, operands, std::move(shape), std::move(attrs), std::move(location), nullptr);
}

Node Graph::Append(ir::OpType op, const std::vector<Node>& operands, shapes::Shape shape, ir::Attributes attrs,
                   std::string location, const Loc* loc) {
  auto fail = [&](const std::string& message) {
    if (loc != nullptr) ThrowAt(*loc, message);
    Throw(message + " (" + location + ")");
  };
  if (sealed_) {
    fail(std::string(ir::OpName(op)) + ": graph \"" + Name() + "\" was traced as the body of a control-flow op; " +
         "its values cannot be used outside it");
  }
  ir::Instruction instr;
  instr.op = op;
  instr.operands.reserve(operands.size());
  for (size_t i = 0; i < operands.size(); ++i) {
    const Node& n = operands[i];
    if (!n.Ok()) fail(std::string(ir::OpName(op)) + ": operand #" + std::to_string(i) + " is an empty Node");
    if (n.Graph() != this || n.Generation() != generation_) {
      if (!n.Alive()) {
        fail(std::string(ir::OpName(op)) + ": operand #" + std::to_string(i) +
             " is a Node whose graph no longer exists (kept from an earlier trace?)");
      }
      if (!IsWithin(n.Graph())) {
        fail(std::string(ir::OpName(op)) + ": operand #" + std::to_string(i) + " belongs to graph \"" +
             n.Graph()->Name() + "\", not to graph \"" + Name() + "\"");
      }
      // A value of an enclosing graph: captured as a parameter of this one.
      instr.operands.push_back(Capture(n, loc != nullptr ? *loc : Loc::current()).Id());
      continue;
    }
    instr.operands.push_back(n.Id());
  }
  instr.shape = std::move(shape);
  instr.attrs = std::move(attrs);
  instr.location = std::move(location);
  shapes_.push_back(instr.shape);
  function_.instructions.push_back(std::move(instr));
  return Node(this, static_cast<int>(function_.instructions.size()) - 1);
}

Node Graph::AddParameter(const std::string& name, const shapes::Shape& shape, const Loc& loc) {
  if (!shape.Ok()) ThrowAt(loc, "Parameter \"" + name + "\": shape has an invalid dtype");
  for (int id : function_.parameters) {
    if (std::get<ir::ParameterAttrs>(function_.instructions[id].attrs).name == name) {
      ThrowAt(loc, "Parameter: a parameter named \"" + name + "\" already exists in graph \"" + Name() + "\"");
    }
  }
  ir::ParameterAttrs attrs{static_cast<int>(function_.parameters.size()), name};
  Node n = AddInstruction(ir::OpType::kParameter, {}, shape, attrs, loc);
  function_.parameters.push_back(n.Id());
  return n;
}

std::shared_ptr<const ir::Function> Graph::Finish(const std::vector<Node>& outputs, const Loc& loc) {
  function_.outputs.clear();
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (!outputs[i].Ok()) ThrowAt(loc, "graph \"" + Name() + "\": output #" + std::to_string(i) + " is an empty Node");
    if (outputs[i].Graph() != this || outputs[i].Generation() != generation_) {
      ThrowAt(loc, "graph \"" + Name() + "\": output #" + std::to_string(i) + " belongs to another graph");
    }
    function_.outputs.push_back(outputs[i].Id());
  }
  if (outputs.empty()) ThrowAt(loc, "graph \"" + Name() + "\" has no outputs");
  function_.Validate();
  if (loop_replays_.empty()) return std::make_shared<const ir::Function>(function_);
  auto finished = std::make_shared<ir::Function>(function_);
  internal::MergeLoopReplays(*finished, loop_replays_);
  finished->Validate();  // a broken merge is a bug: fail here, not in a backend
  return finished;
}

std::unique_ptr<Graph> NewGraph(const std::string& name) { return std::make_unique<Graph>(name); }

Node Parameter(Graph* g, const std::string& name, const shapes::Shape& shape, Loc loc) {
  if (g == nullptr) ThrowAt(loc, "Parameter: null graph");
  return g->AddParameter(name, shape, loc);
}

Node Const(Graph* g, const tensors::Tensor& value, Loc loc) {
  if (g == nullptr) ThrowAt(loc, "Const: null graph");
  if (!value.Ok()) ThrowAt(loc, "Const: empty tensor");
  const auto* bytes = static_cast<const std::byte*>(value.HostData());
  auto data = std::make_shared<std::vector<std::byte>>(bytes, bytes + value.Shape().ByteSize());
  return g->AddInstruction(ir::OpType::kConstant, {}, value.Shape(), ir::ConstantAttrs{std::move(data)}, loc);
}

Node Scalar(Graph* g, dtypes::DType dtype, double value, Loc loc) {
  tensors::Tensor t(shapes::Shape(dtype, {}));
  DispatchDTypeWithComplex(dtype, [&](auto zero) {
    using T = decltype(zero);
    T v;
    if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) {
      v = T(static_cast<float>(value));
    } else if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      // A value the integer type cannot hold (after truncation toward zero)
      // would be undefined behaviour in the conversion: an error instead.
      const double whole = std::trunc(value);
      const double limit = std::ldexp(1.0, std::numeric_limits<T>::digits);  // 2^bits of magnitude
      const double low = std::is_signed_v<T> ? -limit : 0.0;
      if (!(whole >= low && whole < limit)) {
        ThrowAt(loc, "Scalar: " + std::to_string(value) + " is out of the range of " + dtypes::Name(dtype));
      }
      v = static_cast<T>(whole);
    } else {
      v = static_cast<T>(value);
    }
    std::memcpy(t.MutableHostData(), &v, sizeof(T));
  });
  return Const(g, t, loc);
}

}  // namespace kiln::graph
