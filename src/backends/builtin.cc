// Copyright 2026 The Kiln Authors.
// The backends compiled into libkiln. Registering them from one function
// (instead of static initializers) keeps them alive in static-library links.
#include "kiln/backends/backend.h"

namespace kiln::backends {
namespace cpu {
void RegisterCpuBackend();
}  // namespace cpu

#ifdef KILN_HAVE_CUDA
namespace cuda {
void RegisterCudaBackend();
}  // namespace cuda
#endif

namespace internal {
void RegisterBuiltinBackends() {
  cpu::RegisterCpuBackend();
#ifdef KILN_HAVE_CUDA
  cuda::RegisterCudaBackend();
#endif
}
}  // namespace internal
}  // namespace kiln::backends
