// Copyright 2026 The Kiln Authors.
// The fused Attention op against a reference written here (scores, masks,
// causal positions, softmax, weighted values, all in double), on every
// backend that implements it: several shapes (grouped-query heads, one-row
// decode steps over many keys, row and key blocks with a causal tail, empty
// axes), Float32 and Float64, broadcast masks with fully hidden rows, NaN;
// DotProductAttention taking the fused path on long keys; the error messages.
// Its gradients (the AttentionGrad op where the backend has it) against a
// reference here, and by finite differences in tests/graph/grad_cases_dot_conv.cc.
#include "kiln/graph/attention.h"

#include <cmath>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "kiln/graph/autodiff.h"
#include "kiln/graph/ops.h"
#include "kiln/ml/layers/transformer.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;
using testing::FromDoubles;
using testing::ToDoubles;
using testing::Uniform;

struct Case {
  int64_t batch, heads, kv_heads, q_len, kv_len, head_dim;
  bool causal;
  int mask;  // 0: none, 1: [1, heads, q, k], 2: [batch, 1, q, k]
};

// The weights of row i of query head h of batch b: softmax over keys of the
// masked scaled scores; visible[j] says whether key j is not hidden.
std::vector<double> Weights(const Case& c, const std::vector<double>& q, const std::vector<double>& k,
                            const std::vector<double>& mask, double scale, double masked, int64_t b, int64_t h,
                            int64_t i, std::vector<bool>* visible) {
  const int64_t d = c.head_dim, n = h / (c.heads / c.kv_heads);
  std::vector<double> s(static_cast<size_t>(c.kv_len));
  visible->assign(static_cast<size_t>(c.kv_len), true);
  double top = -std::numeric_limits<double>::infinity();
  for (int64_t j = 0; j < c.kv_len; ++j) {
    double dot = 0;
    for (int64_t x = 0; x < d; ++x) {
      dot += q[static_cast<size_t>(((b * c.heads + h) * c.q_len + i) * d + x)] *
             k[static_cast<size_t>(((b * c.kv_heads + n) * c.kv_len + j) * d + x)];
    }
    bool seen = !c.causal || j <= c.kv_len - c.q_len + i;
    if (c.mask == 1) seen = seen && mask[static_cast<size_t>((h * c.q_len + i) * c.kv_len + j)] != 0;
    if (c.mask == 2) seen = seen && mask[static_cast<size_t>((b * c.q_len + i) * c.kv_len + j)] != 0;
    (*visible)[static_cast<size_t>(j)] = seen;
    s[static_cast<size_t>(j)] = seen ? dot * scale : masked;
    top = std::max(top, s[static_cast<size_t>(j)]);
  }
  double sum = 0;
  for (double& x : s) sum += (x = std::exp(x - top));
  for (double& x : s) x /= sum;
  return s;
}

// Calls row(b, h, n, i, p, visible) for every query row i of head h (kv
// head n) of batch b, with its weights p and visible keys (see Weights).
template <typename Row>
void ForEachRow(const Case& c, const std::vector<double>& q, const std::vector<double>& k,
                const std::vector<double>& mask, double scale, double masked, Row row) {
  std::vector<bool> visible;
  for (int64_t b = 0; b < c.batch; ++b) {
    for (int64_t h = 0; h < c.heads; ++h) {
      for (int64_t i = 0; i < c.q_len; ++i) {
        const std::vector<double> p = Weights(c, q, k, mask, scale, masked, b, h, i, &visible);
        row(b, h, h / (c.heads / c.kv_heads), i, p, visible);
      }
    }
  }
}

// Attention's output, [batch, heads, q_len, head_dim].
std::vector<double> Reference(const Case& c, const std::vector<double>& q, const std::vector<double>& k,
                              const std::vector<double>& v, const std::vector<double>& mask, double scale,
                              double masked) {
  const int64_t d = c.head_dim;
  std::vector<double> out(static_cast<size_t>(c.batch * c.heads * c.q_len * d));
  ForEachRow(c, q, k, mask, scale, masked,
             [&](int64_t b, int64_t h, int64_t n, int64_t i, const std::vector<double>& p, const std::vector<bool>&) {
               for (int64_t x = 0; x < d; ++x) {
                 double o = 0;
                 for (int64_t j = 0; j < c.kv_len; ++j) {
                   o += p[static_cast<size_t>(j)] * v[static_cast<size_t>(((b * c.kv_heads + n) * c.kv_len + j) * d + x)];
                 }
                 out[static_cast<size_t>(((b * c.heads + h) * c.q_len + i) * d + x)] = o;
               }
             });
  return out;
}

// Attention's gradients for the output's cotangent d_out, from the chain
// rule through the softmax: with P the weights, dP = d_out vᵀ and
// dS = P (dP - sum(P dP)), zero at hidden scores (constants).
struct Grads {
  std::vector<double> dq, dk, dv;
};
Grads ReferenceGrads(const Case& c, const std::vector<double>& q, const std::vector<double>& k,
                     const std::vector<double>& v, const std::vector<double>& mask, const std::vector<double>& d_out,
                     double scale, double masked) {
  const int64_t d = c.head_dim;
  Grads g{std::vector<double>(q.size()), std::vector<double>(k.size()), std::vector<double>(v.size())};
  ForEachRow(c, q, k, mask, scale, masked,
             [&](int64_t b, int64_t h, int64_t n, int64_t i, const std::vector<double>& p,
                 const std::vector<bool>& visible) {
               const size_t row = static_cast<size_t>(((b * c.heads + h) * c.q_len + i) * d);
               auto key = [&](int64_t j) { return static_cast<size_t>(((b * c.kv_heads + n) * c.kv_len + j) * d); };
               std::vector<double> dp(static_cast<size_t>(c.kv_len));
               double p_dp = 0;
               for (int64_t j = 0; j < c.kv_len; ++j) {
                 for (int64_t x = 0; x < d; ++x) {
                   dp[static_cast<size_t>(j)] += d_out[row + static_cast<size_t>(x)] * v[key(j) + static_cast<size_t>(x)];
                 }
                 p_dp += p[static_cast<size_t>(j)] * dp[static_cast<size_t>(j)];
               }
               for (int64_t j = 0; j < c.kv_len; ++j) {
                 const double pj = p[static_cast<size_t>(j)];
                 const double ds = visible[static_cast<size_t>(j)] ? pj * (dp[static_cast<size_t>(j)] - p_dp) : 0;
                 for (int64_t x = 0; x < d; ++x) {
                   const size_t qx = row + static_cast<size_t>(x), kx = key(j) + static_cast<size_t>(x);
                   g.dq[qx] += scale * ds * k[kx];
                   g.dk[kx] += scale * ds * q[qx];
                   g.dv[kx] += pj * d_out[qx];
                 }
               }
             });
  return g;
}

// Shapes for the reference tests: grouped-query heads, decode steps over
// several key blocks, row blocks with causal tails, empty axes.
std::vector<Case> ReferenceCases() {
  return {
      {2, 4, 2, 5, 7, 8, true, 0},      // grouped-query, causal
      {1, 2, 2, 1, 300, 16, false, 1},  // a decode step over more than one key block
      {2, 2, 1, 70, 600, 8, true, 2},   // several row blocks, queries at the end of many keys
      {1, 2, 1, 600, 600, 4, true, 2},  // causal self-attention: key blocks past a row block are skipped
      {1, 3, 3, 65, 65, 4, true, 1},    // a row block of one row
      {3, 2, 2, 4, 6, 5, false, 2},
      {1, 4, 2, 33, 50, 100, false, 2},  // a head length the threads do not divide (CUDA: smaller tiles)
      {1, 2, 1, 9, 40, 520, true, 1},    // a head too long for CUDA's shared memory: read in place
      {0, 2, 2, 3, 4, 2, false, 0},  // empty batch
      {1, 2, 1, 0, 4, 2, false, 0},  // no queries
      {1, 2, 2, 3, 0, 2, false, 0},  // no keys: zeros
      {1, 2, 2, 3, 4, 0, true, 0},   // head_dim 0: empty results
  };
}

// A mask for case c (about a third hidden, and every key of query row 0
// hidden: uniform weights), as doubles, and its dims.
std::vector<double> RandomMask(const Case& c, std::vector<int64_t>* dims, uint64_t seed) {
  *dims = c.mask == 1 ? std::vector<int64_t>{1, c.heads, c.q_len, c.kv_len}
                      : std::vector<int64_t>{c.batch, 1, c.q_len, c.kv_len};
  std::vector<double> mask(static_cast<size_t>(testing::NumElements(*dims)));
  testing::Rng rng(seed);
  for (size_t i = 0; i < mask.size(); ++i) {
    mask[i] = (rng() % 3 != 0) &&
              (i / static_cast<size_t>(c.kv_len)) % static_cast<size_t>(std::max<int64_t>(c.q_len, 1)) != 0;
  }
  return mask;
}

class AttentionTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

std::vector<std::string> BackendsWithAttention() { return testing::BackendsSupporting(ir::OpType::kAttention); }
INSTANTIATE_TEST_SUITE_P(Backends, AttentionTest, ::testing::ValuesIn(BackendsWithAttention()));
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(AttentionTest);

TEST_P(AttentionTest, MatchesTheReference) {
  uint64_t seed = 1;
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64}) {
    for (const Case& c : ReferenceCases()) {
      SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << " batch " << c.batch << " heads " << c.heads << "/"
                                        << c.kv_heads << " q " << c.q_len << " kv " << c.kv_len << " d "
                                        << c.head_dim << (c.causal ? " causal" : "") << " mask " << c.mask);
      const Tensor q = Uniform({c.batch, c.heads, c.q_len, c.head_dim}, -2, 2, ++seed);
      const Tensor k = Uniform({c.batch, c.kv_heads, c.kv_len, c.head_dim}, -2, 2, ++seed);
      const Tensor v = Uniform({c.batch, c.kv_heads, c.kv_len, c.head_dim}, -2, 2, ++seed);
      std::vector<int64_t> mdims;
      const std::vector<double> mask = RandomMask(c, &mdims, ++seed);
      const double scale = 0.6, masked = -1e9;
      std::vector<Tensor> args = {FromDoubles(shapes::Shape(dt, q.Shape().Dims()), ToDoubles(q)),
                                  FromDoubles(shapes::Shape(dt, k.Shape().Dims()), ToDoubles(k)),
                                  FromDoubles(shapes::Shape(dt, v.Shape().Dims()), ToDoubles(v))};
      if (c.mask != 0) args.push_back(FromDoubles(shapes::Shape(dtypes::Bool, mdims), mask));
      const Tensor got = testing::Run1(Backend(), [&](const std::vector<Node>& p) {
        return graph::Attention(p[0], p[1], p[2], c.mask != 0 ? p[3] : Node(),
                                {.scale = scale, .causal = c.causal, .masked_value = masked});
      }, args);
      // The reference sees the inputs as rounded to dt.
      const std::vector<double> want =
          Reference(c, ToDoubles(args[0]), ToDoubles(args[1]), ToDoubles(args[2]), mask, scale, masked);
      const double tol = dt == dtypes::Float32 ? 2e-5 : 1e-12;
      EXPECT_TRUE(testing::AllClose(got, args[0].Shape(), want, tol, tol));
    }
  }
}

TEST_P(AttentionTest, AModerateMaskedValueKeepsTheWeightOfHiddenKeys) {
  // With masked_value -4 hidden keys still weigh exp(-4 - max): no key block
  // may be skipped, even past the causal limit.
  const Case c{1, 2, 2, 300, 300, 4, true, 0};  // keys 256-299 are past the first row block
  const Tensor q = Uniform({1, 2, 300, 4}, -1, 1, 30), k = Uniform({1, 2, 300, 4}, -1, 1, 31);
  const Tensor v = Uniform({1, 2, 300, 4}, -1, 1, 32);
  const Tensor got = testing::Run1(Backend(), [](const std::vector<Node>& p) {
    return graph::Attention(p[0], p[1], p[2], {}, {.scale = 1, .causal = true, .masked_value = -4});
  }, {q, k, v});
  EXPECT_TRUE(testing::AllClose(got, q.Shape(), Reference(c, ToDoubles(q), ToDoubles(k), ToDoubles(v), {}, 1, -4),
                                1e-12, 1e-12));
}

// The gradients of q, k and v for a random output cotangent, by the
// AttentionGrad op where the backend has it (else the composed form), against
// ReferenceGrads; plus a moderate masked_value, whose hidden keys keep their
// weight (no key block may be skipped).
TEST_P(AttentionTest, GradientsMatchTheReference) {
  const bool fused = Backend()->GetCapabilities().SupportsOp(ir::OpType::kAttentionGrad);
  std::vector<std::pair<Case, double>> cases;  // (case, masked_value)
  for (const Case& c : ReferenceCases()) cases.push_back({c, -1e9});
  cases.push_back({{1, 2, 2, 300, 300, 4, true, 0}, -4});  // blocks past the causal limit still weigh
  cases.push_back({{1, 4, 1, 130, 130, 8, true, 0}, -1e9});  // one kv head for 4 query heads, 3 row blocks
  uint64_t seed = 100;
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64}) {
    for (const auto& entry : cases) {
      // (Not a structured binding: Clang 14 cannot capture one in a lambda.)
      const Case& c = entry.first;
      const double masked = entry.second;
      SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << " batch " << c.batch << " heads " << c.heads << "/"
                                        << c.kv_heads << " q " << c.q_len << " kv " << c.kv_len << " d "
                                        << c.head_dim << (c.causal ? " causal" : "") << " mask " << c.mask
                                        << " masked " << masked);
      auto input = [&](std::vector<int64_t> dims) {
        return FromDoubles(shapes::Shape(dt, dims), ToDoubles(Uniform(dims, -2, 2, ++seed)));
      };
      std::vector<Tensor> args = {input({c.batch, c.heads, c.q_len, c.head_dim}),
                                  input({c.batch, c.kv_heads, c.kv_len, c.head_dim}),
                                  input({c.batch, c.kv_heads, c.kv_len, c.head_dim}),
                                  input({c.batch, c.heads, c.q_len, c.head_dim})};  // the output's cotangent
      std::vector<int64_t> mdims;
      const std::vector<double> mask = RandomMask(c, &mdims, ++seed);
      if (c.mask != 0) args.push_back(FromDoubles(shapes::Shape(dtypes::Bool, mdims), mask));
      const double scale = 0.6;
      std::string text;
      const std::vector<Tensor> got = testing::Run(Backend(), [&](const std::vector<Node>& p) {
        Node out = graph::Attention(p[0], p[1], p[2], c.mask != 0 ? p[4] : Node(),
                                    {.scale = scale, .causal = c.causal, .masked_value = masked});
        std::vector<Node> grads = graph::VJP({out}, {p[3]}, {p[0], p[1], p[2]});
        text = p[0].Graph()->ToString();
        return grads;
      }, args);
      EXPECT_EQ(text.find("AttentionGrad(") != std::string::npos, fused) << text;
      const Grads want = ReferenceGrads(c, ToDoubles(args[0]), ToDoubles(args[1]), ToDoubles(args[2]), mask,
                                        ToDoubles(args[3]), scale, masked);
      const double tol = dt == dtypes::Float32 ? 1e-4 : 1e-11;
      EXPECT_TRUE(testing::AllClose(got[0], args[0].Shape(), want.dq, tol, tol)) << "dq";
      EXPECT_TRUE(testing::AllClose(got[1], args[1].Shape(), want.dk, tol, tol)) << "dk";
      EXPECT_TRUE(testing::AllClose(got[2], args[2].Shape(), want.dv, tol, tol)) << "dv";
    }
  }
}

// Training memory stays linear in the lengths: the gradient's graph holds no
// [q_len, kv_len] score matrix where the backend has AttentionGrad.
TEST_P(AttentionTest, GradientHoldsNoScoreMatrix) {
  auto backend = Backend();
  if (!backend->GetCapabilities().SupportsOp(ir::OpType::kAttentionGrad)) GTEST_SKIP() << "no AttentionGrad";
  const Tensor q = Uniform({1, 2, 384, 8}, -1, 1, 60), k = Uniform({1, 1, 512, 8}, -1, 1, 61);
  const Tensor v = Uniform({1, 1, 512, 8}, -1, 1, 62);
  std::string text;
  const std::vector<Tensor> got = testing::Run(backend, [&](const std::vector<Node>& p) {
    Node y = graph::ReduceAllSum(graph::Square(graph::Attention(p[0], p[1], p[2], {}, {.scale = 0.3, .causal = true})));
    std::vector<Node> grads = graph::Gradient(y, {p[0], p[1], p[2]});
    text = p[0].Graph()->ToString();
    return grads;
  }, {q, k, v});
  EXPECT_NE(text.find("AttentionGrad("), std::string::npos) << text;
  EXPECT_EQ(text.find("384, 512]"), std::string::npos) << text;
  for (const Tensor& g : got) {
    for (double x : ToDoubles(g)) ASSERT_TRUE(std::isfinite(x));
  }
}

TEST_P(AttentionTest, NaNReachesOnlyTheRowsThatSeeIt) {
  const Case c{1, 1, 1, 3, 4, 2, true, 0};
  std::vector<double> kv = ToDoubles(Uniform({1, 1, 4, 2}, -1, 1, 40));
  kv[5] = std::nan("");  // key 2: seen by queries 1 and 2 (causal), not by query 0
  const Tensor q = Uniform({1, 1, 3, 2}, -1, 1, 41), k = FromDoubles(shapes::Make(dtypes::Float32, 1, 1, 4, 2), kv);
  const Tensor v = Uniform({1, 1, 4, 2}, -1, 1, 42);
  const Tensor qf = FromDoubles(shapes::Make(dtypes::Float32, 1, 1, 3, 2), ToDoubles(q));
  const Tensor vf = FromDoubles(shapes::Make(dtypes::Float32, 1, 1, 4, 2), ToDoubles(v));
  const Tensor got = testing::Run1(Backend(), [](const std::vector<Node>& p) {
    return graph::Attention(p[0], p[1], p[2], {}, {.scale = 1, .causal = true});
  }, {qf, k, vf});
  const std::vector<double> g = ToDoubles(got);
  EXPECT_FALSE(std::isnan(g[0]) || std::isnan(g[1])) << "query 0 sees keys 0 and 1 only";
  for (size_t i = 2; i < 6; ++i) EXPECT_TRUE(std::isnan(g[i])) << i;
  (void)c;
}

TEST_P(AttentionTest, DotProductAttentionUsesItOnLongKeys) {
  // Long enough for every backend's fused path; the same results as the
  // reference (the composed path is checked by transformer_test).
  auto backend = Backend();
  const int64_t kv_len = std::max<int64_t>(backend->GetCapabilities().fused_attention_min_kv_length, 300);
  const Case c{1, 4, 2, 3, kv_len, 8, true, 0};
  const Tensor q = Uniform({1, 3, 4, 8}, -1, 1, 50), k = Uniform({1, kv_len, 2, 8}, -1, 1, 51);
  const Tensor v = Uniform({1, kv_len, 2, 8}, -1, 1, 52);
  std::string text;
  const Tensor got = testing::Run1(backend, [&](const std::vector<Node>& p) {
    Node out = ml::layers::DotProductAttention(p[0], p[1], p[2], true);
    text = p[0].Graph()->ToString();
    return out;
  }, {q, k, v});
  EXPECT_NE(text.find("Attention("), std::string::npos) << text;
  // The reference's layout: heads-major.
  auto heads_major = [](const Tensor& t) {
    const auto& d = t.Shape().Dims();
    const std::vector<double> x = ToDoubles(t);
    std::vector<double> y(x.size());
    for (int64_t s = 0; s < d[1]; ++s) {
      for (int64_t h = 0; h < d[2]; ++h) {
        for (int64_t j = 0; j < d[3]; ++j) y[static_cast<size_t>((h * d[1] + s) * d[3] + j)] = x[static_cast<size_t>((s * d[2] + h) * d[3] + j)];
      }
    }
    return y;
  };
  const std::vector<double> want = Reference(c, heads_major(q), heads_major(k), heads_major(v), {}, 1 / std::sqrt(8.0), -1e9);
  std::vector<double> want_layout(want.size());  // back to [batch, q, heads, d]
  for (int64_t h = 0; h < 4; ++h) {
    for (int64_t s = 0; s < 3; ++s) {
      for (int64_t j = 0; j < 8; ++j) want_layout[static_cast<size_t>((s * 4 + h) * 8 + j)] = want[static_cast<size_t>((h * 3 + s) * 8 + j)];
    }
  }
  EXPECT_TRUE(testing::AllClose(got, q.Shape(), want_layout, 1e-12, 1e-12));
}

TEST(AttentionErrors, BadOperandsAreNamed) {
  auto g = graph::NewGraph("errors");
  auto param = [&](const char* name, dtypes::DType dt, std::vector<int64_t> dims) {
    return graph::Parameter(g.get(), name, shapes::Shape(dt, std::move(dims)));
  };
  Node q = param("q", dtypes::Float32, {1, 4, 2, 8}), k = param("k", dtypes::Float32, {1, 2, 5, 8});
  KILN_EXPECT_ERROR(graph::Attention(param("qi", dtypes::Int32, {1, 4, 2, 8}), k, k),
                    "Attention: q, k and v must be Float32 or Float64, got q Int32[1, 4, 2, 8]");
  KILN_EXPECT_ERROR(graph::Attention(q, param("k3", dtypes::Float32, {1, 3, 5, 8}), param("v3", dtypes::Float32, {1, 3, 5, 8})),
                    "Attention: needs q [batch, heads, q_len, head_dim] and k, v [batch, kv_heads, kv_len, head_dim] of "
                    "one dtype, heads a multiple of kv_heads; got q Float32[1, 4, 2, 8], k Float32[1, 3, 5, 8]");
  KILN_EXPECT_ERROR(graph::Attention(q, k, k, param("m", dtypes::Bool, {1, 4, 2, 4})),
                    "Attention: mask must be Bool [batch or 1, heads or 1, q_len, kv_len], got q Float32[1, 4, 2, 8], "
                    "k Float32[1, 2, 5, 8], v Float32[1, 2, 5, 8], mask Bool[1, 4, 2, 4]");
  KILN_EXPECT_ERROR(graph::Attention(param("long", dtypes::Float32, {1, 4, 6, 8}), k, k, {}, {.causal = true}),
                    "Attention: causal attention needs q_len <= kv_len");
  KILN_EXPECT_ERROR(graph::Attention(q, k, k, {}, {.masked_value = -std::numeric_limits<double>::infinity()}),
                    "Attention: scale and masked_value must be finite (a row with every key hidden would be NaN)");
}

// The CPU kernel re-checks what the graph layer guarantees, for IR built by hand.
TEST(AttentionErrors, KernelRejectsInconsistentHandBuiltIr) {
  auto fn = std::make_shared<ir::Function>();
  fn->name = "hand";
  auto param = [&](int index, shapes::Shape shape) {
    fn->instructions.push_back({ir::OpType::kParameter, {}, shape, ir::ParameterAttrs{index, "p"}, ""});
    fn->parameters.push_back(static_cast<int>(fn->instructions.size()) - 1);
  };
  param(0, shapes::Make(dtypes::Float32, 1, 3, 2, 4));  // 3 heads: not a multiple of k's 2
  param(1, shapes::Make(dtypes::Float32, 1, 2, 5, 4));
  param(2, shapes::Make(dtypes::Bool, 1, 3, 2, 6));     // 6 keys: k has 5
  param(3, shapes::Make(dtypes::Float32, 1, 2, 2, 4));
  fn->instructions.push_back({ir::OpType::kAttention, {0, 1, 1}, shapes::Make(dtypes::Float32, 1, 3, 2, 4),
                              ir::AttentionAttrs{.scale = 1}, "hand.cc:1"});
  fn->instructions.push_back({ir::OpType::kAttention, {3, 1, 1, 2}, shapes::Make(dtypes::Float32, 1, 2, 2, 4),
                              ir::AttentionAttrs{.scale = 1}, "hand.cc:2"});
  fn->outputs = {4};
  KILN_EXPECT_ERROR(backends::NewWithName("cpu")->Compile(fn),
                    "cpu: Attention of q Float32[1, 3, 2, 4], k Float32[1, 2, 5, 4]: inconsistent shapes");
  fn->outputs = {5};
  KILN_EXPECT_ERROR(backends::NewWithName("cpu")->Compile(fn),
                    "cpu: Attention mask Bool[1, 3, 2, 6] does not broadcast to the scores of q Float32[1, 2, 2, 4]");
}

// AttentionGrad built by hand: the IR validation names its operands, and
// the CPU kernel re-checks the heads.
TEST(AttentionErrors, AttentionGradRejectsInconsistentHandBuiltIr) {
  auto build = [](shapes::Shape q, shapes::Shape k, shapes::Shape out) {
    auto fn = std::make_shared<ir::Function>();
    fn->name = "hand";
    int index = 0;
    for (const shapes::Shape& shape : {q, k, out}) {
      fn->instructions.push_back({ir::OpType::kParameter, {}, shape, ir::ParameterAttrs{index++, "p"}, ""});
      fn->parameters.push_back(static_cast<int>(fn->instructions.size()) - 1);
    }
    fn->instructions.push_back({ir::OpType::kAttentionGrad, {0, 1, 1, 2, 2}, ir::TupleShape(),
                                ir::AttentionAttrs{.scale = 1}, "hand.cc:1"});
    fn->instructions.push_back({ir::OpType::kGetTupleElement, {3}, q, ir::TupleIndexAttrs{0}, "hand.cc:2"});
    fn->outputs = {4};
    return fn;
  };
  const shapes::Shape q = shapes::Make(dtypes::Float32, 1, 3, 2, 4);
  KILN_EXPECT_ERROR(backends::NewWithName("cpu")->Compile(build(q, shapes::Make(dtypes::Float32, 1, 3, 5, 4),
                                                                shapes::Make(dtypes::Float32, 1, 3, 2, 5))),
                    "(AttentionGrad): needs operands q, k, v, out, d_out[, mask] (out and d_out of q's shape");
  KILN_EXPECT_ERROR(backends::NewWithName("cpu")->Compile(build(q, shapes::Make(dtypes::Float64, 1, 3, 5, 4), q)),
                    "(AttentionGrad): needs operands q, k, v, out, d_out[, mask] (out and d_out of q's shape, v of "
                    "k's, rank 4, one dtype; a Bool mask)");
  KILN_EXPECT_ERROR(backends::NewWithName("cpu")->Compile(build(q, shapes::Make(dtypes::Float32, 1, 2, 5, 4), q)),
                    "cpu: AttentionGrad of q Float32[1, 3, 2, 4], k Float32[1, 2, 5, 4]: inconsistent shapes");
}

}  // namespace
}  // namespace kiln
