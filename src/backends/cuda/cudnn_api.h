// Copyright 2026 The Kiln Authors.
// The cuDNN entry points Kiln calls, as one table of pointers (built only
// where cuDNN's headers are, KILN_HAVE_CUDNN): filled from the library
// loaded at run time (cudnn_conv.cc), or with the emulator's host stand-ins
// (emulated_cudnn.cc), so the code that makes the calls runs in the
// emulator too.
#pragma once

#if KILN_HAVE_CUDNN
#include <cudnn.h>

#include <cstddef>
#include <string>

namespace kiln::backends::cuda {

// The entry points Kiln calls, as `X(name)` for cudnn##name.
#define KILN_CUDNN_FUNCTIONS(X)                                                                        \
  X(GetVersion)                                                                                        \
  X(GetCudartVersion)                                                                                  \
  X(GetErrorString)                                                                                    \
  X(Create)                                                                                            \
  X(Destroy)                                                                                           \
  X(SetStream)                                                                                         \
  X(CreateTensorDescriptor)                                                                            \
  X(SetTensorNdDescriptor)                                                                             \
  X(DestroyTensorDescriptor)                                                                           \
  X(CreateFilterDescriptor)                                                                            \
  X(SetFilterNdDescriptor)                                                                             \
  X(DestroyFilterDescriptor)                                                                           \
  X(CreateConvolutionDescriptor)                                                                       \
  X(SetConvolutionNdDescriptor)                                                                        \
  X(SetConvolutionGroupCount)                                                                          \
  X(SetConvolutionMathType)                                                                            \
  X(DestroyConvolutionDescriptor)                                                                      \
  X(GetConvolutionForwardAlgorithmMaxCount)                                                            \
  X(GetConvolutionBackwardDataAlgorithmMaxCount)                                                       \
  X(GetConvolutionBackwardFilterAlgorithmMaxCount)                                                     \
  X(GetConvolutionForwardAlgorithm_v7)                                                                 \
  X(GetConvolutionBackwardDataAlgorithm_v7)                                                            \
  X(GetConvolutionBackwardFilterAlgorithm_v7)                                                          \
  X(GetConvolutionForwardWorkspaceSize)                                                                \
  X(GetConvolutionBackwardDataWorkspaceSize)                                                           \
  X(GetConvolutionBackwardFilterWorkspaceSize)                                                         \
  X(ConvolutionForward)                                                                                \
  X(ConvolutionBackwardData)                                                                           \
  X(ConvolutionBackwardFilter)

/// cuDNN's functions, or why they are not usable.
struct CudnnApi {
  std::string reason;  // "" when usable
  size_t version = 0;
#define KILN_CUDNN_POINTER(name) decltype(&::cudnn##name) name = nullptr;
  KILN_CUDNN_FUNCTIONS(KILN_CUDNN_POINTER)
#undef KILN_CUDNN_POINTER
};

/// The emulator's stand-ins (emulated_cudnn.cc).
const CudnnApi& EmulatedCudnnApi();

}  // namespace kiln::backends::cuda

#endif  // KILN_HAVE_CUDNN
