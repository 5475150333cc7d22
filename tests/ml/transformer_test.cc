// Copyright 2026 The Kiln Authors.
// Attention with grouped heads against a reference written here (causal
// with a cache offset, padding masks), its gradient by finite differences,
// and the transformer block's structure: zero weights make it the identity,
// causality, padded positions ignored, variables, options and errors.
#include "kiln/ml/layers/transformer.h"

#include <cmath>
#include <limits>
#include <vector>

#include "kiln/context/exec.h"
#include "kiln/context/initializers.h"
#include "tests/testing/gradcheck.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using context::Context;
using graph::Node;
using tensors::Tensor;
using testing::FromDoubles;
using testing::Uniform;
using testing::ToDoubles;

class TransformerTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, TransformerTest, ::testing::ValuesIn(testing::BackendNames()));


// softmax(q kᵀ / sqrt(d)) v per batch and query head, over the allowed keys.
std::vector<double> RefAttention(const std::vector<double>& q, const std::vector<double>& k, const std::vector<double>& v,
                                 int64_t batch, int64_t q_len, int64_t kv_len, int64_t heads, int64_t kv_heads,
                                 int64_t dim, bool causal, const std::vector<bool>& key_mask) {
  std::vector<double> out(static_cast<size_t>(batch * q_len * heads * dim), 0.0);
  const int64_t group = heads / kv_heads;
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t h = 0; h < heads; ++h) {
      const int64_t kh = h / group;
      for (int64_t i = 0; i < q_len; ++i) {
        std::vector<double> s(static_cast<size_t>(kv_len));
        std::vector<bool> ok(static_cast<size_t>(kv_len));
        double mx = -std::numeric_limits<double>::infinity();
        for (int64_t j = 0; j < kv_len; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < dim; ++e) {
            dot += q[static_cast<size_t>(((b * q_len + i) * heads + h) * dim + e)] *
                   k[static_cast<size_t>(((b * kv_len + j) * kv_heads + kh) * dim + e)];
          }
          s[static_cast<size_t>(j)] = dot / std::sqrt(static_cast<double>(dim));
          ok[static_cast<size_t>(j)] = (!causal || j <= kv_len - q_len + i) &&
                                       (key_mask.empty() || key_mask[static_cast<size_t>(b * kv_len + j)]);
          if (ok[static_cast<size_t>(j)]) mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double z = 0;
        for (int64_t j = 0; j < kv_len; ++j) {
          s[static_cast<size_t>(j)] = ok[static_cast<size_t>(j)] ? std::exp(s[static_cast<size_t>(j)] - mx) : 0;
          z += s[static_cast<size_t>(j)];
        }
        for (int64_t j = 0; j < kv_len; ++j) {
          for (int64_t e = 0; e < dim; ++e) {
            out[static_cast<size_t>(((b * q_len + i) * heads + h) * dim + e)] +=
                s[static_cast<size_t>(j)] / z * v[static_cast<size_t>(((b * kv_len + j) * kv_heads + kh) * dim + e)];
          }
        }
      }
    }
  }
  return out;
}

TEST_P(TransformerTest, GroupedQueryAttentionMatchesTheReference) {
  const int64_t batch = 2, q_len = 3, kv_len = 5, heads = 4, kv_heads = 2, dim = 3;
  const Tensor q = Uniform({batch, q_len, heads, dim}, -1, 1, 1), k = Uniform({batch, kv_len, kv_heads, dim}, -1, 1, 2),
               v = Uniform({batch, kv_len, kv_heads, dim}, -1, 1, 3);
  const std::vector<bool> key_mask = {true, true, false, true, true, true, true, true, true, false};
  Tensor mask(shapes::Make(dtypes::Bool, batch, 1, 1, kv_len));
  for (size_t i = 0; i < key_mask.size(); ++i) mask.MutableFlat<bool>()[i] = key_mask[i];
  for (bool causal : {false, true}) {
    for (bool masked : {false, true}) {
      SCOPED_TRACE(::testing::Message() << (causal ? "causal" : "full") << (masked ? " masked" : ""));
      const Tensor got = testing::Run1(Backend(), [&](const std::vector<Node>& p) {
        return ml::layers::DotProductAttention(p[0], p[1], p[2], causal, masked ? p[3] : Node());
      }, {q, k, v, mask});
      const std::vector<double> want = RefAttention(ToDoubles(q), ToDoubles(k), ToDoubles(v), batch, q_len, kv_len,
                                                    heads, kv_heads, dim, causal, masked ? key_mask : std::vector<bool>{});
      EXPECT_TRUE(testing::AllClose(got, q.Shape(), want, 1e-12, 1e-14));
    }
  }
}

TEST_P(TransformerTest, AttentionGradientMatchesFiniteDifferences) {
  EXPECT_TRUE(testing::CheckGradients(
      Backend(),
      [](const std::vector<Node>& p) { return ml::layers::DotProductAttention(p[0], p[1], p[2], /*causal=*/true); },
      {Uniform({1, 3, 2, 2}, -1, 1, 4), Uniform({1, 3, 1, 2}, -1, 1, 5), Uniform({1, 3, 1, 2}, -1, 1, 6)}));
}

// Runs a block on x in context `ctx` and returns its output.
Tensor Block(const std::shared_ptr<backends::Backend>& backend, Context ctx, const Tensor& x,
             const ml::layers::TransformerOptions& o, const Tensor* padding = nullptr) {
  auto exec = context::NewExec(backend, ctx, [&](Context c, Node in, Node pad) {
    ml::layers::TransformerOptions opts = o;
    if (padding != nullptr) opts.padding_mask = pad;
    return ml::layers::TransformerBlock(c.In("block"), in, opts);
  });
  return exec.Call(x, padding != nullptr ? *padding : Tensor(shapes::Make(dtypes::Bool, 1)));
}

TEST_P(TransformerTest, ZeroWeightsMakeTheBlockTheIdentity) {
  const Tensor x = Uniform({2, 4, 8}, -1, 1, 7);
  for (const char* mlp : {"gelu", "swiglu", "relu2"}) {
    for (const char* norm : {"layer", "rms"}) {
      SCOPED_TRACE(::testing::Message() << mlp << " " << norm);
      Context ctx = context::New().WithInitializer(context::initializers::Zeros());
      const Tensor y =
          Block(Backend(), ctx, x, {.num_heads = 2, .mlp = mlp, .norm = norm, .qk_norm = true, .rotary = true});
      EXPECT_TRUE(testing::AllClose(y, x, 0, 0));
    }
  }
}

TEST_P(TransformerTest, CausalBlocksDoNotSeeTheFuture) {
  Context ctx = context::New();
  const Tensor x = Uniform({1, 6, 8}, -1, 1, 8);
  std::vector<double> changed = ToDoubles(x);
  for (int j = 0; j < 8; ++j) changed[static_cast<size_t>(3 * 8 + j)] += 0.5;  // position 3
  const ml::layers::TransformerOptions o{.num_heads = 4, .num_kv_heads = 2, .mlp = "swiglu", .norm = "rms",
                                         .bias = false, .rotary = true};
  const std::vector<double> a = ToDoubles(Block(Backend(), ctx, x, o));
  const std::vector<double> b = ToDoubles(Block(Backend(), ctx, FromDoubles(x.Shape(), changed), o));
  for (int t = 0; t < 6; ++t) {
    double diff = 0;
    for (int j = 0; j < 8; ++j) diff = std::max(diff, std::abs(a[static_cast<size_t>(t * 8 + j)] - b[static_cast<size_t>(t * 8 + j)]));
    if (t < 3) EXPECT_EQ(diff, 0.0) << "position " << t;
    else EXPECT_GT(diff, 1e-6) << "position " << t;
  }
  // The variables: grouped-query projections, no biases, SwiGLU's three matrices.
  auto shape = [&](const std::string& name) { return ctx.GetVariableByScopeAndName("/block/" + name)->Shape(); };
  EXPECT_EQ(shape("query/weights"), shapes::Make(dtypes::Float64, 8, 8));
  EXPECT_EQ(shape("key/weights"), shapes::Make(dtypes::Float64, 8, 4));
  EXPECT_EQ(shape("gate/weights"), shapes::Make(dtypes::Float64, 8, 64));  // 8/3 * 8 rounded up to 64
  EXPECT_EQ(ctx.GetVariableByScopeAndName("/block/query/biases"), nullptr);
}

// With qk_norm each head's queries and keys are RMS-normalized: scaling the
// query and key projections changes nothing but the epsilon's share (it
// changes the output without).
TEST_P(TransformerTest, QkNormMakesTheBlockBlindToTheScaleOfQueriesAndKeys) {
  const Tensor x = Uniform({2, 5, 8}, -1, 1, 12);
  for (bool qk_norm : {true, false}) {
    SCOPED_TRACE(qk_norm ? "qk_norm" : "plain");
    Context ctx = context::New();
    const ml::layers::TransformerOptions o{.num_heads = 2, .norm = "rms", .qk_norm = qk_norm, .rotary = true};
    const Tensor before = Block(Backend(), ctx, x, o);
    for (const char* name : {"/block/query/weights", "/block/key/weights"}) {
      context::Variable* w = ctx.GetVariableByScopeAndName(name);
      std::vector<double> scaled = ToDoubles(w->Value());
      for (double& v : scaled) v *= 7;
      w->SetValue(FromDoubles(w->Shape(), scaled));
    }
    const Tensor after = Block(Backend(), ctx, x, o);
    if (qk_norm) {
      EXPECT_TRUE(testing::AllClose(after, before, 1e-5, 1e-5));  // up to RMSNorm's epsilon (1e-6)
      EXPECT_EQ(ctx.GetVariableByScopeAndName("/block/query_norm/scale")->Shape(), shapes::Make(dtypes::Float64, 4));
      EXPECT_EQ(ctx.GetVariableByScopeAndName("/block/key_norm/scale")->Shape(), shapes::Make(dtypes::Float64, 4));
    } else {
      EXPECT_FALSE(testing::AllClose(after, before, 1e-3, 1e-3));
      EXPECT_EQ(ctx.GetVariableByScopeAndName("/block/query_norm/scale"), nullptr);
    }
  }
}

// The relu2 MLP against its formula: with the attention's output projection
// zeroed, y = x + down(relu(up(RMSNorm(x)))^2), hidden 4 * dim by default.
TEST_P(TransformerTest, ReluSquaredMlpMatchesItsFormula) {
  const int64_t batch = 2, time = 3, dim = 4, hidden = 16;
  const Tensor x = Uniform({batch, time, dim}, -1, 1, 13);
  Context ctx = context::New();
  const ml::layers::TransformerOptions o{.num_heads = 2, .mlp = "relu2", .norm = "rms", .bias = false};
  Block(Backend(), ctx, x, o);  // creates the variables
  context::Variable* out = ctx.GetVariableByScopeAndName("/block/output/weights");
  out->SetValue(FromDoubles(out->Shape(), std::vector<double>(static_cast<size_t>(dim * dim), 0.0)));
  const std::vector<double> up = ToDoubles(ctx.GetVariableByScopeAndName("/block/up/weights")->Value());
  const std::vector<double> down = ToDoubles(ctx.GetVariableByScopeAndName("/block/down/weights")->Value());
  ASSERT_EQ(up.size(), static_cast<size_t>(dim * hidden));
  const std::vector<double> xv = ToDoubles(x);
  std::vector<double> want;
  for (int64_t r = 0; r < batch * time; ++r) {
    const double* row = &xv[static_cast<size_t>(r * dim)];
    double ms = 0;
    for (int64_t j = 0; j < dim; ++j) ms += row[j] * row[j] / dim;
    std::vector<double> m(static_cast<size_t>(hidden), 0.0);
    for (int64_t h = 0; h < hidden; ++h) {
      for (int64_t j = 0; j < dim; ++j) m[static_cast<size_t>(h)] += row[j] / std::sqrt(ms + 1e-6) * up[static_cast<size_t>(j * hidden + h)];
      m[static_cast<size_t>(h)] = std::max(0.0, m[static_cast<size_t>(h)]);
      m[static_cast<size_t>(h)] *= m[static_cast<size_t>(h)];
    }
    for (int64_t j = 0; j < dim; ++j) {
      double y = row[j];
      for (int64_t h = 0; h < hidden; ++h) y += m[static_cast<size_t>(h)] * down[static_cast<size_t>(h * dim + j)];
      want.push_back(y);
    }
  }
  EXPECT_TRUE(testing::AllClose(Block(Backend(), ctx, x, o), x.Shape(), want, 1e-12, 1e-12));
}

TEST_P(TransformerTest, PaddedPositionsAreIgnored) {
  Context ctx = context::New();
  const Tensor x = Uniform({1, 5, 8}, -1, 1, 9);
  Tensor pad(shapes::Make(dtypes::Bool, 1, 5));
  for (int t = 0; t < 5; ++t) pad.MutableFlat<bool>()[static_cast<size_t>(t)] = t < 3;
  std::vector<double> changed = ToDoubles(x);
  for (size_t i = 3 * 8; i < changed.size(); ++i) changed[i] = -changed[i] * 3;  // only padded positions
  const ml::layers::TransformerOptions o{.num_heads = 2, .causal = false};
  const std::vector<double> a = ToDoubles(Block(Backend(), ctx, x, o, &pad));
  const std::vector<double> b = ToDoubles(Block(Backend(), ctx, FromDoubles(x.Shape(), changed), o, &pad));
  for (size_t i = 0; i < 3 * 8; ++i) EXPECT_NEAR(a[i], b[i], 1e-12) << i;
}

// A prompt of 4 steps, then one step per call with the KV cache, gives the
// outputs of one full pass over the 6 steps (two stacked blocks, RoPE, GQA;
// with and without token shifts, whose last inputs are cached too).
TEST_P(TransformerTest, CachedDecodingMatchesTheFullPass) {
  for (bool shift : {false, true}) {
    SCOPED_TRACE(shift ? "token_shift" : "no shift");
    Context ctx = context::New();
    const Tensor x = Uniform({2, 6, 8}, -1, 1, 11);
    const ml::layers::TransformerOptions base{.num_heads = 4, .num_kv_heads = 2, .mlp = "swiglu", .norm = "rms",
                                              .rotary = true, .token_shift = shift};
    if (shift) {  // non-zero shifts (they start at zero)
      const Tensor lambda = Uniform({8}, 0.2, 0.9, 12);
      for (const char* block : {"block0", "block1"}) {
        for (const char* name : {"attention_shift", "mlp_shift"}) {
          ctx.In(block).In(name).VariableWithValue("lambda", lambda);
        }
      }
    }
    auto model = [&](Context c, Node in, Node offset, int64_t cache) {
      ml::layers::TransformerOptions o = base;
      o.cache_length = cache;
      o.position_offset = offset;
      Node h = ml::layers::TransformerBlock(c.In("block0"), in, o);
      return ml::layers::TransformerBlock(c.In("block1"), h, o);
    };
    auto full = context::NewExec(Backend(), ctx, [&](Context c, Node in, Node offset) { return model(c, in, offset, 0); });
    const std::vector<double> want = ToDoubles(full.Call(x, FromDoubles(shapes::Make(dtypes::Int32), {0})));
    auto step = context::NewExec(Backend(), ctx, [&](Context c, Node in, Node offset) { return model(c, in, offset, 8); });
    const std::vector<double> xv = ToDoubles(x);
    auto steps = [&](int64_t begin, int64_t end) {  // x[:, begin:end]
      std::vector<double> v;
      for (int64_t b = 0; b < 2; ++b) v.insert(v.end(), xv.begin() + (b * 6 + begin) * 8, xv.begin() + (b * 6 + end) * 8);
      return FromDoubles(shapes::Make(dtypes::Float64, 2, end - begin, 8), v);
    };
    std::vector<std::vector<double>> got(2);  // per batch element, the outputs in order
    auto append = [&](const Tensor& out, int64_t len) {
      const std::vector<double> v = ToDoubles(out);
      for (int64_t b = 0; b < 2; ++b) got[static_cast<size_t>(b)].insert(got[static_cast<size_t>(b)].end(), v.begin() + b * len * 8, v.begin() + (b + 1) * len * 8);
    };
    append(step.Call(steps(0, 4), FromDoubles(shapes::Make(dtypes::Int32), {0})), 4);
    for (int64_t t = 4; t < 6; ++t) append(step.Call(steps(t, t + 1), FromDoubles(shapes::Make(dtypes::Int32), {static_cast<double>(t)})), 1);
    EXPECT_EQ(step.CacheSize(), 2u) << "one graph for the prompt, one for every single-token step";
    std::vector<double> flat = got[0];
    flat.insert(flat.end(), got[1].begin(), got[1].end());
    EXPECT_TRUE(testing::AllClose(FromDoubles(x.Shape(), flat), x.Shape(), want, 1e-11, 1e-12));
    EXPECT_FALSE(ctx.GetVariableByScopeAndName("/kv_cache/block0/key")->Trainable());
    EXPECT_EQ(ctx.GetVariableByScopeAndName("/kv_cache/block1/value")->Shape(), shapes::Make(dtypes::Float64, 2, 2, 8, 2));
    EXPECT_EQ(ctx.GetVariableByScopeAndName("/kv_cache/block1/mlp_shift/last") != nullptr, shift);
  }
}

// The decoder's options, on each backend.
class DecoderTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return testing::NewTestBackend(GetParam()); }
};
INSTANTIATE_TEST_SUITE_P(Backends, DecoderTest, ::testing::ValuesIn(testing::BackendNames()),
                         testing::BackendParamName);

TEST_P(DecoderTest, TiedEmbeddingsProjectTheLogitsAndUntiedHaveTheirOwn) {
  auto backend = Backend();
  const Tensor tokens = FromDoubles(shapes::Make(dtypes::Int32, 2, 3), {1, 4, 2, 0, 3, 3});
  for (bool tied : {true, false}) {
    SCOPED_TRACE(tied ? "tied" : "untied");
    Context ctx = context::New();
    ml::layers::DecoderOptions o{.vocab_size = 5, .dim = 8, .num_layers = 0, .tie_embeddings = tied};
    o.block.norm = "rms";
    auto exec = context::NewExec(backend, ctx, [&](Context c, Node t) { return ml::layers::Decoder(c, t, o); });
    const Tensor logits = exec.Call(tokens);
    ASSERT_EQ(logits.Shape(), shapes::Make(dtypes::Float32, 2, 3, 5));
    EXPECT_EQ(ctx.GetVariableByScopeAndName("/logits/weights") != nullptr, !tied);
    // No blocks: logits = RMSNorm(E[token]) . E[v] (the norm's scale is 1).
    if (!tied) continue;
    const std::vector<double> e = ToDoubles(ctx.GetVariableByScopeAndName("/embedding/embeddings")->Value());
    const std::vector<double> t = ToDoubles(tokens), got = ToDoubles(logits);
    std::vector<double> want;
    for (double token : t) {
      const auto row = static_cast<size_t>(token) * 8;
      double ms = 0;
      for (size_t j = 0; j < 8; ++j) ms += e[row + j] * e[row + j] / 8;
      for (size_t v = 0; v < 5; ++v) {
        double dot = 0;
        for (size_t j = 0; j < 8; ++j) dot += e[row + j] / std::sqrt(ms + 1e-6) * e[v * 8 + j];
        want.push_back(dot);
      }
    }
    EXPECT_TRUE(testing::AllClose(logits, logits.Shape(), want, 1e-4, 1e-5));
  }
}

// Smear: with no blocks, logits = RMSNorm(e[t] + lambda * e[t - 1]) . E,
// where e[t - 1] counts only after a real (not padded) position.
TEST_P(DecoderTest, SmearAddsTheScaledPreviousEmbedding) {
  auto backend = Backend();
  const Tensor tokens = FromDoubles(shapes::Make(dtypes::Int32, 2, 4), {1, 4, 2, 0, 3, 3, 1, 2});
  Tensor pad(shapes::Make(dtypes::Bool, 2, 4));
  const std::vector<bool> real = {true, true, true, true, false, true, true, true};  // row 1's first is padding
  for (size_t i = 0; i < real.size(); ++i) pad.MutableFlat<bool>()[i] = real[i];
  Context ctx = context::New();
  std::vector<double> lambda;
  for (int j = 0; j < 8; ++j) lambda.push_back(0.3 + 0.1 * j);
  ctx.In("smear").VariableWithValue("lambda", FromDoubles(shapes::Make(dtypes::Float32, 8), lambda));
  ml::layers::DecoderOptions o{.vocab_size = 5, .dim = 8, .num_layers = 0, .smear = true};
  o.block.norm = "rms";
  auto exec = context::NewExec(backend, ctx, [&](Context c, Node t, Node mask) {
    ml::layers::DecoderOptions with_mask = o;
    with_mask.block.padding_mask = mask;
    return ml::layers::Decoder(c, t, with_mask);
  });
  const Tensor logits = exec.Call(tokens, pad);
  const std::vector<double> e = ToDoubles(ctx.GetVariableByScopeAndName("/embedding/embeddings")->Value());
  const std::vector<double> t = ToDoubles(tokens), got = ToDoubles(logits);
  std::vector<double> want;
  for (size_t i = 0; i < t.size(); ++i) {
    std::vector<double> x(8);
    const bool follows = i % 4 != 0 && real[i - 1];
    for (size_t j = 0; j < 8; ++j) {
      x[j] = e[static_cast<size_t>(t[i]) * 8 + j];
      if (follows) x[j] += lambda[j] * e[static_cast<size_t>(t[i - 1]) * 8 + j];
    }
    double ms = 0;
    for (double xj : x) ms += xj * xj / 8;
    for (size_t v = 0; v < 5; ++v) {
      double dot = 0;
      for (size_t j = 0; j < 8; ++j) dot += x[j] / std::sqrt(ms + 1e-6) * e[v * 8 + j];
      want.push_back(dot);
    }
  }
  EXPECT_TRUE(testing::AllClose(logits, logits.Shape(), want, 1e-4, 1e-5));
  EXPECT_TRUE(ctx.GetVariableByScopeAndName("/smear/lambda")->Trainable());
}

// A soft cap c gives c * tanh(logits / c) of the same model without one.
TEST_P(DecoderTest, LogitSoftcapIsATanhOfTheUncappedLogits) {
  auto backend = Backend();
  const Tensor tokens = FromDoubles(shapes::Make(dtypes::Int32, 2, 3), {1, 4, 2, 0, 3, 3});
  Context ctx = context::New().WithInitializer(context::initializers::RandomNormal(0, 3));  // large logits
  auto logits = [&](double cap) {
    ml::layers::DecoderOptions o{.vocab_size = 5, .dim = 8, .num_layers = 1, .logit_softcap = cap};
    o.block.num_heads = 2;
    return ToDoubles(context::NewExec(backend, ctx, [&](Context c, Node t) { return ml::layers::Decoder(c, t, o); })
                         .Call(tokens));
  };
  const std::vector<double> plain = logits(0), capped = logits(2.5);
  ASSERT_EQ(plain.size(), capped.size());
  double largest = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    largest = std::max(largest, std::abs(plain[i]));
    EXPECT_NEAR(capped[i], 2.5 * std::tanh(plain[i] / 2.5), 1e-5) << i;
    EXPECT_LE(std::abs(capped[i]), 2.5) << i;  // Float32's tanh rounds to 1 beyond ~9
  }
  EXPECT_GT(largest, 5.0) << "the test needs logits beyond the cap";
}

TEST(TransformerErrors, DecoderAndCacheOptions) {
  auto backend = backends::NewWithName("cpu");
  auto decoder = [&](const ml::layers::DecoderOptions& o, const Tensor& tokens) {
    auto exec = context::NewExec(backend, context::New(), [&](Context c, Node t) { return ml::layers::Decoder(c, t, o); });
    exec.Call(tokens);
  };
  const Tensor tokens = FromDoubles(shapes::Make(dtypes::Int32, 1, 2), {1, 2});
  KILN_EXPECT_ERROR(decoder({.vocab_size = 0}, tokens),
                    "layers::Decoder: vocab_size and dim must be >= 1 and num_layers >= 0, got 0, 256 and 6");
  KILN_EXPECT_ERROR(decoder({.vocab_size = 4, .positions = "alibi"}, tokens),
                    "layers::Decoder: positions must be \"rotary\" or \"learned\", got \"alibi\"");
  KILN_EXPECT_ERROR(decoder({.vocab_size = 4, .logit_softcap = -1}, tokens),
                    "layers::Decoder: logit_softcap must be 0 (none) or positive, got -1");
  KILN_EXPECT_ERROR(decoder({.vocab_size = 4}, FromDoubles(shapes::Make(dtypes::Float32, 1, 2), {1, 2})),
                    "layers::Decoder: tokens must be integers [batch, time], got Float32[1, 2]");
  ml::layers::DecoderOptions smear{.vocab_size = 4, .num_layers = 1, .smear = true};
  smear.block.num_heads = 2;
  auto smeared = context::NewExec(backend, context::New(), [&](Context c, Node t) {
    ml::layers::DecoderOptions o = smear;
    o.block.padding_mask = graph::Const(t.Graph(), tensors::FromValue(std::vector<bool>{true, true, true}));
    return ml::layers::Decoder(c, t, o);
  });
  KILN_EXPECT_ERROR(smeared.Call(tokens), "layers::Decoder: padding_mask must be Bool[1, 2], got Bool[3]");
  const Tensor x = Uniform({2, 1, 4}, -1, 1, 10);
  auto cached = [&](const Tensor& offset, bool with_slot) {
    auto exec = context::NewExec(backend, context::New(), [&](Context c, Node in, Node off) {
      ml::layers::TransformerOptions o{.num_heads = 2, .position_offset = off, .cache_length = 4};
      if (with_slot) o.cache_offset = off;
      return ml::layers::TransformerBlock(c, in, o);
    });
    exec.Call(x, offset);
  };
  KILN_EXPECT_ERROR(cached(FromDoubles(shapes::Make(dtypes::Int32, 2), {0, 1}), false),
                    "layers::TransformerBlock: a position_offset per row (Int32[2]) needs cache_offset, the cache slot "
                    "of the first step");
  KILN_EXPECT_ERROR(cached(FromDoubles(shapes::Make(dtypes::Int32, 2), {0, 1}), true),
                    "layers::TransformerBlock: cache_offset must be an integer scalar, got Int32[2]");
}

TEST(TransformerErrors, BadOptionsNameTheLayer) {
  auto backend = backends::NewWithName("cpu");
  const Tensor x = Uniform({1, 2, 6}, -1, 1, 10);
  auto fails = [&](const ml::layers::TransformerOptions& o) { Block(backend, context::New(), x, o); };
  KILN_EXPECT_ERROR(fails({.num_heads = 4, .num_kv_heads = 3}), "layers::TransformerBlock: num_heads (4) must be a positive multiple of num_kv_heads (3)");
  KILN_EXPECT_ERROR(fails({.num_heads = 4}), "layers::TransformerBlock: dim 6 is not divisible by num_heads 4 (set head_dim)");
  KILN_EXPECT_ERROR(fails({.num_heads = 2, .mlp = "relu"}), "mlp must be \"gelu\", \"swiglu\" or \"relu2\", got \"relu\"");
  KILN_EXPECT_ERROR(fails({.num_heads = 2, .norm = "batch"}), "norm must be \"layer\" or \"rms\", got \"batch\"");
  KILN_EXPECT_ERROR(fails({.num_heads = 2, .dropout = 1.5}), "layers::TransformerBlock: dropout must be in [0, 1), got 1.5");
  const Tensor long_mask = FromDoubles(shapes::Make(dtypes::Bool, 1, 3), {1, 1, 0});
  KILN_EXPECT_ERROR(Block(backend, context::New(), x, {.num_heads = 2}, &long_mask),
                    "layers::TransformerBlock: padding_mask must be Bool[1, 2], got Bool[1, 3]");
  KILN_EXPECT_ERROR(fails({.num_heads = 2, .causal = false, .cache_length = 4}),
                    "cache_length 4 needs causal attention and time <= cache_length (time 2)");
  auto g = graph::NewGraph("errors");
  Node q = graph::Parameter(g.get(), "q", shapes::Make(dtypes::Float32, 1, 2, 3, 4));
  Node k = graph::Parameter(g.get(), "k", shapes::Make(dtypes::Float32, 1, 2, 2, 4));
  Node short_k = graph::Parameter(g.get(), "s", shapes::Make(dtypes::Float32, 1, 1, 3, 4));
  KILN_EXPECT_ERROR(ml::layers::DotProductAttention(q, k, k), "the query heads (3) must be a multiple of the key/value heads (2)");
  KILN_EXPECT_ERROR(ml::layers::DotProductAttention(q, short_k, short_k, true), "causal attention needs q_len <= kv_len, got 2 and 1");
  KILN_EXPECT_ERROR(ml::layers::DotProductAttention(q, k, short_k),
                    "layers::DotProductAttention: q must be [batch, q_len, heads, head_dim] and k, v [batch, kv_len, "
                    "kv_heads, head_dim] of one dtype");
  Node q2 = graph::Parameter(g.get(), "q2", shapes::Make(dtypes::Float32, 1, 2, 2, 4));
  Node float_mask = graph::Parameter(g.get(), "m", shapes::Make(dtypes::Float32, 2, 2));
  KILN_EXPECT_ERROR(ml::layers::DotProductAttention(q2, k, k, false, float_mask),
                    "layers::DotProductAttention: mask must be Bool, broadcastable to [batch, heads, q_len, kv_len], "
                    "got Float32[2, 2]");
}

}  // namespace
}  // namespace kiln
