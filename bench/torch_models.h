// Copyright 2026 The Kiln Authors.
// libtorch's versions of bench/workloads.h's models, shared by kiln_compare's
// libtorch peer and torch_train_job. Inputs: [batch, 784] for the MLP, NCHW
// [batch, 1, 28, 28] for the CNN.
#pragma once

#include <torch/torch.h>

namespace kiln::bench::torch_models {

inline torch::nn::Sequential Mlp() {
  namespace nn = torch::nn;
  return nn::Sequential(nn::Linear(784, 512), nn::ReLU(), nn::Linear(512, 512), nn::ReLU(), nn::Linear(512, 10));
}

inline torch::nn::Sequential Cnn() {
  namespace nn = torch::nn;
  return nn::Sequential(nn::Conv2d(nn::Conv2dOptions(1, 32, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2),
                        nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)), nn::ReLU(), nn::MaxPool2d(2),
                        nn::Flatten(), nn::Linear(7 * 7 * 64, 128), nn::ReLU(), nn::Linear(128, 10));
}

/// Adam with Kiln's benchmark settings (learning rate 1e-3, epsilon 1e-7).
inline std::shared_ptr<torch::optim::Adam> Adam(torch::nn::Sequential net) {
  return std::make_shared<torch::optim::Adam>(net->parameters(), torch::optim::AdamOptions(1e-3).eps(1e-7));
}

/// One training step: what a libtorch training loop runs per batch. Reading
/// the loss (item) matches Kiln's trainer, which returns it.
inline float TrainStep(torch::nn::Sequential& net, torch::optim::Adam& adam, const torch::Tensor& x,
                       const torch::Tensor& y) {
  adam.zero_grad();
  torch::Tensor loss = torch::nn::functional::cross_entropy(net->forward(x), y);
  loss.backward();
  adam.step();
  return loss.item<float>();
}

}  // namespace kiln::bench::torch_models
