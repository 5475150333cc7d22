// Copyright 2026 The Kiln Authors.
// Tile kernels: the elementwise ops (unary, binary, comparisons, Where, Clamp,
// ConvertDType) as serial loops over n contiguous elements. They are the one
// implementation of each op's arithmetic: the per-op kernels of
// kernels_elementwise.cc run them over chunks of a whole array (in parallel
// when large), and fused groups (fusion.h) run them over cache-sized tiles.
// Defined in kernels_elementwise.cc.
#pragma once

#include <cstdint>

#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

/// Computes elements [0, n) of one elementwise instruction, serially:
/// inputs[i] points at operand i's first element, output at the result's.
/// `output` may equal any input whose element width is the output's (every
/// element is read only to compute the same element).
using TileKernel = void (*)(const void* const* inputs, void* output, int64_t n);

/// Whether `op` has a tile kernel (the elementwise ops listed above).
bool HasTileKernel(ir::OpType op);

/// The tile kernel of `instr` (an op with HasTileKernel), specialized for its
/// dtypes. Throws kiln::Error for a dtype the op does not accept (the graph
/// layer rejects those first, so this only guards hand-built IR).
TileKernel MakeTileKernel(const ir::Function& fn, const ir::Instruction& instr);

/// Relative cost per element of `op`'s tile kernel: 1 for arithmetic, 8 for
/// the transcendental functions. Callers use threads once n * cost exceeds
/// kParallelThreshold.
int TileCost(ir::OpType op);

}  // namespace kiln::backends::cpu
