// Copyright 2026 The Kiln Authors.
// torch_train_job: libtorch's side of kiln_compare's Fashion-MNIST training
// case (protocol in bench/train_job.h): the same models, optimizer, batch
// size and per-epoch shuffling as kiln_train_job. The images are read with
// Kiln's IDX reader and shared with libtorch without a copy (from_blob), so
// both processes hold the data once.
#include <torch/torch.h>

#include <iostream>

#include "bench/torch_models.h"
#include "bench/train_job.h"
#include "kiln/ml/datasets/datasets.h"

int main(int argc, char** argv) {
  namespace tj = kiln::bench::train_job;
  try {
    const tj::Flags f = tj::ParseFlags(argc, argv);
    if (f.threads > 0) at::set_num_threads(f.threads);
    torch::manual_seed(1);
    torch::Tensor images, labels;
    {
      auto data = kiln::ml::datasets::LoadMnistLike(f.data, "train");
      // libtorch only reads the images (index_select), so Kiln's buffer is
      // shared as it is; the deleter keeps it alive.
      auto keep = std::make_shared<kiln::tensors::Tensor>(data.images);
      const int64_t n = data.images.Shape().Dim(0);
      images = torch::from_blob(const_cast<void*>(keep->HostData()), {n, 1, 28, 28}, [keep](void*) {},
                                torch::kFloat32);
      labels = torch::empty({n}, torch::kLong);
      auto in = data.labels.Flat<int32_t>();
      std::copy(in.begin(), in.end(), labels.data_ptr<int64_t>());
    }
    const int64_t n = images.size(0);
    torch::nn::Sequential net = f.model == "mlp" ? kiln::bench::torch_models::Mlp() : kiln::bench::torch_models::Cnn();
    auto adam = kiln::bench::torch_models::Adam(net);
    torch::Tensor order;
    tj::Run(f, [&](int64_t step) {
      const int64_t b = step % tj::kStepsPerEpoch;
      if (b == 0) order = torch::randperm(n, torch::kLong);  // a new shuffle each epoch
      torch::Tensor idx = order.slice(0, b * tj::kBatch, (b + 1) * tj::kBatch);
      torch::Tensor x = images.index_select(0, idx);
      if (f.model == "mlp") x = x.view({tj::kBatch, 784});
      return kiln::bench::torch_models::TrainStep(net, *adam, x, labels.index_select(0, idx));
    });
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "torch_train_job: " << e.what() << "\n";
    return 1;
  }
}
