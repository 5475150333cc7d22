// Copyright 2026 The Kiln Authors.
// The emulator's stand-ins for the libraries in library_api.h, one file per
// library family. Each stand-in reads its arguments as the library's
// documentation defines them and rejects what the library rejects, with the
// library's status, so the CUDA backend's calls (library_calls.cc) are
// tested without a GPU; host pointers stand where the libraries take
// device pointers.
#pragma once

#include "src/backends/cuda/library_api.h"

namespace kiln::backends::cuda {

/// Sets cuSOLVER's and cuBLAS's (trsm, batched LU) entries of `api`
/// (emulated_solver.cc).
void FillEmulatedSolver(LibraryApi* api);

/// Sets cuBLASLt's entries of `api` (emulated_cublaslt.cc).
void FillEmulatedCublasLt(LibraryApi* api);

/// Sets cuFFT's entries of `api` (emulated_cufft.cc).
void FillEmulatedCufft(LibraryApi* api);

}  // namespace kiln::backends::cuda
