// Copyright 2026 The Kiln Authors.
// The CUDA emulator's stand-in for cuSOLVER and cuBLAS: a SolverSpec
// (codegen.h) run on the host with the same column-major arguments the CUDA
// backend passes the libraries, so the emulator checks the generator's
// layout mapping (triangles, sides, transposes) and the kernels around the
// call.
#pragma once

#include "src/backends/cuda/codegen.h"

namespace kiln::backends::cuda {

/// Runs `s` in place on `x`, reading `a` and writing `outputs` where the
/// spec has them, as the CUDA backend's library call does on the device.
void RunReferenceSolver(const SolverSpec& s, void* x, const void* a, void* const* outputs);

}  // namespace kiln::backends::cuda
