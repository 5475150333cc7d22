// Copyright 2026 The Kiln Authors.
// The cuBLAS, cuBLASLt, cuSOLVER and cuFFT entry points the CUDA backend's
// products and library steps call (library_calls.h), as one table of pointers. On a
// GPU the table holds the linked libraries' functions; the emulator
// (emulator.h) fills it with host stand-ins that read the same arguments as
// the libraries do (emulated_library.h). So the code that maps a step to
// library calls (leading dimensions, batch strides, pointer arrays,
// workspaces, epilogues) runs, and is tested, without a GPU.
#pragma once

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cufft.h>
#include <cusolverDn.h>

namespace kiln::backends::cuda {

// Every entry point, as X(name).
#define KILN_CUDA_LIBRARY_FUNCTIONS(X)                                                                    \
  X(cublasLtCreate)                                                                                     \
  X(cublasLtDestroy)                                                                                    \
  X(cublasCreate_v2)                                                                                    \
  X(cublasDestroy_v2)                                                                                   \
  X(cublasSetStream_v2)                                                                                 \
  X(cusolverDnCreate)                                                                                   \
  X(cusolverDnDestroy)                                                                                  \
  X(cusolverDnSetStream)                                                                                \
  X(cusolverDnCreateParams)                                                                             \
  X(cusolverDnDestroyParams)                                                                            \
  X(cublasStrsm_v2_64)                                                                                  \
  X(cublasDtrsm_v2_64)                                                                                  \
  X(cublasStrsmBatched_64)                                                                              \
  X(cublasDtrsmBatched_64)                                                                              \
  X(cublasSgetrfBatched)                                                                                \
  X(cublasDgetrfBatched)                                                                                \
  X(cusolverDnSpotrfBatched)                                                                            \
  X(cusolverDnDpotrfBatched)                                                                            \
  X(cusolverDnXpotrf_bufferSize)                                                                        \
  X(cusolverDnXpotrf)                                                                                   \
  X(cusolverDnXgetrf_bufferSize)                                                                        \
  X(cusolverDnXgetrf)                                                                                   \
  X(cusolverDnXgeqrf_bufferSize)                                                                        \
  X(cusolverDnXgeqrf)                                                                                   \
  X(cusolverDnSorgqr_bufferSize)                                                                        \
  X(cusolverDnDorgqr_bufferSize)                                                                        \
  X(cusolverDnSorgqr)                                                                                   \
  X(cusolverDnDorgqr)                                                                                   \
  X(cusolverDnXsyevd_bufferSize)                                                                        \
  X(cusolverDnXsyevd)                                                                                   \
  X(cusolverDnXgesvd_bufferSize)                                                                        \
  X(cusolverDnXgesvd)                                                                                   \
  X(cublasLtMatmulDescCreate)                                                                           \
  X(cublasLtMatmulDescDestroy)                                                                          \
  X(cublasLtMatmulDescSetAttribute)                                                                     \
  X(cublasLtMatrixLayoutCreate)                                                                         \
  X(cublasLtMatrixLayoutDestroy)                                                                        \
  X(cublasLtMatrixLayoutSetAttribute)                                                                   \
  X(cublasLtMatmulPreferenceCreate)                                                                     \
  X(cublasLtMatmulPreferenceDestroy)                                                                    \
  X(cublasLtMatmulPreferenceSetAttribute)                                                               \
  X(cublasLtMatmulAlgoGetHeuristic)                                                                     \
  X(cublasLtMatmul)                                                                                     \
  X(cufftPlanMany)                                                                                      \
  X(cufftSetStream)                                                                                     \
  X(cufftExecC2C)                                                                                       \
  X(cufftExecZ2Z)                                                                                       \
  X(cufftExecR2C)                                                                                       \
  X(cufftExecD2Z)                                                                                       \
  X(cufftExecC2R)                                                                                       \
  X(cufftExecZ2D)                                                                                       \
  X(cufftDestroy)

/// The entry points, each with its header's exact type.
struct LibraryApi {
#define KILN_LIBRARY_POINTER(name) decltype(&::name) name = nullptr;
  KILN_CUDA_LIBRARY_FUNCTIONS(KILN_LIBRARY_POINTER)
#undef KILN_LIBRARY_POINTER
};

/// The linked libraries' functions (library_calls.cc).
const LibraryApi& LinkedLibraryApi();

/// The emulator's host stand-ins (emulated_library.h): they take host
/// pointers where the libraries take device pointers, check the arguments
/// the libraries check, and compute what the libraries compute.
const LibraryApi& EmulatedLibraryApi();

}  // namespace kiln::backends::cuda
