// Copyright 2026 The Kiln Authors.
// Dot-product attention with grouped heads, and the pre-norm transformer
// block (see kiln/ml/layers/transformer.h).
#include "kiln/ml/layers/transformer.h"

#include <cmath>
#include <string>
#include <string_view>

#include "kiln/backends/backend.h"
#include "kiln/context/initializers.h"
#include "kiln/graph/attention.h"
#include "kiln/graph/ops.h"
#include "src/graph/attention_internal.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

using internal::LayerError;

namespace internal {

Node AttendHeadMajor(Node q, Node k, Node v, bool causal, Node mask) {
  const auto& qd = q.Shape().Dims();
  const int64_t batch = qd[0], q_len = qd[1], heads = qd[2], head_dim = qd[3];
  const int64_t kv_heads = k.Shape().Dims()[1], kv_len = k.Shape().Dims()[2];
  const backends::Capabilities* target = q.Graph()->Target();
  if (target != nullptr && target->SupportsOp(ir::OpType::kAttention) &&
      kv_len >= target->fused_attention_min_kv_length &&
      (q.DType() == dtypes::Float32 || q.DType() == dtypes::Float64)) {
    // The backend's fused kernel, on heads-major queries.
    Node m;
    if (mask.Ok()) {
      std::vector<int64_t> dims(static_cast<size_t>(4 - mask.Rank()), 1);
      for (int64_t dim : mask.Shape().Dims()) dims.push_back(dim);
      m = graph::BroadcastTo(graph::Reshape(mask, dims), {dims[0], dims[1], q_len, kv_len});
    }
    Node out = graph::Attention(graph::Transpose(q, {0, 2, 1, 3}), k, v, m,
                                {.scale = 1 / std::sqrt(static_cast<double>(head_dim)), .causal = causal,
                                 .masked_value = MaskedScore(q.DType())});
    return graph::Transpose(out, {0, 2, 1, 3});
  }
  // The composed form. q as [batch, q_len, kv_heads, group, head_dim]: each
  // group of query heads shares one key/value head, with no copy of k or v.
  const int64_t group = heads / kv_heads;
  Node qg = graph::Reshape(q, {batch, q_len, kv_heads, group, head_dim});
  graph::internal::AttentionWeights w = graph::internal::ComposedAttentionWeights(
      qg, "bqngd", k, mask, 1 / std::sqrt(static_cast<double>(head_dim)), causal, MaskedScore(q.DType()),
      graph::Loc::current());
  Node out = graph::Einsum("bngqk,bnkd->bqngd", w.p, v);
  return graph::Reshape(out, {batch, q_len, heads, head_dim});
}

}  // namespace internal

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
  const int64_t q_len = q.Shape().Dims()[1], heads = q.Shape().Dims()[2];
  const int64_t kv_len = k.Shape().Dims()[1], kv_heads = k.Shape().Dims()[2];
  if (kv_heads < 1 || heads % kv_heads != 0) {
    LayerError(kOp, "the query heads (" + std::to_string(heads) + ") must be a multiple of the key/value heads (" +
                        std::to_string(kv_heads) + ")");
  }
  if (causal && q_len > kv_len) {
    LayerError(kOp, "causal attention needs q_len <= kv_len, got " + std::to_string(q_len) + " and " +
                        std::to_string(kv_len));
  }
  if (mask.Ok() && (mask.DType() != dtypes::Bool || mask.Rank() > 4)) {
    LayerError(kOp, "mask must be Bool, broadcastable to [batch, heads, q_len, kv_len], got " + mask.Shape().ToString());
  }
  return internal::AttendHeadMajor(q, graph::Transpose(k, {0, 2, 1, 3}), graph::Transpose(v, {0, 2, 1, 3}), causal,
                                   mask);
}

namespace {

Node Norm(const Context& ctx, const Node& x, const std::string& kind) {
  return kind == "rms" ? RMSNorm(ctx, x) : LayerNorm(ctx, x);
}

Node Dropped(const Context& ctx, const Node& x, double rate) { return rate > 0 ? Dropout(ctx, x, rate) : x; }

// The scope of a block's key/value cache: "/kv_cache" followed by the
// block's scope, so every cache is outside the model's variables (one
// DeleteVariablesInScope(kKvCacheScope) drops them all).
Context CacheScope(const Context& ctx) {
  Context c = ctx.Root().In(std::string(kKvCacheScope.substr(1)));
  const std::string& scope = ctx.Scope();
  for (size_t begin = 1; begin < scope.size();) {
    size_t end = scope.find('/', begin);
    if (end == std::string::npos) end = scope.size();
    c = c.In(scope.substr(begin, end - begin));
    begin = end + 1;
  }
  return c;
}

// Throws unless o.padding_mask is empty or Bool [batch, time] (with a cache:
// [batch, cache_length], over the cache's slots). Returns the mask's length.
int64_t CheckPaddingMask(std::string_view layer, const TransformerOptions& o, int64_t batch, int64_t time) {
  const int64_t mask_length = o.cache_length > 0 ? o.cache_length : time;
  if (o.padding_mask.Ok() && o.padding_mask.Shape() != shapes::Shape(dtypes::Bool, {batch, mask_length})) {
    LayerError(layer, "padding_mask must be Bool[" + std::to_string(batch) + ", " + std::to_string(mask_length) +
                          "], got " + o.padding_mask.Shape().ToString());
  }
  return mask_length;
}

// The slot of a cached call's first step: cache_offset, else the scalar
// position_offset, else 0; Int64.
Node CacheSlot(const TransformerOptions& o, graph::Graph* g) {
  Node slot = o.cache_offset.Ok() ? o.cache_offset : o.position_offset;
  return slot.Ok() ? graph::ConvertDType(slot, dtypes::Int64) : graph::Const(g, int64_t{0});
}

// The token shift of DecoderOptions::smear and TransformerOptions::token_shift
// on x [batch, time, dim], with its variables in `scope`: "lambda" and, with
// a cache, the cache scope's "last". The caller has checked the padding mask.
Node Smear(const Context& scope, Node x, const TransformerOptions& block) {
  const auto& d = x.Shape().Dims();
  const int64_t batch = d[0], time = d[1], dim = d[2];
  if (time == 0) return x;
  Node lambda = internal::GetOrCreateZeros(scope, "lambda", shapes::Make(x.DType(), dim))->ValueGraph(x.Graph());
  Node first;  // what step 0 follows: nothing (zeros), or with a cache the previous call's last step
  Node follows;  // Bool [batch, time]: whether step t follows a real position
  if (block.cache_length > 0) {
    // Step t is at slot offset + t; it follows slot offset + t - 1 if that
    // exists and, with a padding mask, is not padding.
    Node offset = CacheSlot(block, x.Graph());
    context::Variable* last =
        internal::GetOrCreateZeros(CacheScope(scope), "last", shapes::Shape(x.DType(), {batch, 1, dim}));
    last->SetTrainable(false);
    first = last->ValueGraph(x.Graph());
    last->SetValueGraph(graph::Slice(x, {0, time - 1, 0}, {batch, time, dim}));
    const shapes::Shape steps = shapes::Make(dtypes::Int64, batch, time);
    follows = graph::GreaterThan(graph::Iota(x.Graph(), steps, 1) + offset, graph::ZerosLike(offset));
    if (block.padding_mask.Ok()) {
      // The mask shifted by one slot (nothing before slot 0), at this call's steps.
      Node shifted = graph::Concatenate(
          {graph::Zeros(x.Graph(), shapes::Make(dtypes::Bool, batch, 1)), block.padding_mask}, 1);
      follows =
          graph::LogicalAnd(follows, graph::DynamicSlice(shifted, {graph::ZerosLike(offset), offset}, {batch, time}));
    }
  } else {
    first = graph::Zeros(x.Graph(), shapes::Shape(x.DType(), {batch, 1, dim}));
    if (block.padding_mask.Ok()) {
      follows = graph::Concatenate({graph::Zeros(x.Graph(), shapes::Make(dtypes::Bool, batch, 1)),
                                    graph::Slice(block.padding_mask, {0, 0}, {batch, time - 1})},
                                   1);
    }
  }
  Node previous = graph::Concatenate({first, graph::Slice(x, {0, 0, 0}, {batch, time - 1, dim})}, 1);
  if (follows.Ok()) {
    previous = graph::Where(graph::BroadcastTo(graph::Reshape(follows, {batch, time, 1}), {batch, time, dim}), previous,
                            graph::ZerosLike(previous));
  }
  return x + previous * lambda;
}

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
  if (o.mlp != "gelu" && o.mlp != "swiglu" && o.mlp != "relu2") {
    LayerError(kLayer, "mlp must be \"gelu\", \"swiglu\" or \"relu2\", got \"" + o.mlp + "\"");
  }
  if (o.norm != "layer" && o.norm != "rms") LayerError(kLayer, "norm must be \"layer\" or \"rms\", got \"" + o.norm + "\"");
  if (!(o.dropout >= 0 && o.dropout < 1)) {
    LayerError(kLayer, "dropout must be in [0, 1), got " + internal::FormatNumber(o.dropout));
  }
  if (o.cache_length < 0 || (o.cache_length > 0 && (!o.causal || time > o.cache_length))) {
    LayerError(kLayer, "cache_length " + std::to_string(o.cache_length) +
                           " needs causal attention and time <= cache_length (time " + std::to_string(time) + ")");
  }
  const int64_t mask_length = CheckPaddingMask(kLayer, o, batch, time);
  if (o.position_offset.Ok() && o.position_offset.Rank() == 1 && o.cache_length > 0 && !o.cache_offset.Ok()) {
    LayerError(kLayer, "a position_offset per row (" + o.position_offset.Shape().ToString() +
                           ") needs cache_offset, the cache slot of the first step");
  }
  if (o.cache_offset.Ok() && (o.cache_offset.Rank() != 0 || !dtypes::IsInteger(o.cache_offset.DType()))) {
    LayerError(kLayer, "cache_offset must be an integer scalar, got " + o.cache_offset.Shape().ToString());
  }

  // Attention.
  Node h = Norm(ctx.In("attention_norm"), x, o.norm);
  if (o.token_shift) h = Smear(ctx.In("attention_shift"), h, o);
  Node q = graph::Reshape(Dense(ctx.In("query"), h, heads * head_dim, o.bias), {batch, time, heads, head_dim});
  Node k = graph::Reshape(Dense(ctx.In("key"), h, kv_heads * head_dim, o.bias), {batch, time, kv_heads, head_dim});
  Node v = graph::Reshape(Dense(ctx.In("value"), h, kv_heads * head_dim, o.bias), {batch, time, kv_heads, head_dim});
  if (o.qk_norm) {
    q = RMSNorm(ctx.In("query_norm"), q);
    k = RMSNorm(ctx.In("key_norm"), k);
  }
  if (o.rotary) {
    q = ApplyRotary(q, o.rotary_options, o.position_offset);
    k = ApplyRotary(k, o.rotary_options, o.position_offset);
  }
  Node mask;
  if (o.padding_mask.Ok()) mask = graph::Reshape(o.padding_mask, {batch, 1, 1, mask_length});  // keys
  bool causal = o.causal;
  if (o.cache_length > 0) {
    // Write this call's keys and values at the offset, attend over the whole
    // cache: query i (at offset + i) sees the cached slots <= its own.
    Node offset = CacheSlot(o, x.Graph());
    Node zero = graph::ZerosLike(offset);
    Context cache = CacheScope(ctx);
    auto cached = [&](const std::string& name, const Node& update) {
      context::Variable* var =
          internal::GetOrCreateZeros(cache, name, shapes::Shape(x.DType(), {batch, kv_heads, o.cache_length, head_dim}));
      var->SetTrainable(false);
      Node all = graph::DynamicUpdateSlice(var->ValueGraph(x.Graph()), graph::Transpose(update, {0, 2, 1, 3}),
                                           {zero, zero, offset, zero});
      var->SetValueGraph(all);
      return all;
    };
    k = cached("key", k);
    v = cached("value", v);
    const shapes::Shape s = shapes::Make(dtypes::Int64, time, o.cache_length);
    Node c = graph::LessOrEqual(graph::Iota(x.Graph(), s, 1), graph::Iota(x.Graph(), s, 0) + offset);
    mask = mask.Ok() ? graph::LogicalAnd(mask, c) : c;
    causal = false;
  }
  // The cache is head-major already; fresh keys and values are made so once.
  Node attended = o.cache_length > 0 ? internal::AttendHeadMajor(q, k, v, causal, mask)
                                     : DotProductAttention(q, k, v, causal, mask);
  Node a = Dense(ctx.In("output"), graph::Reshape(attended, {batch, time, heads * head_dim}), dim, o.bias);
  x = x + Dropped(ctx, a, o.dropout);

  // MLP.
  h = Norm(ctx.In("mlp_norm"), x, o.norm);
  if (o.token_shift) h = Smear(ctx.In("mlp_shift"), h, o);
  int64_t hidden = o.mlp_dim;
  if (hidden == 0) hidden = o.mlp == "swiglu" ? (8 * dim / 3 + 63) / 64 * 64 : 4 * dim;
  Node m;
  if (o.mlp == "gelu") {
    m = graph::Gelu(Dense(ctx.In("up"), h, hidden, o.bias));
  } else if (o.mlp == "relu2") {
    m = graph::Relu(Dense(ctx.In("up"), h, hidden, o.bias));
    m = m * m;
  } else {
    m = graph::Silu(Dense(ctx.In("gate"), h, hidden, o.bias)) * Dense(ctx.In("up"), h, hidden, o.bias);
  }
  m = Dense(ctx.In("down"), m, dim, o.bias);
  return x + Dropped(ctx, m, o.dropout);
}

Node Decoder(Context ctx, Node tokens, const DecoderOptions& o) {
  constexpr std::string_view kLayer = "Decoder";
  if (!tokens.Ok() || tokens.Rank() != 2 || !dtypes::IsInteger(tokens.DType())) {
    LayerError(kLayer, "tokens must be integers [batch, time], got " +
                           (tokens.Ok() ? tokens.Shape().ToString() : std::string("an invalid Node")));
  }
  if (o.vocab_size < 1 || o.dim < 1 || o.num_layers < 0) {
    LayerError(kLayer, "vocab_size and dim must be >= 1 and num_layers >= 0, got " + std::to_string(o.vocab_size) +
                           ", " + std::to_string(o.dim) + " and " + std::to_string(o.num_layers));
  }
  if (o.positions != "rotary" && o.positions != "learned") {
    LayerError(kLayer, "positions must be \"rotary\" or \"learned\", got \"" + o.positions + "\"");
  }
  if (!(o.logit_softcap >= 0 && std::isfinite(o.logit_softcap))) {
    LayerError(kLayer, "logit_softcap must be 0 (none) or positive, got " + internal::FormatNumber(o.logit_softcap));
  }
  if (o.positions == "learned" && o.block.cache_length > o.max_length) {
    LayerError(kLayer, "a cache of " + std::to_string(o.block.cache_length) + " positions is longer than the " +
                           std::to_string(o.max_length) + " learned positions (max_length)");
  }
  // GPT-2's initialization of the embeddings: normal(0, 0.02).
  const Context embedding =
      (ctx.HasInitializer() ? ctx : ctx.WithInitializer(context::initializers::RandomNormal(0, 0.02))).In("embedding");
  Node x = Embedding(embedding, tokens, o.vocab_size, o.dim);
  if (o.positions == "learned") x = LearnedPositions(ctx.In("positions"), x, o.max_length, o.block.position_offset);
  if (o.smear) {
    CheckPaddingMask(kLayer, o.block, tokens.Shape().Dims()[0], tokens.Shape().Dims()[1]);  // before the blocks do
    x = Smear(ctx.In("smear"), x, o.block);
  }
  x = Dropped(ctx, x, o.block.dropout);
  TransformerOptions block = o.block;
  block.rotary = o.positions == "rotary";
  for (int i = 0; i < o.num_layers; ++i) x = TransformerBlock(ctx.In("block" + std::to_string(i)), x, block);
  x = Norm(ctx.In("final_norm"), x, o.block.norm);
  Node logits;
  if (o.tie_embeddings) {
    Node table = embedding.GetVariable("embeddings")->ValueGraph(x.Graph());  // [vocab, dim]
    logits = graph::Einsum("btd,vd->btv", x, table);
  } else {
    logits = Dense(ctx.In("logits"), x, o.vocab_size, /*use_bias=*/false);
  }
  if (o.logit_softcap == 0) return logits;
  return graph::Tanh(logits / o.logit_softcap) * o.logit_softcap;
}

}  // namespace kiln::ml::layers
