// Copyright 2026 The Kiln Authors.
// The CUDA emulator's stand-in for cuSOLVER, cuBLAS, cuFFT and cuDNN: a
// LibraryCall (codegen.h) run on the host (LAPACK, FFTW, a reference trsm)
// with the arguments the CUDA backend passes the libraries, so the emulator
// checks the generator's layout mapping (triangles, sides, transposes,
// transform layouts) and the kernels around the call.
#pragma once

#include "src/backends/cuda/codegen.h"

namespace kiln::backends::cuda {

/// Runs `s` in place on `x`, reading the spec's `inputs` and writing its
/// `outputs`, as the CUDA backend's library call does on the device; a
/// batched call finds its matrices through its pointer arrays (which must
/// point where the matrices are).
void RunReferenceLibraryCall(const LibraryCall& s, void* x, void* const* inputs, void* const* outputs);

/// The cuDNN call of `s` (ConvSpec's definition, Float64 accumulation):
/// `out` from the spec's values a and b. Throws where cuDNN would reject
/// the spec (ConvSpecIsConsistent) or the images are not packed as the spec
/// says.
void RunReferenceConv(const ConvSpec& s, const void* a, const void* b, void* out);

}  // namespace kiln::backends::cuda
