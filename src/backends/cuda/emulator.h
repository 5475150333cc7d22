// Copyright 2026 The Kiln Authors.
// "cuda-emu": the CUDA backend (cuda_backend.cc) on a host stand-in for the
// CUDA runtime (runtime_api.h), for testing the backend without a GPU.
//
// The backend plans, compiles, allocates, stages, launches, captures and
// replays exactly as on a GPU; the runtime under it is emulated:
// - device memory is host memory filled with 0xff bytes (NaN, -1) when
//   allocated, so an unwritten output shows, and ending at an inaccessible
//   page, so an access past its end fails; allocations are tracked, so a
//   bad free or a copy past an allocation is an error;
// - streams queue their work and run it in order when the host waits for
//   it (as a GPU may run it later: a read that does not wait sees stale
//   bytes); a stream being captured records it into a graph that
//   cudaGraphLaunch runs; calls CUDA forbids during a thread-local capture
//   fail and invalidate it; the legacy default stream is refused, since
//   on a GPU its work would race with the backend's non-blocking streams;
// - kernels are the modules' CUDA C++ compiled by the host's C++ compiler
//   with a small shim (blockIdx, threadIdx, __shared__, atomics, and
//   __syncthreads as a switch between fibers, one per CUDA thread), loaded
//   with dlopen; a launch takes its blocks, and each block's threads, in a
//   shuffled order (a GPU keeps none); a * b + c is contracted into a fused
//   multiply-add where the host has one, as NVRTC does; the math
//   functions' results are moved within the ulp errors CUDA documents;
//   every load and store goes to a race check (emulated_racecheck.h),
//   which stops a launch whose threads race on shared or device memory;
// - cuBLASLt, cuBLAS, cuSOLVER, cuFFT and cuDNN are host stand-ins that
//   read their arguments as the libraries document them
//   (emulated_library.h, emulated_cudnn.cc) and work on these streams.
//
// What it cannot check: the GPU's own behaviour (memory model, threads
// running at once rather than one at a time between barriers, the
// runtime's and the libraries' own code and numerics, device math's actual
// last ulps), and performance.
#pragma once

namespace kiln::backends::cuda {

/// Registers the "cuda-emu" backend (priority 0, so New() never picks it):
/// the CUDA backend on EmulatedRuntimeApi() (runtime_api.h).
/// Its kernels are compiled by $KILN_CUDA_EMULATOR_CXX, else the compiler
/// that built Kiln, and cached on disk next to the NVRTC cache. Idempotent.
void RegisterCudaEmulatorBackend();

/// Makes the emulated runtime's next `n` cudaGraphLaunch calls fail before
/// running anything, as a launch fails when the graph's memory cannot be
/// had: for tests of the fallback to running step by step (graph_replay.h).
void FailNextEmulatorReplays(int n);

/// Makes the emulated cuDNN list no usable algorithm for convolutions of
/// `kind` (a ConvSpec::Kind's value; -1: none), as cuDNN does for
/// combinations it lacks: for tests of the fallback off cuDNN (PlanProgram).
void RefuseEmulatedConvolutions(int kind);

/// The kind RefuseEmulatedConvolutions last set (-1: none).
int EmulatedConvolutionRefusal();

}  // namespace kiln::backends::cuda
