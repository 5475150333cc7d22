// Copyright 2026 The Kiln Authors.
// Collective steps of the CUDA backend (LibraryCall::Kind::kCollective) on
// host buffers: the distributed engine (Gloo, src/distributed/) as the CPU
// backend's Collective kernel calls it, with its checks (the world the
// graph was traced for), sequence numbers and fault diagnosis. The CUDA
// backend stages device buffers through host memory around it; the
// emulator's buffers are host memory already.
#pragma once

#include "src/backends/cuda/codegen.h"

namespace kiln::backends::cuda {

/// Runs collective `s`: AllReduce and Broadcast in place on `x` (`in` is
/// x), AllGather and ReduceScatter from `in` into `x`. `who` names the
/// backend in errors.
void RunHostCollective(const char* who, const LibraryCall& s, const void* in, void* x);

}  // namespace kiln::backends::cuda
