// Copyright 2026 The Kiln Authors.
// The other side of kiln_compare: the same work as bench/workloads.h done by
// oneDNN called directly, by hand-written loops, and by libtorch (C++
// frontend, when built with it). Each returns a prepared Step.
#pragma once

#include <cstdint>
#include <string>

#include "bench/workloads.h"

namespace kiln::bench::peers {

/// oneDNN's dnnl_sgemm, C = A B with A, B, C Float32 [n, n] row-major.
Step DnnlSgemm(int64_t n);
/// "oneDNN 2.6.3".
std::string DnnlVersion();

/// The bytes one Triad step moves, by STREAM's convention (read b and c,
/// write a; write-allocate traffic not counted).
inline constexpr double kTriadBytes = 3.0 * kChainSize * sizeof(float);
/// STREAM triad a[i] = b[i] + s * c[i] over three Float32[kChainSize] arrays,
/// on every OpenMP thread: the machine's attainable memory bandwidth.
Step Triad();
/// tanh(x * 2 + 1) * sigmoid(x) over Float32[kChainSize] as one hand-written
/// Highway (SIMD) loop on every OpenMP thread: the fused reference.
Step HandFusedChain();

/// LAPACK called directly (LAPACKE, column-major, on whatever liblapack.so.3
/// Debian selects: OpenBLAS when installed): dpotrf of SpdMatrix(n), and
/// dgetrf + dgetrs of DominantMatrix(n) with one right-hand side. Each call
/// first copies the input, as the factorizations overwrite it (Kiln's
/// kernels copy too).
Step LapackCholesky(int64_t n);
Step LapackSolve(int64_t n);

/// libtorch. Without it (kiln_compare built without KILN_BENCH_HAVE_TORCH)
/// Available() is false and the functions below are stubs.
namespace libtorch {
/// Whether kiln_compare was built with libtorch.
bool Available();
/// at::set_num_threads(n) (its OpenMP pool and OpenBLAS follow it).
void SetThreads(int n);
/// "libtorch 1.13.1".
std::string Version();
/// The same models, sizes and optimizer (Adam, lr 1e-3, epsilon 1e-7) as
/// kiln::bench::MlpTrainStep / CnnTrainStep, in libtorch's layouts (NCHW).
Step MlpTrainStep();
Step CnnTrainStep();
/// Eager tanh(x * 2 + 1) * sigmoid(x) over kChainSize floats.
Step Chain();
/// x.sum(-1) and softmax(x, -1) over [kRows, kCols].
Step ReduceSumRows();
Step SoftmaxRows();
/// Eager add of two Float32[16]: the per-op overhead.
Step TinyAdd();
/// torch::sort and torch::topk(kTopK) of kSortSize floats (values and indices).
Step Sort();
Step TopK();
/// torch::cumsum of kSortSize floats.
Step CumSum();
/// torch::fft::fft of complex64[kFftSize], over the last axis of
/// complex64[kFftRows, kFftCols], and torch::fft::rfft of float[kFftSize].
Step FftLong();
Step FftRows();
Step RfftLong();
/// bench/gpt.h's GPT: one AdamW training step, one greedy generation with
/// a key/value cache (bench/torch_gpt.h).
Step GptTrainStep();
/// Inference of a TorchScript module (torch.jit.trace'd) on uniform [0, 1)
/// inputs of `dims`, without autograd.
Step TorchScriptInference(const std::string& path, std::vector<int64_t> dims);
Step GptDecode();
/// kiln::bench::RnnScanGradient's loss and gradients, as a loop of eager ops
/// on the host and autograd's backward.
Step RnnScanGradient();
}  // namespace libtorch

}  // namespace kiln::bench::peers
