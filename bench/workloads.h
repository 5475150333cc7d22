// Copyright 2026 The Kiln Authors.
// The Kiln side of the benchmarks: each workload is built (traced, compiled,
// inputs allocated) once and returned as a Step that runs it once. Shared by
// kiln_micro (Google Benchmark) and kiln_compare (side by side with peers).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kiln/kiln.h"
#include "kiln/ml/train/trainer.h"

namespace kiln::bench {

/// One run of a prepared workload.
using Step = std::function<void()>;

/// The sizes shared with the peers, so both sides do the same work.
inline constexpr int64_t kMlpBatch = 256;
inline constexpr int64_t kCnnBatch = 128;
inline constexpr int64_t kChainSize = int64_t{1} << 24;  // 16M floats
inline constexpr int64_t kSortSize = int64_t{1} << 20;  // Sort / TopK input: Float32[kSortSize]
inline constexpr int64_t kTopK = 100;
inline constexpr int64_t kFftSize = int64_t{1} << 20;  // FFT of Complex64[kFftSize]
inline constexpr int64_t kFftRows = 1024, kFftCols = 1024;  // batched FFT of Complex64[kFftRows, kFftCols]
inline constexpr int64_t kRows = 4096;                   // ReduceSum / Softmax input: [kRows, kCols]
inline constexpr int64_t kCols = 4096;

/// Float32 tensor of `dims` with values uniform in [lo, hi), from `seed`.
tensors::Tensor RandomFloats(std::vector<int64_t> dims, float lo, float hi, uint64_t seed);
/// Int32[n] class labels uniform in [0, classes).
tensors::Tensor RandomLabels(int64_t n, int classes, uint64_t seed);

/// MLP 784-512-512-10 (relu), on inputs [batch, 784].
std::vector<graph::Node> Mlp(context::Context ctx, const std::vector<graph::Node>& inputs);
/// CNN on [batch, 28, 28, 1]: conv3x3x32 (same), relu, maxpool2, conv3x3x64
/// (same), relu, maxpool2, dense128, relu, dense10.
std::vector<graph::Node> Cnn(context::Context ctx, const std::vector<graph::Node>& inputs);

/// A trainer of `model` on `ctx` with sparse softmax cross-entropy and Adam
/// (learning rate 1e-3, constant schedule, epsilon 1e-7).
std::shared_ptr<ml::train::Trainer> NewAdamTrainer(const std::shared_ptr<backends::Backend>& backend,
                                                   context::Context ctx, ml::train::ModelFn model);
/// A random batch of `batch` examples of `example_dims` with 10 classes.
ml::datasets::Batch RandomBatch(int64_t batch, std::vector<int64_t> example_dims, uint64_t seed);

/// One Adam train step of the MLP at batch kMlpBatch (compiled on creation).
Step MlpTrainStep(const std::shared_ptr<backends::Backend>& backend);
/// One Adam train step of the CNN at batch kCnnBatch (compiled on creation).
Step CnnTrainStep(const std::shared_ptr<backends::Backend>& backend);
/// Float32 [n, n] x [n, n] with graph::MatMul.
Step MatMul(const std::shared_ptr<backends::Backend>& backend, int64_t n);
/// tanh(x * 2 + 1) * sigmoid(x) over Float32[kChainSize].
Step Chain(const std::shared_ptr<backends::Backend>& backend);
/// ReduceSum over the last axis of Float32[kRows, kCols].
Step ReduceSumRows(const std::shared_ptr<backends::Backend>& backend);
/// Softmax over the last axis of Float32[kRows, kCols].
Step SoftmaxRows(const std::shared_ptr<backends::Backend>& backend);
/// Add of two Float32[16]: measures the per-call overhead.
Step TinyAdd(const std::shared_ptr<backends::Backend>& backend);

/// Sorted values and the permutation (as torch::sort returns) of
/// Float32[kSortSize] uniform values.
Step SortValuesAndIndices(const std::shared_ptr<backends::Backend>& backend);
/// CumSum of Float32[kSortSize] uniform values along its one axis.
Step CumSumLong(const std::shared_ptr<backends::Backend>& backend);
/// The kTopK largest values of Float32[kSortSize] and their indices.
Step TopKValuesAndIndices(const std::shared_ptr<backends::Backend>& backend);
/// graph::FFT of Complex64[kFftSize] (parts uniform in [-1, 1]).
Step FftLong(const std::shared_ptr<backends::Backend>& backend);
/// graph::FFT over the last axis of Complex64[kFftRows, kFftCols].
Step FftRows(const std::shared_ptr<backends::Backend>& backend);
/// graph::RFFT of Float32[kFftSize].
Step RfftLong(const std::shared_ptr<backends::Backend>& backend);

/// Iterations of the control-flow case: x = x * 0.5 + 1 on Float32[16].
inline constexpr int64_t kLoopIterations = 1000;
/// The kLoopIterations iterations as one ForLoop inside one compiled graph.
Step LoopInGraph(const std::shared_ptr<backends::Backend>& backend);
/// The same iterations as kLoopIterations calls of a compiled one-iteration
/// graph from a host loop, each result fed to the next call.
Step LoopOnHost(const std::shared_ptr<backends::Backend>& backend);

/// The RNN of the scan-gradient case: h_t = tanh(h_{t-1} W + x_t) over
/// kRnnSteps steps of Float32 [kRnnBatch, kRnnUnits], h_0 = 0.
inline constexpr int64_t kRnnSteps = 200, kRnnBatch = 32, kRnnUnits = 256;
/// The loss sum(h_t^2) over every step and its gradients with respect to W
/// and the inputs x [kRnnSteps, kRnnBatch, kRnnUnits], through graph::Scan
/// in one compiled graph.
Step RnnScanGradient(const std::shared_ptr<backends::Backend>& backend);

/// The order of the linear-algebra cases: Float64 [kLinalgSize, kLinalgSize].
inline constexpr int64_t kLinalgSize = 1024;
/// Cholesky of a symmetric positive-definite Float64 [kLinalgSize, kLinalgSize].
Step CholeskyStep(const std::shared_ptr<backends::Backend>& backend);
/// Solve a x = b, a Float64 [kLinalgSize, kLinalgSize] (well conditioned),
/// b Float64 [kLinalgSize, 1].
Step SolveStep(const std::shared_ptr<backends::Backend>& backend);
/// The symmetric positive-definite matrix of CholeskyStep (a aᵀ / n + I for a
/// uniform a), row-major, for the peers.
std::vector<double> SpdMatrix(int64_t n);
/// The matrix of SolveStep (uniform plus n on the diagonal), row-major.
std::vector<double> DominantMatrix(int64_t n);

/// Seconds to trace and compile the MLP train step: a fresh trainer's first
/// step (trace + compile + run) minus the median of its next five (run
/// only). The variables are created and initialized beforehand, so neither
/// is counted.
double MlpTrainStepCompileSeconds(const std::shared_ptr<backends::Backend>& backend);

/// Wall-clock seconds of one call of `fn`.
double SecondsOf(const std::function<void()>& fn);

// Inference of the ONNX model `onnx_path` (its single input filled with
// uniform [0, 1) values of `dims`) through onnx::Exec.
Step OnnxInference(const std::shared_ptr<backends::Backend>& backend, const std::string& onnx_path,
                   std::vector<int64_t> dims);

}  // namespace kiln::bench
