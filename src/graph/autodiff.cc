// Copyright 2026 The Kiln Authors.
// Reverse-mode autodiff: walks the instructions between the wrt nodes and the
// outputs in reverse order, applying each op's VJP rule and summing the
// cotangents of values used more than once.
#include "kiln/graph/autodiff.h"

#include <algorithm>
#include <map>
#include <optional>

#include "src/graph/op_builder.h"
#include "src/graph/vjp.h"

namespace kiln::graph {

using internal::OpError;

namespace internal {

const VJPTable& VJPRules() {
  static const VJPTable table = [] {
    VJPTable t{};
    RegisterElementwiseVJPs(t);
    RegisterLayoutVJPs(t);
    RegisterReduceVJPs(t);
    RegisterDotConvVJPs(t);
    RegisterGatherVJPs(t);
    RegisterControlFlowVJPs(t);
    RegisterSortVJPs(t);
    RegisterLinalgVJPs(t);
    RegisterAttentionVJPs(t);
    RegisterComplexVJPs(t);
    RegisterCollectiveVJPs(t);
    return t;
  }();
  return table;
}

Node SumToDims(Node grad, const std::vector<int64_t>& dims, const Loc& loc) {
  const auto& gd = grad.Shape().Dims();
  if (gd == dims) return grad;
  const int lead = grad.Rank() - static_cast<int>(dims.size());
  std::vector<int> axes;
  for (int i = 0; i < grad.Rank(); ++i) {
    if (i < lead || (dims[i - lead] == 1 && gd[i] != 1)) axes.push_back(i);
  }
  if (!axes.empty()) grad = ReduceSum(grad, axes, loc);
  return Reshape(grad, dims, loc);
}

}  // namespace internal

namespace {

// The ops whose rules, written for real values as cotangent * f'(x), serve
// complex values too once conjugated: for a holomorphic f the gradient is
// cotangent * conj(f'(z)) = conj(conj(cotangent) * f'(z)). (The data-movement
// ops need no conjugation: their rules have real coefficients.)
bool IsHolomorphic(ir::OpType op) {
  using ir::OpType;
  switch (op) {
    case OpType::kNeg:
    case OpType::kAdd:
    case OpType::kSub:
    case OpType::kMul:
    case OpType::kDiv:
    case OpType::kPow:
    case OpType::kExp:
    case OpType::kExpm1:
    case OpType::kLog:
    case OpType::kLog1p:
    case OpType::kSin:
    case OpType::kCos:
    case OpType::kTanh:
    case OpType::kSqrt:
    case OpType::kRsqrt:
    case OpType::kReduceProduct:
    case OpType::kReduceWindow: return true;  // sums and products (complex max/min do not exist)
    default: return false;
  }
}

// Marks every instruction that depends on one of `sources`.
std::vector<bool> DependsOn(const ir::Function& fn, const std::vector<Node>& sources, int last) {
  std::vector<bool> depends(static_cast<size_t>(last) + 1, false);
  for (const Node& n : sources) {
    if (n.Id() <= last) depends[n.Id()] = true;
  }
  for (int id = 0; id <= last; ++id) {
    if (depends[id]) continue;
    for (int o : fn.instructions[id].operands) {
      if (depends[o]) {
        depends[id] = true;
        break;
      }
    }
  }
  return depends;
}

}  // namespace

std::vector<Node> VJP(const std::vector<Node>& outputs, const std::vector<Node>& cotangents,
                      const std::vector<Node>& wrt, Loc loc) {
  if (outputs.size() != cotangents.size()) {
    OpError(loc, "VJP", std::to_string(outputs.size()) + " outputs but " + std::to_string(cotangents.size()) +
                            " cotangents");
  }
  std::vector<Node> all = outputs;
  all.insert(all.end(), cotangents.begin(), cotangents.end());
  all.insert(all.end(), wrt.begin(), wrt.end());
  Graph* g = internal::CheckSameGraph(all, "VJP", loc);
  // Inside a loop body or branch, a wrt value of an enclosing graph may reach
  // the body only through values computed outside it (ops on outer values
  // are hoisted), which a gradient taken in the body cannot see: refused.
  // Outer outputs and cotangents stand for their captures.
  for (const Node& w : wrt) {
    if (w.Graph() != g) {
      OpError(loc, "Gradient", "inside a loop body or branch, differentiate with respect to values of the body (its "
                               "carry, operands or results), not a value of an enclosing graph: take that gradient "
                               "outside, or pass the value in as a carried value or operand");
    }
  }
  for (const Node& n : all) {
    if (n.Graph() == g) continue;
    auto local = [&](const std::vector<Node>& nodes) {
      std::vector<Node> out;
      for (const Node& m : nodes) out.push_back(g->Capture(m, loc));
      return out;
    };
    return VJP(local(outputs), local(cotangents), wrt, loc);  // once: then all are in g
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (cotangents[i].Shape() != outputs[i].Shape()) {
      OpError(loc, "VJP", "cotangent " + cotangents[i].Shape().ToString() + " does not match output #" +
                              std::to_string(i) + " " + outputs[i].Shape().ToString());
    }
  }
  for (const Node& w : wrt) {
    if (!dtypes::IsFloatOrComplex(w.DType())) {
      OpError(loc, "Gradient", "cannot differentiate with respect to " + w.Shape().ToString() +
                                   ": only float and complex values have gradients");
    }
  }

  int last = -1;
  for (const Node& o : outputs) last = std::max(last, o.Id());
  // Only instructions on a path from a wrt node to an output matter.
  const std::vector<bool> from_wrt = DependsOn(g->Function(), wrt, last);
  std::vector<std::optional<Node>> cotangent(static_cast<size_t>(last) + 1);
  auto accumulate = [&](int id, Node grad) {
    auto& slot = cotangent[id];
    slot = slot ? Add(*slot, grad, loc) : grad;
  };
  for (size_t i = 0; i < outputs.size(); ++i) {
    if (from_wrt[outputs[i].Id()] && dtypes::IsFloatOrComplex(outputs[i].DType())) {
      accumulate(outputs[i].Id(), cotangents[i]);
    }
  }
  // Gradients flow through wrt nodes too (a wrt node may depend on another);
  // their cotangents are kept for the result.
  std::vector<bool> is_wrt(static_cast<size_t>(last) + 1, false);
  for (const Node& w : wrt) {
    if (w.Id() <= last) is_wrt[w.Id()] = true;
  }

  // The cotangents of tuple elements (While, If results), gathered from
  // their GetTupleElements for the tuple op's rule.
  std::map<int, std::vector<Node>> tuple_cotangents;

  const internal::VJPTable& rules = internal::VJPRules();
  for (int id = last; id >= 0; --id) {
    if (!from_wrt[id]) continue;
    const bool is_tuple = ir::ProducesTuple(g->Function().instructions[id].op);
    if (is_tuple ? !tuple_cotangents.contains(id) : !cotangent[id]) continue;
    // Read the instruction by value: rules append to the graph, which may
    // reallocate the instruction list.
    const ir::Instruction instr = g->Function().instructions[id];
    if (instr.op == ir::OpType::kGetTupleElement) {
      const size_t elements =
          ir::TupleElementShapes(g->Function(), g->Function().instructions[instr.operands[0]]).size();
      auto& slots = tuple_cotangents[instr.operands[0]];
      slots.resize(elements);
      Node& slot = slots[static_cast<size_t>(ir::Attr<ir::TupleIndexAttrs>(instr).index)];
      slot = slot.Ok() ? Add(slot, *cotangent[id], loc) : *cotangent[id];
      if (!is_wrt[id]) cotangent[id].reset();
      continue;
    }
    if (!is_tuple && !dtypes::IsFloatOrComplex(instr.shape.DType())) continue;  // integer/bool paths: no gradient
    if (instr.operands.empty()) continue;                              // sources: nothing to propagate to
    Node out(g, id);
    std::vector<Node> operands;
    for (int o : instr.operands) operands.emplace_back(g, o);
    std::vector<Node> grads;
    if (is_tuple) {
      internal::VJPRule rule = rules[static_cast<size_t>(instr.op)];
      grads = rule(internal::VJPArgs{g, instr, out, operands, Node(), loc, tuple_cotangents[id]});
      tuple_cotangents.erase(id);
    } else if (const auto* custom = g->FindCustomGradient(id)) {
      if (!*custom) continue;  // StopGradient
      Node grad = (*custom)(operands.at(0), *cotangent[id]);
      if (!grad.Ok() || grad.Shape() != operands[0].Shape()) {
        OpError(loc, "IdentityWithCustomGradient", "the custom gradient must return " +
                                                       operands[0].Shape().ToString() + ", got " +
                                                       (grad.Ok() ? grad.Shape().ToString() : "an empty Node"));
      }
      grads = {grad};
    } else {
      internal::VJPRule rule = rules[static_cast<size_t>(instr.op)];
      if (rule == nullptr) {
        OpError(loc, "Gradient", "op " + std::string(ir::OpName(instr.op)) + " (created at " + instr.location +
                                     ") has no gradient");
      }
      if (dtypes::IsComplex(instr.shape.DType()) && IsHolomorphic(instr.op)) {
        grads = rule(internal::VJPArgs{g, instr, out, operands, Conj(*cotangent[id], loc), loc});
        for (Node& grad : grads) {
          if (grad.Ok()) grad = Conj(grad, loc);
        }
      } else {
        grads = rule(internal::VJPArgs{g, instr, out, operands, *cotangent[id], loc});
      }
    }
    for (size_t k = 0; k < operands.size() && k < grads.size(); ++k) {
      const int o = operands[k].Id();
      if (!grads[k].Ok() || !from_wrt[o] || !dtypes::IsFloatOrComplex(operands[k].DType())) continue;
      accumulate(o, grads[k]);
    }
    if (!is_wrt[id]) cotangent[id].reset();  // no longer needed
  }

  std::vector<Node> result;
  for (const Node& w : wrt) {
    if (w.Id() <= last && cotangent[w.Id()]) result.push_back(*cotangent[w.Id()]);
    else result.push_back(ZerosLike(w, loc));
  }
  return result;
}

std::vector<Node> Gradient(Node output, const std::vector<Node>& wrt, Loc loc) {
  Graph* g = internal::CheckNode(output, "Gradient", loc);
  if (output.Rank() != 0 || !dtypes::IsFloat(output.DType())) {
    OpError(loc, "Gradient", "output must be a float scalar, got " + output.Shape().ToString() +
                                 " (use VJP for non-scalar outputs)");
  }
  return VJP({output}, {Scalar(g, output.DType(), 1.0, loc)}, wrt, loc);
}

Node Jacobian(Node output, Node x, Loc loc) {
  Graph* g = internal::CheckSameGraph({output, x}, "Jacobian", loc);
  if (!dtypes::IsFloat(output.DType())) {
    OpError(loc, "Jacobian", "output must be real (float), got " + output.Shape().ToString() +
                                 " (take the Jacobians of its Real and Imag parts)");
  }
  const int64_t n = output.Shape().Size();
  std::vector<Node> rows;
  for (int64_t i = 0; i < n; ++i) {
    tensors::Tensor basis(output.Shape());
    DispatchDType(output.DType(), [&](auto zero) {
      using T = decltype(zero);
      if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) basis.MutableFlat<T>()[i] = T(1.0f);
      else basis.MutableFlat<T>()[i] = T(1);
    });
    rows.push_back(VJP({output}, {Const(g, basis, loc)}, {x}, loc)[0]);
  }
  std::vector<int64_t> dims = output.Shape().Dims();
  dims.insert(dims.end(), x.Shape().Dims().begin(), x.Shape().Dims().end());
  if (rows.empty()) return Zeros(g, shapes::Shape(x.DType(), dims), loc);
  return Reshape(Stack(rows, 0, loc), dims, loc);
}

namespace internal {
Node Identity(Node x, const Loc& loc) {
  return internal::Emit(x.Graph(), ir::OpType::kReshape, {x}, x.Shape(), ir::NoAttrs{}, loc);
}
}  // namespace internal

Node StopGradient(Node x, Loc loc) {
  Graph* g = internal::CheckNode(x, "StopGradient", loc);
  Node y = internal::Identity(x, loc);
  g->SetCustomGradient(y.Id(), nullptr);
  return y;
}

Node IdentityWithCustomGradient(Node x, std::function<Node(Node x, Node cotangent)> gradient, Loc loc) {
  Graph* g = internal::CheckNode(x, "IdentityWithCustomGradient", loc);
  if (!gradient) OpError(loc, "IdentityWithCustomGradient", "the gradient function is empty");
  Node y = internal::Identity(x, loc);
  g->SetCustomGradient(y.Id(), std::move(gradient));
  return y;
}

}  // namespace kiln::graph
