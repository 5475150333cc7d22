// Copyright 2026 The Kiln Authors.
// The CUDA backend's products (MatmulSpec, on cuBLASLt) and its library
// steps' factorizations and triangular solves (LibraryCall, on cuSOLVER and
// cuBLAS) and Fourier transforms (on cuFFT), written against a LibraryApi (library_api.h): the CUDA backend
// passes the linked libraries, the emulator its host stand-ins, so both run
// this code.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "src/backends/cuda/codegen.h"
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
  /// Throws kiln::Error where cuBLASLt has no algorithm. `tf32`: Float32 may
  /// run on TF32 tensor cores (else exact FP32).
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

}  // namespace kiln::backends::cuda
