// Copyright 2026 The Kiln Authors.
// cuDNN for the CUDA backend's convolution steps (ConvSpec in codegen.h).
//
// cuDNN is loaded at run time, never linked: libkiln runs where it is
// missing, and the backend then generates its programs without kConv steps
// (convolutions become im2col and a cuBLASLt product). The library is
// $KILN_CUDNN_LIBRARY when set, else libcudnn.so.9 from the loader's search
// path, else from the directory CMake found it in.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "src/backends/cuda/codegen.h"

namespace kiln::backends::cuda {

/// "" when cuDNN is loaded and usable, else why not (loaded once).
const std::string& CudnnUnavailableReason();

/// The loaded cuDNN's version ("9.19.0"); "" when unavailable.
std::string CudnnVersion();

/// Counters since the process started (all devices): convolutions planned
/// on cuDNN, and programs whose convolutions cuDNN refused (generated again
/// without it).
struct CudnnStats {
  int64_t planned = 0, refused = 0;
};
/// The counters now.
CudnnStats GetCudnnStats();
/// Adds `n` to `counter` (the CUDA backend's executables call it).
void CountCudnn(int64_t CudnnStats::*counter, int64_t n);

/// Which cuDNN a handle calls: the loaded library, or the emulator's host
/// stand-in of its convolution API (emulated_cudnn.cc), which reads the
/// descriptors and arguments as cuDNN documents them and computes on host
/// memory.
enum class CudnnImpl { kLibrary, kEmulated };

/// Whether the emulated cuDNN is built (it needs cuDNN's headers).
bool HaveEmulatedCudnn();

/// A cuDNN handle, made on the current device (throws kiln::Error).
class CudnnHandle {
 public:
  explicit CudnnHandle(CudnnImpl impl = CudnnImpl::kLibrary);
  ~CudnnHandle();
  CudnnHandle(const CudnnHandle&) = delete;
  CudnnHandle& operator=(const CudnnHandle&) = delete;
  void* Get() const { return handle_; }
  /// The entry points this handle's calls go through (cudnn_api.h's CudnnApi).
  const void* Api() const { return api_; }

 private:
  const void* api_ = nullptr;
  void* handle_ = nullptr;
};

/// One ConvSpec with its descriptors and algorithm, chosen by cuDNN's
/// heuristics when an executable is compiled. Float32 runs on FMA kernels
/// (exact FP32) unless TF32 is allowed; Float16 and BFloat16 on tensor
/// cores with Float32 accumulation.
class CudnnConv {
 public:
  /// Throws kiln::Error, with cuDNN's status, where cuDNN rejects the spec
  /// or has no algorithm needing at most `max_workspace` bytes.
  /// `allow_tf32`: Float32 may run on TF32 tensor cores.
  CudnnConv(const CudnnHandle& handle, const ConvSpec& spec, size_t max_workspace, bool allow_tf32);
  ~CudnnConv();
  CudnnConv(const CudnnConv&) = delete;
  CudnnConv& operator=(const CudnnConv&) = delete;

  /// Device memory Run needs as its workspace.
  size_t WorkspaceBytes() const { return workspace_; }

  /// Writes `out` from the spec's values `a` and `b`, on `stream` (a
  /// cudaStream_t).
  void Run(const CudnnHandle& handle, void* stream, const void* a, const void* b, void* out, void* workspace) const;

 private:
  struct Descriptors;
  std::unique_ptr<Descriptors> d_;
  size_t workspace_ = 0;
};

}  // namespace kiln::backends::cuda
