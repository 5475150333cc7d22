// Copyright 2026 The Kiln Authors.
// The Attention op (see kiln/graph/attention.h): checks, shape rule, and its
// VJP: the fused AttentionGrad op where the backend has it, else written with
// graph ops (either way the weights are recomputed from q and k).
#include "kiln/graph/attention.h"

#include <cmath>
#include <string>
#include <vector>

#include "kiln/backends/backend.h"
#include "kiln/graph/autodiff.h"
#include "kiln/graph/ops.h"
#include "src/graph/attention_internal.h"
#include "src/graph/op_builder.h"
#include "src/graph/tracing.h"
#include "src/graph/vjp.h"

namespace kiln::graph {

using internal::OpError;

namespace {

constexpr std::string_view kOp = "Attention";

// The composed gradients (dq, dk, dv) of Attention for the output's
// cotangent d_out. With P the weights: dV = Pᵀ dO, dP = dO Vᵀ,
// dS = P (dP - rowsum(dP P)) (zero at masked scores, which are constants),
// dQ = scale dS K, dK = scale dSᵀ Q; a kv head sums over its query heads.
std::vector<Node> ComposedAttentionGrads(const ir::AttentionAttrs& a, const Node& q, const Node& k, const Node& v,
                                         const Node& mask, const Node& cotangent, const Loc& loc) {
  // The op computes in full precision: its gradient recomputes the weights
  // exactly as the forward pass did, whatever the dots' default precision.
  const DotPrecisionScope precision(ir::DotPrecision::kHighest);
  const auto& qd = q.Shape().Dims();
  const int64_t kv_heads = k.Shape().Dim(1), group = qd[1] / kv_heads;
  const std::vector<int64_t> split = {qd[0], kv_heads, group, qd[2], qd[3]};
  Node q5 = Reshape(q, split, loc);
  internal::AttentionWeights w =
      internal::ComposedAttentionWeights(q5, "bngqd", k, mask, a.scale, a.causal, a.masked_value, loc);
  Node d_out = Reshape(cotangent, split, loc);
  Node dv = Einsum("bngqk,bngqd->bnkd", w.p, d_out, loc);
  Node dp = Einsum("bngqd,bnkd->bngqk", d_out, v, loc);
  Node ds = w.p * (dp - ExpandAxes(ReduceSum(dp * w.p, {4}, loc), {4}, loc));
  if (w.allowed.Ok()) ds = Where(w.allowed, ds, ZerosLike(ds), loc);
  Node dq = Reshape(Einsum("bngqk,bnkd->bngqd", ds, k, loc) * a.scale, qd, loc);
  Node dk = Einsum("bngqk,bngqd->bnkd", ds, q5, loc) * a.scale;
  return {dq, dk, dv};
}

// Where the backend implements AttentionGrad, one fused op (the weights
// recomputed block by block, never the whole score matrix); else the
// composed gradients.
std::vector<Node> AttentionVJP(const internal::VJPArgs& args) {
  const auto& a = ir::Attr<ir::AttentionAttrs>(args.instr);
  const Node &q = args.operands[0], &k = args.operands[1], &v = args.operands[2];
  const Node mask = args.operands.size() > 3 ? args.operands[3] : Node();
  std::vector<Node> grads;
  const backends::Capabilities* target = args.g->Target();
  if (target != nullptr && target->SupportsOp(ir::OpType::kAttentionGrad)) {
    std::vector<Node> operands = {q, k, v, args.output, args.cotangent};
    if (mask.Ok()) operands.push_back(mask);
    Graph* g = internal::TargetGraph(operands, "AttentionGrad", args.loc);
    grads = internal::EmitTuple(g, ir::OpType::kAttentionGrad, operands, a,
                                {q.Shape(), k.Shape(), v.Shape()}, args.loc);
  } else {
    grads = ComposedAttentionGrads(a, q, k, v, mask, args.cotangent, args.loc);
  }
  if (mask.Ok()) grads.push_back(Node());
  return grads;
}

// AttentionGrad's own gradient (second order) differentiates the composed
// gradients, which do not read `out`: they give the whole dependence on q,
// k and v, so `out` gets none. They are built on leaf copies of the operands
// (distinct identity instructions), so the inner VJP stops there: d_out
// usually depends on q, k and v too (through `out`), and that path is the
// enclosing VJP's to follow, through d_out's gradient.
std::vector<Node> AttentionGradVJP(const internal::VJPArgs& args) {
  const auto& a = ir::Attr<ir::AttentionAttrs>(args.instr);
  auto leaf = [&](const Node& x) { return internal::Identity(x, args.loc); };
  const Node q = leaf(args.operands[0]), k = leaf(args.operands[1]), v = leaf(args.operands[2]);
  const Node d_out = leaf(args.operands[4]);
  const Node mask = args.operands.size() > 5 ? args.operands[5] : Node();
  const std::vector<Node> composed = ComposedAttentionGrads(a, q, k, v, mask, d_out, args.loc);
  std::vector<Node> outputs, cotangents;
  for (size_t i = 0; i < composed.size(); ++i) {
    if (i < args.cotangents.size() && args.cotangents[i].Ok()) {
      outputs.push_back(composed[i]);
      cotangents.push_back(args.cotangents[i]);
    }
  }
  std::vector<Node> grads(args.operands.size());
  if (outputs.empty()) return grads;
  const std::vector<Node> g = VJP(outputs, cotangents, {q, k, v, d_out}, args.loc);
  grads[0] = g[0];
  grads[1] = g[1];
  grads[2] = g[2];
  grads[4] = g[3];
  return grads;
}

}  // namespace

Node Attention(Node q, Node k, Node v, Node mask, AttentionOptions o, Loc loc) {
  std::vector<Node> operands = {q, k, v};
  if (mask.Ok()) operands.push_back(mask);
  for (const Node& n : operands) internal::CheckNode(n, kOp, loc);
  Graph* g = internal::CheckSameGraph(operands, kOp, loc);
  const std::string shapes = "q " + q.Shape().ToString() + ", k " + k.Shape().ToString() + ", v " +
                             v.Shape().ToString() + (mask.Ok() ? ", mask " + mask.Shape().ToString() : "");
  if (q.DType() != dtypes::Float32 && q.DType() != dtypes::Float64) {
    OpError(loc, kOp, "q, k and v must be Float32 or Float64, got " + shapes);
  }
  if (q.Rank() != 4 || k.Shape() != v.Shape() || k.Rank() != 4 || k.DType() != q.DType() ||
      k.Shape().Dim(0) != q.Shape().Dim(0) || k.Shape().Dim(3) != q.Shape().Dim(3) || k.Shape().Dim(1) < 1 ||
      q.Shape().Dim(1) % k.Shape().Dim(1) != 0) {
    OpError(loc, kOp, "needs q [batch, heads, q_len, head_dim] and k, v [batch, kv_heads, kv_len, head_dim] of one "
                      "dtype, heads a multiple of kv_heads; got " + shapes);
  }
  const int64_t batch = q.Shape().Dim(0), heads = q.Shape().Dim(1), q_len = q.Shape().Dim(2);
  const int64_t kv_len = k.Shape().Dim(2);
  if (mask.Ok()) {
    const auto& m = mask.Shape().Dims();
    if (mask.DType() != dtypes::Bool || mask.Rank() != 4 || (m[0] != 1 && m[0] != batch) ||
        (m[1] != 1 && m[1] != heads) || m[2] != q_len || m[3] != kv_len) {
      OpError(loc, kOp, "mask must be Bool [batch or 1, heads or 1, q_len, kv_len], got " + shapes);
    }
  }
  if (!std::isfinite(o.scale) || !std::isfinite(o.masked_value)) {
    OpError(loc, kOp, "scale and masked_value must be finite (a row with every key hidden would be NaN), got " +
                          std::to_string(o.scale) + " and " + std::to_string(o.masked_value));
  }
  if (o.causal && q_len > kv_len) {
    OpError(loc, kOp, "causal attention needs q_len <= kv_len, got " + shapes);
  }
  ir::AttentionAttrs attrs{.scale = o.scale, .causal = o.causal,
                           .masked_value = o.masked_value != 0 ? o.masked_value : -1e9};
  return internal::Emit(g, ir::OpType::kAttention, operands, q.Shape(), attrs, loc);
}

namespace internal {

AttentionWeights ComposedAttentionWeights(const Node& q, const std::string& q_axes, const Node& k, const Node& mask,
                                          double scale, bool causal, double masked_value, const Loc& loc) {
  const int64_t batch = k.Shape().Dim(0), kv_heads = k.Shape().Dim(1), kv_len = k.Shape().Dim(2);
  const int64_t group = q.Shape().Dim(static_cast<int>(q_axes.find('g')));
  const int64_t q_len = q.Shape().Dim(static_cast<int>(q_axes.find('q')));
  Node s = Einsum(q_axes + ",bnkd->bngqk", q * scale, k, loc);
  Node allowed;
  if (mask.Ok()) {
    // To [batch, heads, q, kv] (numpy broadcasting), then split the heads.
    Node m = BroadcastTo(mask, {batch, kv_heads * group, q_len, kv_len}, loc);
    allowed = Reshape(m, {batch, kv_heads, group, q_len, kv_len}, loc);
  }
  if (causal) {
    const shapes::Shape is = shapes::Make(dtypes::Int64, q_len, kv_len);
    Node c = LessOrEqual(Iota(q.Graph(), is, 1, loc), Iota(q.Graph(), is, 0, loc) + (kv_len - q_len), loc);
    allowed = allowed.Ok() ? LogicalAnd(allowed, c, loc) : c;
  }
  if (allowed.Ok()) s = Where(allowed, s, ScalarLike(s, masked_value), loc);
  return {Softmax(s, -1, loc), allowed};
}

void RegisterAttentionVJPs(VJPTable& table) {
  table[static_cast<size_t>(ir::OpType::kAttention)] = AttentionVJP;
  table[static_cast<size_t>(ir::OpType::kAttentionGrad)] = AttentionGradVJP;
}
}  // namespace internal

}  // namespace kiln::graph
