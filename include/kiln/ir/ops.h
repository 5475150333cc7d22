// Copyright 2026 The Kiln Authors.
// The op set: one table of every operation of the IR, with each op's category.
//
// The semantics follow StableHLO (https://openxla.org/stablehlo/spec); the
// places where Kiln fixes what StableHLO leaves open (integer division by
// zero, NaN in Max/Min, rounding) are documented in docs/architecture.md and
// tested. Shape rules live in src/graph/shape_inference.cc, graph builders in
// src/graph/ops_*.cc, the CPU kernels in src/backends/cpu/kernels_*.cc.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string_view>

namespace kiln::ir {

/// Broad classes of ops, used by backends and the graph layer to share rules.
enum class OpCategory : uint8_t {
  kSource,      // Parameter, Constant, Iota: no operands.
  kUnary,       // elementwise, one operand.
  kBinary,      // elementwise, two operands of one shape.
  kComparison,  // elementwise, two operands, Bool result.
  kOther,       // everything with its own rule.
};

// X(Name, Category): the single list of ops. Order is stable (serialized IR
// and capability tables refer to it).
#define KILN_IR_OPS(X)                 \
  X(Parameter, kSource)                \
  X(Constant, kSource)                 \
  X(Iota, kSource)                     \
  /* Unary */                          \
  X(Abs, kUnary)                       \
  X(Neg, kUnary)                       \
  X(Sign, kUnary)                      \
  X(Ceil, kUnary)                      \
  X(Floor, kUnary)                     \
  X(Round, kUnary)                     \
  X(Exp, kUnary)                       \
  X(Expm1, kUnary)                     \
  X(Log, kUnary)                       \
  X(Log1p, kUnary)                     \
  X(Logistic, kUnary)                  \
  X(Sin, kUnary)                       \
  X(Cos, kUnary)                       \
  X(Tanh, kUnary)                      \
  X(Sqrt, kUnary)                      \
  X(Rsqrt, kUnary)                     \
  X(Erf, kUnary)                       \
  X(IsFinite, kUnary)                  \
  X(IsNaN, kUnary)                     \
  X(BitCount, kUnary)                  \
  X(Clz, kUnary)                       \
  X(BitwiseNot, kUnary)                \
  X(LogicalNot, kUnary)                \
  /* Binary */                         \
  X(Add, kBinary)                      \
  X(Sub, kBinary)                      \
  X(Mul, kBinary)                      \
  X(Div, kBinary)                      \
  X(Rem, kBinary)                      \
  X(Pow, kBinary)                      \
  X(Max, kBinary)                      \
  X(Min, kBinary)                      \
  X(Atan2, kBinary)                    \
  X(BitwiseAnd, kBinary)               \
  X(BitwiseOr, kBinary)                \
  X(BitwiseXor, kBinary)               \
  X(LogicalAnd, kBinary)               \
  X(LogicalOr, kBinary)                \
  X(LogicalXor, kBinary)               \
  X(ShiftLeft, kBinary)                \
  X(ShiftRightArithmetic, kBinary)     \
  X(ShiftRightLogical, kBinary)        \
  /* Comparisons */                    \
  X(Equal, kComparison)                \
  X(NotEqual, kComparison)             \
  X(GreaterThan, kComparison)          \
  X(GreaterOrEqual, kComparison)       \
  X(LessThan, kComparison)             \
  X(LessOrEqual, kComparison)          \
  /* Others */                         \
  X(Where, kOther)                     \
  X(Clamp, kOther)                     \
  X(ConvertDType, kOther)              \
  X(Bitcast, kOther)                   \
  X(Reshape, kOther)                   \
  X(Transpose, kOther)                 \
  X(BroadcastInDim, kOther)            \
  X(Concatenate, kOther)               \
  X(Slice, kOther)                     \
  X(Pad, kOther)                       \
  X(Reverse, kOther)                   \
  X(DynamicSlice, kOther)              \
  X(DynamicUpdateSlice, kOther)        \
  X(ReduceSum, kOther)                 \
  X(ReduceProduct, kOther)             \
  X(ReduceMax, kOther)                 \
  X(ReduceMin, kOther)                 \
  X(ReduceLogicalAnd, kOther)          \
  X(ReduceLogicalOr, kOther)           \
  X(ReduceLogicalXor, kOther)          \
  X(ReduceBitwiseAnd, kOther)          \
  X(ReduceBitwiseOr, kOther)           \
  X(ReduceBitwiseXor, kOther)          \
  X(ArgMinMax, kOther)                 \
  X(DotGeneral, kOther)                \
  X(ConvGeneral, kOther)               \
  X(ReduceWindow, kOther)              \
  X(SelectAndScatter, kOther)          \
  X(Gather, kOther)                    \
  X(ScatterSum, kOther)                \
  X(ScatterMax, kOther)                \
  X(ScatterMin, kOther)                \
  X(ScatterUpdate, kOther)             \
  X(RNGBitGenerator, kOther)

/// Every operation of the IR.
enum class OpType : uint16_t {
#define KILN_X(name, category) k##name,
  KILN_IR_OPS(KILN_X)
#undef KILN_X
      kNumOpTypes
};

inline constexpr int kNumOpTypes = static_cast<int>(OpType::kNumOpTypes);

/// "Add", "DotGeneral", ...
std::string_view OpName(OpType op);
/// The op's category (see OpCategory).
OpCategory CategoryOf(OpType op);
std::ostream& operator<<(std::ostream& os, OpType op);

}  // namespace kiln::ir
