// Copyright 2026 The Kiln Authors.
// libtorch's version of bench/gpt.h's GPT (C++ frontend), written as a
// libtorch user would: fused q/k/v is not used so the parameter set matches
// Kiln's, attention is explicit matmul + masked softmax (libtorch 1.13 has no
// scaled_dot_product_attention), decoding writes a preallocated key/value
// cache in place and attends over its filled prefix.
#pragma once

#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "bench/gpt.h"

namespace kiln::bench::torch_gpt {

struct RmsNormImpl : torch::nn::Module {
  explicit RmsNormImpl(int64_t dim) { weight = register_parameter("weight", torch::ones({dim})); }
  torch::Tensor forward(const torch::Tensor& x) { return x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6) * weight; }
  torch::Tensor weight;
};
TORCH_MODULE(RmsNorm);

// Rotate-half rotary embedding of x [batch, time, heads, head_dim] at
// positions offset ... offset + time - 1.
inline torch::Tensor Rotary(const torch::Tensor& x, int64_t offset) {
  const int64_t time = x.size(1), half = x.size(3) / 2;
  torch::Tensor inv = torch::pow(10000.0, torch::arange(0, half, torch::kFloat) * (-2.0 / static_cast<double>(x.size(3))));
  torch::Tensor angles = torch::arange(offset, offset + time, torch::kFloat).unsqueeze(1) * inv.unsqueeze(0);
  torch::Tensor cos = angles.cos().unsqueeze(1), sin = angles.sin().unsqueeze(1);  // [time, 1, half]
  torch::Tensor a = x.narrow(-1, 0, half), b = x.narrow(-1, half, half);
  return torch::cat({a * cos - b * sin, b * cos + a * sin}, -1);
}

// A key/value cache of one block: [batch, heads, slots, head_dim] each.
struct Cache {
  torch::Tensor k, v;
};

struct BlockImpl : torch::nn::Module {
  BlockImpl()
      : attention_norm(register_module("attention_norm", RmsNorm(kGptDim))),
        query(register_module("query", torch::nn::Linear(torch::nn::LinearOptions(kGptDim, kGptDim).bias(false)))),
        key(register_module("key", torch::nn::Linear(torch::nn::LinearOptions(kGptDim, kGptDim).bias(false)))),
        value(register_module("value", torch::nn::Linear(torch::nn::LinearOptions(kGptDim, kGptDim).bias(false)))),
        output(register_module("output", torch::nn::Linear(torch::nn::LinearOptions(kGptDim, kGptDim).bias(false)))),
        mlp_norm(register_module("mlp_norm", RmsNorm(kGptDim))),
        gate(register_module("gate", torch::nn::Linear(torch::nn::LinearOptions(kGptDim, kGptMlp).bias(false)))),
        up(register_module("up", torch::nn::Linear(torch::nn::LinearOptions(kGptDim, kGptMlp).bias(false)))),
        down(register_module("down", torch::nn::Linear(torch::nn::LinearOptions(kGptMlp, kGptDim).bias(false)))) {}

  // x [batch, time, dim]; with a cache, the steps go to slots offset... and
  // attend to every filled slot (causal within the steps).
  torch::Tensor forward(torch::Tensor x, Cache* cache = nullptr, int64_t offset = 0) {
    const int64_t batch = x.size(0), time = x.size(1), head_dim = kGptDim / kGptHeads;
    torch::Tensor h = attention_norm(x);
    auto split = [&](const torch::Tensor& t) { return t.view({batch, time, kGptHeads, head_dim}); };
    torch::Tensor q = Rotary(split(query(h)), offset).transpose(1, 2);  // [batch, heads, time, head_dim]
    torch::Tensor k = Rotary(split(key(h)), offset).transpose(1, 2);
    torch::Tensor v = split(value(h)).transpose(1, 2);
    if (cache != nullptr) {
      cache->k.narrow(2, offset, time).copy_(k);
      cache->v.narrow(2, offset, time).copy_(v);
      k = cache->k.narrow(2, 0, offset + time);
      v = cache->v.narrow(2, 0, offset + time);
    }
    torch::Tensor scores = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(head_dim)));
    if (time > 1) {
      // Query i (slot offset + i) sees slots <= its own.
      torch::Tensor mask = torch::ones({time, offset + time}, torch::kBool).triu(offset + 1);
      scores = scores.masked_fill(mask, -std::numeric_limits<float>::infinity());
    }
    torch::Tensor attended = torch::matmul(torch::softmax(scores, -1), v).transpose(1, 2).reshape({batch, time, kGptDim});
    x = x + output(attended);
    h = mlp_norm(x);
    return x + down(torch::silu(gate(h)) * up(h));
  }

  RmsNorm attention_norm;
  torch::nn::Linear query, key, value, output;
  RmsNorm mlp_norm;
  torch::nn::Linear gate, up, down;
};
TORCH_MODULE(Block);

struct GptImpl : torch::nn::Module {
  GptImpl() : embedding(register_module("embedding", torch::nn::Embedding(kGptVocab, kGptDim))),
              final_norm(register_module("final_norm", RmsNorm(kGptDim))) {
    for (int64_t i = 0; i < kGptLayers; ++i) blocks.push_back(register_module("block" + std::to_string(i), Block()));
  }
  // Logits [batch, time, vocab] of tokens [batch, time] (Long).
  torch::Tensor forward(const torch::Tensor& tokens, std::vector<Cache>* caches = nullptr, int64_t offset = 0) {
    torch::Tensor x = embedding(tokens);
    for (size_t i = 0; i < blocks.size(); ++i) {
      x = blocks[i]->forward(x, caches != nullptr ? &(*caches)[i] : nullptr, offset);
    }
    return torch::matmul(final_norm(x), embedding->weight.t());  // tied embeddings
  }
  torch::nn::Embedding embedding;
  RmsNorm final_norm;
  std::vector<Block> blocks;
};
TORCH_MODULE(Gpt);

/// Greedy generation of kDecodeTokens tokens after `prompts` [batch,
/// kDecodePrompt] (Long), with a key/value cache of kGptContext slots.
inline torch::Tensor Generate(Gpt& gpt, const torch::Tensor& prompts) {
  torch::NoGradGuard no_grad;
  const int64_t batch = prompts.size(0), head_dim = kGptDim / kGptHeads;
  std::vector<Cache> caches;
  for (int64_t i = 0; i < kGptLayers; ++i) {
    caches.push_back({torch::empty({batch, kGptHeads, kGptContext, head_dim}),
                      torch::empty({batch, kGptHeads, kGptContext, head_dim})});
  }
  torch::Tensor logits = gpt->forward(prompts, &caches, 0);
  torch::Tensor next = logits.select(1, -1).argmax(-1, true);  // [batch, 1]
  std::vector<torch::Tensor> out{next};
  for (int64_t t = 1; t < kDecodeTokens; ++t) {
    logits = gpt->forward(next, &caches, kDecodePrompt + t - 1);
    next = logits.select(1, -1).argmax(-1, true);
    out.push_back(next);
  }
  return torch::cat(out, 1);
}

}  // namespace kiln::bench::torch_gpt
