// Copyright 2026 The Kiln Authors.
// ONNX recurrent layers RNN, GRU and LSTM: the input projection of every
// step in one matmul, then a graph::Scan over time carrying the hidden (and
// cell) state; forward, reverse or bidirectional; sequence_lens masks.
#include <algorithm>
#include <cctype>
#include <cstring>

#include "kiln/graph/control_flow.h"
#include "kiln/graph/ops.h"
#include "kiln/graph/sort.h"
#include "src/onnx/converter.h"

namespace kiln::onnx::internal {
namespace {

using graph::Node;

Node S(Node x, double v) { return graph::ScalarLike(x, v); }

// An ONNX activation function by name, with its alpha/beta.
using Activation = std::function<Node(Node)>;

// An activation's name as the spec spells it: names match without regard to
// case, as onnxruntime does ("tanh" is "Tanh").
std::string CanonicalActivation(const std::string& given) {
  for (const char* known : {"Sigmoid", "Tanh", "Relu", "Affine", "LeakyRelu", "ThresholdedRelu", "ScaledTanh",
                            "HardSigmoid", "Elu", "Softsign", "Softplus"}) {
    if (given.size() == std::strlen(known) &&
        std::equal(given.begin(), given.end(), known, [](char a, char b) { return std::tolower(a) == std::tolower(b); })) {
      return known;
    }
  }
  return given;
}

Activation MakeActivation(const OpContext& c, const std::string& name, float alpha, float beta) {
  using namespace graph;  // NOLINT
  if (name == "Sigmoid") return [](Node x) { return Logistic(x); };
  if (name == "Tanh") return [](Node x) { return Tanh(x); };
  if (name == "Relu") return [](Node x) { return Max(x, ZerosLike(x)); };
  if (name == "Affine") return [alpha, beta](Node x) { return S(x, alpha) * x + S(x, beta); };
  if (name == "LeakyRelu") return [alpha](Node x) { return Where(LessThan(x, ZerosLike(x)), S(x, alpha) * x, x); };
  if (name == "ThresholdedRelu") return [alpha](Node x) { return Where(GreaterThan(x, S(x, alpha)), x, ZerosLike(x)); };
  if (name == "ScaledTanh") return [alpha, beta](Node x) { return S(x, alpha) * Tanh(S(x, beta) * x); };
  if (name == "HardSigmoid") {
    return [alpha, beta](Node x) { return Max(ZerosLike(x), Min(OnesLike(x), S(x, alpha) * x + S(x, beta))); };
  }
  if (name == "Elu") return [alpha](Node x) { return Where(LessThan(x, ZerosLike(x)), S(x, alpha) * Expm1(x), x); };
  if (name == "Softsign") return [](Node x) { return x / (S(x, 1) + Abs(x)); };
  if (name == "Softplus") return [](Node x) { return Max(x, ZerosLike(x)) + Log1p(Exp(-Abs(x))); };
  c.Fail("activation \"" + name + "\" is not supported");
}

// The gates' activations for each direction: `per_dir` names per direction
// (RNN 1, GRU 2, LSTM 3), defaults `defaults`.
std::vector<std::vector<Activation>> Activations(const OpContext& c, int dirs, const std::vector<std::string>& defaults) {
  std::vector<std::string> names = c.Strings("activations");
  for (auto& n : names) n = CanonicalActivation(n);
  const auto alphas = c.Floats("activation_alpha");
  const auto betas = c.Floats("activation_beta");
  const size_t per = defaults.size();
  if (names.empty()) {
    for (int d = 0; d < dirs; ++d) names.insert(names.end(), defaults.begin(), defaults.end());
  }
  if (names.size() != per * static_cast<size_t>(dirs)) c.Fail("activations must list " + std::to_string(per * dirs) + " functions");
  // Alpha/beta are consumed in order by the functions that take them.
  auto takes_alpha = [](const std::string& n) {
    return n == "Affine" || n == "LeakyRelu" || n == "ThresholdedRelu" || n == "ScaledTanh" || n == "HardSigmoid" ||
           n == "Elu";
  };
  auto takes_beta = [](const std::string& n) { return n == "Affine" || n == "ScaledTanh" || n == "HardSigmoid"; };
  size_t ai = 0, bi = 0;
  std::vector<std::vector<Activation>> out(static_cast<size_t>(dirs));
  for (size_t k = 0; k < names.size(); ++k) {
    float alpha = names[k] == "LeakyRelu" ? 0.01f : names[k] == "HardSigmoid" ? 0.2f : 1.0f;
    float beta = names[k] == "HardSigmoid" ? 0.5f : 0.0f;
    if (takes_alpha(names[k]) && ai < alphas.size()) alpha = alphas[ai++];
    if (takes_beta(names[k]) && bi < betas.size()) beta = betas[bi++];
    out[k / per].push_back(MakeActivation(c, names[k], alpha, beta));
  }
  return out;
}

// Reverses each batch element's first lens[b] steps along axis 0 of a
// time-major [T, B, ...] value (ONNX ReverseSequence with time_axis 0).
Node ReverseValid(Node x, Node lens) {
  const int64_t t = x.Shape().Dim(0);
  const shapes::Shape is(dtypes::Int64, {t, x.Shape().Dim(1)});
  Node step = graph::Iota(x.Graph(), is, 0);
  Node len = graph::BroadcastInDim(graph::ConvertDType(lens, dtypes::Int64), is.Dims(), {1});
  Node src = graph::Where(graph::LessThan(step, len), len - graph::ScalarLike(len, 1) - step, step);
  std::vector<int64_t> full = x.Shape().Dims();
  std::vector<int> axes = {0, 1};
  Node idx = graph::BroadcastInDim(src, full, axes);
  return graph::TakeAlongAxis(x, idx, 0);
}

enum class Cell { kRnn, kGru, kLstm };

std::vector<Out> Recurrent(OpContext& c, Cell cell) {
  using namespace graph;  // NOLINT
  const int gates = cell == Cell::kRnn ? 1 : cell == Cell::kGru ? 3 : 4;
  Node x = c.In(0), w = c.In(1), r = c.In(2);
  const bool batch_first = c.Int("layout", 0) != 0;
  if (x.Rank() != 3 || w.Rank() != 3 || r.Rank() != 3) c.Fail("X, W and R must be 3-D");
  if (batch_first) x = Transpose(x, {1, 0, 2});
  const int64_t steps = x.Shape().Dim(0), batch = x.Shape().Dim(1);
  const int64_t hidden = c.Int("hidden_size", r.Shape().Dim(-1));
  const std::string direction = c.Str("direction", "forward");
  const int dirs = direction == "bidirectional" ? 2 : 1;
  if (direction != "forward" && direction != "reverse" && direction != "bidirectional") c.Fail("unknown direction");
  if (w.Shape().Dim(0) != dirs || w.Shape().Dim(1) != gates * hidden) {
    c.Fail("W " + w.Shape().ToString() + " does not match " + std::to_string(dirs) + " directions of " +
           std::to_string(gates) + " x " + std::to_string(hidden) + " gates");
  }
  const float clip = c.Float("clip", 0.0f);
  const bool has_clip = c.HasAttr("clip");
  const bool linear_before_reset = c.Int("linear_before_reset", 0) != 0;
  if (cell == Cell::kLstm && c.Int("input_forget", 0) != 0) c.Fail("input_forget is not supported");
  const std::vector<std::string> defaults = cell == Cell::kRnn   ? std::vector<std::string>{"Tanh"}
                                            : cell == Cell::kGru ? std::vector<std::string>{"Sigmoid", "Tanh"}
                                                                 : std::vector<std::string>{"Sigmoid", "Tanh", "Tanh"};
  const auto acts = Activations(c, dirs, defaults);
  Node b = c.InOr(3), lens = c.InOr(4), h0 = c.InOr(5);
  Node c0 = cell == Cell::kLstm ? c.InOr(6) : Node();
  // layout = 1 gives the initial states as [batch, directions, hidden].
  if (batch_first && h0.Ok()) h0 = Transpose(h0, {1, 0, 2});
  if (batch_first && c0.Ok()) c0 = Transpose(c0, {1, 0, 2});
  Node peep = cell == Cell::kLstm ? c.InOr(7) : Node();
  auto clipped = [&](Node v) { return has_clip ? Clamp(S(v, -clip), v, S(v, clip)) : v; };

  std::vector<Node> ys, hs, cs;
  for (int d = 0; d < dirs; ++d) {
    const bool reverse = direction == "reverse" || d == 1;
    Node wd = Reshape(SliceAxis(w, 0, d, d + 1), {gates * hidden, -1});
    Node rd = Reshape(SliceAxis(r, 0, d, d + 1), {gates * hidden, hidden});
    Node wb, rb;
    if (b.Ok()) {
      Node bd = Reshape(SliceAxis(b, 0, d, d + 1), {2 * gates * hidden});
      wb = SliceAxis(bd, 0, 0, gates * hidden);
      rb = SliceAxis(bd, 0, gates * hidden, 2 * gates * hidden);
    }
    Node xs = x;
    if (reverse) xs = lens.Ok() ? ReverseValid(x, lens) : Reverse(x, {0});
    // Every step's input projection at once: [T, B, gates * hidden].
    Node xw = DotGeneral(xs, {2}, {}, wd, {1}, {});
    if (wb.Ok()) xw = xw + wb;
    Node h = h0.Ok() ? Reshape(SliceAxis(h0, 0, d, d + 1), {batch, hidden}) : Zeros(x.Graph(), shapes::Shape(x.DType(), {batch, hidden}));
    Node cst = c0.Ok() ? Reshape(SliceAxis(c0, 0, d, d + 1), {batch, hidden}) : Zeros(x.Graph(), shapes::Shape(x.DType(), {batch, hidden}));
    Node pd = peep.Ok() ? Reshape(SliceAxis(peep, 0, d, d + 1), {3 * hidden}) : Node();
    Node step_ids = Iota(x.Graph(), shapes::Shape(dtypes::Int64, {steps}), 0);
    Node len64 = lens.Ok() ? ConvertDType(lens, dtypes::Int64) : Node();
    const auto& f = acts[d];
    auto gate = [&](Node v, int k) { return SliceAxis(v, 1, k * hidden, (k + 1) * hidden); };
    auto body = [&](const std::vector<Node>& carry, const std::vector<Node>& in) -> std::vector<Node> {
      Node hp = carry[0], cp = carry.size() > 1 ? carry[1] : Node();
      Node xt = in[0], t = in[1];
      Node hr = DotGeneral(hp, {1}, {}, rd, {1}, {});  // [B, gates * hidden]
      Node hn, cn;
      if (cell == Cell::kRnn) {
        Node pre = xt + hr;
        if (rb.Ok()) pre = pre + rb;
        hn = f[0](clipped(pre));
      } else if (cell == Cell::kGru) {
        Node rbz, rbr, rbh;
        if (rb.Ok()) {
          rbz = SliceAxis(rb, 0, 0, hidden);
          rbr = SliceAxis(rb, 0, hidden, 2 * hidden);
          rbh = SliceAxis(rb, 0, 2 * hidden, 3 * hidden);
        }
        auto add_b = [](Node v, Node bias) { return bias.Ok() ? v + bias : v; };
        Node z = f[0](clipped(add_b(gate(xt, 0) + gate(hr, 0), rbz)));
        Node rg = f[0](clipped(add_b(gate(xt, 1) + gate(hr, 1), rbr)));
        Node cand;
        if (linear_before_reset) {
          cand = gate(xt, 2) + rg * add_b(gate(hr, 2), rbh);
        } else {
          Node rh = DotGeneral(rg * hp, {1}, {}, SliceAxis(rd, 0, 2 * hidden, 3 * hidden), {1}, {});
          cand = add_b(gate(xt, 2) + rh, rbh);
        }
        Node hh = f[1](clipped(cand));
        hn = (S(z, 1) - z) * hh + z * hp;
      } else {
        Node pre = xt + hr;
        if (rb.Ok()) pre = pre + rb;
        Node pi = gate(pre, 0), po = gate(pre, 1), pf = gate(pre, 2), pc = gate(pre, 3);
        if (pd.Ok()) {
          pi = pi + SliceAxis(pd, 0, 0, hidden) * cp;
          pf = pf + SliceAxis(pd, 0, 2 * hidden, 3 * hidden) * cp;
        }
        Node ig = f[0](clipped(pi)), fg = f[0](clipped(pf)), cc = f[1](clipped(pc));
        cn = fg * cp + ig * cc;
        if (pd.Ok()) po = po + SliceAxis(pd, 0, hidden, 2 * hidden) * cn;
        Node og = f[0](clipped(po));
        hn = og * f[2](cn);
      }
      Node y = hn;
      if (len64.Ok()) {
        // Steps past a sequence's length keep its state and output zeros.
        Node valid = BroadcastInDim(LessThan(BroadcastTo(t, {batch}), len64), {batch, hidden}, {0});
        hn = Where(valid, hn, hp);
        if (cn.Ok()) cn = Where(valid, cn, cp);
        y = Where(valid, y, ZerosLike(y));
      }
      std::vector<Node> next = {hn};
      if (cn.Ok()) next.push_back(cn);
      next.push_back(y);
      return next;
    };
    std::vector<Node> init = {h};
    if (cell == Cell::kLstm) init.push_back(cst);
    ScanResult res = Scan(body, init, {xw, step_ids});
    Node y = res.stacked.at(0);  // [T, B, hidden], in processing order
    if (reverse) y = lens.Ok() ? ReverseValid(y, lens) : Reverse(y, {0});
    ys.push_back(ExpandAxes(y, {1}));
    hs.push_back(ExpandAxes(res.carry[0], {0}));
    if (cell == Cell::kLstm) cs.push_back(ExpandAxes(res.carry[1], {0}));
  }
  Node y = dirs == 1 ? ys[0] : Concatenate(ys, 1);  // [T, dirs, B, hidden]
  Node yh = dirs == 1 ? hs[0] : Concatenate(hs, 0);
  if (batch_first) {
    y = Transpose(y, {2, 0, 1, 3});
    yh = Transpose(yh, {1, 0, 2});
  }
  std::vector<Out> outs = {y, yh};
  if (cell == Cell::kLstm) {
    Node yc = dirs == 1 ? cs[0] : Concatenate(cs, 0);
    if (batch_first) yc = Transpose(yc, {1, 0, 2});
    outs.push_back(yc);
  }
  return outs;
}

}  // namespace

void RegisterRecurrentOps() {
  RegisterOp("RNN", [](OpContext& c) { return Recurrent(c, Cell::kRnn); });
  RegisterOp("GRU", [](OpContext& c) { return Recurrent(c, Cell::kGru); });
  RegisterOp("LSTM", [](OpContext& c) { return Recurrent(c, Cell::kLstm); });
  RegisterOp("ReverseSequence", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int time_axis = NormAxis(c, c.Int("time_axis", 0), x.Rank());
    const int batch_axis = NormAxis(c, c.Int("batch_axis", 1), x.Rank());
    if (time_axis == batch_axis || x.Rank() < 2) c.Fail("time_axis and batch_axis must be two different axes");
    // Bring time and batch to the front, reverse, and put them back.
    std::vector<int> perm = {time_axis, batch_axis};
    for (int d = 0; d < x.Rank(); ++d) {
      if (d != time_axis && d != batch_axis) perm.push_back(d);
    }
    std::vector<int> inv(perm.size());
    for (size_t k = 0; k < perm.size(); ++k) inv[static_cast<size_t>(perm[k])] = static_cast<int>(k);
    return {graph::Transpose(ReverseValid(graph::Transpose(x, perm), c.In(1)), inv)};
  });
}

}  // namespace kiln::onnx::internal
