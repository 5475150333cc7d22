// Copyright 2026 The Kiln Authors.
// libtorch's side of kiln_compare (built only when CMake finds Torch).
#include <torch/torch.h>
#include <torch/version.h>

#include "bench/peers.h"

namespace kiln::bench::peers::libtorch {

namespace {

namespace nn = torch::nn;

// One Adam step of `net` on (x, y): what a libtorch training loop runs per
// batch. Reading the loss (item) matches Kiln's trainer, which returns it.
Step AdamTrainStep(nn::Sequential net, torch::Tensor x, torch::Tensor y) {
  auto adam = std::make_shared<torch::optim::Adam>(net->parameters(), torch::optim::AdamOptions(1e-3).eps(1e-7));
  return [net, adam, x, y]() mutable {
    adam->zero_grad();
    torch::Tensor loss = nn::functional::cross_entropy(net->forward(x), y);
    loss.backward();
    adam->step();
    (void)loss.item<float>();
  };
}

torch::Tensor Uniform(at::IntArrayRef dims, double lo, double hi) { return torch::empty(dims).uniform_(lo, hi); }
torch::Tensor Labels(int64_t n) { return torch::randint(0, 10, {n}, torch::kLong); }

}  // namespace

bool Available() { return true; }

void SetThreads(int n) { at::set_num_threads(n); }

std::string Version() { return "libtorch " TORCH_VERSION; }

Step MlpTrainStep() {
  torch::manual_seed(1);
  nn::Sequential net(nn::Linear(784, 512), nn::ReLU(), nn::Linear(512, 512), nn::ReLU(), nn::Linear(512, 10));
  return AdamTrainStep(net, Uniform({kMlpBatch, 784}, 0, 1), Labels(kMlpBatch));
}

Step CnnTrainStep() {
  torch::manual_seed(2);
  nn::Sequential net(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2),
                     nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2),
                     nn::Flatten(), nn::Linear(7 * 7 * 64, 128), nn::ReLU(), nn::Linear(128, 10));
  return AdamTrainStep(net, Uniform({kCnnBatch, 1, 28, 28}, 0, 1), Labels(kCnnBatch));
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

}  // namespace kiln::bench::peers::libtorch
