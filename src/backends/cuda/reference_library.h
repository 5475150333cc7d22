// Copyright 2026 The Kiln Authors.
// The CUDA emulator's stand-in for cuFFT and cuDNN: a Fourier-transform
// LibraryCall (codegen.h) or a ConvSpec run on the host (FFTW, a direct
// convolution) as the spec defines it, so the emulator checks the
// generator's layout mapping and the kernels around the call. (cuBLAS,
// cuBLASLt and cuSOLVER are emulated at their API instead:
// emulated_library.cc.)
#pragma once

#include "src/backends/cuda/codegen.h"

namespace kiln::backends::cuda {

/// Runs the Fourier transform `s` on `x`, reading the spec's `inputs`, as
/// the CUDA backend's cuFFT plan does on the device.
void RunReferenceLibraryCall(const LibraryCall& s, void* x, void* const* inputs);

/// The cuDNN call of `s` (ConvSpec's definition, Float64 accumulation):
/// `out` from the spec's values a and b. Throws where cuDNN would reject
/// the spec (ConvSpecIsConsistent) or the images are not packed as the spec
/// says.
void RunReferenceConv(const ConvSpec& s, const void* a, const void* b, void* out);

}  // namespace kiln::backends::cuda
