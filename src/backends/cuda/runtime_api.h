// Copyright 2026 The Kiln Authors.
// The CUDA runtime as the CUDA backend (cuda_backend.cc) calls it: one table
// of entry points, each with the C API's exact type, plus how the backend
// builds its kernel images and which libraries it calls. On a GPU the table
// holds the linked runtime, NVRTC and the linked libraries
// (LinkedRuntimeApi); the emulator ("cuda-emu", emulator.h) fills it with
// host stand-ins (EmulatedRuntimeApi), so the backend's own code (device
// set-up, the stream-ordered allocator, staging, module loading, launches,
// CUDA graph capture and replay) runs and is tested without a GPU.
#pragma once

#include <cuda_runtime.h>

#include <string>
#include <type_traits>
#include <vector>

#include "src/backends/cuda/cudnn_conv.h"
#include "src/backends/cuda/library_api.h"

namespace kiln::backends::cuda {

// X(name, type): the runtime functions cuda_backend.cc and staging call.
// Types are spelt out: several names are overloaded by cuda_runtime.h's C++
// templates (cudaMalloc, cudaLaunchKernel, cudaGraphInstantiate, ...) and
// cudaGetDeviceProperties is a macro.
#define KILN_CUDA_RUNTIME_FUNCTIONS(X)                                                                     \
  X(cudaGetDeviceCount, cudaError_t (*)(int*))                                                             \
  X(cudaSetDevice, cudaError_t (*)(int))                                                                   \
  X(cudaGetLastError, cudaError_t (*)())                                                                   \
  X(cudaGetErrorString, const char* (*)(cudaError_t))                                                     \
  X(cudaGetDeviceProperties, cudaError_t (*)(cudaDeviceProp*, int))                                       \
  X(cudaStreamCreateWithFlags, cudaError_t (*)(cudaStream_t*, unsigned int))                               \
  X(cudaStreamDestroy, cudaError_t (*)(cudaStream_t))                                                      \
  X(cudaStreamSynchronize, cudaError_t (*)(cudaStream_t))                                                  \
  X(cudaStreamBeginCapture, cudaError_t (*)(cudaStream_t, cudaStreamCaptureMode))                          \
  X(cudaStreamEndCapture, cudaError_t (*)(cudaStream_t, cudaGraph_t*))                                     \
  X(cudaGraphInstantiate, cudaError_t (*)(cudaGraphExec_t*, cudaGraph_t, unsigned long long))              \
  X(cudaGraphDestroy, cudaError_t (*)(cudaGraph_t))                                                        \
  X(cudaGraphExecDestroy, cudaError_t (*)(cudaGraphExec_t))                                                \
  X(cudaGraphUpload, cudaError_t (*)(cudaGraphExec_t, cudaStream_t))                                       \
  X(cudaGraphLaunch, cudaError_t (*)(cudaGraphExec_t, cudaStream_t))                                       \
  X(cudaMalloc, cudaError_t (*)(void**, size_t))                                                           \
  X(cudaFree, cudaError_t (*)(void*))                                                                      \
  X(cudaMallocAsync, cudaError_t (*)(void**, size_t, cudaStream_t))                                        \
  X(cudaFreeAsync, cudaError_t (*)(void*, cudaStream_t))                                                   \
  X(cudaDeviceGetDefaultMemPool, cudaError_t (*)(cudaMemPool_t*, int))                                     \
  X(cudaMemPoolSetAttribute, cudaError_t (*)(cudaMemPool_t, cudaMemPoolAttr, void*))                       \
  X(cudaHostAlloc, cudaError_t (*)(void**, size_t, unsigned int))                                          \
  X(cudaFreeHost, cudaError_t (*)(void*))                                                                  \
  X(cudaEventCreateWithFlags, cudaError_t (*)(cudaEvent_t*, unsigned int))                                 \
  X(cudaEventDestroy, cudaError_t (*)(cudaEvent_t))                                                        \
  X(cudaEventRecord, cudaError_t (*)(cudaEvent_t, cudaStream_t))                                           \
  X(cudaEventSynchronize, cudaError_t (*)(cudaEvent_t))                                                    \
  X(cudaEventElapsedTime, cudaError_t (*)(float*, cudaEvent_t, cudaEvent_t))                              \
  X(cudaMemcpyAsync, cudaError_t (*)(void*, const void*, size_t, cudaMemcpyKind, cudaStream_t))            \
  X(cudaLibraryLoadData, cudaError_t (*)(cudaLibrary_t*, const void*, cudaJitOption*, void**, unsigned int, \
                                         cudaLibraryOption*, void**, unsigned int))                         \
  X(cudaLibraryUnload, cudaError_t (*)(cudaLibrary_t))                                                     \
  X(cudaLibraryGetKernel, cudaError_t (*)(cudaKernel_t*, cudaLibrary_t, const char*))                      \
  X(cudaOccupancyMaxActiveBlocksPerMultiprocessor, cudaError_t (*)(int*, const void*, int, size_t))        \
  X(cudaLaunchKernel, cudaError_t (*)(const void*, dim3, dim3, void**, size_t, cudaStream_t))

/// The CUDA runtime, the kernel compiler and the libraries one CUDA backend
/// uses.
struct RuntimeApi {
#define KILN_RUNTIME_POINTER(name, type) std::type_identity_t<type> name = nullptr;
  KILN_CUDA_RUNTIME_FUNCTIONS(KILN_RUNTIME_POINTER)
#undef KILN_RUNTIME_POINTER

  /// The backend's name: "cuda", or "cuda-emu" (in its messages too).
  const char* backend_name = "cuda";
  /// Turns the modules' CUDA C++ into images cudaLibraryLoadData loads
  /// (NVRTC's cubins for `arch` on a GPU). Throws kiln::Error on failure.
  std::vector<std::string> (*compile_modules)(const std::vector<std::string>& sources, const std::string& arch) = nullptr;
  /// cuBLAS, cuBLASLt, cuSOLVER and cuFFT.
  const LibraryApi* libraries = nullptr;
  /// Which cuDNN a CudnnHandle calls, and why it is unusable ("" if usable).
  CudnnImpl cudnn = CudnnImpl::kLibrary;
  const std::string& (*cudnn_unavailable_reason)() = nullptr;
  /// Called where a convolution leaves cuDNN (refused, or no workspace): a
  /// warning on a GPU; in the emulator an error unless a test asked cuDNN
  /// to refuse (a descriptor cuDNN would reject is a Kiln bug).
  void (*convolutions_off_cudnn)(const std::string& why) = nullptr;
  /// Whether a failed release (free, destroy, unload) aborts the process
  /// (the emulator) or is a warning (a GPU): it is a Kiln bug either way.
  bool fatal_release_errors = false;
};

/// The linked CUDA runtime (which loads the driver when first called), NVRTC
/// and the linked libraries.
const RuntimeApi& LinkedRuntimeApi();

/// The emulator's host stand-ins (emulator.cc).
const RuntimeApi& EmulatedRuntimeApi();

}  // namespace kiln::backends::cuda
