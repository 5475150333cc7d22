// Copyright 2026 The Kiln Authors.
// Generation with the key/value cache against full forward passes computed
// here without a cache: greedy decoding of prompts of different lengths in
// one batch (left padding) gives each prompt's tokens alone, for rotary and
// learned positions; beam search with enough beams is the exhaustive search;
// stop tokens; reproducibility from the seed; the caches' lifetime; errors.
// On every test backend (KILN_TEST_BACKENDS), the CUDA emulator included.
#include "kiln/ml/generation/generator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "kiln/context/exec.h"
#include "kiln/graph/ops.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using context::Context;
using graph::Node;
using ml::generation::GenerateOptions;
using ml::generation::Generator;
using tensors::Tensor;
using testing::ToDoubles;
using Tokens = std::vector<int32_t>;

// "rotary" or "learned", with "+smear" for the token shifts (smear and
// every block's token_shift).
ml::layers::DecoderOptions TinyDecoder(std::string positions, int64_t vocab = 11) {
  const size_t plus = positions.find("+smear");
  const bool smear = plus != std::string::npos;
  if (smear) positions.resize(plus);
  ml::layers::DecoderOptions o{.vocab_size = vocab, .dim = 16, .num_layers = 2, .positions = positions,
                               .max_length = 64, .smear = smear};
  o.block.num_heads = 4;
  o.block.num_kv_heads = 2;
  o.block.mlp = "swiglu";
  o.block.norm = "rms";
  o.block.token_shift = smear;
  return o;
}

// Non-zero token shifts (they start at zero, where decoding could not tell
// a wrong previous position from a right one), on TinyDecoder's 2 blocks.
void SetSmear(Context ctx) {
  std::vector<double> lambda;
  for (int j = 0; j < 16; ++j) lambda.push_back(0.9 - 0.1 * j);
  const Tensor value = testing::FromDoubles(shapes::Make(dtypes::Float32, 16), lambda);
  ctx.In("smear").VariableWithValue("lambda", value);
  for (const char* block : {"block0", "block1"}) {
    for (const char* shift : {"attention_shift", "mlp_shift"}) ctx.In(block).In(shift).VariableWithValue("lambda", value);
  }
}

// Log-probabilities of the next token after `tokens`, by a full forward pass
// (no cache).
class FullPass {
 public:
  FullPass(std::shared_ptr<backends::Backend> backend, Context ctx, ml::layers::DecoderOptions o)
      : exec_(context::NewExec(std::move(backend), ctx, std::function<Node(Context, Node)>([o](Context c, Node tokens) {
          Node logits = ml::layers::Decoder(c, tokens, o);
          const int64_t t = tokens.Shape().Dim(1);
          return graph::LogSoftmax(graph::Reshape(graph::SliceAxis(logits, 1, t - 1, t), {o.vocab_size}), 0);
        }))) {}
  std::vector<double> NextLogProbs(const Tokens& tokens) {
    return ToDoubles(exec_.Call(tensors::FromFlat(shapes::Make(dtypes::Int32, 1, static_cast<int64_t>(tokens.size())), tokens)));
  }
  Tokens Greedy(Tokens tokens, int n) {
    Tokens out;
    for (int i = 0; i < n; ++i) {
      const std::vector<double> lp = NextLogProbs(tokens);
      const auto best = static_cast<int32_t>(std::max_element(lp.begin(), lp.end()) - lp.begin());
      out.push_back(best);
      tokens.push_back(best);
    }
    return out;
  }

 private:
  context::Exec<std::function<Node(Context, Node)>> exec_;
};

// On each backend of testing::BackendNames() (the CUDA emulator's ctest
// runs them on CUDA's kernels), with the positions of the param's first part.
class GeneratorTest : public ::testing::TestWithParam<std::tuple<std::string, std::string>> {
 protected:
  std::string Positions() const { return std::get<0>(GetParam()); }
  std::shared_ptr<backends::Backend> Backend() const { return testing::NewTestBackend(std::get<1>(GetParam())); }
};

TEST_P(GeneratorTest, GreedyBatchOfDifferentLengthsMatchesFullPasses) {
  auto backend = Backend();
  Context ctx = context::New();
  ctx.SetSeed(3);
  const auto options = TinyDecoder(Positions());
  if (options.smear) SetSmear(ctx);
  FullPass full(backend, ctx, options);
  const std::vector<Tokens> prompts = {{1, 2, 3, 4, 5, 6, 7}, {9}, {4, 4, 8}};
  Generator gen(backend, ctx, ml::generation::DecoderModel(options), 32);
  const auto got = gen.Generate(prompts, {.max_new_tokens = 6, .sampling = {.temperature = 0}});
  ASSERT_EQ(got.size(), prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    EXPECT_EQ(got[i], full.Greedy(prompts[i], 6)) << "prompt " << i;
  }
  EXPECT_EQ(gen.LastStats().steps, 5);
  EXPECT_EQ(gen.LastStats().generated_tokens, 18);
  // Alone, a prompt gives the same tokens (its batch has no padding).
  EXPECT_EQ(gen.Generate({prompts[1]}, {.max_new_tokens = 6, .sampling = {.temperature = 0}})[0], got[1]);
}

INSTANTIATE_TEST_SUITE_P(
    Positions, GeneratorTest,
    ::testing::Combine(::testing::Values("rotary", "learned", "rotary+smear"),
                       ::testing::ValuesIn(testing::BackendNames())),
    [](const ::testing::TestParamInfo<std::tuple<std::string, std::string>>& info) {
      const std::string positions = std::get<0>(info.param) == "rotary+smear" ? "rotary_smear" : std::get<0>(info.param);
      return positions + "_" + testing::BackendParamName({std::get<1>(info.param), 0});
    });

// The generator's other behaviour, on each backend.
class GeneratorOnBackends : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return testing::NewTestBackend(GetParam()); }
};

TEST_P(GeneratorOnBackends, StopTokensEndEachRowAndAreKept) {
  auto backend = Backend();
  Context ctx = context::New();
  const auto options = TinyDecoder("rotary");
  FullPass full(backend, ctx, options);
  const Tokens prompt = {3, 1, 4};
  const Tokens free_run = full.Greedy(prompt, 8);
  Generator gen(backend, ctx, ml::generation::DecoderModel(options), 16);
  const int32_t stop = free_run[2];
  const auto first = static_cast<size_t>(std::find(free_run.begin(), free_run.end(), stop) - free_run.begin());
  const auto got = gen.Generate({prompt, {5, 9}}, {.max_new_tokens = 8, .sampling = {.temperature = 0},
                                                  .stop_tokens = {stop}});
  EXPECT_EQ(got[0], Tokens(free_run.begin(), free_run.begin() + static_cast<std::ptrdiff_t>(first) + 1));
  const Tokens other = full.Greedy({5, 9}, 8);
  const auto other_stop = std::find(other.begin(), other.end(), stop);
  EXPECT_EQ(got[1], Tokens(other.begin(), other_stop == other.end() ? other.end() : other_stop + 1));
}

TEST_P(GeneratorOnBackends, SamplingIsReproducibleFromTheSeedAndLeavesTheContextStream) {
  auto backend = Backend();
  Context ctx = context::New();
  const auto options = TinyDecoder("rotary", 50);
  Generator gen(backend, ctx, ml::generation::DecoderModel(options), 40);
  const std::vector<Tokens> prompts = {{1, 2}, {7}};
  GenerateOptions o{.max_new_tokens = 30, .sampling = {.temperature = 1.5, .top_p = 0.95, .repetition_penalty = 1.3},
                    .seed = 7};
  const auto a = gen.Generate(prompts, o);
  const auto state = ToDoubles(ctx.GetVariableByScopeAndName("/rng_state")->Value());
  EXPECT_EQ(gen.Generate(prompts, o), a);
  EXPECT_EQ(ToDoubles(ctx.GetVariableByScopeAndName("/rng_state")->Value()), state)
      << "the context's own random stream is restored after generating";
  o.seed = 8;
  EXPECT_NE(gen.Generate(prompts, o), a);
  EXPECT_EQ(a[0].size(), 30u);
  EXPECT_NE(a[0], a[1]);
}

// With smear too: the reorder moves its cached last embedding with the beams.
TEST_P(GeneratorOnBackends, BeamSearchWithEnoughBeamsIsTheExhaustiveSearch) {
  auto backend = Backend();
  for (const std::string model : {"rotary", "rotary+smear"}) {
    SCOPED_TRACE(model);
    Context ctx = context::New();
    ctx.SetSeed(5);
    constexpr int kVocab = 4;
    const auto options = TinyDecoder(model, kVocab);
    if (options.smear) SetSmear(ctx);
    FullPass full(backend, ctx, options);
    const Tokens prompt = {1, 3};
    // Every continuation of 3 tokens, scored sum(log p) / 3^penalty: with
    // vocab^2 beams nothing is ever pruned, so beam search must find the best.
    double best = -std::numeric_limits<double>::infinity();
    Tokens best_tokens;
    for (int32_t a = 0; a < kVocab; ++a) {
      const double la = full.NextLogProbs(prompt)[static_cast<size_t>(a)];
      for (int32_t b = 0; b < kVocab; ++b) {
        const double lb = full.NextLogProbs({1, 3, a})[static_cast<size_t>(b)];
        const std::vector<double> lc = full.NextLogProbs({1, 3, a, b});
        for (int32_t c = 0; c < kVocab; ++c) {
          if (la + lb + lc[static_cast<size_t>(c)] > best) {
            best = la + lb + lc[static_cast<size_t>(c)];
            best_tokens = {a, b, c};
          }
        }
      }
    }
    Generator gen(backend, ctx, ml::generation::DecoderModel(options), 8);
    EXPECT_EQ(gen.Generate({prompt}, {.max_new_tokens = 3, .num_beams = kVocab * kVocab})[0], best_tokens);
    // Greedy is not always the best sequence; beam search with one beam per
    // prompt row of two prompts still returns one result each.
    const auto two = gen.Generate({prompt, {2}}, {.max_new_tokens = 3, .num_beams = 3});
    EXPECT_EQ(two.size(), 2u);
    EXPECT_EQ(two[0].size(), 3u);
  }
}

TEST_P(GeneratorOnBackends, BeamSearchStopsAtStopTokensWithTheLengthPenalty) {
  auto backend = Backend();
  Context ctx = context::New();
  constexpr int kVocab = 3;
  const auto options = TinyDecoder("rotary", kVocab);
  FullPass full(backend, ctx, options);
  const Tokens prompt = {2, 1};
  // With a stop token, hypotheses of every length compete: score =
  // sum(log p) / length^penalty over all sequences ending in the stop token
  // (or of the full length). Exhaustive over lengths 1..3.
  const int32_t stop = 0;
  for (double penalty : {0.0, 1.0, 2.0}) {
    double best = -std::numeric_limits<double>::infinity();
    Tokens best_tokens;
    std::vector<std::pair<Tokens, double>> frontier = {{{}, 0.0}};
    for (int len = 1; len <= 3; ++len) {
      std::vector<std::pair<Tokens, double>> next;
      for (const auto& [tokens, lp] : frontier) {
        Tokens context = prompt;
        context.insert(context.end(), tokens.begin(), tokens.end());
        const std::vector<double> l = full.NextLogProbs(context);
        for (int32_t t = 0; t < kVocab; ++t) {
          Tokens extended = tokens;
          extended.push_back(t);
          const double s = lp + l[static_cast<size_t>(t)];
          if (t == stop || len == 3) {
            const double score = s / std::pow(len, penalty);
            if (score > best) {
              best = score;
              best_tokens = extended;
            }
          } else {
            next.emplace_back(extended, s);
          }
        }
      }
      frontier = next;
    }
    Generator gen(backend, ctx, ml::generation::DecoderModel(options), 8);
    const auto got = gen.Generate({prompt}, {.max_new_tokens = 3, .stop_tokens = {stop}, .num_beams = 9,
                                             .length_penalty = penalty, .early_stopping = false});
    EXPECT_EQ(got[0], best_tokens) << "length_penalty " << penalty;
  }
}

TEST_P(GeneratorOnBackends, CachesLiveWithTheGenerator) {
  auto backend = Backend();
  Context ctx = context::New();
  const auto options = TinyDecoder("rotary");
  {
    Generator gen(backend, ctx, ml::generation::DecoderModel(options), 16);
    gen.Generate({{1}, {2}}, {.max_new_tokens = 2});
    ASSERT_NE(ctx.GetVariableByScopeAndName("/kv_cache/block0/key"), nullptr);
    EXPECT_EQ(ctx.GetVariableByScopeAndName("/kv_cache/block1/value")->Shape(), shapes::Make(dtypes::Float32, 2, 2, 16, 4));
    gen.Generate({{1}, {2}, {3}}, {.max_new_tokens = 2});  // another batch size: new caches
    EXPECT_EQ(ctx.GetVariableByScopeAndName("/kv_cache/block1/value")->Shape(), shapes::Make(dtypes::Float32, 3, 2, 16, 4));
  }
  for (context::Variable* v : ctx.Variables()) {
    EXPECT_TRUE(v->Deleted() || v->ScopeAndName().rfind("/kv_cache/", 0) != 0) << v->ScopeAndName();
  }
  EXPECT_NE(ctx.GetVariableByScopeAndName("/block0/query/weights"), nullptr) << "the model's variables stay";
}

TEST_P(GeneratorOnBackends, CacheLengthIsThePowerOfTwoThatHoldsTheRequest) {
  auto backend = Backend();
  Context ctx = context::New();
  const auto options = TinyDecoder("rotary", 11);
  FullPass full(backend, ctx, options);
  Generator gen(backend, ctx, ml::generation::DecoderModel(options), 200);
  auto cache_length = [&] { return ctx.GetVariableByScopeAndName("/kv_cache/block0/key")->Shape().Dim(2); };
  const Tokens prompt = {1, 2, 3};
  // 3 tokens padded to 16, plus 4 new: 64 slots.
  const auto short_run = gen.Generate({prompt}, {.max_new_tokens = 4, .sampling = {.temperature = 0}});
  EXPECT_EQ(cache_length(), 64);
  // 16 + 60 = 76: 128 slots; the first tokens are the same.
  const auto long_run = gen.Generate({prompt}, {.max_new_tokens = 60, .sampling = {.temperature = 0}});
  EXPECT_EQ(cache_length(), 128);
  EXPECT_EQ(Tokens(long_run[0].begin(), long_run[0].begin() + 4), short_run[0]);
  EXPECT_EQ(short_run[0], full.Greedy(prompt, 4));
  // 16 + 150 = 166: capped at the generator's 200.
  gen.Generate({prompt}, {.max_new_tokens = 150, .sampling = {.temperature = 0}});
  EXPECT_EQ(cache_length(), 200);
}

INSTANTIATE_TEST_SUITE_P(Backends, GeneratorOnBackends, ::testing::ValuesIn(testing::BackendNames()),
                         testing::BackendParamName);

// Errors are the generator's own, before any backend runs: on the CPU.
TEST(GeneratorErrors, BadRequestsAreNamed) {
  auto backend = backends::NewWithName("cpu");
  Context ctx = context::New();
  Generator gen(backend, ctx, ml::generation::DecoderModel(TinyDecoder("rotary")), 8);
  KILN_EXPECT_ERROR(gen.Generate({}, {}), "generation::Generator: no prompts");
  KILN_EXPECT_ERROR(gen.Generate({{1}, {}}, {}), "generation::Generator: prompt 1 is empty");
  KILN_EXPECT_ERROR(gen.Generate({{1, -2}}, {}), "prompt 0 has token -2, outside [0, vocab)");
  KILN_EXPECT_ERROR(gen.Generate({{1, 2, 3}}, {.max_new_tokens = 6}),
                    "the longest prompt (3 tokens) plus max_new_tokens (6) exceed cache_length 8");
  KILN_EXPECT_ERROR(gen.Generate({{1}}, {.max_new_tokens = 0}), "max_new_tokens must be >= 1, got 0");
  KILN_EXPECT_ERROR(gen.Generate({{1}}, {.num_beams = 0}), "num_beams must be >= 1, got 0");
  KILN_EXPECT_ERROR(gen.Generate({{1, 11}}, {.max_new_tokens = 2}), "a prompt has token 11, outside [0, 11)");
  KILN_EXPECT_ERROR(gen.Generate({{12}}, {.max_new_tokens = 2}), "prompt 0 has token 12, outside [0, 11)");
  KILN_EXPECT_ERROR(Generator(backend, ctx, ml::generation::DecoderModel(TinyDecoder("rotary")), 1),
                    "cache_length must be >= 2, got 1");
  KILN_EXPECT_ERROR(Generator(backend, ctx, nullptr, 8), "generation::Generator: needs a model function");
  KILN_EXPECT_ERROR(Generator(nullptr, ctx, ml::generation::DecoderModel(TinyDecoder("rotary")), 8),
                    "generation::Generator: needs a backend");
  KILN_EXPECT_ERROR(gen.Generate({{1}}, {.length_penalty = std::nan("")}), "generation::Generator: length_penalty is NaN");
  Generator flat(backend, context::New(), [](Context, const ml::generation::DecodeInputs& in) {
    return graph::ConvertDType(in.tokens, dtypes::Float32);  // [batch, time]: no vocabulary axis
  }, 8);
  KILN_EXPECT_ERROR(flat.Generate({{1}}, {.max_new_tokens = 2}),
                    "generation::Generator: the model must return logits [batch, time, vocab], got Float32[1, 1]");
  KILN_EXPECT_ERROR(gen.Generate({{1}}, {.max_new_tokens = std::numeric_limits<int64_t>::max()}),
                    "plus max_new_tokens (9223372036854775807) exceed cache_length 8");
  // Learned positions end at max_length (64): a cache beyond it is an error, not clamped positions.
  Context learned_ctx = context::New();
  Generator learned(backend, learned_ctx, ml::generation::DecoderModel(TinyDecoder("learned")), 128);
  KILN_EXPECT_ERROR(learned.Generate({{1}}, {.max_new_tokens = 70}),
                    "layers::Decoder: a cache of 128 positions is longer than the 64 learned positions (max_length)");
}

}  // namespace
}  // namespace kiln
