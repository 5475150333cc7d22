// Copyright 2026 The Kiln Authors.
// The device-side helper functions every generated CUDA kernel includes.
#pragma once

namespace kiln::backends::cuda {

/// CUDA C++ source of the helpers (prelude.cc says which).
const char* KernelPrelude();

/// CUDA C++ source of the complex arithmetic and functions
/// (complex_math.cuh), which modules with complex values include after the
/// prelude.
const char* ComplexMathSource();

/// CUDA C++ source of the fused attention's device functions
/// (attention.cuh), which modules with Attention or AttentionGrad include.
const char* AttentionSource();

/// CUDA C++ source of KVec4, the four-element vector type of vectorized
/// elementwise kernels (codegen_vector.cc), which modules with such a
/// kernel include.
const char* VectorSource();

}  // namespace kiln::backends::cuda
