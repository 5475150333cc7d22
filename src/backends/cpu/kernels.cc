// Copyright 2026 The Kiln Authors.
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

const KernelTable& Kernels() {
  static const KernelTable table = [] {
    KernelTable t{};
    RegisterElementwiseKernels(t);
    RegisterLayoutKernels(t);
    RegisterReduceKernels(t);
    RegisterDotKernels(t);
    RegisterConvKernels(t);
    RegisterWindowKernels(t);
    RegisterGatherKernels(t);
    RegisterRandomKernels(t);
    RegisterLinalgKernels(t);
    RegisterAttentionKernels(t);
    RegisterComplexKernels(t);
    RegisterFftKernels(t);
    RegisterCollectiveKernels(t);
    return t;
  }();
  return table;
}

}  // namespace kiln::backends::cpu
