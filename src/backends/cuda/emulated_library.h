// Copyright 2026 The Kiln Authors.
// The emulator's stand-ins for the libraries in library_api.h, one file per
// library family. Each stand-in reads its arguments as the library's
// documentation defines them and rejects what the library rejects, with the
// library's status, so the CUDA backend's calls (library_calls.cc) are
// tested without a GPU; host pointers stand where the libraries take
// device pointers. Their work goes on the emulated runtime's streams
// (emulator.cc): it runs when the host waits for the stream, or is
// recorded where the stream is being captured into a CUDA graph.
#pragma once

#include <functional>

#include "src/backends/cuda/library_api.h"

namespace kiln::backends::cuda {

/// Submits `work` to the emulated runtime's `stream`: run when the host
/// waits for the stream, or, while the stream is being captured, in each
/// launch of the graph. Throws kiln::Error for a stream the runtime did not
/// make, the legacy default stream (null: a handle whose stream was never
/// set) included, since on a GPU that stream's work is not ordered with the
/// backend's non-blocking streams.
void EmulatedStreamWork(cudaStream_t stream, std::function<void()> work);

/// What the stand-ins' cuBLAS, cuSOLVER and cuBLASLt handles hold: the
/// stream their calls go on (cublasSetStream, cusolverDnSetStream).
struct EmulatedLibraryHandle {
  cudaStream_t stream = nullptr;
};

/// Sets the handles' entries of `api` (create, destroy, set stream; in
/// emulated_library.cc).
void FillEmulatedHandles(LibraryApi* api);

/// Sets cuSOLVER's and cuBLAS's (trsm, batched LU) entries of `api`
/// (emulated_solver.cc).
void FillEmulatedSolver(LibraryApi* api);

/// Sets cuBLASLt's entries of `api` (emulated_cublaslt.cc).
void FillEmulatedCublasLt(LibraryApi* api);

/// Sets cuFFT's entries of `api` (emulated_cufft.cc).
void FillEmulatedCufft(LibraryApi* api);

}  // namespace kiln::backends::cuda
