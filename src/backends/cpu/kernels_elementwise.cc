// Copyright 2026 The Kiln Authors.
// CPU kernels of the elementwise ops.
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

namespace {

template <typename T>
Kernel AddKernel(int64_t n) {
  return [n](const void* const* in, void* out) {
    const T* a = static_cast<const T*>(in[0]);
    const T* b = static_cast<const T*>(in[1]);
    T* o = static_cast<T*>(out);
#pragma omp parallel for simd if (n > kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) o[i] = a[i] + b[i];
  };
}

Kernel MakeAdd(const ir::Function&, const ir::Instruction& instr) {
  const int64_t n = instr.shape.Size();
  switch (instr.shape.DType()) {
    case dtypes::Float32: return AddKernel<float>(n);
    case dtypes::Float64: return AddKernel<double>(n);
    case dtypes::Int32: return AddKernel<int32_t>(n);
    default: Throw("cpu Add: dtype not yet implemented");
  }
}

}  // namespace

void RegisterElementwiseKernels(KernelTable& table) { table[static_cast<size_t>(ir::OpType::kAdd)] = MakeAdd; }

}  // namespace kiln::backends::cpu
