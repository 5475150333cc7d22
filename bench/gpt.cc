// Copyright 2026 The Kiln Authors.
// Kiln's side of the GPT benchmarks (see bench/gpt.h).
#include "bench/gpt.h"

#include <random>

#include "kiln/ml/generation/generator.h"
#include "kiln/ml/layers/transformer.h"
#include "kiln/ml/losses/losses.h"
#include "kiln/ml/optimizers/optimizers.h"

namespace kiln::bench {

namespace {

ml::layers::DecoderOptions GptOptions() {
  ml::layers::DecoderOptions o{.vocab_size = kGptVocab, .dim = kGptDim, .num_layers = kGptLayers,
                               .positions = "rotary"};
  o.block.num_heads = kGptHeads;
  o.block.mlp = "swiglu";
  o.block.mlp_dim = kGptMlp;
  o.block.norm = "rms";
  o.block.bias = false;
  return o;
}

tensors::Tensor RandomBytes(std::vector<int64_t> dims, uint64_t seed) {
  tensors::Tensor t(shapes::Make(dtypes::Int32, std::move(dims)));
  std::mt19937_64 rng(seed);
  for (int32_t& v : t.MutableFlat<int32_t>()) v = static_cast<int32_t>(rng() % kGptVocab);
  return t;
}

}  // namespace

Step GptTrainStep(const std::shared_ptr<backends::Backend>& backend) {
  context::Context ctx = context::New();
  ctx.SetParam("optimizer", std::string("adamw"));
  ctx.SetParam("learning_rate", 1e-3);
  ctx.SetParam("weight_decay", 0.1);
  ctx.SetParam("clip_global_norm", 1.0);
  auto model = [o = GptOptions()](context::Context c, const std::vector<graph::Node>& in) {
    return std::vector<graph::Node>{ml::layers::Decoder(c, in[0], o)};
  };
  auto trainer = ml::train::NewTrainer(backend, ctx, model, ml::losses::SparseCategoricalCrossEntropyLogits,
                                       ml::optimizers::FromContext(ctx));
  ml::datasets::Batch batch{{RandomBytes({kGptBatch, kGptContext}, 1)}, {RandomBytes({kGptBatch, kGptContext}, 2)}};
  trainer->TrainStep(batch);  // trace, compile, initialize
  return [trainer, batch] { trainer->TrainStep(batch); };
}

Step GptDecode(const std::shared_ptr<backends::Backend>& backend) {
  auto generator = std::make_shared<ml::generation::Generator>(
      backend, context::New(), ml::generation::DecoderModel(GptOptions()), kGptContext);
  std::vector<std::vector<int32_t>> prompts;
  const tensors::Tensor bytes = RandomBytes({kDecodeBatch, kDecodePrompt}, 3);
  const auto flat = bytes.Flat<int32_t>();
  for (int64_t b = 0; b < kDecodeBatch; ++b) {
    prompts.emplace_back(flat.begin() + b * kDecodePrompt, flat.begin() + (b + 1) * kDecodePrompt);
  }
  const ml::generation::GenerateOptions options{.max_new_tokens = kDecodeTokens, .sampling = {.temperature = 0}};
  generator->Generate(prompts, options);  // trace and compile both graphs
  return [generator, prompts, options] { generator->Generate(prompts, options); };
}

}  // namespace kiln::bench
