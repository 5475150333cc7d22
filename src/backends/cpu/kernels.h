// Copyright 2026 The Kiln Authors.
// The CPU backend's kernel table: one factory per op, filled by the
// kernels_*.cc files. A factory runs at compile time, when every shape is
// known, and returns the closure that computes the instruction.
#pragma once

#include <array>
#include <functional>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/ir/function.h"

namespace kiln::backends::cpu {

/// Computes one instruction: inputs[i] points at operand i's data (row-major,
/// the operand's shape), output at the instruction's output buffer. Kernels
/// of elementwise ops must tolerate output == inputs[i] (in-place reuse).
using Kernel = std::function<void(const void* const* inputs, void* output)>;

/// Builds the kernel for `instr` of `fn`; throws kiln::Error if unsupported.
using KernelFactory = Kernel (*)(const ir::Function& fn, const ir::Instruction& instr);

/// One factory per op (nullptr: not implemented).
using KernelTable = std::array<KernelFactory, ir::kNumOpTypes>;

/// The table, filled on first use by the Register*Kernels functions below.
const KernelTable& Kernels();

// Each kernels_*.cc file registers its group of ops.
void RegisterElementwiseKernels(KernelTable& table);  // unary, binary, comparisons, Where, Clamp, Convert, Bitcast
void RegisterLayoutKernels(KernelTable& table);       // Reshape ... DynamicUpdateSlice, Iota
void RegisterReduceKernels(KernelTable& table);       // Reduce*, ArgMinMax
void RegisterDotKernels(KernelTable& table);          // DotGeneral
void RegisterConvKernels(KernelTable& table);         // ConvGeneral
void RegisterWindowKernels(KernelTable& table);       // ReduceWindow, SelectAndScatter
void RegisterGatherKernels(KernelTable& table);       // Gather, Scatter*
void RegisterRandomKernels(KernelTable& table);       // RNGBitGenerator
void RegisterLinalgKernels(KernelTable& table);       // Cholesky, TriangularSolve
void RegisterAttentionKernels(KernelTable& table);    // Attention
void RegisterComplexKernels(KernelTable& table);      // Complex, Real, Imag
void RegisterFftKernels(KernelTable& table);          // Fft (FFTW)
void RegisterCollectiveKernels(KernelTable& table);   // Collective (Gloo)

/// Computes an op with several outputs (ir::IsMultiOutputKernel: the
/// factorizations, AttentionGrad): inputs[i] is operand i, outputs[i] the
/// buffer of tuple element i (see ir::TupleElementShapes).
using MultiOutputKernel = std::function<void(const void* const* inputs, void* const* outputs)>;
/// Builds the kernel of factorization `instr` (Lu, Qr, Eigh, Svd) of `fn`;
/// throws kiln::Error if unsupported.
MultiOutputKernel MakeFactorizationKernel(const ir::Function& fn, const ir::Instruction& instr);
/// Builds the kernel of AttentionGrad `instr` of `fn` (kernels_attention.cc).
MultiOutputKernel MakeAttentionGradKernel(const ir::Function& fn, const ir::Instruction& instr);

/// Shape of operand `i` of `instr`.
inline const shapes::Shape& OperandShape(const ir::Function& fn, const ir::Instruction& instr, size_t i) {
  return fn.instructions[static_cast<size_t>(instr.operands.at(i))].shape;
}

/// Whether the instruction or one of its operands is complex. The fused
/// kernels (fusion.cc, fusion_rows.cc) leave those to the per-op kernels:
/// their tiles are sized for real elements, and complex math is rare enough
/// not to need fusing.
inline bool TouchesComplex(const ir::Function& fn, const ir::Instruction& instr) {
  if (dtypes::IsComplex(instr.shape.DType())) return true;
  for (size_t i = 0; i < instr.operands.size(); ++i) {
    if (dtypes::IsComplex(OperandShape(fn, instr, i).DType())) return true;
  }
  return false;
}

/// Reduces one contiguous row of `n` elements into *out, as the reduce kernel
/// of one instruction does for each of its rows.
using RowReduceFn = void (*)(const void* row, int64_t n, void* out);
/// For a ReduceSum, ReduceMax or ReduceMin of a Float32 or Float64 operand
/// over its last axis only, the function computing one output element from
/// its row bit-identically to the instruction's own kernel; nullptr if that
/// kernel does not reduce row by row for this shape (its thread split would
/// sum in another order) or for other reductions.
RowReduceFn LastAxisRowReducer(const ir::Function& fn, const ir::Instruction& reduce);

/// Elements per OpenMP parallel region below which loops stay serial
/// (thread start-up costs more than it saves).
inline constexpr int64_t kParallelThreshold = 1 << 15;

}  // namespace kiln::backends::cpu
