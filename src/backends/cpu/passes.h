// Copyright 2026 The Kiln Authors.
// Graph optimization passes of the CPU backend's compile step: algebraic
// simplification, constant folding, common-subexpression elimination and
// dead-code elimination, run to a fixpoint by OptimizeFunction before the
// executable is built.
//
// Every pass keeps the function equivalent: the same parameters in the same
// order (unused ones included), the same outputs in the same order with the
// same shapes, bit-identical results (see SimplifyAlgebra for the float rules),
// a valid IR (ir::Function::Validate) and the `location` of every surviving
// instruction. Sub-functions are carried over untouched. Each pass is linear
// in the number of instructions (hash maps, no pairwise comparisons), apart
// from constant folding, whose work is bounded by kMaxFoldedElements per
// folded instruction (plus the size of its constant operands).
#pragma once

#include <cstdint>
#include <memory>

#include "kiln/ir/function.h"

namespace kiln::backends::cpu {

/// Constant folding replaces an instruction by a Constant only when its
/// output has at most this many elements: larger constants would cost memory
/// and bandwidth, and a broadcast of a scalar constant into a large shape is
/// better left to the executor, which fuses it into its consumer.
inline constexpr int64_t kMaxFoldedElements = 4096;

/// The pipeline (SimplifyAlgebra, FoldConstants, EliminateCommonSubexpressions,
/// EliminateDeadCode) repeats until nothing changes, at most this many rounds.
inline constexpr int kMaxOptimizeRounds = 8;

/// Returns a function equivalent to `fn` with the passes below applied until
/// nothing changes (bounded by kMaxOptimizeRounds). Returns `fn` itself when
/// no pass changes anything. Throws kiln::Error for a null or invalid `fn`.
std::shared_ptr<const ir::Function> OptimizeFunction(std::shared_ptr<const ir::Function> fn);

/// Whether CpuBackend::Compile runs OptimizeFunction: true unless the
/// environment variable KILN_CPU_OPTIMIZE is "0" (read at every call, so that
/// tests and benchmarks can compare against the unoptimized function).
bool OptimizationsEnabled();

// ---------------------------------------------------------------- The passes.
// Each rewrites `fn` in place and returns whether it changed anything. They
// expect a valid function (Validate) and leave a valid one.

/// Removes the instructions no output depends on. Parameters always stay (the
/// argument list is part of the function's signature).
bool EliminateDeadCode(ir::Function& fn);

/// Merges instructions with the same op, operands, shape and attributes into
/// the first of them (constants compare by bytes, so -0.0 and 0.0, or two NaN
/// payloads, stay distinct). Every op of the IR is pure, RNGBitGenerator
/// included (its bits are a function of its state operand), so any two equal
/// instructions compute the same value. Users of the merged ones are
/// redirected; the duplicates become dead code.
bool EliminateCommonSubexpressions(ir::Function& fn);

/// Replaces instructions whose operands are all Constants (and small Iotas)
/// by a Constant holding their value, when the output has at most
/// kMaxFoldedElements elements. The value is computed by the CPU backend's own
/// kernel for the instruction, so it is bit-identical to what the executable
/// would compute. RNGBitGenerator is never folded (its constant-state draws
/// are typically large, and folding would bake random tensors into the
/// program); instructions whose kernel rejects them are left for the
/// executable to report.
bool FoldConstants(ir::Function& fn);

/// Algebraic identities that are exact (bit-identical for every input,
/// including -0.0, infinities and NaN):
///   x * 1, 1 * x, x / 1                    -> x  (integers and floats)
///   x + 0, 0 + x, x - 0                    -> x  (integers)
///   x + (-0.0), (-0.0) + x, x - (+0.0)     -> x  (floats; x + (+0.0) is NOT x
///                                                 for x = -0.0, so it stays)
///   Neg(Neg(x))                            -> x
///   Reshape(Reshape(x))                    -> Reshape(x); to x's own shape: x
///   Transpose(Transpose(x))                -> one Transpose; identity: x
///   Transpose moving only axes of size 1   -> Reshape (an alias, no copy)
///   BroadcastInDim(BroadcastInDim(x))      -> one BroadcastInDim; same shape: x
///   ConvertDType to the operand's dtype    -> x
///   Transpose(DotGeneral(a, b)) swapping    -> DotGeneral(b, a)  (when the dot
///     the free axes                              has no other user)
/// A "0" or "1" operand is a Constant whose elements all have the same bytes,
/// seen through Reshapes and BroadcastInDims. Bool operands are left alone
/// (Add/Mul of Bool are logical ops with their own identities). The only
/// difference a rule can make is the payload of a NaN: the kernels may
/// return a quieted or canonical NaN where x passes the input's bits through.
/// The swapped dot computes the same products and sums; an optimized matmul
/// kernel may order the sums differently (as it may for another thread
/// count), so Float32 results can differ in the last bits.
bool SimplifyAlgebra(ir::Function& fn);

}  // namespace kiln::backends::cpu
