// Copyright 2026 The Kiln Authors.
// A ConvSpec's convolution computed on the host, straight from its
// definition: what the emulator's stand-in for cuDNN (emulated_cudnn.cc)
// computes, and what the emulator runs where that stand-in is not built.
#pragma once

#include "src/backends/cuda/codegen.h"

namespace kiln::backends::cuda {

/// The cuDNN call of `s` (ConvSpec's definition, Float64 accumulation):
/// `out` from the spec's values a and b. Throws where cuDNN would reject
/// the spec (ConvSpecIsConsistent) or the images are not packed as the spec
/// says.
void RunReferenceConv(const ConvSpec& s, const void* a, const void* b, void* out);

}  // namespace kiln::backends::cuda
