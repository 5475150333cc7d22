// Copyright 2026 The Kiln Authors.
// Tracing functions into sub-graphs and replaying them (see tracing.h).
#include "src/graph/tracing.h"

#include "src/graph/op_builder.h"

namespace kiln::graph::internal {

namespace {

// The sub-graphs being traced on this thread, innermost last.
thread_local std::vector<Graph*> tracing;

class TracingScope {
 public:
  explicit TracingScope(Graph* g) { tracing.push_back(g); }
  ~TracingScope() { tracing.pop_back(); }
  TracingScope(const TracingScope&) = delete;
  TracingScope& operator=(const TracingScope&) = delete;
};

}  // namespace

Graph* TargetGraph(const std::vector<Node>& nodes, std::string_view op, const Loc& loc) {
  Graph* top = tracing.empty() ? nullptr : tracing.back();
  if (nodes.empty()) {
    if (top == nullptr) OpError(loc, op, "has no operand to tell which graph it belongs to");
    return top;
  }
  Graph* g = internal::CheckSameGraph(nodes, op, loc);
  return top != nullptr && top->IsWithin(g) ? top : g;
}

Graph* Current() {
  if (tracing.empty()) Throw("internal error: no sub-graph is being traced");
  return tracing.back();
}

std::vector<shapes::Shape> ShapesOf(const std::vector<Node>& nodes) {
  std::vector<shapes::Shape> shapes;
  for (const Node& n : nodes) shapes.push_back(n.Shape());
  return shapes;
}

Traced Trace(Graph* outer, const std::string& name, const std::vector<shapes::Shape>& leading,
             const std::vector<Node>& inputs, const BodyFn& fn, std::string_view op, const Loc& loc) {
  auto sub = std::make_shared<Graph>(outer->Name() + "/" + name, outer);
  std::vector<Node> params;
  for (size_t i = 0; i < leading.size(); ++i) {
    params.push_back(sub->AddParameter(name + ":" + std::to_string(i), leading[i], loc));
  }
  for (const Node& n : inputs) params.push_back(sub->Capture(n, loc));
  std::vector<Node> outputs;
  {
    const TracingScope scope(sub.get());
    outputs = fn(params);
  }
  if (outputs.empty()) OpError(loc, op, "the " + name + " function returned no values");
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Node& o = outputs[i];
    if (!o.Ok()) OpError(loc, op, "the " + name + " function returned an empty Node as value #" + std::to_string(i));
    if (!o.Alive() || !sub->IsWithin(o.Graph())) {
      OpError(loc, op, "the " + name + " function returned value #" + std::to_string(i) +
                           " from a graph it cannot see (a value of another loop body or branch?)");
    }
    outputs[i] = sub->Capture(o, loc);
  }
  Traced traced{sub, sub->Finish(outputs, loc), ShapesOf(outputs)};
  sub->Seal();
  return traced;
}

std::vector<Node> EmitTuple(Graph* g, ir::OpType op, const std::vector<Node>& operands, ir::Attributes attrs,
                            const std::vector<shapes::Shape>& elements, const Loc& loc) {
  CheckComplexSupport(op, operands, ir::TupleShape(), loc);
  for (const shapes::Shape& e : elements) CheckComplexSupport(op, {}, e, loc);
  const Node tuple = g->AddInstruction(op, operands, ir::TupleShape(), std::move(attrs), loc);
  std::vector<Node> values;
  for (size_t i = 0; i < elements.size(); ++i) {
    values.push_back(g->AddInstruction(ir::OpType::kGetTupleElement, {tuple}, elements[i],
                                       ir::TupleIndexAttrs{static_cast<int64_t>(i)}, loc));
  }
  return values;
}

std::vector<Node> Inline(const Graph& src, const std::vector<Node>& args, Graph* into) {
  const ir::Function& fn = src.Function();
  std::vector<Node> value(fn.instructions.size());
  std::vector<int> subfunction_map(fn.subfunctions.size(), -1);
  for (size_t id = 0; id < fn.instructions.size(); ++id) {
    const ir::Instruction& in = fn.instructions[id];
    if (in.op == ir::OpType::kParameter) {
      value[id] = args.at(static_cast<size_t>(ir::Attr<ir::ParameterAttrs>(in).index));
      continue;
    }
    std::vector<Node> operands;
    for (int o : in.operands) operands.push_back(value[static_cast<size_t>(o)]);
    ir::Attributes attrs = in.attrs;
    auto remap = [&](int& s) {
      int& mapped = subfunction_map[static_cast<size_t>(s)];
      if (mapped < 0) mapped = into->AddSubfunction(fn.subfunctions[static_cast<size_t>(s)], src.Subgraph(s));
      s = mapped;
    };
    if (auto* cf = std::get_if<ir::ControlFlowAttrs>(&attrs)) {
      for (int& s : cf->subfunctions) remap(s);
    } else if (auto* sort = std::get_if<ir::SortAttrs>(&attrs); sort != nullptr && sort->comparator >= 0) {
      remap(sort->comparator);
    }
    value[id] = into->AddInstruction(in.op, operands, in.shape, std::move(attrs), in.location);
    if (const auto* custom = src.FindCustomGradient(static_cast<int>(id))) {
      into->SetCustomGradient(value[id].Id(), *custom);
    }
  }
  for (const auto& [original, replay] : src.LoopReplays()) {
    const Node& r = value[static_cast<size_t>(replay)];
    const Node& o = value[static_cast<size_t>(original)];
    if (r.Graph() == into && o.Graph() == into) into->SetLoopReplay(r.Id(), o.Id());
  }
  std::vector<Node> outputs;
  for (int o : fn.outputs) outputs.push_back(value[static_cast<size_t>(o)]);
  return outputs;
}

}  // namespace kiln::graph::internal
