// Copyright 2026 The Kiln Authors.
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

void RegisterRandomKernels(KernelTable& table) { (void)table; }

}  // namespace kiln::backends::cpu
