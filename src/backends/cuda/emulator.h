// Copyright 2026 The Kiln Authors.
// "cuda-emu": the CUDA backend's programs run on the host, for testing the
// CUDA code generator and executor on machines without a GPU.
//
// An executable is planned exactly as on a GPU (GenerateProgram, the same
// kernels, RunProgram's buffer reuse and in-place updates); its CUDA C++ is
// compiled by the host's C++ compiler with a small shim (blockIdx,
// threadIdx, __shared__, atomics, and __syncthreads as a switch between
// fibers, one per CUDA thread) and loaded with dlopen. Products,
// factorizations, transforms and convolutions run the CUDA backend's own
// library code (library_calls.h, cudnn_conv.h) on host stand-ins of
// cuBLASLt, cuBLAS, cuSOLVER, cuFFT and cuDNN that read their arguments as
// the libraries document them (emulated_library.h, emulated_cudnn.cc). New
// buffers are filled with 0xff bytes (NaN, -1), so a kernel that leaves part
// of its output unwritten shows up in the results, and each ends at an
// inaccessible page, so an access past its end fails.
//
// What it cannot check: the GPU's own behaviour (memory model, warp
// scheduling, the CUDA runtime, the libraries' own code and numerics, device
// math's last ulps). Threads of a block run one at a time between barriers,
// in an order that alternates between rounds, which exposes a missing
// __syncthreads only sometimes.
#pragma once

namespace kiln::backends::cuda {

/// Registers the "cuda-emu" backend (priority 0, so New() never picks it).
/// Its kernels are compiled by $KILN_CUDA_EMULATOR_CXX, else the compiler
/// that built Kiln, and cached on disk next to the NVRTC cache. Idempotent.
void RegisterCudaEmulatorBackend();

/// Makes the emulator's next `n` replays of a recorded executable throw
/// kiln::Error before running anything, as a CUDA graph launch fails when
/// the graph's memory cannot be had: for tests of the fallback to running
/// step by step (graph_replay.h).
void FailNextEmulatorReplays(int n);

/// Makes the emulated cuDNN list no usable algorithm for convolutions of
/// `kind` (a ConvSpec::Kind's value; -1: none), as cuDNN does for
/// combinations it lacks: for tests of the fallback off cuDNN (PlanProgram).
void RefuseEmulatedConvolutions(int kind);

/// The kind RefuseEmulatedConvolutions last set (-1: none).
int EmulatedConvolutionRefusal();

}  // namespace kiln::backends::cuda
