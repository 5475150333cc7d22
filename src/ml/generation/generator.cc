// Copyright 2026 The Kiln Authors.
// Generator (see kiln/ml/generation/generator.h). The host keeps only what
// is per prompt (padding, tokens so far, beams); the model, the cache and
// the choice of tokens run in compiled graphs: one for the prompts, one per
// decode step shape, and for beam search one that reorders the caches.
#include "kiln/ml/generation/generator.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <sstream>
#include <utility>

#include "kiln/context/exec.h"
#include "kiln/graph/ops.h"
#include "kiln/graph/sort.h"

namespace kiln::ml::generation {

namespace {

using context::Context;
using tensors::Tensor;
using Clock = std::chrono::steady_clock;

double Since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

[[noreturn]] void GenerateError(const std::string& message) { Throw("generation::Generator: " + message); }

// The logits of each row's last position: [rows, vocab].
Node LastLogits(const Node& logits) {
  const auto& d = logits.Shape().Dims();
  if (logits.Rank() != 3) GenerateError("the model must return logits [batch, time, vocab], got " + logits.Shape().ToString());
  return graph::Reshape(graph::SliceAxis(logits, 1, d[1] - 1, d[1]), {d[0], d[2]});
}

// rows[parents[r]] for every r, along the first axis of x.
Node GatherRows(const Node& x, const Node& parents) {
  ir::GatherAttrs a;
  a.index_vector_dim = 1;
  for (int i = 1; i < x.Rank(); ++i) a.offset_dims.push_back(i);
  a.collapsed_slice_dims = {0};
  a.start_index_map = {0};
  a.slice_sizes = x.Shape().Dims();
  a.slice_sizes[0] = 1;
  return graph::Gather(x, parents, a);
}

// Sets the context's seed (its random stream restarts from it) for the
// generation's own draws; puts the seed and the stream's state back when it
// ends, normally or by an exception.
class SeedScope {
 public:
  SeedScope(Context ctx, uint64_t seed) : ctx_(std::move(ctx)), seed_(ctx_.Seed()) {
    context::Variable* state = ctx_.GetVariableByScopeAndName("/rng_state");
    if (state != nullptr && state->HasValue()) {
      saved_ = tensors::FromFlat(state->Shape(), state->Value().Flat<uint64_t>());
    }
    ctx_.SetSeed(seed);
  }
  ~SeedScope() {
    ctx_.SetSeed(seed_);
    if (saved_.Ok()) ctx_.GetVariableByScopeAndName("/rng_state")->SetValue(saved_);
  }
  SeedScope(const SeedScope&) = delete;
  SeedScope& operator=(const SeedScope&) = delete;

 private:
  Context ctx_;
  uint64_t seed_;
  Tensor saved_;
};

std::string SamplingKey(const SamplingOptions& s) {
  std::ostringstream k;
  k.precision(17);
  k << s.temperature << '/' << s.top_k << '/' << s.top_p << '/' << s.repetition_penalty;
  return k.str();
}

}  // namespace

DecoderFn DecoderModel(layers::DecoderOptions options) {
  return [options](Context ctx, const DecodeInputs& in) {
    layers::DecoderOptions o = options;
    o.block.position_offset = in.position_offset;
    o.block.cache_offset = in.cache_offset;
    o.block.padding_mask = in.padding_mask;
    o.block.cache_length = in.cache_length;
    return layers::Decoder(ctx, in.tokens, o);
  };
}

// Inputs of every step graph: tokens, position offsets, cache slot, padding
// mask, then one more (the previous tokens, the beam scores, the parents).
using StepFn = std::function<std::vector<Node>(Context, Node, Node, Node, Node, Node)>;
using ReorderFn = std::function<Node(Context, Node)>;

struct Generator::Steps {
  std::map<std::string, context::Exec<StepFn>> sample;  // by sampling options
  std::map<std::string, context::Exec<StepFn>> beam;    // by beams and candidates per beam
  std::unique_ptr<context::Exec<ReorderFn>> reorder;
  int64_t vocab = 0;  // seen when a step graph is traced
};

// The host side of one Generate: rows (prompts times beams), their padding
// and the tensors fed to the step graphs.
struct Generator::Batch {
  int64_t rows = 0, prompt_length = 0, cache_length = 0;
  std::vector<int64_t> pads;          // left padding per row
  std::vector<int32_t> previous;      // [rows, cache_length]: token per slot, -1 where none
  Tensor mask;                        // Bool [rows, cache_length]

  // The prompts [rows, prompt_length], left-padded with token 0 (masked out).
  std::vector<int32_t> PromptTokens() const {
    std::vector<int32_t> tokens(static_cast<size_t>(rows * prompt_length), 0);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t s = pads[static_cast<size_t>(r)]; s < prompt_length; ++s) {
        tokens[static_cast<size_t>(r * prompt_length + s)] = previous[static_cast<size_t>(r * cache_length + s)];
      }
    }
    return tokens;
  }

  // The inputs of a call feeding `tokens` [rows, time] at cache slot `slot`.
  std::vector<Tensor> Inputs(const std::vector<int32_t>& tokens, int64_t time, int64_t slot) const {
    std::vector<int32_t> offsets(static_cast<size_t>(rows));
    for (int64_t r = 0; r < rows; ++r) offsets[static_cast<size_t>(r)] = static_cast<int32_t>(slot - pads[static_cast<size_t>(r)]);
    return {tensors::FromFlat(shapes::Make(dtypes::Int32, rows, time), tokens),
            tensors::FromFlat(shapes::Make(dtypes::Int32, rows), offsets),
            tensors::FromValue(static_cast<int32_t>(slot)), mask};
  }
};

Generator::Generator(std::shared_ptr<backends::Backend> backend, Context ctx, DecoderFn model, int64_t cache_length)
    : backend_(std::move(backend)),
      ctx_(ctx.Root().WithTraining(false)),
      model_(std::move(model)),
      cache_length_(cache_length),
      steps_(std::make_unique<Steps>()) {
  if (!backend_) GenerateError("needs a backend");
  if (!model_) GenerateError("needs a model function");
  if (cache_length < 2) GenerateError("cache_length must be >= 2, got " + std::to_string(cache_length));
}

Generator::~Generator() { ctx_.DeleteVariablesInScope(std::string(layers::kKvCacheScope) + "/"); }

std::vector<std::vector<int32_t>> Generator::Generate(const std::vector<std::vector<int32_t>>& prompts,
                                                      const GenerateOptions& o) {
  if (prompts.empty()) GenerateError("no prompts");
  if (o.max_new_tokens < 1) GenerateError("max_new_tokens must be >= 1, got " + std::to_string(o.max_new_tokens));
  if (o.num_beams < 1) GenerateError("num_beams must be >= 1, got " + std::to_string(o.num_beams));
  if (!(o.length_penalty == o.length_penalty)) GenerateError("length_penalty is NaN");
  int64_t longest = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) GenerateError("prompt " + std::to_string(i) + " is empty");
    for (int32_t t : prompts[i]) {
      if (t < 0 || (steps_->vocab > 0 && t >= steps_->vocab)) {
        GenerateError("prompt " + std::to_string(i) + " has token " + std::to_string(t) + ", outside [0, " +
                      (steps_->vocab > 0 ? std::to_string(steps_->vocab) : std::string("vocab")) + ")");
      }
    }
    longest = std::max<int64_t>(longest, static_cast<int64_t>(prompts[i].size()));
  }
  if (o.max_new_tokens > cache_length_ - longest) {
    GenerateError("the longest prompt (" + std::to_string(longest) + " tokens) plus max_new_tokens (" +
                  std::to_string(o.max_new_tokens) + ") exceed cache_length " + std::to_string(cache_length_));
  }
  const int64_t beams = o.num_beams;
  Batch b;
  b.rows = static_cast<int64_t>(prompts.size()) * beams;
  // Prompt lengths rounded up to 16 (when that fits) share a compiled graph.
  b.prompt_length = (longest + 15) / 16 * 16;
  if (b.prompt_length + o.max_new_tokens > cache_length_) b.prompt_length = longest;
  // The cache: the smallest power of two from 64 that holds the prompt and
  // the new tokens (attention reads every slot, so a short generation runs
  // on a short cache), at most cache_length.
  b.cache_length = 64;
  while (b.cache_length < b.prompt_length + o.max_new_tokens) b.cache_length *= 2;
  b.cache_length = std::min(b.cache_length, cache_length_);
  b.pads.resize(static_cast<size_t>(b.rows));
  b.previous.assign(static_cast<size_t>(b.rows * b.cache_length), -1);
  b.mask = Tensor(shapes::Make(dtypes::Bool, b.rows, b.cache_length));
  auto mask = b.mask.MutableFlat<bool>();
  for (int64_t r = 0; r < b.rows; ++r) {
    const auto& p = prompts[static_cast<size_t>(r / beams)];
    const int64_t pad = b.prompt_length - static_cast<int64_t>(p.size());
    b.pads[static_cast<size_t>(r)] = pad;
    for (int64_t s = 0; s < b.cache_length; ++s) mask[static_cast<size_t>(r * b.cache_length + s)] = s >= pad;
    std::copy(p.begin(), p.end(), b.previous.begin() + r * b.cache_length + pad);
  }
  // Caches are per (rows, length): new ones replace the old (and the step
  // graphs trace again).
  if (cache_shape_ != std::make_pair(b.rows, b.cache_length)) {
    ctx_.DeleteVariablesInScope(std::string(layers::kKvCacheScope) + "/");
    cache_shape_ = {b.rows, b.cache_length};
  }
  SeedScope seeded(ctx_, o.seed);
  stats_ = GenerateStats{};
  std::vector<std::vector<int32_t>> out = beams > 1 ? BeamSearch(b, o) : Sample(b, o);
  for (const auto& tokens : out) stats_.generated_tokens += static_cast<int64_t>(tokens.size());
  return out;
}

// The first trace tells the vocabulary: a prompt token beyond it (which the
// embedding would clamp) is an error, not a silently wrong answer.
void Generator::CheckPromptTokens(const Batch& b) const {
  for (int32_t t : b.previous) {
    if (t >= steps_->vocab) {
      GenerateError("a prompt has token " + std::to_string(t) + ", outside [0, " + std::to_string(steps_->vocab) + ")");
    }
  }
}

std::vector<std::vector<int32_t>> Generator::Sample(Batch& b, const GenerateOptions& o) {
  const std::string key = SamplingKey(o.sampling);
  auto it = steps_->sample.find(key);
  if (it == steps_->sample.end()) {
    StepFn fn = [this, sampling = o.sampling](Context c, Node tokens, Node pos, Node slot, Node mask, Node previous) {
      Node logits = LastLogits(model_(c, {tokens, pos, slot, mask, mask.Shape().Dim(1)}));
      steps_->vocab = logits.Shape().Dims()[1];
      return std::vector<Node>{SampleTokens(c, logits, sampling, previous)};
    };
    it = steps_->sample.emplace(key, context::NewExec(backend_, ctx_, fn, "generate_sample")).first;
  }
  auto& exec = it->second;
  const bool penalize = o.sampling.repetition_penalty != 1;
  // Without a penalty the graph gets a [rows, 1] placeholder (no token).
  const Tensor no_previous =
      tensors::FromFlat(shapes::Make(dtypes::Int32, b.rows, 1), std::vector<int32_t>(static_cast<size_t>(b.rows), -1));
  auto previous = [&] {
    return penalize ? tensors::FromFlat(shapes::Make(dtypes::Int32, b.rows, b.cache_length), b.previous) : no_previous;
  };
  auto start = Clock::now();
  std::vector<Tensor> in = b.Inputs(b.PromptTokens(), b.prompt_length, 0);
  Tensor next = exec.Call(in[0], in[1], in[2], in[3], previous())[0];
  CheckPromptTokens(b);
  stats_.prompt_tokens = b.rows * b.prompt_length;
  stats_.prefill_seconds = Since(start);
  start = Clock::now();
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(b.rows));
  std::vector<bool> done(static_cast<size_t>(b.rows), false);
  for (int64_t slot = b.prompt_length;; ++slot) {
    const auto chosen = next.Flat<int32_t>();
    int64_t running = 0;
    for (int64_t r = 0; r < b.rows; ++r) {
      const auto i = static_cast<size_t>(r);
      if (done[i]) continue;
      const int32_t t = chosen[i];
      out[i].push_back(t);
      b.previous[static_cast<size_t>(r * b.cache_length + slot)] = t;
      done[i] = static_cast<int64_t>(out[i].size()) >= o.max_new_tokens ||
                std::find(o.stop_tokens.begin(), o.stop_tokens.end(), t) != o.stop_tokens.end();
      running += done[i] ? 0 : 1;
    }
    if (running == 0) break;
    std::vector<int32_t> step(chosen.begin(), chosen.end());
    in = b.Inputs(step, 1, slot);
    next = exec.Call(in[0], in[1], in[2], in[3], previous())[0];
    ++stats_.steps;
  }
  stats_.decode_seconds = Since(start);
  return out;
}

namespace {

// A finished or running beam: its generated tokens and sum of log-probabilities.
struct Beam {
  std::vector<int32_t> tokens;
  double log_prob = 0;
};

double Score(const Beam& beam, double length_penalty) {
  return beam.log_prob / std::pow(static_cast<double>(std::max<size_t>(beam.tokens.size(), 1)), length_penalty);
}

}  // namespace

std::vector<std::vector<int32_t>> Generator::BeamSearch(Batch& b, const GenerateOptions& o) {
  const int k = o.num_beams;
  // Candidates per prompt: (1 + stop tokens) k, so that k continuations
  // remain even when every stop token of every beam ranks first (as Hugging
  // Face's max(2, 1 + n_eos) k).
  const int64_t per_beam = 1 + std::max<int64_t>(1, static_cast<int64_t>(o.stop_tokens.size()));
  const std::string key = std::to_string(k) + "/" + std::to_string(per_beam);
  auto it = steps_->beam.find(key);
  if (it == steps_->beam.end()) {
    // The best candidates (beam score + log p(token)) over each prompt's
    // beams and the vocabulary, as [prompts, n] scores and flat indices
    // (beam * vocab + token).
    StepFn fn = [this, k, per_beam](Context c, Node tokens, Node pos, Node slot, Node mask, Node beam_scores) {
      Node logits = LastLogits(model_(c, {tokens, pos, slot, mask, mask.Shape().Dim(1)}));
      const int64_t rows = logits.Shape().Dims()[0], vocab = logits.Shape().Dims()[1];
      steps_->vocab = vocab;
      Node logp = graph::LogSoftmax(graph::ConvertDType(logits, dtypes::Float32), 1) + graph::ExpandAxes(beam_scores, {1});
      auto top = graph::TopK(graph::Reshape(logp, {rows / k, k * vocab}), std::min<int64_t>(per_beam * k, k * vocab), 1);
      return std::vector<Node>{top.values, top.indices};
    };
    it = steps_->beam.emplace(key, context::NewExec(backend_, ctx_, fn, "generate_beam")).first;
  }
  if (!steps_->reorder) {
    ReorderFn fn = [](Context c, Node parents) {
      for (context::Variable* v : c.Root().In(std::string(layers::kKvCacheScope.substr(1))).VariablesInScope()) {
        v->SetValueGraph(GatherRows(v->ValueGraph(parents.Graph()), parents));
      }
      return parents;
    };
    steps_->reorder = std::make_unique<context::Exec<ReorderFn>>(context::NewExec(backend_, ctx_, fn, "generate_reorder"));
  }
  auto& exec = it->second;
  const int64_t prompts = b.rows / k;
  constexpr float kNoBeam = -1e30f;  // the score of a beam that must never be chosen
  // At first every beam of a prompt is the same: only beam 0 may extend.
  std::vector<float> beam_scores(static_cast<size_t>(b.rows), kNoBeam);
  for (int64_t p = 0; p < prompts; ++p) beam_scores[static_cast<size_t>(p * k)] = 0;
  auto scores_tensor = [&] { return tensors::FromFlat(shapes::Make(dtypes::Float32, b.rows), beam_scores); };

  auto start = Clock::now();
  std::vector<Tensor> in = b.Inputs(b.PromptTokens(), b.prompt_length, 0);
  std::vector<Tensor> top = exec.Call(in[0], in[1], in[2], in[3], scores_tensor());
  CheckPromptTokens(b);
  stats_.prompt_tokens = b.rows * b.prompt_length;
  stats_.prefill_seconds = Since(start);
  start = Clock::now();

  const int64_t vocab = steps_->vocab;
  std::vector<std::vector<Beam>> running(static_cast<size_t>(prompts), std::vector<Beam>(static_cast<size_t>(k)));
  std::vector<std::vector<Beam>> finished(static_cast<size_t>(prompts));
  std::vector<bool> done(static_cast<size_t>(prompts), false);
  auto is_stop = [&](int32_t t) { return std::find(o.stop_tokens.begin(), o.stop_tokens.end(), t) != o.stop_tokens.end(); };
  auto worst_finished = [&](const std::vector<Beam>& f) {
    double w = std::numeric_limits<double>::infinity();
    for (const Beam& beam : f) w = std::min(w, Score(beam, o.length_penalty));
    return w;
  };
  // Keeps the k best finished hypotheses of a prompt.
  auto add_finished = [&](std::vector<Beam>& f, Beam beam) {
    f.push_back(std::move(beam));
    if (static_cast<int>(f.size()) > k) {
      auto worst = std::min_element(f.begin(), f.end(), [&](const Beam& x, const Beam& y) {
        return Score(x, o.length_penalty) < Score(y, o.length_penalty);
      });
      f.erase(worst);
    }
  };
  for (int64_t generated = 1;; ++generated) {
    const auto values = top[0].Flat<float>();
    const auto indices = top[1].Flat<int32_t>();
    const int64_t candidates = top[0].Shape().Dim(1);
    std::vector<int32_t> parents(static_cast<size_t>(b.rows)), next_tokens(static_cast<size_t>(b.rows), 0);
    for (int64_t p = 0; p < prompts; ++p) {
      const auto pi = static_cast<size_t>(p);
      std::vector<Beam> next;
      std::vector<int32_t> next_parents;
      for (int64_t j = 0; j < candidates && !done[pi] && static_cast<int>(next.size()) < k; ++j) {
        const float score = values[static_cast<size_t>(p * candidates + j)];
        if (score <= kNoBeam / 2) break;  // only impossible candidates remain
        const int32_t index = indices[static_cast<size_t>(p * candidates + j)];
        const auto parent = static_cast<int32_t>(index / vocab);
        const auto token = static_cast<int32_t>(index % vocab);
        Beam beam{running[pi][static_cast<size_t>(parent)].tokens, score};
        beam.tokens.push_back(token);
        if (is_stop(token)) {
          if (j < k) add_finished(finished[pi], std::move(beam));  // as Hugging Face: only the top k may finish
          continue;
        }
        next.push_back(std::move(beam));
        next_parents.push_back(parent);
      }
      // Fewer than k continuations (stop tokens took the rest): dead beams.
      while (static_cast<int>(next.size()) < k) {
        next.push_back({{}, kNoBeam});
        next_parents.push_back(0);
      }
      if (!done[pi] && next[0].log_prob <= kNoBeam / 2) {
        done[pi] = true;  // no beam can continue
      } else if (!done[pi] && static_cast<int>(finished[pi].size()) >= k) {
        // Hugging Face's heuristic: done when the best candidate of this step,
        // scored at the current length, does not beat the worst finished
        // hypothesis.
        const double best = values[static_cast<size_t>(p * candidates)];
        done[pi] = o.early_stopping ||
                   best / std::pow(static_cast<double>(generated), o.length_penalty) <= worst_finished(finished[pi]);
      }
      if (!done[pi]) running[pi] = std::move(next);
      for (int64_t j = 0; j < k; ++j) {
        const auto r = static_cast<size_t>(p * k + j);
        parents[r] = static_cast<int32_t>(p * k + (done[pi] ? j : next_parents[static_cast<size_t>(j)]));
        beam_scores[r] = done[pi] ? kNoBeam : static_cast<float>(running[pi][static_cast<size_t>(j)].log_prob);
        next_tokens[r] = done[pi] || running[pi][static_cast<size_t>(j)].tokens.empty()
                             ? 0 : running[pi][static_cast<size_t>(j)].tokens.back();
      }
    }
    if (generated >= o.max_new_tokens || std::all_of(done.begin(), done.end(), [](bool d) { return d; })) break;
    const int64_t slot = b.prompt_length + generated - 1;
    steps_->reorder->Call(tensors::FromFlat(shapes::Make(dtypes::Int32, b.rows), parents));
    in = b.Inputs(next_tokens, 1, slot);
    top = exec.Call(in[0], in[1], in[2], in[3], scores_tensor());
    ++stats_.steps;
  }
  stats_.decode_seconds = Since(start);
  std::vector<std::vector<int32_t>> out(static_cast<size_t>(prompts));
  for (int64_t p = 0; p < prompts; ++p) {
    const auto pi = static_cast<size_t>(p);
    // Unfinished beams compete with the finished hypotheses.
    if (!done[pi]) {
      for (Beam& beam : running[pi]) {
        if (beam.log_prob > kNoBeam / 2) add_finished(finished[pi], std::move(beam));
      }
    }
    const Beam* best = nullptr;
    for (const Beam& beam : finished[pi]) {
      if (best == nullptr || Score(beam, o.length_penalty) > Score(*best, o.length_penalty)) best = &beam;
    }
    if (best != nullptr) out[pi] = best->tokens;
  }
  return out;
}

}  // namespace kiln::ml::generation
