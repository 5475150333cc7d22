// Copyright 2026 The Kiln Authors.
// The emulator's stand-ins for cuBLAS, cuBLASLt, cuSOLVER and cuFFT (see
// library_api.h and emulated_library.h), gathered into one table.
#include "src/backends/cuda/emulated_library.h"

namespace kiln::backends::cuda {

const LibraryApi& EmulatedLibraryApi() {
  static const LibraryApi api = [] {
    LibraryApi a;
    FillEmulatedSolver(&a);
    FillEmulatedCublasLt(&a);
    FillEmulatedCufft(&a);
    return a;
  }();
  return api;
}

}  // namespace kiln::backends::cuda
