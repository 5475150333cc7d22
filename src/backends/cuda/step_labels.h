// Copyright 2026 The Kiln Authors.
// What each step of a CUDA program runs, in words, for KILN_CUDA_PROFILE's
// table (src/backends/step_profile.h): the op, its shape and the caller's
// line, the ops a kernel fuses, and which library runs a call.
#pragma once

#include <string>
#include <vector>

#include "src/backends/cuda/codegen.h"

namespace kiln::backends::cuda {

/// One label per step of `p`, e.g.
///   "fused 3 ops -> Float32[256, 512]: Mul Add Max (model.cc:12) [kiln_fused_17]"
///   "DotGeneral and Add -> Float32[256, 512] (model.cc:10) [cuBLASLt 256x512x784, bias epilogue]"
///   "ConvGeneral -> Float32[2, 5, 5, 8] (model.cc:20), its Float32[50, 27] buffer [kiln_im2col_10]".
/// A step on a scratch value (im2col patches, a factorization's work area
/// or one of its results) is named by the instruction that made it
/// (Program::scratch_owner).
std::vector<std::string> ProgramStepLabels(const Program& p);

}  // namespace kiln::backends::cuda
