// Copyright 2026 The Kiln Authors.
// The emulator's stand-ins for cuBLAS, cuBLASLt, cuSOLVER and cuFFT (see
// library_api.h and emulated_library.h), gathered into one table, and
// their handles.
#include "src/backends/cuda/emulated_library.h"

namespace kiln::backends::cuda {

namespace {

template <typename H>
EmulatedLibraryHandle* Of(H h) {
  return reinterpret_cast<EmulatedLibraryHandle*>(h);
}
template <typename H>
H NewHandle() {
  return reinterpret_cast<H>(new EmulatedLibraryHandle);
}

cublasStatus_t LtCreate(cublasLtHandle_t* h) {
  if (h == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *h = NewHandle<cublasLtHandle_t>();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t LtDestroy(cublasLtHandle_t h) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete Of(h);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t BlasCreate(cublasHandle_t* h) {
  if (h == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *h = NewHandle<cublasHandle_t>();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t BlasDestroy(cublasHandle_t h) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  delete Of(h);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t BlasSetStream(cublasHandle_t h, cudaStream_t stream) {
  if (h == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  Of(h)->stream = stream;
  return CUBLAS_STATUS_SUCCESS;
}
cusolverStatus_t SolverCreate(cusolverDnHandle_t* h) {
  if (h == nullptr) return CUSOLVER_STATUS_INVALID_VALUE;
  *h = NewHandle<cusolverDnHandle_t>();
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t SolverDestroy(cusolverDnHandle_t h) {
  if (h == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  delete Of(h);
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t SolverSetStream(cusolverDnHandle_t h, cudaStream_t stream) {
  if (h == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  Of(h)->stream = stream;
  return CUSOLVER_STATUS_SUCCESS;
}
struct FakeParams {};
cusolverStatus_t CreateParams(cusolverDnParams_t* p) {
  if (p == nullptr) return CUSOLVER_STATUS_INVALID_VALUE;
  *p = reinterpret_cast<cusolverDnParams_t>(new FakeParams);
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t DestroyParams(cusolverDnParams_t p) {
  if (p == nullptr) return CUSOLVER_STATUS_INVALID_VALUE;
  delete reinterpret_cast<FakeParams*>(p);
  return CUSOLVER_STATUS_SUCCESS;
}

}  // namespace

void FillEmulatedHandles(LibraryApi* api) {
  api->cublasLtCreate = LtCreate;
  api->cublasLtDestroy = LtDestroy;
  api->cublasCreate_v2 = BlasCreate;
  api->cublasDestroy_v2 = BlasDestroy;
  api->cublasSetStream_v2 = BlasSetStream;
  api->cusolverDnCreate = SolverCreate;
  api->cusolverDnDestroy = SolverDestroy;
  api->cusolverDnSetStream = SolverSetStream;
  api->cusolverDnCreateParams = CreateParams;
  api->cusolverDnDestroyParams = DestroyParams;
}

const LibraryApi& EmulatedLibraryApi() {
  static const LibraryApi api = [] {
    LibraryApi a;
    FillEmulatedHandles(&a);
    FillEmulatedSolver(&a);
    FillEmulatedCublasLt(&a);
    FillEmulatedCufft(&a);
    return a;
  }();
  return api;
}

}  // namespace kiln::backends::cuda
