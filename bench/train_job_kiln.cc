// Copyright 2026 The Kiln Authors.
// kiln_train_job: Kiln's side of kiln_compare's Fashion-MNIST training case
// (protocol in bench/train_job.h). Adam, learning rate 1e-3, batch 128,
// shuffled every epoch, on the default backend.
#include <omp.h>

#include <iostream>

#include "bench/train_job.h"
#include "bench/workloads.h"
#include "kiln/backends/openmp_defaults.h"

int main(int argc, char** argv) {
  kiln::backends::ApplyOpenMpDefaults(argv);  // short OpenMP spin-waits (see the header)
  using namespace kiln;  // NOLINT(build/namespaces)
  namespace tj = kiln::bench::train_job;
  try {
    const tj::Flags f = tj::ParseFlags(argc, argv);
    if (f.threads > 0) omp_set_num_threads(f.threads);
    const auto data = ml::datasets::LoadMnistLike(f.data, "train");
    ml::datasets::InMemory train("train", {data.images}, {data.labels});
    train.BatchSize(tj::kBatch).Shuffle(1).Infinite(true);
    ml::train::ModelFn model = bench::Cnn;
    if (f.model == "mlp") {
      model = [](context::Context ctx, const std::vector<graph::Node>& inputs) {
        return bench::Mlp(ctx, {graph::Reshape(inputs[0], {inputs[0].Shape().Dim(0), -1})});
      };
    }
    auto trainer = bench::NewAdamTrainer(backends::New(), context::New(), model);
    ml::datasets::Batch batch;
    tj::Run(f, [&](int64_t) {
      train.Next(batch);
      return trainer->TrainStep(batch)["loss"];
    });
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "kiln_train_job: " << e.what() << "\n";
    return 1;
  }
}
