// Copyright 2026 The Kiln Authors.
// libtorch's side of kiln_compare (built only when CMake finds Torch).
#include <torch/script.h>
#include <torch/torch.h>
#include <torch/version.h>

#include "bench/peers.h"
#include "bench/torch_gpt.h"
#include "bench/torch_models.h"

namespace kiln::bench::peers::libtorch {

namespace {

// One Adam step of `net` on (x, y).
Step AdamTrainStep(torch::nn::Sequential net, torch::Tensor x, torch::Tensor y) {
  auto adam = torch_models::Adam(net);
  return [net, adam, x, y]() mutable { torch_models::TrainStep(net, *adam, x, y); };
}

torch::Tensor Uniform(at::IntArrayRef dims, double lo, double hi) { return torch::empty(dims).uniform_(lo, hi); }
torch::Tensor Labels(int64_t n) { return torch::randint(0, 10, {n}, torch::kLong); }

}  // namespace

bool Available() { return true; }

void SetThreads(int n) { at::set_num_threads(n); }

std::string Version() { return "libtorch " TORCH_VERSION; }

Step MlpTrainStep() {
  torch::manual_seed(1);
  return AdamTrainStep(torch_models::Mlp(), Uniform({kMlpBatch, 784}, 0, 1), Labels(kMlpBatch));
}

Step CnnTrainStep() {
  torch::manual_seed(2);
  return AdamTrainStep(torch_models::Cnn(), Uniform({kCnnBatch, 1, 28, 28}, 0, 1), Labels(kCnnBatch));
}

Step Chain() {
  torch::Tensor x = Uniform({kChainSize}, -4, 4);
  return [x] { torch::Tensor y = torch::tanh(x * 2 + 1) * torch::sigmoid(x); };
}

Step ReduceSumRows() {
  torch::Tensor x = Uniform({kRows, kCols}, -1, 1);
  return [x] { torch::Tensor y = x.sum(-1); };
}

Step SoftmaxRows() {
  torch::Tensor x = Uniform({kRows, kCols}, -4, 4);
  return [x] { torch::Tensor y = torch::softmax(x, -1); };
}

Step TinyAdd() {
  torch::Tensor a = Uniform({16}, -1, 1), b = Uniform({16}, -1, 1);
  return [a, b] { torch::Tensor y = a + b; };
}

Step Sort() {
  torch::Tensor x = Uniform({kSortSize}, -1, 1);
  return [x] {
    auto sorted = torch::sort(x);  // values and indices
    (void)sorted;
  };
}

Step TopK() {
  torch::Tensor x = Uniform({kSortSize}, -1, 1);
  return [x] {
    auto top = torch::topk(x, kTopK);  // values and indices
    (void)top;
  };
}

Step CumSum() {
  torch::Tensor x = Uniform({kSortSize}, -1, 1);
  return [x] { torch::Tensor y = torch::cumsum(x, 0); };
}

Step FftLong() {
  torch::Tensor x = torch::complex(Uniform({kFftSize}, -1, 1), Uniform({kFftSize}, -1, 1));
  return [x] { torch::Tensor y = torch::fft::fft(x); };
}

Step FftRows() {
  torch::Tensor x = torch::complex(Uniform({kFftRows, kFftCols}, -1, 1), Uniform({kFftRows, kFftCols}, -1, 1));
  return [x] { torch::Tensor y = torch::fft::fft(x); };
}

Step RfftLong() {
  torch::Tensor x = Uniform({kFftSize}, -1, 1);
  return [x] { torch::Tensor y = torch::fft::rfft(x); };
}

Step RnnScanGradient() {
  torch::Tensor w = Uniform({kRnnUnits, kRnnUnits}, -1.0 / 16, 1.0 / 16).requires_grad_(true);
  torch::Tensor xs = Uniform({kRnnSteps, kRnnBatch, kRnnUnits}, -1, 1).requires_grad_(true);
  return [w, xs]() mutable {
    torch::Tensor h = torch::zeros({kRnnBatch, kRnnUnits});
    torch::Tensor loss = torch::zeros({});
    for (int64_t t = 0; t < kRnnSteps; ++t) {
      h = torch::tanh(torch::matmul(h, w) + xs[t]);
      loss = loss + (h * h).sum();
    }
    w.mutable_grad() = torch::Tensor();
    xs.mutable_grad() = torch::Tensor();
    loss.backward();
  };
}

Step TorchScriptInference(const std::string& path, std::vector<int64_t> dims) {
  auto module = std::make_shared<torch::jit::script::Module>(torch::jit::load(path));
  module->eval();
  torch::Tensor x = Uniform(dims, 0, 1);
  return [module, x] {
    torch::NoGradGuard no_grad;
    torch::Tensor y = module->forward({x}).toTensor();
  };
}

Step GptTrainStep() {
  torch::manual_seed(4);
  torch_gpt::Gpt gpt;
  auto adamw = std::make_shared<torch::optim::AdamW>(gpt->parameters(), torch::optim::AdamWOptions(1e-3).weight_decay(0.1));
  torch::Tensor x = torch::randint(0, kGptVocab, {kGptBatch, kGptContext}, torch::kLong);
  torch::Tensor y = torch::randint(0, kGptVocab, {kGptBatch, kGptContext}, torch::kLong);
  return [gpt, adamw, x, y]() mutable {
    adamw->zero_grad();
    torch::Tensor loss = torch::nn::functional::cross_entropy(gpt->forward(x).view({-1, kGptVocab}), y.view({-1}));
    loss.backward();
    torch::nn::utils::clip_grad_norm_(gpt->parameters(), 1.0);
    adamw->step();
    loss.item<float>();  // as Kiln's trainer, which returns the loss
  };
}

Step GptDecode() {
  torch::manual_seed(5);
  torch_gpt::Gpt gpt;
  torch::Tensor prompts = torch::randint(0, kGptVocab, {kDecodeBatch, kDecodePrompt}, torch::kLong);
  return [gpt, prompts]() mutable { torch_gpt::Generate(gpt, prompts); };
}

}  // namespace kiln::bench::peers::libtorch
