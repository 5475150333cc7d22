// Copyright 2026 The Kiln Authors.
// The op set: one table of every operation of the IR, with each op's category.
//
// The semantics follow StableHLO (https://openxla.org/stablehlo/spec); the
// places where Kiln fixes what StableHLO leaves open (integer division by
// zero, NaN in Max/Min, rounding) are documented in docs/architecture.md and
// tested. Each op's operand checks and shape rule live in its graph builder
// (src/graph/ops_*.cc, with the shared checks in src/graph/op_builder.cc), its
// gradient next to it (the *VJP functions), the CPU kernels in
// src/backends/cpu/kernels_*.cc; docs/adding_an_op.md lists the steps.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string_view>

#include "kiln/core/dtypes.h"

namespace kiln::ir {

/// Broad classes of ops, used by backends and the graph layer to share rules.
enum class OpCategory : uint8_t {
  kSource,      // Parameter, Constant, Iota: no operands.
  kUnary,       // elementwise, one operand.
  kBinary,      // elementwise, two operands of one shape.
  kComparison,  // elementwise, two operands, Bool result.
  kOther,       // everything with its own rule.
};

/// Which dtypes an op's operands may have: the graph layer's check, the CPU
/// kernels' dispatch and the conformance tests all read it from the op table.
/// kOwnRule: the op checks its operands itself (layout, reductions, dots...).
/// The real classes (kFloat, kNumeric, kAny) exclude the complex dtypes; the
/// ...OrComplex classes add them, for the ops defined on complex numbers.
enum class DTypeClass : uint8_t {
  kFloat,
  kNumeric,
  kInteger,
  kBool,
  kAny,
  kOwnRule,
  kFloatOrComplex,
  kNumericOrComplex,
  kAnyOrComplex,
};

// X(Name, Category, DTypeClass): the single list of ops. Order is stable
// (serialized IR and capability tables refer to it).
#define KILN_IR_OPS(X)                            \
  X(Parameter, kSource, kOwnRule)                 \
  X(Constant, kSource, kOwnRule)                  \
  X(Iota, kSource, kOwnRule)                      \
  /* Unary */                                     \
  X(Abs, kUnary, kNumericOrComplex)               \
  X(Neg, kUnary, kNumericOrComplex)               \
  X(Sign, kUnary, kNumericOrComplex)              \
  X(Ceil, kUnary, kFloat)                         \
  X(Floor, kUnary, kFloat)                        \
  X(Round, kUnary, kFloat)                        \
  X(Exp, kUnary, kFloatOrComplex)                 \
  X(Expm1, kUnary, kFloatOrComplex)               \
  X(Log, kUnary, kFloatOrComplex)                 \
  X(Log1p, kUnary, kFloatOrComplex)               \
  X(Logistic, kUnary, kFloat)                     \
  X(Sin, kUnary, kFloatOrComplex)                 \
  X(Cos, kUnary, kFloatOrComplex)                 \
  X(Tanh, kUnary, kFloatOrComplex)                \
  X(Sqrt, kUnary, kFloatOrComplex)                \
  X(Rsqrt, kUnary, kFloatOrComplex)               \
  X(Erf, kUnary, kFloat)                          \
  X(IsFinite, kUnary, kFloat)                     \
  X(IsNaN, kUnary, kFloat)                        \
  X(BitCount, kUnary, kInteger)                   \
  X(Clz, kUnary, kInteger)                        \
  X(BitwiseNot, kUnary, kInteger)                 \
  X(LogicalNot, kUnary, kBool)                    \
  /* Binary */                                    \
  X(Add, kBinary, kNumericOrComplex)              \
  X(Sub, kBinary, kNumericOrComplex)              \
  X(Mul, kBinary, kNumericOrComplex)              \
  X(Div, kBinary, kNumericOrComplex)              \
  X(Rem, kBinary, kNumeric)                       \
  X(Pow, kBinary, kNumericOrComplex)              \
  X(Max, kBinary, kNumeric)                       \
  X(Min, kBinary, kNumeric)                       \
  X(Atan2, kBinary, kFloat)                       \
  X(BitwiseAnd, kBinary, kInteger)                \
  X(BitwiseOr, kBinary, kInteger)                 \
  X(BitwiseXor, kBinary, kInteger)                \
  X(LogicalAnd, kBinary, kBool)                   \
  X(LogicalOr, kBinary, kBool)                    \
  X(LogicalXor, kBinary, kBool)                   \
  X(ShiftLeft, kBinary, kInteger)                 \
  X(ShiftRightArithmetic, kBinary, kInteger)      \
  X(ShiftRightLogical, kBinary, kInteger)         \
  /* Comparisons */                               \
  X(Equal, kComparison, kAnyOrComplex)            \
  X(NotEqual, kComparison, kAnyOrComplex)         \
  X(GreaterThan, kComparison, kAny)               \
  X(GreaterOrEqual, kComparison, kAny)            \
  X(LessThan, kComparison, kAny)                  \
  X(LessOrEqual, kComparison, kAny)               \
  /* Others */                                    \
  X(Where, kOther, kAnyOrComplex)                 \
  X(Clamp, kOther, kNumeric)                      \
  X(ConvertDType, kOther, kAnyOrComplex)          \
  X(Bitcast, kOther, kOwnRule)                    \
  X(Reshape, kOther, kOwnRule)                    \
  X(Transpose, kOther, kOwnRule)                  \
  X(BroadcastInDim, kOther, kOwnRule)             \
  X(Concatenate, kOther, kOwnRule)                \
  X(Slice, kOther, kOwnRule)                      \
  X(Pad, kOther, kOwnRule)                        \
  X(Reverse, kOther, kOwnRule)                    \
  X(DynamicSlice, kOther, kOwnRule)               \
  X(DynamicUpdateSlice, kOther, kOwnRule)         \
  X(ReduceSum, kOther, kOwnRule)                  \
  X(ReduceProduct, kOther, kOwnRule)              \
  X(ReduceMax, kOther, kOwnRule)                  \
  X(ReduceMin, kOther, kOwnRule)                  \
  X(ReduceLogicalAnd, kOther, kOwnRule)           \
  X(ReduceLogicalOr, kOther, kOwnRule)            \
  X(ReduceLogicalXor, kOther, kOwnRule)           \
  X(ReduceBitwiseAnd, kOther, kOwnRule)           \
  X(ReduceBitwiseOr, kOther, kOwnRule)            \
  X(ReduceBitwiseXor, kOther, kOwnRule)           \
  X(ArgMinMax, kOther, kOwnRule)                  \
  X(DotGeneral, kOther, kOwnRule)                 \
  X(ConvGeneral, kOther, kOwnRule)                \
  X(ReduceWindow, kOther, kOwnRule)               \
  X(SelectAndScatter, kOther, kOwnRule)           \
  X(Gather, kOther, kOwnRule)                     \
  X(ScatterSum, kOther, kOwnRule)                 \
  X(ScatterMax, kOther, kOwnRule)                 \
  X(ScatterMin, kOther, kOwnRule)                 \
  X(ScatterUpdate, kOther, kOwnRule)              \
  X(RNGBitGenerator, kOther, kOwnRule)            \
  /* Control flow (sub-functions, tuples) */      \
  X(While, kOther, kOwnRule)                      \
  X(If, kOther, kOwnRule)                         \
  X(GetTupleElement, kOther, kOwnRule)            \
  X(Sort, kOther, kOwnRule)                       \
  /* Linear algebra (LAPACK on the CPU) */        \
  X(Cholesky, kOther, kOwnRule)                   \
  X(TriangularSolve, kOther, kOwnRule)            \
  X(Lu, kOther, kOwnRule)                         \
  X(Qr, kOther, kOwnRule)                         \
  X(Eigh, kOther, kOwnRule)                       \
  X(Svd, kOther, kOwnRule)                        \
  /* Fused blocks a backend may implement in one kernel */ \
  X(Attention, kOther, kOwnRule)                  \
  X(AttentionGrad, kOther, kOwnRule)              \
  /* Complex numbers (Abs, Neg, Add... take them too: the OrComplex classes) */ \
  X(Complex, kOther, kOwnRule)                    \
  X(Real, kOther, kOwnRule)                       \
  X(Imag, kOther, kOwnRule)                       \
  X(Fft, kOther, kOwnRule)                        \
  /* Communication among the processes of a distributed job */ \
  X(Collective, kOther, kOwnRule)

/// Every operation of the IR.
enum class OpType : uint16_t {
#define KILN_X(name, category, dtype_class) k##name,
  KILN_IR_OPS(KILN_X)
#undef KILN_X
      kNumOpTypes
};

inline constexpr int kNumOpTypes = static_cast<int>(OpType::kNumOpTypes);

/// "Add", "DotGeneral", ...
std::string_view OpName(OpType op);
/// The op's category (see OpCategory).
OpCategory CategoryOf(OpType op);

/// The dtypes the op accepts (see DTypeClass); constexpr, so kernels can
/// specialize on it at compile time.
constexpr DTypeClass DTypeClassOf(OpType op) {
  constexpr DTypeClass kClasses[] = {
#define KILN_X(name, category, dtype_class) DTypeClass::dtype_class,
      KILN_IR_OPS(KILN_X)
#undef KILN_X
  };
  return kClasses[static_cast<int>(op)];
}
/// Whether a value of `dtype` belongs to `c` (always false for kOwnRule).
bool Accepts(DTypeClass c, dtypes::DType dtype);
/// Whether the op produces a tuple of values (While, If, Sort, the
/// factorizations Lu, Qr, Eigh, Svd and AttentionGrad) rather than one array:
/// its instruction's shape is the placeholder TupleShape() and each element
/// is read by a GetTupleElement instruction.
constexpr bool ProducesTuple(OpType op) {
  return op == OpType::kWhile || op == OpType::kIf || op == OpType::kSort || op == OpType::kLu ||
         op == OpType::kQr || op == OpType::kEigh || op == OpType::kSvd || op == OpType::kAttentionGrad;
}
/// Whether the op is a factorization producing a tuple (Lu, Qr, Eigh, Svd):
/// a kernel with several outputs and no sub-function.
constexpr bool IsFactorization(OpType op) {
  return op == OpType::kLu || op == OpType::kQr || op == OpType::kEigh || op == OpType::kSvd;
}
/// Whether the op is one kernel writing several outputs, a tuple without
/// sub-functions: the factorizations and AttentionGrad.
constexpr bool IsMultiOutputKernel(OpType op) { return IsFactorization(op) || op == OpType::kAttentionGrad; }
/// "a float dtype", "an integer dtype", ... for error messages.
std::string_view DTypeClassName(DTypeClass c);
std::ostream& operator<<(std::ostream& os, OpType op);

}  // namespace kiln::ir
