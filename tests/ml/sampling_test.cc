// Copyright 2026 The Kiln Authors.
// Token sampling: the logit filters against values computed here (top-k,
// top-p, temperature, repetition penalty), greedy choice, the sampled
// frequencies against the filtered softmax (20,000 draws per case),
// reproducibility from the seed, and the error messages.
#include "kiln/ml/generation/sampling.h"

#include <cmath>
#include <limits>
#include <vector>

#include "kiln/context/exec.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using context::Context;
using graph::Node;
using ml::generation::SamplingOptions;
using tensors::Tensor;
using testing::FromDoubles;
using testing::ToDoubles;

constexpr double kInf = std::numeric_limits<double>::infinity();

class SamplingTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, SamplingTest, ::testing::ValuesIn(testing::BackendsSupporting(ir::OpType::kSort)));
// Empty where no backend tested has the op (KILN_TEST_BACKENDS=cuda).
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(SamplingTest);

Tensor Logits(const std::vector<std::vector<double>>& rows) {
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return FromDoubles(shapes::Make(dtypes::Float32, static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())),
                     flat);
}

// ProcessLogits on `logits`, with `previous` tokens if given.
std::vector<double> Process(const std::shared_ptr<backends::Backend>& backend, const Tensor& logits,
                            const SamplingOptions& o, const Tensor* previous = nullptr) {
  auto exec = context::NewExec(backend, context::New(), [&](Context, Node x, Node prev) {
    return ml::generation::ProcessLogits(x, o, previous != nullptr ? prev : Node());
  });
  return ToDoubles(exec.Call(logits, previous != nullptr ? *previous : Tensor(shapes::Make(dtypes::Int32, 1))));
}

TEST_P(SamplingTest, FiltersMatchTheirDefinitions) {
  const Tensor logits = Logits({{1, 4, 2, 3, 0, 3}, {-1, -2, 5, 0, 0, 1}});
  // top-k = 2: the two largest, and ties with the second (row 0: 4, 3, 3).
  EXPECT_EQ(Process(Backend(), logits, {.top_k = 2}),
            (std::vector<double>{-kInf, 4, -kInf, 3, -kInf, 3, -kInf, -kInf, 5, -kInf, -kInf, 1}));
  // Temperature 2 halves every logit.
  EXPECT_EQ(Process(Backend(), logits, {.temperature = 2}),
            (std::vector<double>{0.5, 2, 1, 1.5, 0, 1.5, -0.5, -1, 2.5, 0, 0, 0.5}));
  // top-p = 0.6: row 1's softmax puts about 0.94 on the 5, which is kept
  // alone; row 0 (probabilities 0.52, 0.19, 0.19, 0.07, ...) keeps 4, 3, 3
  // (0.52 < 0.6 <= 0.52 + 0.19; the tied 3 stays).
  const std::vector<double> p = Process(Backend(), logits, {.top_p = 0.6});
  EXPECT_EQ(p, (std::vector<double>{-kInf, 4, -kInf, 3, -kInf, 3, -kInf, -kInf, 5, -kInf, -kInf, -kInf}));
  // Repetition penalty 2 on tokens seen before (-1 is padding): positive
  // logits halved, negative ones doubled.
  const Tensor previous = FromDoubles(shapes::Make(dtypes::Int32, 2, 2), {1, -1, 0, 5});
  EXPECT_EQ(Process(Backend(), logits, {.repetition_penalty = 2}, &previous),
            (std::vector<double>{1, 2, 2, 3, 0, 3, -2, -2, 5, 0, 0, 0.5}));
}

// Draws one token for each of `rows` copies of `probs` (as logits log p).
std::vector<double> Frequencies(const std::shared_ptr<backends::Backend>& backend, const std::vector<double>& probs,
                                const SamplingOptions& o, int64_t rows = 20000, uint64_t seed = 7) {
  std::vector<std::vector<double>> logits(static_cast<size_t>(rows));
  for (auto& r : logits) {
    for (double p : probs) r.push_back(std::log(p));
  }
  Context ctx = context::New();
  ctx.SetSeed(seed);
  auto exec = context::NewExec(backend, ctx, [&](Context c, Node x) { return ml::generation::SampleTokens(c, x, o); });
  const Tensor tokens = exec.Call(Logits(logits));
  EXPECT_EQ(tokens.Shape(), shapes::Make(dtypes::Int32, rows));
  std::vector<double> freq(probs.size(), 0.0);
  for (double t : ToDoubles(tokens)) freq[static_cast<size_t>(t)] += 1;
  for (double& f : freq) f /= static_cast<double>(rows);
  return freq;
}

// Each frequency within 5 standard deviations of its probability
// (sqrt(p (1 - p) / n)); a token of probability 0 is never drawn.
::testing::AssertionResult Follows(const std::vector<double>& freq, const std::vector<double>& probs, int64_t n) {
  for (size_t i = 0; i < probs.size(); ++i) {
    const double sigma = std::sqrt(probs[i] * (1 - probs[i]) / static_cast<double>(n));
    if (!(std::abs(freq[i] - probs[i]) <= 5 * sigma)) {
      return ::testing::AssertionFailure() << "token " << i << ": frequency " << freq[i] << ", probability "
                                           << probs[i] << " (5 sigma = " << 5 * sigma << ")";
    }
  }
  return ::testing::AssertionSuccess();
}

TEST_P(SamplingTest, SampledFrequenciesFollowTheFilteredSoftmax) {
  const std::vector<double> probs = {0.5, 0.3, 0.15, 0.05};
  const int64_t n = 20000;
  EXPECT_TRUE(Follows(Frequencies(Backend(), probs, {}), probs, n));
  // top-k 2: renormalized over the two most likely.
  EXPECT_TRUE(Follows(Frequencies(Backend(), probs, {.top_k = 2}), {0.625, 0.375, 0, 0}, n));
  // top-p 0.85: 0.5 + 0.3 < 0.85, so the third stays; the fourth goes.
  EXPECT_TRUE(Follows(Frequencies(Backend(), probs, {.top_p = 0.85}), {0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0}, n));
  // Temperature 0.5 squares the probabilities (renormalized).
  const double z = 0.25 + 0.09 + 0.0225 + 0.0025;
  EXPECT_TRUE(Follows(Frequencies(Backend(), probs, {.temperature = 0.5}), {0.25 / z, 0.09 / z, 0.0225 / z, 0.0025 / z},
                      n));
  // Greedy: always the most likely.
  EXPECT_EQ(Frequencies(Backend(), probs, {.temperature = 0}, 100), (std::vector<double>{1, 0, 0, 0}));
}

TEST_P(SamplingTest, HalfLogitsAreProcessedInFloat32) {
  auto exec = context::NewExec(Backend(), context::New(), [](Context, Node x) {
    return ml::generation::ProcessLogits(x, {.temperature = 1e-3});
  });
  const Tensor out = exec.Call(FromDoubles(shapes::Make(dtypes::Float16, 1, 2), {60, -60}));
  EXPECT_EQ(out.DType(), dtypes::Float32);
  EXPECT_TRUE(testing::AllClose(out, shapes::Make(dtypes::Float32, 1, 2), {60000, -60000}, 1e-6, 0));  // beyond Float16
}

TEST_P(SamplingTest, DrawsAreReproducibleFromTheSeedAndDifferBetweenCalls) {
  auto draw = [&](uint64_t seed, int calls) {
    Context ctx = context::New();
    ctx.SetSeed(seed);
    auto exec = context::NewExec(Backend(), ctx, [&](Context c, Node x) {
      return ml::generation::SampleTokens(c, x, {.top_k = 50});
    });
    std::vector<std::vector<double>> out;
    const Tensor logits = Logits({std::vector<double>(100, 0.0), std::vector<double>(100, 1.0)});
    for (int i = 0; i < calls; ++i) out.push_back(ToDoubles(exec.Call(logits)));
    return out;
  };
  const auto a = draw(3, 2), b = draw(3, 2), c = draw(4, 1);
  EXPECT_EQ(a, b);
  EXPECT_NE(a[0], a[1]);
  EXPECT_NE(a[0], c[0]);
}

TEST(SamplingErrors, BadOptionsAreErrors) {
  auto g = graph::NewGraph("errors");
  Node logits = graph::Parameter(g.get(), "l", shapes::Make(dtypes::Float32, 2, 5));
  Node flat = graph::Parameter(g.get(), "f", shapes::Make(dtypes::Float32, 5));
  Node prev = graph::Parameter(g.get(), "p", shapes::Make(dtypes::Float32, 2, 3));
  using ml::generation::ProcessLogits;
  KILN_EXPECT_ERROR(ProcessLogits(flat, {}), "generation::SampleTokens: logits must be a float [batch, vocab], got Float32[5]");
  KILN_EXPECT_ERROR(ProcessLogits(logits, {.temperature = -1}), "temperature must be finite and >= 0");
  KILN_EXPECT_ERROR(ProcessLogits(logits, {.top_k = -2}), "top_k must be >= 0 (0: off), got -2");
  KILN_EXPECT_ERROR(ProcessLogits(logits, {.top_p = 0}), "top_p must be in (0, 1]");
  KILN_EXPECT_ERROR(ProcessLogits(logits, {.repetition_penalty = 0}), "repetition_penalty must be finite and > 0");
  KILN_EXPECT_ERROR(ProcessLogits(logits, {}, prev), "previous must be integer token ids [2, n], got Float32[2, 3]");
}

}  // namespace
}  // namespace kiln
