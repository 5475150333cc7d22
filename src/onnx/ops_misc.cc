// Copyright 2026 The Kiln Authors.
// ONNX losses, Det, control flow (If, Loop, Scan) and the training-domain
// optimizer steps.
#include <algorithm>

#include "kiln/graph/control_flow.h"
#include "kiln/graph/linalg.h"
#include "kiln/graph/ops.h"
#include "src/onnx/converter.h"

namespace kiln::onnx::internal {
namespace {

using graph::Node;

// Moves the last axis of x to `axis`.
Node LastTo(Node x, int axis) {
  const int r = x.Rank();
  std::vector<int> perm;
  for (int d = 0; d < r - 1; ++d) perm.push_back(d);
  perm.insert(perm.begin() + axis, r - 1);
  return graph::Transpose(x, perm);
}

// NegativeLogLikelihoodLoss on log-probabilities [N, C, d...] and targets [N, d...].
Node Nll(OpContext& c, Node logp, Node target, Node weight) {
  const std::string reduction = c.Str("reduction", "mean");
  const int64_t classes = logp.Shape().Dim(1);
  Node t = graph::ConvertDType(target, dtypes::Int64);
  Node keep = graph::Equal(t, t);
  if (c.HasAttr("ignore_index")) {
    keep = graph::NotEqual(t, graph::ScalarLike(t, static_cast<double>(c.Int("ignore_index", 0))));
    t = graph::Where(keep, t, graph::ZerosLike(t));
  }
  Node hot = LastTo(graph::OneHot(t, classes, logp.DType()), 1);
  Node picked = graph::ReduceSum(logp * hot, {1});
  Node w = weight.Ok() ? graph::ReduceSum(hot * graph::BroadcastInDim(weight, hot.Shape().Dims(), {1}), {1})
                       : graph::ConvertDType(graph::OnesLike(t), logp.DType());
  w = graph::Where(keep, w, graph::ZerosLike(w));
  Node loss = -picked * w;
  if (reduction == "none") return loss;
  if (reduction == "sum") return graph::ReduceSum(loss, {});
  if (reduction == "mean") return graph::ReduceSum(loss, {}) / graph::ReduceSum(w, {});
  c.Fail("reduction \"" + reduction + "\" is not supported");
}

// Converts a sub-graph (If branch, Loop/Scan body) inside a Kiln body whose
// graph is that of `anchor`, with `inputs` bound to the sub-graph's inputs.
std::vector<Node> ConvertBody(OpContext& c, const ::onnx::GraphProto& body, const std::vector<Node>& inputs,
                              graph::Graph* g) {
  Scope scope;
  scope.parent = &c.CurrentScope();
  if (static_cast<int>(inputs.size()) != body.input_size()) {
    c.Fail("the body takes " + std::to_string(body.input_size()) + " inputs, " + std::to_string(inputs.size()) +
           " given");
  }
  for (int i = 0; i < body.input_size(); ++i) {
    Value v;
    v.node = inputs[static_cast<size_t>(i)];
    scope.values[body.input(i).name()] = std::move(v);
  }
  for (const auto& init : body.initializer()) {
    Value v;
    v.constant = TensorFromProto(init, c.Conv().ExternalDataDir(), "initializer");
    scope.values[init.name()] = std::move(v);
  }
  std::vector<Value*> outs = c.Conv().ConvertGraph(body, scope, g);
  std::vector<Node> nodes;
  for (Value* v : outs) nodes.push_back(c.Conv().NodeOf(*v, g));
  return nodes;
}

// ONNX Scan (opset 9 and later) over `xs` along their scan axes.
std::vector<Out> ScanOver(OpContext& c, const ::onnx::GraphProto& body, const std::vector<Node>& init,
                          std::vector<Node> xs, const std::vector<int64_t>& in_axes,
                          const std::vector<int64_t>& in_dirs, const std::vector<int64_t>& out_axes,
                          const std::vector<int64_t>& out_dirs, int k) {
  const size_t m = xs.size();
  if (in_axes.size() != m || in_dirs.size() != m || out_axes.size() != static_cast<size_t>(k) ||
      out_dirs.size() != static_cast<size_t>(k)) {
    c.Fail("scan axes and directions must have one entry per scanned input and output");
  }
  for (size_t j = 0; j < m; ++j) {
    Node x = xs[j];
    const int axis = NormAxis(c, in_axes[j], x.Rank());
    if (axis != 0) {
      std::vector<int> perm = {axis};
      for (int d = 0; d < x.Rank(); ++d) {
        if (d != axis) perm.push_back(d);
      }
      x = graph::Transpose(x, perm);
    }
    if (in_dirs[j]) x = graph::Reverse(x, {0});
    xs[j] = x;
  }
  auto fn = [&](const std::vector<Node>& carry, const std::vector<Node>& x) {
    std::vector<Node> args = carry;
    args.insert(args.end(), x.begin(), x.end());
    return ConvertBody(c, body, args, (carry.empty() ? x.at(0) : carry.at(0)).Graph());
  };
  graph::ScanResult r = graph::Scan(fn, init, xs);
  std::vector<Out> outs(r.carry.begin(), r.carry.end());
  for (int j = 0; j < k; ++j) {
    Node y = r.stacked[static_cast<size_t>(j)];
    if (out_dirs[j]) y = graph::Reverse(y, {0});
    const int axis = NormAxis(c, out_axes[j], y.Rank());
    if (axis != 0) {
      std::vector<int> perm;
      for (int d = 1; d < y.Rank(); ++d) perm.push_back(d);
      perm.insert(perm.begin() + axis, 0);
      y = graph::Transpose(y, perm);
    }
    outs.push_back(y);
  }
  return outs;
}

}  // namespace

void RegisterMiscOps() {
  using namespace graph;  // NOLINT

  RegisterOp("NegativeLogLikelihoodLoss", [](OpContext& c) -> std::vector<Out> {
    return {Nll(c, c.In(0), c.In(1), c.InOr(2))};
  });
  RegisterOp("SoftmaxCrossEntropyLoss", [](OpContext& c) -> std::vector<Out> {
    Node scores = c.In(0);
    Node logp = LogSoftmax(scores, 1);
    return {Nll(c, logp, c.In(1), c.InOr(2)), logp};
  });
  RegisterOp("Det", [](OpContext& c) -> std::vector<Out> { return {Determinant(c.In(0))}; });

  RegisterOp("If", [](OpContext& c) -> std::vector<Out> {
    const auto& then_g = c.GraphAttr("then_branch");
    const auto& else_g = c.GraphAttr("else_branch");
    if (c.IsConstIn(0)) {
      const tensors::Tensor p = c.ConstIn(0, "cond");
      if (p.Size() != 1 || p.DType() != dtypes::Bool) c.Fail("cond must be one bool");
      std::vector<Out> outs;
      for (Node n : ConvertBody(c, p.Flat<bool>()[0] ? then_g : else_g, {}, c.G())) outs.push_back(n);
      return outs;
    }
    Node pred = Reshape(c.In(0), {});
    // The predicate rides along as an operand so each branch knows its graph.
    auto branch = [&c](const ::onnx::GraphProto& body) {
      return [&c, &body](const std::vector<Node>& ops) { return ConvertBody(c, body, {}, ops.at(0).Graph()); };
    };
    std::vector<Out> outs;
    for (Node n : If(pred, branch(then_g), branch(else_g), {pred})) outs.push_back(n);
    return outs;
  });

  RegisterOp("Loop", [](OpContext& c) -> std::vector<Out> {
    const auto& body = c.GraphAttr("body");
    // (Counted on the node: trailing optional inputs may be given as "".)
    const int carried = c.Proto().input_size() - 2;
    const int scan_outputs = body.output_size() - 1 - carried;
    if (carried < 0 || scan_outputs < 0 || body.input_size() != 2 + carried) {
      c.Fail("the body's inputs and outputs do not match the loop's inputs");
    }
    std::vector<Node> init;
    for (int i = 2; i < 2 + carried; ++i) init.push_back(c.In(i));
    const bool has_m = c.Has(0), has_cond = c.Has(1);
    if (scan_outputs > 0 || !has_cond) {
      // A counted loop: the body's condition output can stop it early only
      // when the loop takes a condition input.
      if (!has_m) c.Fail("a loop without a trip count must take a condition");
      const auto m = c.Ints(0, "M");
      if (m.size() != 1 || m[0] < 0) c.Fail("M must be one non-negative count");
      if (has_cond) {
        // Early exit would make the stacked outputs' length data-dependent;
        // accept only a condition that provably stays true.
        // (Known at trace time: a false one means no iteration at all.)
        const tensors::Tensor cond = c.ConstIn(1, "cond");
        // The body's condition output: the condition input, maybe through Identity.
        std::string out_cond = body.output(0).name();
        for (int k = body.node_size() - 1; k >= 0; --k) {
          const auto& n = body.node(k);
          if (n.op_type() == "Identity" && n.input_size() == 1 && n.output_size() == 1 && n.output(0) == out_cond) {
            out_cond = n.input(0);
          }
        }
        if (cond.DType() != dtypes::Bool || cond.Size() != 1 || !cond.Flat<bool>()[0] ||
            out_cond != body.input(1).name()) {
          c.Fail("a loop with stacked outputs and a condition that may stop it early is not supported");
        }
      }
      Node cond0 = Const(c.G(), true);
      auto fn = [&](const std::vector<Node>& carry, const std::vector<Node>&) {
        Node i = carry.at(0);
        std::vector<Node> args = {i, carry.at(1)};
        args.insert(args.end(), carry.begin() + 2, carry.end());
        std::vector<Node> outs = ConvertBody(c, body, args, i.Graph());
        std::vector<Node> next = {i + ScalarLike(i, 1), carry.at(1)};
        next.insert(next.end(), outs.begin() + 1, outs.end());  // carried, then scan outputs
        return next;
      };
      std::vector<Node> scan_init = {Const(c.G(), int64_t{0}), cond0};
      scan_init.insert(scan_init.end(), init.begin(), init.end());
      if (m[0] == 0 && scan_outputs > 0) c.Fail("a zero-trip loop with stacked outputs is not supported");
      ScanResult r = Scan(fn, scan_init, {}, m[0]);
      std::vector<Out> outs(r.carry.begin() + 2, r.carry.end());
      for (Node s : r.stacked) outs.push_back(s);
      return outs;
    }
    // A While: (i, cond, carried...) until cond is false or i reaches M.
    Node m = has_m ? Reshape(ConvertDType(c.In(0), dtypes::Int64), {}) : Node();
    std::vector<Node> w_init = {Const(c.G(), int64_t{0}), Reshape(c.In(1), {})};
    w_init.insert(w_init.end(), init.begin(), init.end());
    if (has_m) w_init.push_back(m);
    auto cond_fn = [has_m](const std::vector<Node>& carry) {
      Node go = carry.at(1);
      if (has_m) go = LogicalAnd(go, LessThan(carry.at(0), carry.back()));
      return go;
    };
    auto body_fn = [&](const std::vector<Node>& carry) {
      Node i = carry.at(0);
      std::vector<Node> args(carry.begin(), carry.end() - (has_m ? 1 : 0));
      std::vector<Node> outs = ConvertBody(c, body, args, i.Graph());
      std::vector<Node> next = {i + ScalarLike(i, 1), Reshape(outs.at(0), {})};
      next.insert(next.end(), outs.begin() + 1, outs.end());
      if (has_m) next.push_back(carry.back());
      return next;
    };
    std::vector<Node> res = While(cond_fn, body_fn, w_init);
    return std::vector<Out>(res.begin() + 2, res.begin() + 2 + carried);
  });

  RegisterOp("Scan", [](OpContext& c) -> std::vector<Out> {
    const auto& body = c.GraphAttr("body");
    const int m = static_cast<int>(c.Int("num_scan_inputs", 0));
    const int first = c.Opset() < 9 ? 1 : 0;  // opset 8: sequence_lens first
    const int n = c.NumInputs() - first - m;
    const int k = body.output_size() - n;
    if (n < 0 || k < 0 || m <= 0) c.Fail("the body's outputs do not match the inputs");
    std::vector<Node> init, xs;
    for (int i = 0; i < n; ++i) init.push_back(c.In(first + i));
    for (int j = 0; j < m; ++j) xs.push_back(c.In(first + n + j));
    if (c.Opset() >= 9) {
      return ScanOver(c, body, init, xs, c.IntsAttr("scan_input_axes", std::vector<int64_t>(m, 0)),
                      c.IntsAttr("scan_input_directions", std::vector<int64_t>(m, 0)),
                      c.IntsAttr("scan_output_axes", std::vector<int64_t>(k, 0)),
                      c.IntsAttr("scan_output_directions", std::vector<int64_t>(k, 0)), k);
    }
    // Opset 8: every input has a leading batch axis, scanned along axis 1;
    // each batch element is its own scan.
    if (xs[0].Rank() < 2) c.Fail("scanned inputs must be [batch, sequence, ...]");
    const int64_t batch = xs[0].Shape().Dim(0), steps = xs[0].Shape().Dim(1);
    if (batch > 4096) c.Fail("a batch of more than 4096 (one scan each) is not supported");
    if (c.Has(0)) {
      for (int64_t len : c.Ints(0, "sequence_lens")) {
        if (len != steps) c.Fail("sequence_lens shorter than the scanned axis is not supported");
      }
    }
    const auto dirs = c.IntsAttr("directions", std::vector<int64_t>(m, 0));
    std::vector<std::vector<Node>> per_output(static_cast<size_t>(n + k));
    for (int64_t b = 0; b < batch; ++b) {
      auto pick = [b](Node v) { return Squeeze(SliceAxis(v, 0, b, b + 1), {0}); };
      std::vector<Node> ib, xb;
      for (Node v : init) ib.push_back(pick(v));
      for (Node v : xs) xb.push_back(pick(v));
      std::vector<Out> outs = ScanOver(c, body, ib, xb, std::vector<int64_t>(m, 0), dirs, std::vector<int64_t>(k, 0),
                                       std::vector<int64_t>(k, 0), k);
      for (size_t o = 0; o < outs.size(); ++o) per_output[o].push_back(outs[o].node);
    }
    std::vector<Out> result;
    for (auto& parts : per_output) result.push_back(Stack(parts, 0));
    return result;
  });
  // ---- The training domain's optimizer steps (ai.onnx.preview.training).
  // Inputs: R (learning rate), T (step count), then the tensors X..., their
  // gradients G..., and the optimizer states, n of each.
  RegisterOp("training:Adagrad", [](OpContext& c) -> std::vector<Out> {
    const int n = (c.NumInputs() - 2) / 3;
    if (n <= 0 || c.NumInputs() != 2 + 3 * n) c.Fail("expects R, T and n each of X, G, H");
    Node r = Reshape(c.In(0), {}), t = Reshape(c.In(1), {});
    const double decay = c.Float("decay_factor", 0), eps = c.Float("epsilon", 1e-6f), norm = c.Float("norm_coefficient", 0);
    Node rate = r / (ScalarLike(r, 1) + ConvertDType(t, r.DType()) * ScalarLike(r, decay));
    std::vector<Out> xs, hs;
    for (int k = 0; k < n; ++k) {
      Node x = c.In(2 + k), g = c.In(2 + n + k), h = c.In(2 + 2 * n + k);
      Node gr = ScalarLike(x, norm) * x + g;
      Node hn = h + gr * gr;
      xs.push_back(x - ConvertDType(rate, x.DType()) * gr / (Sqrt(hn) + ScalarLike(x, eps)));
      hs.push_back(hn);
    }
    xs.insert(xs.end(), hs.begin(), hs.end());
    return xs;
  });
  RegisterOp("training:Momentum", [](OpContext& c) -> std::vector<Out> {
    const int n = (c.NumInputs() - 2) / 3;
    if (n <= 0 || c.NumInputs() != 2 + 3 * n) c.Fail("expects R, T and n each of X, G, V");
    Node r = Reshape(c.In(0), {}), t = Reshape(c.In(1), {});
    const double alpha = c.Float("alpha", 0), beta = c.Float("beta", 0), norm = c.Float("norm_coefficient", 0);
    const std::string mode = c.Str("mode", "standard");
    if (mode != "standard" && mode != "nesterov") c.Fail("mode \"" + mode + "\" is not supported");
    std::vector<Out> xs, vs;
    for (int k = 0; k < n; ++k) {
      Node x = c.In(2 + k), g = c.In(2 + n + k), v = c.In(2 + 2 * n + k);
      Node gr = ScalarLike(x, norm) * x + g;
      // The first step (T = 0) takes the gradient unscaled.
      Node b = Where(GreaterThan(t, ZerosLike(t)), ScalarLike(x, beta), ScalarLike(x, 1));
      Node vn = ScalarLike(x, alpha) * v + b * gr;
      Node rx = ConvertDType(r, x.DType());
      xs.push_back(mode == "standard" ? x - rx * vn : x - rx * (gr + ScalarLike(x, alpha) * vn));
      vs.push_back(vn);
    }
    xs.insert(xs.end(), vs.begin(), vs.end());
    return xs;
  });
  RegisterOp("training:Adam", [](OpContext& c) -> std::vector<Out> {
    const int n = (c.NumInputs() - 2) / 4;
    if (n <= 0 || c.NumInputs() != 2 + 4 * n) c.Fail("expects R, T and n each of X, G, V, H");
    Node r = Reshape(c.In(0), {}), t = Reshape(c.In(1), {});
    const double alpha = c.Float("alpha", 0.9f), beta = c.Float("beta", 0.999f), eps = c.Float("epsilon", 1e-6f);
    const double norm = c.Float("norm_coefficient", 0), post = c.Float("norm_coefficient_post", 0);
    Node tf = ConvertDType(t, dtypes::Float64);
    Node one = ScalarLike(tf, 1);
    Node corrected = ConvertDType(r, dtypes::Float64) * Sqrt(one - Pow(ScalarLike(tf, beta), tf)) /
                     (one - Pow(ScalarLike(tf, alpha), tf));
    Node rate = Where(GreaterThan(tf, ZerosLike(tf)), corrected, ConvertDType(r, dtypes::Float64));
    std::vector<Out> xs, vs, hs;
    for (int k = 0; k < n; ++k) {
      Node x = c.In(2 + k), g = c.In(2 + n + k), v = c.In(2 + 2 * n + k), h = c.In(2 + 3 * n + k);
      Node gr = ScalarLike(x, norm) * x + g;
      Node vn = ScalarLike(x, alpha) * v + ScalarLike(x, 1 - alpha) * gr;
      Node hn = ScalarLike(x, beta) * h + ScalarLike(x, 1 - beta) * gr * gr;
      Node xn = x - ConvertDType(rate, x.DType()) * vn / (Sqrt(hn) + ScalarLike(x, eps));
      xs.push_back(ScalarLike(x, 1 - post) * xn);
      vs.push_back(vn);
      hs.push_back(hn);
    }
    xs.insert(xs.end(), vs.begin(), vs.end());
    xs.insert(xs.end(), hs.begin(), hs.end());
    return xs;
  });
}

}  // namespace kiln::onnx::internal
