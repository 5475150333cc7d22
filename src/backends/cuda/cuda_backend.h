// Copyright 2026 The Kiln Authors.
// The CUDA backend (cuda_backend.cc) on a given runtime: the linked CUDA
// runtime for "cuda", the emulator's stand-ins for "cuda-emu".
#pragma once

#include <memory>

#include "kiln/backends/backend.h"
#include "src/backends/cuda/runtime_api.h"

namespace kiln::backends::cuda {

/// The CUDA backend on device `ordinal` of `rt`, shared by every caller
/// while anyone holds it (a backend owns a stream, a cuBLASLt handle and a
/// workspace). `rt` must outlive the backends made from it (the tables are
/// static). Throws kiln::Error if the device cannot be set up.
std::shared_ptr<Backend> SharedCudaBackend(const RuntimeApi& rt, int ordinal);

/// The device address of `buffer`'s memory where it is a CUDA backend's
/// buffer, else nullptr: what tests compare to see an update made in place.
const void* DeviceAddress(const Buffer& buffer);

}  // namespace kiln::backends::cuda
