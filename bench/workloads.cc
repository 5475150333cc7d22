// Copyright 2026 The Kiln Authors.
#include "bench/workloads.h"

#include "kiln/onnx/onnx.h"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <utility>

#include "kiln/graph/control_flow.h"
#include "kiln/graph/cumulative.h"
#include "kiln/graph/fft.h"
#include "kiln/graph/linalg.h"
#include "kiln/ml/layers/layers.h"
#include "kiln/ml/losses/losses.h"
#include "kiln/ml/optimizers/optimizers.h"

namespace kiln::bench {

namespace {

using graph::Node;

// A Step calling a compiled graph (from graph::Compile) on fixed inputs.
// The inputs are host tensors, which the CPU backend adopts without a copy;
// the result is dropped at once, so its buffer goes back to the allocator.
template <typename ExecT>
Step CallStep(ExecT exec, std::vector<tensors::Tensor> inputs) {
  return [exec = std::move(exec), inputs = std::move(inputs)]() mutable { exec.CallVector(inputs); };
}

}  // namespace

tensors::Tensor RandomFloats(std::vector<int64_t> dims, float lo, float hi, uint64_t seed) {
  tensors::Tensor t(shapes::Make(dtypes::Float32, std::move(dims)));
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (float& v : t.MutableFlat<float>()) v = dist(rng);
  return t;
}

tensors::Tensor RandomLabels(int64_t n, int classes, uint64_t seed) {
  tensors::Tensor t(shapes::Make(dtypes::Int32, n));
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, classes - 1);
  for (int32_t& v : t.MutableFlat<int32_t>()) v = dist(rng);
  return t;
}

std::vector<Node> Mlp(context::Context ctx, const std::vector<Node>& inputs) {
  Node x = graph::Relu(ml::layers::Dense(ctx.In("dense0"), inputs[0], 512));
  x = graph::Relu(ml::layers::Dense(ctx.In("dense1"), x, 512));
  return {ml::layers::Dense(ctx.In("logits"), x, 10)};
}

std::vector<Node> Cnn(context::Context ctx, const std::vector<Node>& inputs) {
  const ml::layers::ConvOptions same{.padding = ml::layers::Padding::kSame};
  const ml::layers::PoolOptions pool{.window = {2, 2}};
  Node x = inputs[0];
  x = ml::layers::MaxPool(graph::Relu(ml::layers::Conv(ctx.In("conv0"), x, 32, {3, 3}, same)), pool);
  x = ml::layers::MaxPool(graph::Relu(ml::layers::Conv(ctx.In("conv1"), x, 64, {3, 3}, same)), pool);
  x = graph::Reshape(x, {x.Shape().Dim(0), -1});
  x = graph::Relu(ml::layers::Dense(ctx.In("dense0"), x, 128));
  return {ml::layers::Dense(ctx.In("logits"), x, 10)};
}

std::shared_ptr<ml::train::Trainer> NewAdamTrainer(const std::shared_ptr<backends::Backend>& backend,
                                                   context::Context ctx, ml::train::ModelFn model) {
  ctx.SetParam("learning_rate", 1e-3);
  ctx.SetParam("adam_epsilon", 1e-7);
  return ml::train::NewTrainer(backend, ctx, std::move(model), ml::losses::SparseCategoricalCrossEntropyLogits,
                               ml::optimizers::Adam());
}

ml::datasets::Batch RandomBatch(int64_t batch, std::vector<int64_t> example_dims, uint64_t seed) {
  example_dims.insert(example_dims.begin(), batch);
  return {{RandomFloats(std::move(example_dims), 0, 1, seed)}, {RandomLabels(batch, 10, seed + 1)}};
}

Step MlpTrainStep(const std::shared_ptr<backends::Backend>& backend) {
  auto trainer = NewAdamTrainer(backend, context::New(), Mlp);
  auto batch = RandomBatch(kMlpBatch, {784}, 1);
  trainer->TrainStep(batch);  // creates the variables and compiles
  return [trainer, batch] { trainer->TrainStep(batch); };
}

Step CnnTrainStep(const std::shared_ptr<backends::Backend>& backend) {
  auto trainer = NewAdamTrainer(backend, context::New(), Cnn);
  auto batch = RandomBatch(kCnnBatch, {28, 28, 1}, 2);
  trainer->TrainStep(batch);
  return [trainer, batch] { trainer->TrainStep(batch); };
}

Step MatMul(const std::shared_ptr<backends::Backend>& backend, int64_t n) {
  const auto shape = shapes::Make(dtypes::Float32, n, n);
  auto exec = graph::Compile(backend, [shape](graph::Graph* g) {
    return graph::MatMul(graph::Parameter(g, "a", shape), graph::Parameter(g, "b", shape));
  });
  return CallStep(exec, {RandomFloats({n, n}, -1, 1, 3), RandomFloats({n, n}, -1, 1, 4)});
}

Step Chain(const std::shared_ptr<backends::Backend>& backend) {
  const auto shape = shapes::Make(dtypes::Float32, kChainSize);
  auto exec = graph::Compile(backend, [shape](graph::Graph* g) {
    Node x = graph::Parameter(g, "x", shape);
    return graph::Tanh(x * 2.0 + 1.0) * graph::Sigmoid(x);
  });
  return CallStep(exec, {RandomFloats({kChainSize}, -4, 4, 5)});
}

Step ReduceSumRows(const std::shared_ptr<backends::Backend>& backend) {
  const auto shape = shapes::Make(dtypes::Float32, kRows, kCols);
  auto exec = graph::Compile(backend, [shape](graph::Graph* g) {
    return graph::ReduceSum(graph::Parameter(g, "x", shape), -1);
  });
  return CallStep(exec, {RandomFloats({kRows, kCols}, -1, 1, 6)});
}

Step SoftmaxRows(const std::shared_ptr<backends::Backend>& backend) {
  const auto shape = shapes::Make(dtypes::Float32, kRows, kCols);
  auto exec = graph::Compile(backend, [shape](graph::Graph* g) {
    return graph::Softmax(graph::Parameter(g, "x", shape), -1);
  });
  return CallStep(exec, {RandomFloats({kRows, kCols}, -4, 4, 7)});
}

Step TinyAdd(const std::shared_ptr<backends::Backend>& backend) {
  const auto shape = shapes::Make(dtypes::Float32, 16);
  auto exec = graph::Compile(backend, [shape](graph::Graph* g) {
    return graph::Parameter(g, "a", shape) + graph::Parameter(g, "b", shape);
  });
  return CallStep(exec, {RandomFloats({16}, -1, 1, 8), RandomFloats({16}, -1, 1, 9)});
}

Step SortValuesAndIndices(const std::shared_ptr<backends::Backend>& backend) {
  auto exec = graph::Compile(backend, [](graph::Graph* g) {
    graph::Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, kSortSize));
    return graph::SortTogether({x, graph::Iota(g, shapes::Make(dtypes::Int64, kSortSize), 0)}, 0);
  });
  return CallStep(exec, {RandomFloats({kSortSize}, -1, 1, 11)});
}

Step CumSumLong(const std::shared_ptr<backends::Backend>& backend) {
  auto exec = graph::Compile(backend, [](graph::Graph* g) {
    return graph::CumSum(graph::Parameter(g, "x", shapes::Make(dtypes::Float32, kSortSize)), 0);
  });
  return CallStep(exec, {RandomFloats({kSortSize}, -1, 1, 13)});
}

Step TopKValuesAndIndices(const std::shared_ptr<backends::Backend>& backend) {
  auto exec = graph::Compile(backend, [](graph::Graph* g) {
    graph::TopKResult r = graph::TopK(graph::Parameter(g, "x", shapes::Make(dtypes::Float32, kSortSize)), kTopK, 0,
                                      dtypes::Int64);
    return std::vector<graph::Node>{r.values, r.indices};
  });
  return CallStep(exec, {RandomFloats({kSortSize}, -1, 1, 12)});
}

namespace {
// A Complex64 tensor of `dims` whose parts are uniform in [-1, 1].
tensors::Tensor RandomComplex(std::vector<int64_t> dims, uint64_t seed) {
  std::vector<int64_t> parts = dims;
  parts.push_back(2);
  tensors::Tensor floats = RandomFloats(parts, -1, 1, seed);
  tensors::Tensor z(shapes::Shape(dtypes::Complex64, std::move(dims)));
  std::memcpy(z.MutableHostData(), floats.HostData(), static_cast<size_t>(z.Shape().ByteSize()));
  return z;
}
}  // namespace

Step FftLong(const std::shared_ptr<backends::Backend>& backend) {
  auto exec = graph::Compile(backend, [](graph::Graph* g) {
    return graph::FFT(graph::Parameter(g, "x", shapes::Make(dtypes::Complex64, kFftSize)));
  });
  return CallStep(exec, {RandomComplex({kFftSize}, 13)});
}

Step FftRows(const std::shared_ptr<backends::Backend>& backend) {
  auto exec = graph::Compile(backend, [](graph::Graph* g) {
    return graph::FFT(graph::Parameter(g, "x", shapes::Make(dtypes::Complex64, kFftRows, kFftCols)));
  });
  return CallStep(exec, {RandomComplex({kFftRows, kFftCols}, 14)});
}

Step RfftLong(const std::shared_ptr<backends::Backend>& backend) {
  auto exec = graph::Compile(backend, [](graph::Graph* g) {
    return graph::RFFT(graph::Parameter(g, "x", shapes::Make(dtypes::Float32, kFftSize)));
  });
  return CallStep(exec, {RandomFloats({kFftSize}, -1, 1, 15)});
}

Step LoopInGraph(const std::shared_ptr<backends::Backend>& backend) {
  auto exec = graph::Compile(backend, [](graph::Graph* g) {
    graph::Node x = graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 16));
    return graph::ForLoop(
        kLoopIterations,
        [](graph::Node, const std::vector<graph::Node>& c) { return std::vector<graph::Node>{c[0] * 0.5f + 1.0f}; },
        {x})[0];
  });
  return CallStep(exec, {RandomFloats({16}, -1, 1, 10)});
}

Step LoopOnHost(const std::shared_ptr<backends::Backend>& backend) {
  auto exec = graph::Compile(backend, [](graph::Graph* g) {
    return graph::Parameter(g, "x", shapes::Make(dtypes::Float32, 16)) * 0.5f + 1.0f;
  });
  return [exec, x0 = RandomFloats({16}, -1, 1, 10)]() mutable {
    tensors::Tensor x = x0;
    for (int64_t i = 0; i < kLoopIterations; ++i) x = exec.Call(x);
  };
}

Step RnnScanGradient(const std::shared_ptr<backends::Backend>& backend) {
  auto exec = graph::Compile(backend, [](graph::Graph* g) {
    graph::Node w = graph::Parameter(g, "w", shapes::Make(dtypes::Float32, kRnnUnits, kRnnUnits));
    graph::Node xs = graph::Parameter(g, "xs", shapes::Make(dtypes::Float32, kRnnSteps, kRnnBatch, kRnnUnits));
    auto r = graph::Scan(
        [&](const std::vector<graph::Node>& c, const std::vector<graph::Node>& x) {
          graph::Node h = graph::Tanh(graph::MatMul(c[0], w) + x[0]);
          return std::vector<graph::Node>{h, h};
        },
        {graph::Zeros(g, shapes::Make(dtypes::Float32, kRnnBatch, kRnnUnits))}, {xs});
    graph::Node loss = graph::ReduceSum(graph::Square(r.stacked[0]), {});
    std::vector<graph::Node> grads = graph::Gradient(loss, {w, xs});
    return std::vector<graph::Node>{loss, grads[0], grads[1]};
  });
  const float scale = 1.0f / 16;  // |W| small enough that tanh does not saturate
  return CallStep(exec, {RandomFloats({kRnnUnits, kRnnUnits}, -scale, scale, 16),
                         RandomFloats({kRnnSteps, kRnnBatch, kRnnUnits}, -1, 1, 17)});
}

std::vector<double> SpdMatrix(int64_t n) {
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<double> a(static_cast<size_t>(n * n)), spd(static_cast<size_t>(n * n));
  for (double& v : a) v = dist(rng);
#pragma omp parallel for
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double sum = 0;
      for (int64_t k = 0; k < n; ++k) sum += a[static_cast<size_t>(i * n + k)] * a[static_cast<size_t>(j * n + k)];
      spd[static_cast<size_t>(i * n + j)] = sum / static_cast<double>(n) + (i == j ? 1.0 : 0.0);
    }
  }
  return spd;
}

std::vector<double> DominantMatrix(int64_t n) {
  std::mt19937_64 rng(14);
  std::uniform_real_distribution<double> dist(-1, 1);
  std::vector<double> a(static_cast<size_t>(n * n));
  for (double& v : a) v = dist(rng);
  for (int64_t i = 0; i < n; ++i) a[static_cast<size_t>(i * n + i)] += static_cast<double>(n);
  return a;
}

namespace {
tensors::Tensor Doubles(const shapes::Shape& shape, const std::vector<double>& values) {
  tensors::Tensor t(shape);
  std::copy(values.begin(), values.end(), t.MutableFlat<double>().begin());
  return t;
}
}  // namespace

Step CholeskyStep(const std::shared_ptr<backends::Backend>& backend) {
  const auto shape = shapes::Make(dtypes::Float64, kLinalgSize, kLinalgSize);
  auto exec = graph::Compile(backend, [shape](graph::Graph* g) {
    return graph::Cholesky(graph::Parameter(g, "a", shape));
  });
  return CallStep(exec, {Doubles(shape, SpdMatrix(kLinalgSize))});
}

Step SolveStep(const std::shared_ptr<backends::Backend>& backend) {
  const auto shape = shapes::Make(dtypes::Float64, kLinalgSize, kLinalgSize);
  const auto rhs = shapes::Make(dtypes::Float64, kLinalgSize, 1);
  auto exec = graph::Compile(backend, [shape, rhs](graph::Graph* g) {
    graph::Node a = graph::Parameter(g, "a", shape);  // parameters in order: a, then b
    return graph::Solve(a, graph::Parameter(g, "b", rhs));
  });
  return CallStep(exec, {Doubles(shape, DominantMatrix(kLinalgSize)),
                         Doubles(rhs, std::vector<double>(kLinalgSize, 1.0))});
}

double MlpTrainStepCompileSeconds(const std::shared_ptr<backends::Backend>& backend) {
  context::Context ctx = context::New();
  auto batch = RandomBatch(kMlpBatch, {784}, 10);
  NewAdamTrainer(backend, ctx, Mlp)->TrainStep(batch);  // creates and initializes the variables
  // A second trainer on the same context reuses them, so its first step is
  // trace + compile + run; the median of the next steps is the run alone.
  auto trainer = NewAdamTrainer(backend, ctx, Mlp);
  const double first = SecondsOf([&] { trainer->TrainStep(batch); });
  std::vector<double> steps;
  for (int i = 0; i < 5; ++i) steps.push_back(SecondsOf([&] { trainer->TrainStep(batch); }));
  std::nth_element(steps.begin(), steps.begin() + 2, steps.end());
  return first - steps[2];
}

double SecondsOf(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

Step OnnxInference(const std::shared_ptr<backends::Backend>& backend, const std::string& onnx_path,
                   std::vector<int64_t> dims) {
  onnx::Model model = onnx::Model::Import(onnx_path);
  onnx::Exec exec = model.NewExec(backend, context::New());
  const tensors::Tensor x = RandomFloats(std::move(dims), 0, 1, 21);
  exec.Call({x});  // traced and compiled here, not in the timing
  return [exec, x]() mutable { exec.Call({x}); };
}

}  // namespace kiln::bench
