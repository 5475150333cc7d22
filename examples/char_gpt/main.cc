// Copyright 2026 The Kiln Authors.
// A small GPT trained from scratch on the English fortunes of Debian's
// `fortunes` package, byte by byte: a decoder-only transformer (rotary
// positions, token shifts, RMSNorm, SwiGLU, tied embeddings) trained with
// the Trainer, a progress bar, checkpoints (resumed on the next run) and an
// HTML plot; then samples from prompts with the key/value-cache generator.
// Reports the validation loss in bits per byte and the generation speed in
// tokens/s.
// Unless --params sets `steps`, it trains for --minutes with the
// learning-rate schedule over the time, so that it ends with the time on
// any machine.
//
//   char_gpt [--params="num_layers=4;dim=256;steps=1500"] [--minutes=10] [--data=DIR]
//            [--checkpoint_dir=DIR] [--restart] [--plot=FILE.html] [--prompt=TEXT] [--samples=N]
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "kiln/backends/openmp_defaults.h"
#include "kiln/context/checkpoints.h"
#include "kiln/kiln.h"
#include "kiln/ml/datasets/text.h"
#include "kiln/ml/generation/generator.h"
#include "kiln/ml/layers/transformer.h"
#include "kiln/ml/text/tokenizer.h"
#include "kiln/ml/train/loop.h"

namespace {

using namespace kiln;      // NOLINT(build/namespaces): an example reads better this way.
using namespace kiln::ml;  // NOLINT(build/namespaces)
using graph::Node;
using Clock = std::chrono::steady_clock;

struct Flags {
  std::string params;
  double minutes = 10;  // training stops after this much wall time, even before `steps`
  std::string data = "/usr/share/games/fortunes";
  std::string checkpoint_dir = "/tmp/kiln-char-gpt";
  std::string plot = "char_gpt.html";
  std::vector<std::string> prompts;
  int samples = 3;
  bool restart = false;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const std::string& name) -> const char* {
      const std::string prefix = "--" + name + "=";
      return arg.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("params")) f.params = v;
    else if (const char* v = value("minutes")) f.minutes = std::atof(v);  // checked below
    else if (const char* v = value("data")) f.data = v;
    else if (const char* v = value("checkpoint_dir")) f.checkpoint_dir = v;
    else if (const char* v = value("plot")) f.plot = v;
    else if (const char* v = value("prompt")) f.prompts.push_back(v);
    else if (const char* v = value("samples")) f.samples = std::atoi(v);
    else if (arg == "--restart") f.restart = true;
    else {
      std::cerr << "unknown flag " << arg << "\nusage: char_gpt [--params=\"k=v;...\"] [--minutes=M] [--data=DIR] "
                << "[--checkpoint_dir=DIR] [--restart] [--plot=FILE] [--prompt=TEXT]... [--samples=N]\n";
      std::exit(2);
    }
  }
  if (!(f.minutes > 0)) {
    std::cerr << "--minutes must be a positive number\n";
    std::exit(2);
  }
  if (f.prompts.empty()) f.prompts = {"The ", "Q: Why", "A computer", "Love is"};
  return f;
}

// The fortunes: every text file of the directory (not the .dat indexes or
// the .u8 links), each a list of quotes ending in a line "%". Returns the
// quotes, each with its "%\n" terminator, in file order.
std::vector<std::string> ReadFortunes(const std::string& dir) {
  if (!std::filesystem::is_directory(dir)) {
    throw Error("no fortunes in " + dir + ": install the Debian package `fortunes` (tools/setup.sh does)");
  }
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const auto ext = e.path().extension();
    if (e.is_regular_file() && !e.is_symlink() && ext != ".dat" && ext != ".u8") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> quotes;
  for (const auto& path : files) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream text;
    text << in.rdbuf();
    std::string quote;
    std::istringstream lines(text.str());
    for (std::string line; std::getline(lines, line);) {
      quote += line + "\n";
      if (line == "%") {
        if (quote.size() > 2) quotes.push_back(quote);
        quote.clear();
      }
    }
  }
  if (quotes.size() < 100) throw Error("only " + std::to_string(quotes.size()) + " fortunes in " + dir);
  return quotes;
}

// The example's hyperparameters (defaults, then --params).
context::Context NewContext(const Flags& flags) {
  context::Context ctx = context::New();
  ctx.SetParam("num_layers", int64_t{4});
  ctx.SetParam("dim", int64_t{192});
  ctx.SetParam("num_heads", int64_t{3});
  // 256-byte windows: 16 per batch scored better than 32 x 128 bytes (the
  // same bytes per step, each step 18% slower): 2.033-2.037 against
  // 2.047-2.052 bits per byte in 10 minutes on a Zen 5, without the token
  // shifts below, as fewer of each window's bytes are predicted from little
  // context.
  ctx.SetParam("context", int64_t{256});
  ctx.SetParam("dropout", 0.0);
  ctx.SetParam("input_noise", 0.0);  // TokenWindows::InputNoise's rate
  ctx.SetParam("mlp", std::string("swiglu"));
  ctx.SetParam("mlp_dim", int64_t{0});  // 0: SwiGLU's 8/3 dim rounded up to 64 (512)
  ctx.SetParam("qk_norm", false);
  // Token shifts: of the embeddings (DecoderOptions::smear) and of every
  // block's attention and MLP inputs (TransformerOptions::token_shift):
  // 2.007-2.008 bits per byte in 10 minutes against 2.033-2.037 without (16
  // windows per batch), for 4% more time per step.
  ctx.SetParam("smear", true);
  ctx.SetParam("token_shift", true);
  ctx.SetParam("tie_embeddings", true);
  ctx.SetParam("logit_softcap", 0.0);
  // 12 windows per batch: a step costs 0.76 of 16's (181-196 against
  // 238-250 ms on a Zen 5), so 10 minutes make a third more steps of nearly
  // the same bytes in all; over the same 9.8 MB, 12 per batch ends 0.011
  // bits per byte lower (1.995 against 2.006 after 3,200 and 2,400 steps).
  ctx.SetParam("batch_size", int64_t{12});
  ctx.SetParam("steps", int64_t{0});  // 0: train for --minutes, with the schedule over the time
  // Muon for the weight matrices, AdamW for the embedding and the norms: 0.1
  // bits per byte lower than AdamW after 800 steps (2.20 vs 2.34).
  ctx.SetParam("optimizer", std::string("muon"));
  ctx.SetParam("learning_rate", 6e-3);
  ctx.SetParam("weight_decay", 0.1);
  ctx.SetParam("weight_decay_min_rank", int64_t{0});
  ctx.SetParam("clip_global_norm", 1.0);
  // The schedule's shape: "cosine", "wsd" (constant, then linear over the
  // last cooldown_fraction), "linear" or "constant"; over the steps when
  // `steps` is set, else over the time (see Run).
  ctx.SetParam("schedule", std::string("cosine"));
  ctx.SetParam("cooldown_fraction", 0.2);
  ctx.SetParam("warmup_steps", int64_t{100});
  ctx.SetParam("min_learning_rate", 1e-4);
  ctx.SetParam("eval_every", int64_t{500});
  ctx.SetParam("eval_stride", int64_t{0});  // the final sliding evaluation's stride; 0: half the context
  ctx.SetParam("seed", int64_t{42});
  // Float32 matmuls may round their operands to BFloat16 (sums stay Float32):
  // 1.3-1.5x faster on CPUs with AVX512-BF16, bf16 tensor cores on CUDA; other
  // CPUs compute in Float32.
  ctx.SetParam("dot_precision", std::string("bfloat16"));
  if (!flags.params.empty()) ctx.SetParams(flags.params);
  const std::string shape = ctx.GetParam<std::string>("schedule");
  if (shape != "cosine" && shape != "wsd" && shape != "linear" && shape != "constant") {
    throw Error("schedule=\"" + shape + "\": must be cosine, wsd, linear or constant");
  }
  const double f = ctx.GetParam<double>("cooldown_fraction");
  if (!(f > 0 && f <= 1)) {
    std::ostringstream message;
    message << "cooldown_fraction=" << f << ": must be in (0, 1]";
    throw Error(message.str());
  }
  const auto stride = ctx.GetParam<int64_t>("eval_stride"), context_length = ctx.GetParam<int64_t>("context");
  if (stride < 0 || stride > context_length) {
    throw Error("eval_stride=" + std::to_string(stride) + ": must be in [0, context] (0: half the context), context is " +
                std::to_string(context_length));
  }
  return ctx;
}

layers::DecoderOptions ModelOptions(const context::Context& ctx, int64_t vocab_size) {
  layers::DecoderOptions model{.vocab_size = vocab_size,
                               .dim = ctx.GetParam<int64_t>("dim"),
                               .num_layers = static_cast<int>(ctx.GetParam<int64_t>("num_layers")),
                               .positions = "rotary",
                               .tie_embeddings = ctx.GetParam<bool>("tie_embeddings"),
                               .logit_softcap = ctx.GetParam<double>("logit_softcap"),
                               .smear = ctx.GetParam<bool>("smear")};
  model.block.num_heads = static_cast<int>(ctx.GetParam<int64_t>("num_heads"));
  model.block.mlp = ctx.GetParam<std::string>("mlp");
  model.block.mlp_dim = ctx.GetParam<int64_t>("mlp_dim");
  model.block.qk_norm = ctx.GetParam<bool>("qk_norm");
  model.block.token_shift = ctx.GetParam<bool>("token_shift");
  model.block.norm = "rms";
  model.block.bias = false;
  model.block.dropout = ctx.GetParam<double>("dropout");
  return model;
}

std::shared_ptr<train::Trainer> NewGptTrainer(const std::shared_ptr<backends::Backend>& backend, context::Context ctx,
                                              const layers::DecoderOptions& model) {
  auto model_fn = [model](context::Context c, const std::vector<Node>& inputs) {
    return std::vector<Node>{layers::Decoder(c, inputs[0], model)};
  };
  return train::NewTrainer(backend, ctx, model_fn, losses::SparseCategoricalCrossEntropyLogits,
                           optimizers::FromContext(ctx));
}

// The learning rate of the time-bound run at `progress` in [0, 1] of the
// time and global step `step`: the schedule's shape over the time (the
// optimizer's formulas, evaluated on the host by optimizers::LearningRateAt
// over a decay of a million steps), scaled by a linear warmup over the first
// warmup_steps steps (0 at step 0).
double RateAt(const context::Context& ctx, double progress, int64_t step) {
  constexpr int64_t kShapeSteps = 1'000'000;
  context::Context shape = context::New();
  shape.SetParam("learning_rate_schedule", ctx.GetParam<std::string>("schedule"));
  shape.SetParam("learning_rate", ctx.GetParam<double>("learning_rate"));
  shape.SetParam("min_learning_rate", ctx.GetParam<double>("min_learning_rate"));
  shape.SetParam("cooldown_fraction", ctx.GetParam<double>("cooldown_fraction"));
  shape.SetParam("decay_steps", kShapeSteps);
  const double rate =
      optimizers::LearningRateAt(shape, std::clamp(progress, 0.0, 1.0) * static_cast<double>(kShapeSteps));
  const auto warmup = ctx.GetParam<int64_t>("warmup_steps");
  return step < warmup ? rate * static_cast<double>(step) / static_cast<double>(warmup) : rate;
}

int Run(const Flags& flags) {
  const auto start = Clock::now();
  auto backend = backends::New();
  std::cout << "Kiln char-GPT on " << backend->Description() << "\n";

  context::Context ctx = NewContext(flags);
  graph::SetDefaultDotPrecision(ir::ParseDotPrecision(ctx.GetParam<std::string>("dot_precision")));
  const auto seed = static_cast<uint64_t>(ctx.GetParam<int64_t>("seed"));
  ctx.SetSeed(seed);

  // Data: quotes shuffled once (by the seed), 95% for training, 5% held out.
  std::vector<std::string> quotes = ReadFortunes(flags.data);
  std::vector<size_t> order(quotes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  const size_t num_val = quotes.size() / 20;
  text::ByteTokenizer tokenizer;
  std::vector<int32_t> train_tokens, val_tokens;
  for (size_t i = 0; i < order.size(); ++i) {
    const std::vector<int32_t> ids = tokenizer.Encode(quotes[order[i]]);
    auto& dst = i < num_val ? val_tokens : train_tokens;
    dst.insert(dst.end(), ids.begin(), ids.end());
  }
  const int64_t context_length = ctx.GetParam<int64_t>("context");
  const int64_t batch_size = ctx.GetParam<int64_t>("batch_size");
  datasets::TokenWindows train_ds("fortunes", train_tokens, context_length);
  train_ds.BatchSize(batch_size).Shuffle(seed);
  if (const double noise = ctx.GetParam<double>("input_noise"); noise > 0) {
    train_ds.InputNoise(noise, static_cast<int32_t>(tokenizer.VocabSize()), seed);
  }
  datasets::TokenWindows val_ds("validation", val_tokens, context_length);
  val_ds.BatchSize(batch_size);
  std::cout << quotes.size() << " fortunes: " << train_tokens.size() << " training bytes, " << val_tokens.size()
            << " validation bytes\n";

  const layers::DecoderOptions model = ModelOptions(ctx, tokenizer.VocabSize());
  auto trainer = NewGptTrainer(backend, ctx, model);

  if (flags.restart) std::filesystem::remove_all(flags.checkpoint_dir);
  auto checkpoint = context::checkpoints::Build(ctx).Dir(flags.checkpoint_dir).Keep(2).Done();
  if (std::string restored = checkpoint->Restore(); !restored.empty()) {
    std::cout << "resumed from " << flags.checkpoint_dir << "/" << restored << "\n";
  }
  // Two ways to train. With `steps`, the optimizer computes the schedule
  // over the steps (reproducible from the seed). By default, for --minutes
  // (Loop::RunFor): before each step the rate is set from the fraction of
  // the time used (the optimizer reads it from its learning-rate variable),
  // so the schedule ends when the time does, on a fast machine or a slow
  // one; the time trained so far is a hyperparameter, so checkpoints carry
  // it and a resumed run continues the schedule.
  const auto train_start = Clock::now();
  const double budget = 60 * flags.minutes;
  auto loop = train::NewLoop(trainer);
  loop->AddPeriodicEval(val_ds, ctx.GetParam<int64_t>("eval_every"));
  loop->AddPeriodicCheckpoint(*checkpoint, 250);
  if (ctx.GetParam<int64_t>("steps") == 0) {
    const double before = ctx.GetParamOr<double>("trained_seconds", 0.0);
    ctx.SetParam("learning_rate_schedule", std::string("variable"));
    auto set_rate = [&ctx](double progress, int64_t step) {
      optimizers::LearningRateVariable(ctx)->SetValue(
          tensors::FromValue(static_cast<float>(RateAt(ctx, progress, step))));
    };
    set_rate(before / budget, trainer->GlobalStep());
    loop->OnStep([&ctx, before, budget, set_rate](train::Loop&, const train::StepInfo& info) {
      const double trained = before + info.elapsed_seconds;
      ctx.SetParam("trained_seconds", std::min(trained, budget));
      set_rate(trained / budget, info.step);
    });
    if (before < budget) {
      std::printf("training for %.0f s (%s schedule over the time) on batches of %lld x %lld bytes\n",
                  budget - before, ctx.GetParam<std::string>("schedule").c_str(), static_cast<long long>(batch_size),
                  static_cast<long long>(context_length));
      loop->RunFor(train_ds, budget - before);
    } else {
      std::cout << "already trained for " << budget << " s (" << trainer->GlobalStep() << " steps)\n";
    }
  } else {
    const int64_t steps = ctx.GetParam<int64_t>("steps");
    ctx.SetParam("learning_rate_schedule", ctx.GetParam<std::string>("schedule"));  // the optimizer's names
    // The last step (global step steps - 1) gets the schedule's end.
    ctx.SetParam("decay_steps", std::max<int64_t>(1, steps - 1 - ctx.GetParam<int64_t>("warmup_steps")));
    loop->EveryNSeconds(5, [&](train::Loop& l, const train::StepInfo&) {
      if (std::chrono::duration<double>(Clock::now() - train_start).count() > budget) l.Stop();
    });
    if (const int64_t run = steps - trainer->GlobalStep(); run > 0) {
      std::cout << "training " << run << " steps of " << batch_size << " x " << context_length << " bytes (at most "
                << flags.minutes << " minutes)\n";
      loop->RunSteps(train_ds, run);
    } else {
      std::cout << "already trained for " << steps << " steps\n";
    }
  }
  const double train_seconds = std::chrono::duration<double>(Clock::now() - train_start).count();
  // The validation text scored two ways: in non-overlapping windows (as the
  // periodic evaluations, comparable across runs), where a window's first
  // bytes are predicted from almost nothing, and in sliding windows
  // (TokenWindows::Stride), where every byte is predicted from at least
  // context - eval_stride + 1 bytes.
  const double val_loss = trainer->Evaluate(val_ds)["loss"];
  const auto eval_stride = ctx.GetParam<int64_t>("eval_stride");
  const int64_t stride = eval_stride > 0 ? eval_stride : std::max<int64_t>(1, context_length / 2);
  datasets::TokenWindows sliding("validation", val_tokens, context_length);
  sliding.BatchSize(batch_size).Stride(stride);
  const double sliding_loss = trainer->Evaluate(sliding)["loss"];
  loop->WritePlot(flags.plot, "Kiln char-GPT on fortunes");
  std::printf("validation: %.3f bits per byte (loss %.4f nats) after %lld steps, %.1f s of training\n",
              val_loss / std::log(2.0), val_loss, static_cast<long long>(trainer->GlobalStep()), train_seconds);
  std::printf("sliding: %.3f bits per byte, each byte predicted from at least %lld bytes\n",
              sliding_loss / std::log(2.0), static_cast<long long>(context_length - stride + 1));

  // Samples: all prompts in one batch per call, `samples` calls with their own seeds.
  generation::Generator generator(backend, ctx, generation::DecoderModel(model), context_length);
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& p : flags.prompts) prompts.push_back(tokenizer.Encode(p));
  int64_t longest = 0;
  for (const auto& p : prompts) longest = std::max<int64_t>(longest, static_cast<int64_t>(p.size()));
  const generation::GenerateOptions options{
      .max_new_tokens = context_length - longest,
      .sampling = {.temperature = 0.8, .top_k = 40, .top_p = 0.95},
      .stop_tokens = {tokenizer.Encode("%")[0]},
      .seed = seed};
  double tokens = 0, seconds = 0;
  for (int s = 0; s < std::max(flags.samples, 1); ++s) {
    generation::GenerateOptions o = options;
    o.seed = seed + static_cast<uint64_t>(s);
    const auto out = generator.Generate(prompts, o);
    tokens += static_cast<double>(generator.LastStats().steps * static_cast<int64_t>(prompts.size()));
    seconds += generator.LastStats().decode_seconds;
    if (s >= flags.samples) break;
    for (size_t i = 0; i < out.size(); ++i) {
      std::cout << "---- sample " << s + 1 << "." << i + 1 << "\n" << flags.prompts[i] << tokenizer.Decode(out[i]) << "\n";
    }
  }
  if (seconds > 0) {
    std::printf("generation: %.0f tokens/s (batch of %zu prompts, key/value cache of %lld)\n", tokens / seconds,
                prompts.size(), static_cast<long long>(context_length));
  }
  std::printf("wall time: %.1f s  plot: %s\n",
              std::chrono::duration<double>(Clock::now() - start).count(), flags.plot.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  kiln::backends::ApplyOpenMpDefaults(argv);  // short OpenMP spin-waits (see the header)
  try {
    return Run(ParseFlags(argc, argv));
  } catch (const kiln::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
