// Copyright 2026 The Kiln Authors.
// Runs a CNN exported from PyTorch to ONNX (examples/onnx/export_cnn.py),
// checks Kiln's outputs against PyTorch's, then fine-tunes the imported
// weights on Fashion-MNIST with Kiln's Trainer and saves them as
// safetensors.
//
//   export_cnn.py DIR && finetune_cnn DIR [--steps=N] [--data=DIR]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "kiln/backends/openmp_defaults.h"
#include "kiln/io/safetensors.h"
#include "kiln/kiln.h"
#include "kiln/ml/train/loop.h"
#include "kiln/onnx/onnx.h"

namespace {

using namespace kiln;  // NOLINT(build/namespaces): an example reads better this way.
using namespace kiln::ml;  // NOLINT(build/namespaces)
namespace fs = std::filesystem;

tensors::Tensor ReadFloats(const fs::path& path, std::vector<int64_t> dims) {
  tensors::Tensor t(shapes::Shape(dtypes::Float32, dims));
  std::ifstream in(path, std::ios::binary);
  in.read(static_cast<char*>(t.MutableHostData()), t.Shape().ByteSize());
  if (!in) throw Error("cannot read " + path.string() + " (run examples/onnx/export_cnn.py first)");
  return t;
}

int Run(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: finetune_cnn DIR [--steps=N] [--data=DIR]\n";
    return 2;
  }
  const fs::path dir = argv[1];
  int64_t steps = 300;
  std::string data = "/usr/share/datasets/fashion-mnist";
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--steps=", 0) == 0) steps = std::stoll(a.substr(8));
    else if (a.rfind("--data=", 0) == 0) data = a.substr(7);
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  auto backend = backends::New();
  onnx::Model model = onnx::Model::Import(dir / "cnn.onnx");
  std::cout << "imported " << (dir / "cnn.onnx").string() << " (" << model.Producer() << ", opset " << model.Opset()
            << ", " << model.Initializers().size() << " weights as variables)\n";

  // 1. Same outputs as PyTorch on the reference batch.
  context::Context ctx = context::New();
  const tensors::Tensor x = ReadFloats(dir / "reference_input.bin", {8, 1, 28, 28});
  const tensors::Tensor want = ReadFloats(dir / "reference_logits.bin", {8, 10});
  const tensors::Tensor got = model.NewExec(backend, ctx).Call({x})[0];
  double worst = 0;
  for (int64_t i = 0; i < want.Size(); ++i) {
    worst = std::max(worst, std::abs(double(got.Flat<float>()[i]) - double(want.Flat<float>()[i])));
  }
  std::printf("max |Kiln - PyTorch| on the reference batch: %.3g\n", worst);
  if (!(worst < 1e-4)) {
    std::cerr << "error: the outputs differ from PyTorch's\n";
    return 1;
  }

  // 2. Fine-tune the imported variables on Fashion-MNIST (NHWC images -> the model's NCHW).
  ctx.SetParam("learning_rate", 1e-3);
  auto train = datasets::LoadMnistLike(data, "train");
  auto test = datasets::LoadMnistLike(data, "t10k");
  datasets::InMemory train_ds("train", {train.images}, {train.labels});
  train_ds.BatchSize(64).Shuffle(1);
  datasets::InMemory test_ds("test", {test.images}, {test.labels});
  test_ds.BatchSize(1000).KeepPartialBatch(true);
  auto model_fn = [&model](context::Context c, const std::vector<graph::Node>& in) {
    graph::Node images = graph::Transpose(in[0], {0, 3, 1, 2});
    return model.Call(c, {images});
  };
  auto trainer = train::NewTrainer(backend, ctx, model_fn, losses::SparseCategoricalCrossEntropyLogits,
                                   optimizers::Adam());
  trainer->AddEvalMetric(train::SparseCategoricalAccuracy());
  const double before = trainer->Evaluate(test_ds)["accuracy"];
  std::printf("test accuracy before fine-tuning: %.2f%%\n", 100 * before);
  const auto start = std::chrono::steady_clock::now();
  auto loop = train::NewLoop(trainer);
  loop->RunSteps(train_ds, steps);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double after = trainer->Evaluate(test_ds)["accuracy"];
  std::printf("test accuracy after %lld steps (%.1f s): %.2f%%\n", static_cast<long long>(steps), seconds, 100 * after);

  // 3. The fine-tuned weights, under the ONNX initializers' names.
  std::map<std::string, tensors::Tensor> weights;
  for (const std::string& name : model.Initializers()) {
    weights[name] = ctx.GetVariableByScopeAndName(model.VariableOf(name))->Value();
  }
  const fs::path out = dir / "cnn_finetuned.safetensors";
  io::safetensors::Save(out.string(), weights);
  std::cout << "saved " << weights.size() << " fine-tuned weights to " << out.string() << "\n";
  return after > before ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  kiln::backends::ApplyOpenMpDefaults(argv);
  try {
    return Run(argc, argv);
  } catch (const kiln::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
