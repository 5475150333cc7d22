// Copyright 2026 The Kiln Authors.
#include "bench/peers.h"

// Static dispatch for -march=native, as in src/backends/cpu/elementwise_math.cc
// (Highway 1.0.3 rejects the default policy on AVX3_DL machines).
#define HWY_COMPILE_ONLY_STATIC 1
#include <hwy/aligned_allocator.h>
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>
#include <oneapi/dnnl/dnnl.h>

#include <complex>
#define lapack_complex_float std::complex<float>
#define lapack_complex_double std::complex<double>
#include <lapacke.h>

#include <memory>
#include <random>

#include "kiln/core/error.h"

namespace kiln::bench::peers {

namespace {

namespace hn = hwy::HWY_NAMESPACE;

// Float32[n] of zeros, 64-byte aligned, zeroed by the threads that will use
// it (first touch places the pages).
std::shared_ptr<float[]> Zeros(int64_t n) {
  std::shared_ptr<float[]> a(hwy::AllocateAligned<float>(static_cast<size_t>(n)).release(), hwy::AlignedFreer());
  float* p = a.get();
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] = 0;
  return a;
}

// Like Zeros, with values uniform in [lo, hi).
std::shared_ptr<float[]> Floats(int64_t n, float lo, float hi, uint64_t seed) {
  std::shared_ptr<float[]> a = Zeros(n);
  float* p = a.get();
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  for (int64_t i = 0; i < n; ++i) p[i] = dist(rng);
  return a;
}

}  // namespace

Step DnnlSgemm(int64_t n) {
  auto a = Floats(n * n, -1, 1, 3), b = Floats(n * n, -1, 1, 4), c = Zeros(n * n);
  return [n, a, b, c] {
    if (dnnl_sgemm('N', 'N', n, n, n, 1.0f, a.get(), n, b.get(), n, 0.0f, c.get(), n) != dnnl_success) {
      Throw("dnnl_sgemm failed");
    }
  };
}

Step LapackCholesky(int64_t n) {
  // Row-major symmetric = column-major symmetric: the bytes serve as they are.
  auto a = std::make_shared<std::vector<double>>(SpdMatrix(n));
  auto work = std::make_shared<std::vector<double>>(a->size());
  return [n, a, work] {
    std::copy(a->begin(), a->end(), work->begin());
    const auto ni = static_cast<lapack_int>(n);
    if (LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', ni, work->data(), ni) != 0) Throw("dpotrf failed");
  };
}

Step LapackSolve(int64_t n) {
  // The column-major transpose of Kiln's row-major matrix.
  auto a = std::make_shared<std::vector<double>>(DominantMatrix(n));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < i; ++j) std::swap((*a)[static_cast<size_t>(i * n + j)], (*a)[static_cast<size_t>(j * n + i)]);
  }
  auto work = std::make_shared<std::vector<double>>(a->size());
  auto b = std::make_shared<std::vector<double>>(static_cast<size_t>(n));
  auto ipiv = std::make_shared<std::vector<lapack_int>>(static_cast<size_t>(n));
  return [n, a, work, b, ipiv] {
    std::copy(a->begin(), a->end(), work->begin());
    std::fill(b->begin(), b->end(), 1.0);
    const auto ni = static_cast<lapack_int>(n);
    if (LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, ni, ni, work->data(), ni, ipiv->data()) != 0) Throw("dgetrf failed");
    if (LAPACKE_dgetrs_work(LAPACK_COL_MAJOR, 'N', ni, 1, work->data(), ni, ipiv->data(), b->data(), ni) != 0) {
      Throw("dgetrs failed");
    }
  };
}

std::string DnnlVersion() {
  const dnnl_version_t* v = dnnl_version();
  return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

Step Triad() {
  auto a = Zeros(kChainSize), b = Floats(kChainSize, -1, 1, 1), c = Floats(kChainSize, -1, 1, 2);
  return [a, b, c] {
    float* HWY_RESTRICT pa = a.get();
    const float* HWY_RESTRICT pb = b.get();
    const float* HWY_RESTRICT pc = c.get();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < kChainSize; ++i) pa[i] = pb[i] + 3.0f * pc[i];
  };
}

Step HandFusedChain() {
  auto x = Floats(kChainSize, -4, 4, 5), y = Zeros(kChainSize);
  return [x, y] {
    const hn::ScalableTag<float> d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    if (kChainSize % lanes != 0) Throw("HandFusedChain: size not a multiple of the vector width");
    const float* HWY_RESTRICT px = x.get();
    float* HWY_RESTRICT py = y.get();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < kChainSize; i += lanes) {
      const auto one = hn::Set(d, 1.0f);
      const auto v = hn::Load(d, px + i);
      const auto t = hn::Tanh(d, hn::MulAdd(v, hn::Set(d, 2.0f), one));
      const auto s = hn::Div(one, hn::Add(one, hn::Exp(d, hn::Neg(v))));
      hn::Store(hn::Mul(t, s), d, py + i);
    }
  };
}

#if !KILN_BENCH_HAVE_TORCH
// Stubs: bench/peers_torch.cc defines these when libtorch is found.
namespace libtorch {
bool Available() { return false; }
void SetThreads(int) {}
std::string Version() { return "libtorch: not installed"; }
Step MlpTrainStep() { return {}; }
Step CnnTrainStep() { return {}; }
Step Chain() { return {}; }
Step ReduceSumRows() { return {}; }
Step SoftmaxRows() { return {}; }
Step TinyAdd() { return {}; }
Step Sort() { return {}; }
Step TopK() { return {}; }
Step CumSum() { return {}; }
Step FftLong() { return {}; }
Step FftRows() { return {}; }
Step RfftLong() { return {}; }
Step GptTrainStep() { return {}; }
Step GptDecode() { return {}; }
Step RnnScanGradient() { return {}; }
Step TorchScriptInference(const std::string&, std::vector<int64_t>) { return {}; }
}  // namespace libtorch
#endif

}  // namespace kiln::bench::peers
