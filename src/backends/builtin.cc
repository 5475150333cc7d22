// Copyright 2026 The Kiln Authors.
// The backends compiled into libkiln. Registering them from one function
// (instead of static initializers) keeps them alive in static-library links.
#include "kiln/backends/backend.h"

#include <cstdlib>
#include <string>

namespace kiln::backends {
namespace cpu {
void RegisterCpuBackend();
}  // namespace cpu

#ifdef KILN_HAVE_CUDA
namespace cuda {
void RegisterCudaBackend();
void RegisterCudaEmulatorBackend();
}  // namespace cuda
#endif

namespace internal {
void RegisterBuiltinBackends() {
  cpu::RegisterCpuBackend();
#ifdef KILN_HAVE_CUDA
  cuda::RegisterCudaBackend();
  // KILN_BACKEND=cuda-emu: New() gives the CUDA backend on the host
  // emulator (emulator.h), so a whole program or test suite runs the CUDA
  // backend's code without a GPU. Registered only then: it is for testing.
  if (const char* pinned = std::getenv("KILN_BACKEND"); pinned != nullptr && std::string(pinned) == "cuda-emu") {
    cuda::RegisterCudaEmulatorBackend();
  }
#endif
}
}  // namespace internal
}  // namespace kiln::backends
