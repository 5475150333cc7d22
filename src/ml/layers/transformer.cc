// Copyright 2026 The Kiln Authors.
// Dot-product attention with grouped heads, and the pre-norm transformer
// block (see kiln/ml/layers/transformer.h).
#include "kiln/ml/layers/transformer.h"

#include <cmath>
#include <string>

#include "kiln/graph/ops.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

using internal::LayerError;

Node DotProductAttention(Node q, Node k, Node v, bool causal, Node mask) {
  constexpr std::string_view kOp = "DotProductAttention";
  internal::CheckFloat(kOp, q, "q");
  internal::CheckFloat(kOp, k, "k");
  internal::CheckFloat(kOp, v, "v");
  if (q.Rank() != 4 || k.Rank() != 4 || v.Rank() != 4 || k.Shape() != v.Shape() || q.DType() != k.DType() ||
      q.Shape().Dims()[0] != k.Shape().Dims()[0] || q.Shape().Dims()[3] != k.Shape().Dims()[3]) {
    LayerError(kOp, "q must be [batch, q_len, heads, head_dim] and k, v [batch, kv_len, kv_heads, head_dim] of one "
                    "dtype, got q " + q.Shape().ToString() + ", k " + k.Shape().ToString() + ", v " +
                        v.Shape().ToString());
  }
  const auto& qd = q.Shape().Dims();
  const int64_t batch = qd[0], q_len = qd[1], heads = qd[2], head_dim = qd[3];
  const int64_t kv_len = k.Shape().Dims()[1], kv_heads = k.Shape().Dims()[2];
  if (kv_heads < 1 || heads % kv_heads != 0) {
    LayerError(kOp, "the query heads (" + std::to_string(heads) + ") must be a multiple of the key/value heads (" +
                        std::to_string(kv_heads) + ")");
  }
  if (causal && q_len > kv_len) {
    LayerError(kOp, "causal attention needs q_len <= kv_len, got " + std::to_string(q_len) + " and " +
                        std::to_string(kv_len));
  }
  const int64_t group = heads / kv_heads;
  // q as [batch, q_len, kv_heads, group, head_dim]: each group of query heads
  // shares one key/value head, with no copy of k or v.
  Node qg = graph::Reshape(q * (1 / std::sqrt(static_cast<double>(head_dim))), {batch, q_len, kv_heads, group, head_dim});
  Node scores = graph::Einsum("bqngd,bknd->bngqk", qg, k);  // [batch, kv_heads, group, q_len, kv_len]
  Node allowed;
  if (mask.Ok()) {
    if (mask.DType() != dtypes::Bool || mask.Rank() > 4) {
      LayerError(kOp, "mask must be Bool, broadcastable to [batch, heads, q_len, kv_len], got " + mask.Shape().ToString());
    }
    // To [batch, heads, q, kv] (numpy broadcasting), then split the heads.
    Node m = graph::BroadcastTo(mask, {batch, heads, q_len, kv_len});
    allowed = graph::Reshape(m, {batch, kv_heads, group, q_len, kv_len});
  }
  if (causal) {
    // Query i sits at position kv_len - q_len + i.
    const shapes::Shape s = shapes::Make(dtypes::Int64, q_len, kv_len);
    Node c = graph::LessOrEqual(graph::Iota(q.Graph(), s, 1),
                                graph::Iota(q.Graph(), s, 0) + graph::Const(q.Graph(), kv_len - q_len));
    allowed = allowed.Ok() ? graph::LogicalAnd(allowed, c) : c;
  }
  if (allowed.Ok()) scores = graph::Where(allowed, scores, graph::ScalarLike(scores, internal::MaskedScore(scores.DType())));
  Node weights = graph::Softmax(scores, -1);
  Node out = graph::Einsum("bngqk,bknd->bqngd", weights, v);
  return graph::Reshape(out, {batch, q_len, heads, head_dim});
}

namespace {

Node Norm(const Context& ctx, const Node& x, const std::string& kind) {
  return kind == "rms" ? RMSNorm(ctx, x) : LayerNorm(ctx, x);
}

Node Dropped(const Context& ctx, const Node& x, double rate) { return rate > 0 ? Dropout(ctx, x, rate) : x; }

}  // namespace

Node TransformerBlock(Context ctx, Node x, const TransformerOptions& o) {
  constexpr std::string_view kLayer = "TransformerBlock";
  internal::CheckFloat(kLayer, x);
  if (x.Rank() != 3) LayerError(kLayer, "x must be [batch, time, dim], got " + x.Shape().ToString());
  const auto& d = x.Shape().Dims();
  const int64_t batch = d[0], time = d[1], dim = d[2];
  const int heads = o.num_heads, kv_heads = o.num_kv_heads == 0 ? o.num_heads : o.num_kv_heads;
  if (heads < 1 || kv_heads < 1 || heads % kv_heads != 0) {
    LayerError(kLayer, "num_heads (" + std::to_string(heads) + ") must be a positive multiple of num_kv_heads (" +
                           std::to_string(kv_heads) + ")");
  }
  const int64_t head_dim = o.head_dim > 0 ? o.head_dim : dim / heads;
  if (head_dim < 1 || (o.head_dim == 0 && dim % heads != 0)) {
    LayerError(kLayer, "dim " + std::to_string(dim) + " is not divisible by num_heads " + std::to_string(heads) +
                           " (set head_dim)");
  }
  if (o.mlp != "gelu" && o.mlp != "swiglu") LayerError(kLayer, "mlp must be \"gelu\" or \"swiglu\", got \"" + o.mlp + "\"");
  if (o.norm != "layer" && o.norm != "rms") LayerError(kLayer, "norm must be \"layer\" or \"rms\", got \"" + o.norm + "\"");
  if (!(o.dropout >= 0 && o.dropout < 1)) {
    LayerError(kLayer, "dropout must be in [0, 1), got " + internal::FormatNumber(o.dropout));
  }
  if (o.cache_length < 0 || (o.cache_length > 0 && (!o.causal || o.padding_mask.Ok() || time > o.cache_length))) {
    LayerError(kLayer, "cache_length " + std::to_string(o.cache_length) +
                           " needs causal attention, no padding_mask and time <= cache_length (time " +
                           std::to_string(time) + ")");
  }
  if (o.padding_mask.Ok() && o.padding_mask.Shape() != shapes::Shape(dtypes::Bool, {batch, time})) {
    LayerError(kLayer, "padding_mask must be Bool[" + std::to_string(batch) + ", " + std::to_string(time) +
                           "], got " + o.padding_mask.Shape().ToString());
  }

  // Attention.
  Node h = Norm(ctx.In("attention_norm"), x, o.norm);
  Node q = graph::Reshape(Dense(ctx.In("query"), h, heads * head_dim, o.bias), {batch, time, heads, head_dim});
  Node k = graph::Reshape(Dense(ctx.In("key"), h, kv_heads * head_dim, o.bias), {batch, time, kv_heads, head_dim});
  Node v = graph::Reshape(Dense(ctx.In("value"), h, kv_heads * head_dim, o.bias), {batch, time, kv_heads, head_dim});
  if (o.rotary) {
    q = ApplyRotary(q, o.rotary_options, o.position_offset);
    k = ApplyRotary(k, o.rotary_options, o.position_offset);
  }
  Node mask;
  if (o.padding_mask.Ok()) mask = graph::Reshape(o.padding_mask, {batch, 1, 1, time});  // keys
  bool causal = o.causal;
  if (o.cache_length > 0) {
    // Write this call's keys and values at the offset, attend over the whole
    // cache: query i (at offset + i) sees the cached positions <= its own.
    Node offset = o.position_offset.Ok() ? graph::ConvertDType(o.position_offset, dtypes::Int64)
                                         : graph::Const(x.Graph(), int64_t{0});
    Node zero = graph::ZerosLike(offset);
    auto cached = [&](const std::string& name, const Node& update) {
      context::Variable* var = internal::GetOrCreateZeros(
          ctx, name, shapes::Shape(x.DType(), {batch, o.cache_length, kv_heads, head_dim}));
      var->SetTrainable(false);
      Node all = graph::DynamicUpdateSlice(var->ValueGraph(x.Graph()), update, {zero, offset, zero, zero});
      var->SetValueGraph(all);
      return all;
    };
    k = cached("key_cache", k);
    v = cached("value_cache", v);
    const shapes::Shape s = shapes::Make(dtypes::Int64, time, o.cache_length);
    mask = graph::LessOrEqual(graph::Iota(x.Graph(), s, 1), graph::Iota(x.Graph(), s, 0) + offset);
    causal = false;
  }
  Node attended = DotProductAttention(q, k, v, causal, mask);
  Node a = Dense(ctx.In("output"), graph::Reshape(attended, {batch, time, heads * head_dim}), dim, o.bias);
  x = x + Dropped(ctx, a, o.dropout);

  // MLP.
  h = Norm(ctx.In("mlp_norm"), x, o.norm);
  int64_t hidden = o.mlp_dim;
  if (hidden == 0) hidden = o.mlp == "gelu" ? 4 * dim : (8 * dim / 3 + 63) / 64 * 64;
  Node m;
  if (o.mlp == "gelu") {
    m = graph::Gelu(Dense(ctx.In("up"), h, hidden, o.bias));
  } else {
    m = graph::Silu(Dense(ctx.In("gate"), h, hidden, o.bias)) * Dense(ctx.In("up"), h, hidden, o.bias);
  }
  m = Dense(ctx.In("down"), m, dim, o.bias);
  return x + Dropped(ctx, m, o.dropout);
}

}  // namespace kiln::ml::layers
