// Copyright 2026 The Kiln Authors.
// The CUDA backend's products (MatmulSpec, on cuBLASLt), its library steps'
// factorizations and triangular solves (LibraryCall, on cuSOLVER and cuBLAS)
// and Fourier transforms (on cuFFT), and the planning of a program's
// products and convolutions (PlanProgram), written against a LibraryApi
// (library_api.h) and a CudnnHandle: the CUDA backend passes the linked
// libraries, the emulator its host stand-ins, so both run this code.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "src/backends/cuda/codegen.h"
#include "src/backends/cuda/cudnn_conv.h"
#include "src/backends/cuda/library_api.h"

namespace kiln::backends::cuda {

/// Throws kiln::Error naming `what` unless `s` is success.
void CheckBlas(cublasStatus_t s, const std::string& what);
/// The same for cuBLASLt's statuses.
void CheckLt(cublasStatus_t s, const std::string& what);
/// The same for cuSOLVER's statuses.
void CheckSolver(cusolverStatus_t s, const std::string& what);

/// cuSOLVER's handle with the parameters of its 64-bit entry points.
struct SolverHandles {
  cusolverDnHandle_t handle = nullptr;
  cusolverDnParams_t params = nullptr;
};

/// What a library step runs with: the entry points and the device's handles
/// (made on first use: cuSOLVER's costs tens of MB) and memory.
struct LibraryContext {
  const LibraryApi* api = nullptr;
  std::function<cublasHandle_t()> blas;
  std::function<SolverHandles()> solver;
  /// `bytes` of device memory for a call's workspace, freed in stream order
  /// when the last pointer to it goes.
  std::function<std::shared_ptr<void>(size_t bytes)> allocate;
  /// Waits for the stream's work (a host workspace must outlive the
  /// asynchronous calls that read it).
  std::function<void()> synchronize;
};

/// Runs a factorization or triangular-solve LibraryCall (kPotrf ... kGesvd)
/// in place on `x`, as codegen.h's LibraryCall describes: the 64-bit entry
/// point once per matrix, or one batched call through the pointer arrays.
void RunSolverCall(const LibraryContext& c, const LibraryCall& s, void* x, void* const* inputs,
                   void* const* outputs);

/// What a cuBLASLt product runs with.
struct LtContext {
  const LibraryApi* api = nullptr;
  cublasLtHandle_t handle = nullptr;
  void* workspace = nullptr;
  size_t workspace_size = 0;
};

/// A cuBLASLt product planned when an executable is compiled (MatmulSpec's
/// row-major view; cuBLASLt is column-major, so Dᵀ = rhsᵀ lhsᵀ, and a bias
/// is added along n, the rhs's free extent).
class LtMatmul {
 public:
  /// Throws kiln::Error where cuBLASLt has no algorithm. Float32 takes
  /// bf16 tensor cores where `s.bf16_products`, else TF32 ones where `tf32`,
  /// else exact FP32; a reduced precision cuBLASLt has no algorithm for
  /// falls back to exact FP32.
  LtMatmul(const LtContext& c, const MatmulSpec& s, bool tf32);
  ~LtMatmul();
  LtMatmul(const LtMatmul&) = delete;
  LtMatmul& operator=(const LtMatmul&) = delete;

  /// out = lhs · rhs (+ bias) on `stream` (a cudaStream_t).
  void Run(const LtContext& c, const void* lhs, const void* rhs, const void* bias, void* out, void* stream) const;

 private:
  void Release();  // destroys the descriptors made so far

  const LibraryApi* api_;
  bool f64_;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulAlgo_t algo_{};
};

/// The most workspace one cuDNN convolution may use; an executable holds
/// the largest its convolutions chose.
inline constexpr size_t kMaxConvWorkspace = size_t{256} << 20;

/// A program's products and convolutions, planned on the libraries.
struct LibraryPlans {
  std::vector<std::unique_ptr<LtMatmul>> matmuls;  // per MatmulSpec
  std::vector<std::unique_ptr<CudnnConv>> convs;   // per ConvSpec
  size_t conv_workspace = 0;                       // the most one convolution needs
};

/// What PlanProgram plans with: cuBLASLt, and cuDNN (null: none).
struct PlanContext {
  LtContext lt;
  const CudnnHandle* cudnn = nullptr;
  std::mutex* cudnn_mu = nullptr;  // held while cuDNN plans (its handle is Execute's too)
  bool tf32 = false;               // Float32 may run on TF32 tensor cores
  /// Told why convolutions leave cuDNN (the CUDA backend warns once).
  std::function<void(const std::string&)> warn_off_cudnn;
};

/// Generates `fn`'s program with `*options` and plans its products and
/// convolutions into `plans`. Where cuBLASLt has no algorithm for a product
/// with the bias epilogue, the program is generated again without
/// epilogues; where cuDNN refuses some convolutions (each counted in
/// CudnnStats::refused), again with those off cuDNN
/// (ProgramOptions::cudnn_refused), the others keeping it; without a cuDNN
/// handle, with none on cuDNN. Each pass turns something off for good, so
/// this ends. `*options` keeps what was turned off.
Program PlanProgram(const ir::Function& fn, ProgramOptions* options, const PlanContext& c, LibraryPlans* plans);

/// Whether `k` is a Fourier transform (kFft, kRfft, kIrfftLead, kIrfft).
bool IsFourier(LibraryCall::Kind k);

/// A cuFFT plan for one Fourier-transform LibraryCall, made when the
/// executable is compiled (cuFFT allocates its work area then), on `stream`
/// (a cudaStream_t).
class FftPlan {
 public:
  /// Throws kiln::Error with cuFFT's status where it cannot plan.
  FftPlan(const LibraryApi* api, const LibraryCall& s, void* stream);
  ~FftPlan();
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;

  /// The transform on `x` (in place, or from inputs[0] for RFFT and IRFFT).
  void Run(void* x, void* const* inputs) const;

 private:
  void C2C(void* x, int direction) const;

  const LibraryApi* api_;
  LibraryCall s_;
  cufftHandle plan_ = 0;
};

/// A cuFFT plan per library call of `p` through `api` on `stream` (null for
/// the calls that are not Fourier transforms).
std::vector<std::unique_ptr<FftPlan>> PlanFfts(const LibraryApi* api, const Program& p, void* stream);

}  // namespace kiln::backends::cuda
