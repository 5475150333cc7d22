// Copyright 2026 The Kiln Authors.
// Gradient cases of the elementwise ops, and the list of ops that have no
// gradient by nature.
#include "tests/graph/grad_cases.h"

namespace kiln::testing {

namespace {

using graph::Node;
using ir::OpType;


GradCase Unary(OpType op, const std::string& name, Node (*f)(Node, graph::Loc), double lo, double hi) {
  return {op, name, [f](const std::vector<Node>& p) { return f(p[0], graph::Loc::current()); },
          {Uniform({2, 3}, lo, hi, 11)}};
}

GradCase Binary(OpType op, const std::string& name, Node (*f)(Node, Node, graph::Loc), std::vector<int64_t> a_dims,
                std::vector<int64_t> b_dims, double lo, double hi, double b_lo, double b_hi) {
  return {op, name, [f](const std::vector<Node>& p) { return f(p[0], p[1], graph::Loc::current()); },
          {Uniform(std::move(a_dims), lo, hi, 21), Uniform(std::move(b_dims), b_lo, b_hi, 22)}};
}

}  // namespace

std::vector<GradCase> ElementwiseGradCases() {
  std::vector<GradCase> cases = {
      Unary(OpType::kAbs, "Abs", graph::Abs, -3, 3),
      Unary(OpType::kNeg, "Neg", graph::Neg, -3, 3),
      Unary(OpType::kSign, "Sign (zero almost everywhere)", graph::Sign, -3, 3),
      Unary(OpType::kCeil, "Ceil (zero almost everywhere)", graph::Ceil, -3, 3),
      Unary(OpType::kFloor, "Floor (zero almost everywhere)", graph::Floor, -3, 3),
      Unary(OpType::kRound, "Round (zero almost everywhere)", graph::Round, -3, 3),
      Unary(OpType::kExp, "Exp", graph::Exp, -3, 3),
      Unary(OpType::kExpm1, "Expm1", graph::Expm1, -3, 3),
      Unary(OpType::kLog, "Log", graph::Log, 0.2, 3),
      Unary(OpType::kLog1p, "Log1p", graph::Log1p, -0.8, 3),
      Unary(OpType::kLogistic, "Logistic", graph::Logistic, -5, 5),
      Unary(OpType::kSin, "Sin", graph::Sin, -4, 4),
      Unary(OpType::kCos, "Cos", graph::Cos, -4, 4),
      Unary(OpType::kTanh, "Tanh", graph::Tanh, -3, 3),
      Unary(OpType::kSqrt, "Sqrt", graph::Sqrt, 0.2, 3),
      Unary(OpType::kRsqrt, "Rsqrt", graph::Rsqrt, 0.2, 3),
      Unary(OpType::kErf, "Erf", graph::Erf, -2, 2),
      Binary(OpType::kAdd, "Add", graph::Add, {2, 3}, {2, 3}, -3, 3, -3, 3),
      Binary(OpType::kAdd, "Add broadcasting [2,1,3] + [4,1]", graph::Add, {2, 1, 3}, {4, 1}, -3, 3, -3, 3),
      Binary(OpType::kSub, "Sub broadcasting [3] - [2,3]", graph::Sub, {3}, {2, 3}, -3, 3, -3, 3),
      Binary(OpType::kMul, "Mul broadcasting [2,3] * []", graph::Mul, {2, 3}, {}, -3, 3, -3, 3),
      Binary(OpType::kDiv, "Div", graph::Div, {2, 3}, {2, 3}, -3, 3, 0.5, 3),
      Binary(OpType::kRem, "Rem", graph::Rem, {2, 3}, {2, 3}, 5, 9, 1.2, 1.9),
      Binary(OpType::kPow, "Pow", graph::Pow, {2, 3}, {2, 3}, 0.5, 2, -2, 2),
      Binary(OpType::kMax, "Max", graph::Max, {2, 3}, {2, 3}, -3, 3, -3, 3),
      Binary(OpType::kMin, "Min", graph::Min, {2, 3}, {2, 3}, -3, 3, -3, 3),
      Binary(OpType::kAtan2, "Atan2", graph::Atan2, {2, 3}, {2, 3}, -3, 3, -3, 3),
  };
  // Pow at 0: d/da 0^2 = 0, d/da a^0 = 0 (not NaN), d/db 0^b = 0.
  cases.push_back({OpType::kPow, "Pow at 0",
                   [](const std::vector<Node>& p) { return graph::Pow(p[0], p[1]); },
                   {tensors::FromValue(std::vector<double>{0, 0, 2, 0}), tensors::FromValue(std::vector<double>{2, 0, 0, 3})}});
  // Max/Min ties split the gradient evenly, matching the central difference.
  cases.push_back({OpType::kMax, "Max ties",
                   [](const std::vector<Node>& p) { return graph::Max(p[0], p[1]); },
                   {tensors::FromValue(std::vector<double>{1, 2, 3}), tensors::FromValue(std::vector<double>{1, 0, 3})}});
  cases.push_back({OpType::kMin, "Min ties",
                   [](const std::vector<Node>& p) { return graph::Min(p[0], p[1]); },
                   {tensors::FromValue(std::vector<double>{1, 2, 3}), tensors::FromValue(std::vector<double>{1, 0, 3})}});
  cases.push_back({OpType::kWhere, "Where",
                   [](const std::vector<Node>& p) {
                     Node cond = graph::Const(p[0].Graph(), std::vector<std::vector<bool>>{{true, false, true}, {false, false, true}});
                     return graph::Where(cond, p[0], p[1]);
                   },
                   {Uniform({2, 3}, -3, 3, 31), Uniform({3}, -3, 3, 32)}});
  cases.push_back({OpType::kClamp, "Clamp with scalar and tensor bounds",
                   [](const std::vector<Node>& p) { return graph::Clamp(p[0], p[1], p[2]); },
                   {tensors::FromValue(-1.0), Uniform({2, 3}, -3, 3, 41), Uniform({3}, 1, 2, 42)}});
  cases.push_back({OpType::kConvertDType, "ConvertDType Float64 -> Float32 -> Float64",
                   [](const std::vector<Node>& p) {
                     Node f32 = graph::ConvertDType(p[0], dtypes::Float32);
                     return graph::ConvertDType(graph::Mul(f32, graph::ScalarLike(f32, 3)), dtypes::Float64);
                   },
                   {Uniform({4}, -3, 3, 51)},
                   {.epsilon = 1e-2, .rtol = 1e-5, .atol = 1e-5}});
  return cases;
}

const std::vector<NonDifferentiable>& NonDifferentiableOps() {
  static const std::vector<NonDifferentiable> ops = {
      {OpType::kParameter, "an input: gradients are taken with respect to it"},
      {OpType::kConstant, "a constant"},
      {OpType::kIota, "integer-valued, no inputs"},
      {OpType::kIsFinite, "Bool result"},
      {OpType::kIsNaN, "Bool result"},
      {OpType::kBitCount, "integer op"},
      {OpType::kClz, "integer op"},
      {OpType::kBitwiseNot, "integer op"},
      {OpType::kLogicalNot, "Bool op"},
      {OpType::kBitwiseAnd, "integer op"},
      {OpType::kBitwiseOr, "integer op"},
      {OpType::kBitwiseXor, "integer op"},
      {OpType::kLogicalAnd, "Bool op"},
      {OpType::kLogicalOr, "Bool op"},
      {OpType::kLogicalXor, "Bool op"},
      {OpType::kShiftLeft, "integer op"},
      {OpType::kShiftRightArithmetic, "integer op"},
      {OpType::kShiftRightLogical, "integer op"},
      {OpType::kEqual, "Bool result"},
      {OpType::kNotEqual, "Bool result"},
      {OpType::kGreaterThan, "Bool result"},
      {OpType::kGreaterOrEqual, "Bool result"},
      {OpType::kLessThan, "Bool result"},
      {OpType::kLessOrEqual, "Bool result"},
      {OpType::kBitcast, "reinterprets bits: not a continuous function of its input"},
      {OpType::kReduceLogicalAnd, "Bool op"},
      {OpType::kReduceLogicalOr, "Bool op"},
      {OpType::kReduceLogicalXor, "Bool op"},
      {OpType::kReduceBitwiseAnd, "integer op"},
      {OpType::kReduceBitwiseOr, "integer op"},
      {OpType::kReduceBitwiseXor, "integer op"},
      {OpType::kArgMinMax, "integer (index) result"},
      {OpType::kRNGBitGenerator, "random integer bits"},
  };
  return ops;
}

}  // namespace kiln::testing
