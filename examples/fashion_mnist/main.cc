// Copyright 2026 The Kiln Authors.
// Trains an MLP or a CNN on Fashion-MNIST (Debian package
// dataset-fashion-mnist), with a progress bar, periodic evaluation and
// checkpoints (resumed on the next run), a metrics plot (HTML) and history
// (CSV), and the final test accuracy and wall time.
//
//   fashion_mnist [--model=mlp|cnn] [--epochs=N] [--params="learning_rate=0.001;batch_size=128"]
//                 [--data=DIR] [--checkpoint_dir=DIR] [--restart] [--plot=FILE.html] [--distributed]
//
// --distributed: data-parallel training across the processes kiln_run starts
// (kiln_run -n 2 fashion_mnist --distributed): the same global batch of
// batch_size examples, split across processes; rank 0 prints and writes.
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include "kiln/backends/openmp_defaults.h"
#include "kiln/kiln.h"
#include "kiln/context/checkpoints.h"
#include "kiln/distributed/distributed.h"
#include "kiln/ml/layers/layers.h"
#include "kiln/ml/train/loop.h"

namespace {

using namespace kiln;  // NOLINT(build/namespaces): an example reads better this way.
using namespace kiln::ml;  // NOLINT(build/namespaces)
using graph::Node;

struct Flags {
  std::string model = "mlp";
  int epochs = -1;  // -1: the model's default
  std::string params;
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string checkpoint_dir;
  std::string plot;
  bool restart = false;
  bool distributed = false;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const std::string& name) -> const char* {
      const std::string prefix = "--" + name + "=";
      return arg.rfind(prefix, 0) == 0 ? argv[i] + prefix.size() : nullptr;
    };
    if (const char* v = value("model")) f.model = v;
    else if (const char* v = value("epochs")) f.epochs = std::atoi(v);
    else if (const char* v = value("params")) f.params = v;
    else if (const char* v = value("data")) f.data = v;
    else if (const char* v = value("checkpoint_dir")) f.checkpoint_dir = v;
    else if (const char* v = value("plot")) f.plot = v;
    else if (arg == "--restart") f.restart = true;
    else if (arg == "--distributed") f.distributed = true;
    else {
      std::cerr << "unknown flag " << arg << "\nusage: fashion_mnist [--model=mlp|cnn] [--epochs=N] "
                << "[--params=\"k=v;...\"] [--data=DIR] [--checkpoint_dir=DIR] [--restart] [--plot=FILE] "
                << "[--distributed]\n";
      std::exit(2);
    }
  }
  if (f.model != "mlp" && f.model != "cnn") {
    std::cerr << "--model must be mlp or cnn\n";
    std::exit(2);
  }
  if (f.checkpoint_dir.empty()) f.checkpoint_dir = "/tmp/kiln-fashion-mnist-" + f.model;
  if (f.plot.empty()) f.plot = "fashion_mnist_" + f.model + ".html";
  return f;
}

// 784 -> hidden (relu, dropout) -> hidden/2 (relu) -> 10.
std::vector<Node> Mlp(context::Context ctx, const std::vector<Node>& inputs) {
  const int64_t hidden = ctx.GetParam<int64_t>("hidden");
  const double dropout = ctx.GetParam<double>("dropout");
  Node x = graph::Reshape(inputs[0], {inputs[0].Shape().Dim(0), -1});
  x = graph::Relu(layers::Dense(ctx.In("dense0"), x, hidden));
  x = layers::Dropout(ctx.In("dropout0"), x, dropout);
  x = graph::Relu(layers::Dense(ctx.In("dense1"), x, hidden / 2));
  return {layers::Dense(ctx.In("logits"), x, 10)};
}

// conv3x3x32, relu, maxpool2, conv3x3x64, relu, maxpool2, dense128, relu, dense10.
std::vector<Node> Cnn(context::Context ctx, const std::vector<Node>& inputs) {
  const double dropout = ctx.GetParam<double>("dropout");
  layers::ConvOptions same{.padding = layers::Padding::kSame};
  layers::PoolOptions pool{.window = {2, 2}};
  Node x = inputs[0];
  x = layers::MaxPool(graph::Relu(layers::Conv(ctx.In("conv0"), x, 32, {3, 3}, same)), pool);
  x = layers::MaxPool(graph::Relu(layers::Conv(ctx.In("conv1"), x, 64, {3, 3}, same)), pool);
  x = graph::Reshape(x, {x.Shape().Dim(0), -1});
  x = graph::Relu(layers::Dense(ctx.In("dense0"), x, 128));
  x = layers::Dropout(ctx.In("dropout0"), x, dropout);
  return {layers::Dense(ctx.In("logits"), x, 10)};
}

int Run(const Flags& flags) {
  const auto start = std::chrono::steady_clock::now();
  if (flags.distributed) distributed::Init();
  // Data-parallel: rank 0 speaks for the job.
  std::ostringstream muted;
  std::ostream& out = distributed::Rank() == 0 ? std::cout : muted;
  auto backend = backends::New();
  out << "Kiln Fashion-MNIST " << flags.model << " on " << backend->Description();
  if (flags.distributed) out << ", data-parallel on " << distributed::WorldSize() << " processes";
  out << "\n";

  // Hyperparameters: defaults, then the command line.
  context::Context ctx = context::New();
  ctx.SetParam("optimizer", std::string("adam"));
  ctx.SetParam("learning_rate", 0.001);
  ctx.SetParam("batch_size", int64_t{128});
  ctx.SetParam("epochs", int64_t{flags.model == "mlp" ? 8 : 10});
  ctx.SetParam("hidden", int64_t{512});
  ctx.SetParam("dropout", flags.model == "mlp" ? 0.1 : 0.25);
  ctx.SetParam("eval_every", int64_t{500});
  ctx.SetParam("seed", int64_t{42});
  ctx.SetParam("learning_rate_schedule", std::string("cosine"));
  ctx.SetParam("warmup_steps", int64_t{0});
  ctx.SetParam("decay_steps", int64_t{0});  // 0: the whole run
  ctx.SetParam("weight_decay", 0.0);
  ctx.SetParam("clip_global_norm", 0.0);
  if (!flags.params.empty()) ctx.SetParams(flags.params);
  if (flags.epochs >= 0) ctx.SetParam("epochs", int64_t{flags.epochs});
  ctx.SetSeed(static_cast<uint64_t>(ctx.GetParam<int64_t>("seed")));

  auto train = datasets::LoadMnistLike(flags.data, "train");
  auto test = datasets::LoadMnistLike(flags.data, "t10k");
  const int64_t batch_size = ctx.GetParam<int64_t>("batch_size");
  datasets::InMemory train_ds("train", {train.images}, {train.labels});
  train_ds.BatchSize(batch_size).Shuffle(static_cast<uint64_t>(ctx.GetParam<int64_t>("seed")));
  datasets::InMemory test_ds("test", {test.images}, {test.labels});
  test_ds.BatchSize(1000).KeepPartialBatch(true);
  out << "train: " << train_ds.NumExamples() << " examples, test: " << test_ds.NumExamples() << "\n";
  // Each process trains and evaluates on its share of every global batch.
  datasets::Sharded train_shard(train_ds), test_shard(test_ds);
  datasets::Dataset& train_data = flags.distributed ? static_cast<datasets::Dataset&>(train_shard) : train_ds;
  datasets::Dataset& test_data = flags.distributed ? static_cast<datasets::Dataset&>(test_shard) : test_ds;

  auto trainer = train::NewTrainer(backend, ctx, flags.model == "mlp" ? train::ModelFn(Mlp) : train::ModelFn(Cnn),
                                   losses::SparseCategoricalCrossEntropyLogits, optimizers::FromContext(ctx));
  trainer->AddTrainMetric(train::MovingAverage(train::SparseCategoricalAccuracy()));
  trainer->AddEvalMetric(train::SparseCategoricalAccuracy());
  if (flags.distributed) trainer->EnableDataParallel();

  // Checkpoints: resume unless --restart.
  if (flags.restart) std::filesystem::remove_all(flags.checkpoint_dir);
  auto checkpoint = context::checkpoints::Build(ctx).Dir(flags.checkpoint_dir).Keep(2).Done();
  if (std::string restored = checkpoint->Restore(); !restored.empty()) {
    out << "resumed from " << flags.checkpoint_dir << "/" << restored << "\n";
  }

  const int64_t total_steps = ctx.GetParam<int64_t>("epochs") * train_ds.BatchesPerEpoch();
  if (ctx.GetParam<int64_t>("decay_steps") == 0) ctx.SetParam("decay_steps", total_steps);
  const int64_t remaining = std::max<int64_t>(0, total_steps - trainer->GlobalStep());
  auto loop = train::NewLoop(trainer);
  loop->AddPeriodicEval(test_data, ctx.GetParam<int64_t>("eval_every"));
  loop->AddPeriodicCheckpoint(*checkpoint, 1000);
  // A resumed run continues with the batches an uninterrupted one would see.
  datasets::Skip(train_data, trainer->GlobalStep());
  if (remaining > 0) {
    out << "training " << remaining << " steps (" << ctx.GetParam<int64_t>("epochs") << " epochs of "
              << train_ds.BatchesPerEpoch() << " batches of " << batch_size << ")\n";
    loop->RunSteps(train_data, remaining);
  } else {
    out << "already trained for " << total_steps << " steps\n";
  }

  train::MetricValues result = trainer->Evaluate(test_data);
  loop->WritePlot(flags.plot, "Kiln Fashion-MNIST " + flags.model);
  const std::string csv = flags.plot.substr(0, flags.plot.rfind('.')) + ".csv";
  loop->WriteHistoryCsv(csv);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (distributed::Rank() == 0) {
    std::printf("test accuracy: %.2f%%  test loss: %.4f  wall time: %.1f s  plot: %s  history: %s\n",
                100 * result["accuracy"], result["loss"], seconds, flags.plot.c_str(), csv.c_str());
  }
  distributed::Shutdown();
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
