// Copyright 2026 The Kiln Authors.
// ONNX elementwise operators: math, activations, comparisons, logic, Cast.
// Binary operators broadcast numpy-style (ONNX's multidirectional rule),
// which Kiln's binary ops already do.
#include <cmath>

#include "kiln/graph/ops.h"
#include "src/onnx/converter.h"

namespace kiln::onnx::internal {
namespace {

using graph::Node;

Node S(Node x, double v) { return graph::ScalarLike(x, v); }

void Unary(const std::string& name, std::function<Node(Node)> fn) {
  RegisterOp(name, [fn](OpContext& c) -> std::vector<Out> { return {fn(c.In(0))}; });
}

void Binary(const std::string& name, std::function<Node(Node, Node)> fn) {
  RegisterOp(name, [fn](OpContext& c) -> std::vector<Out> {
    const bool legacy_broadcast = c.Int("broadcast", 0) != 0;
    const bool has_axis = c.HasAttr("axis");
    if (legacy_broadcast && has_axis) {
      // Opset < 7: b is broadcast from `axis` on; align it on the right.
      Node a = c.In(0), b = c.In(1);
      const int axis = NormAxis(c, c.Int("axis", 0), a.Rank());
      const int trailing = a.Rank() - axis - b.Rank();
      if (trailing > 0) {
        std::vector<int> axes;
        for (int k = 0; k < trailing; ++k) axes.push_back(b.Rank() + k);
        b = graph::ExpandAxes(b, axes);
      }
      return {fn(a, b)};
    }
    if (c.DTypeOf(0) != c.DTypeOf(1)) {
      c.Fail("operands must have one type, got " + c.ShapeOf(0).ToString() + " and " + c.ShapeOf(1).ToString());
    }
    return {fn(c.In(0), c.In(1))};
  });
}

// Variadic Sum/Mean/Max/Min: broadcast all inputs together.
void Variadic(const std::string& name, std::function<Node(Node, Node)> fn, bool mean = false) {
  RegisterOp(name, [fn, mean](OpContext& c) -> std::vector<Out> {
    Node acc = c.In(0);
    int n = 1;
    for (int i = 1; i < c.NumInputs(); ++i) {
      if (!c.Has(i)) continue;
      acc = fn(acc, c.In(i));
      ++n;
    }
    if (mean) acc = acc / S(acc, n);
    return {acc};
  });
}

constexpr double kLn2 = 0.69314718055994530942;

// Above this |x|, log(2|x|) is asinh/acosh to the dtype's precision (the
// neglected term is 1 / (4 x^2)).
double LargeArgument(Node x) { return x.DType() == dtypes::Float64 ? 1e8 : 1e4; }

// fn computed in Float32 for Float16/BFloat16 inputs (and cast back).
std::function<Node(Node)> InFloat32(std::function<Node(Node)> fn) {
  return [fn](Node x) {
    if (!dtypes::IsHalf(x.DType())) return fn(x);
    return graph::ConvertDType(fn(graph::ConvertDType(x, dtypes::Float32)), x.DType());
  };
}

dtypes::DType CastTarget(const OpContext& c, int64_t to) {
  const dtypes::DType d = DTypeFromOnnx(static_cast<int32_t>(to));
  if (d == dtypes::Invalid) c.Fail("casting to " + OnnxTypeName(static_cast<int32_t>(to)) + " is not supported");
  return d;
}

Node CastTo(Node x, dtypes::DType d) { return x.DType() == d ? x : graph::ConvertDType(x, d); }

}  // namespace

void RegisterElementwiseOps() {
  using namespace graph;  // NOLINT: the op names read as ONNX's
  Unary("Identity", [](Node x) { return x; });
  Unary("Abs", [](Node x) { return Abs(x); });
  Unary("Neg", [](Node x) { return Neg(x); });
  Unary("Sign", [](Node x) { return Sign(x); });
  Unary("Ceil", [](Node x) { return Ceil(x); });
  Unary("Floor", [](Node x) { return Floor(x); });
  Unary("Round", [](Node x) { return Round(x); });
  Unary("Exp", [](Node x) { return Exp(x); });
  Unary("Log", [](Node x) { return Log(x); });
  Unary("Sin", [](Node x) { return Sin(x); });
  Unary("Cos", [](Node x) { return Cos(x); });
  Unary("Tan", [](Node x) { return Sin(x) / Cos(x); });
  Unary("Atan", [](Node x) { return Atan2(x, OnesLike(x)); });
  Unary("Asin", [](Node x) { return Atan2(x, Sqrt(S(x, 1) - x * x)); });
  Unary("Acos", [](Node x) { return Atan2(Sqrt(S(x, 1) - x * x), x); });
  // The hyperbolic functions in forms that overflow only where the result
  // does (e^|x| / 2 rather than e^x, log(2a) rather than a^2 for large a),
  // computed in Float32 for the half types.
  Unary("Sinh", InFloat32([](Node x) {
    Node a = Abs(x);
    Node big = Sign(x) * (Exp(a - S(x, kLn2)) - S(x, 0.5) * Exp(-a));
    return Where(LessThan(a, OnesLike(a)), (Expm1(x) - Expm1(-x)) * S(x, 0.5), big);
  }));
  Unary("Cosh", InFloat32([](Node x) {
    Node a = Abs(x);
    return Exp(a - S(x, kLn2)) + S(x, 0.5) * Exp(-a);
  }));
  Unary("Asinh", InFloat32([](Node x) {
    Node a = Abs(x);
    Node small = Log1p(a + a * a / (S(x, 1) + Sqrt(S(x, 1) + a * a)));
    return Sign(x) * Where(GreaterThan(a, S(a, LargeArgument(x))), Log(a) + S(a, kLn2), small);
  }));
  Unary("Acosh", InFloat32([](Node x) {
    return Where(GreaterThan(x, S(x, LargeArgument(x))), Log(x) + S(x, kLn2), Log(x + Sqrt(x * x - S(x, 1))));
  }));
  Unary("Atanh", [](Node x) { return S(x, 0.5) * (Log1p(x) - Log1p(-x)); });
  Unary("Tanh", [](Node x) { return Tanh(x); });
  Unary("Sqrt", [](Node x) { return Sqrt(x); });
  Unary("Reciprocal", [](Node x) { return Reciprocal(x); });
  Unary("Relu", [](Node x) { return Max(x, ZerosLike(x)); });
  Unary("Sigmoid", [](Node x) { return Logistic(x); });
  Unary("Erf", [](Node x) { return Erf(x); });
  Unary("IsNaN", [](Node x) { return IsNaN(x); });
  Unary("Not", [](Node x) { return LogicalNot(x); });
  Unary("BitwiseNot", [](Node x) { return BitwiseNot(x); });
  Unary("Softplus", [](Node x) { return Max(x, ZerosLike(x)) + Log1p(Exp(-Abs(x))); });
  Unary("Softsign", [](Node x) { return x / (S(x, 1) + Abs(x)); });
  Unary("HardSwish", [](Node x) { return x * Max(ZerosLike(x), Min(OnesLike(x), x / S(x, 6) + S(x, 0.5))); });
  Unary("Mish", [](Node x) { return x * Tanh(Max(x, ZerosLike(x)) + Log1p(Exp(-Abs(x)))); });

  RegisterOp("IsInf", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const bool neg = c.Int("detect_negative", 1) != 0, pos = c.Int("detect_positive", 1) != 0;
    Node inf = LogicalAnd(LogicalNot(IsFinite(x)), LogicalNot(IsNaN(x)));
    if (neg && pos) return {inf};
    if (!neg && !pos) return {LogicalAnd(inf, LogicalNot(inf))};  // all false
    return {LogicalAnd(inf, pos ? GreaterThan(x, ZerosLike(x)) : LessThan(x, ZerosLike(x)))};
  });
  RegisterOp("Elu", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    return {Where(LessThan(x, ZerosLike(x)), S(x, c.Float("alpha", 1.0f)) * Expm1(x), x)};
  });
  RegisterOp("Selu", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const double alpha = c.Float("alpha", 1.67326319217681884765625f);
    const double gamma = c.Float("gamma", 1.05070102214813232421875f);
    return {S(x, gamma) * Where(GreaterThan(x, ZerosLike(x)), x, S(x, alpha) * Expm1(x))};
  });
  RegisterOp("Celu", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const double alpha = c.Float("alpha", 1.0f);
    return {Max(x, ZerosLike(x)) + Min(ZerosLike(x), S(x, alpha) * Expm1(x / S(x, alpha)))};
  });
  RegisterOp("LeakyRelu", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    return {Where(LessThan(x, ZerosLike(x)), S(x, c.Float("alpha", 0.01f)) * x, x)};
  });
  RegisterOp("ThresholdedRelu", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    return {Where(GreaterThan(x, S(x, c.Float("alpha", 1.0f))), x, ZerosLike(x))};
  });
  RegisterOp("HardSigmoid", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    Node y = S(x, c.Float("alpha", 0.2f)) * x + S(x, c.Float("beta", 0.5f));
    return {Max(ZerosLike(x), Min(OnesLike(x), y))};
  });
  RegisterOp("Shrink", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const double bias = c.Float("bias", 0.0f), lambd = c.Float("lambd", 0.5f);
    Node xd = dtypes::IsFloat(x.DType()) ? x : ConvertDType(x, dtypes::Float64);
    Node y = Where(LessThan(xd, S(xd, -lambd)), xd + S(xd, bias),
                   Where(GreaterThan(xd, S(xd, lambd)), xd - S(xd, bias), ZerosLike(xd)));
    return {CastTo(y, x.DType())};
  });
  RegisterOp("PRelu", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), slope = c.In(1);
    if (c.Opset() < 7 && slope.Rank() == 1 && x.Rank() >= 2 && slope.Shape().Dim(0) == x.Shape().Dim(1)) {
      std::vector<int> axes;
      for (int k = 1; k < x.Rank() - 1; ++k) axes.push_back(k);
      slope = ExpandAxes(slope, axes);  // per channel
    }
    Node y = Where(LessThan(x, ZerosLike(x)), slope * x, x);
    if (y.Shape() != x.Shape()) c.Fail("slope " + slope.Shape().ToString() + " does not broadcast to " + x.Shape().ToString());
    return {y};
  });

  Binary("Add", [](Node a, Node b) { return Add(a, b); });
  Binary("Sub", [](Node a, Node b) { return Sub(a, b); });
  Binary("Mul", [](Node a, Node b) { return Mul(a, b); });
  Binary("Div", [](Node a, Node b) { return Div(a, b); });
  Binary("And", [](Node a, Node b) { return LogicalAnd(a, b); });
  Binary("Or", [](Node a, Node b) { return LogicalOr(a, b); });
  Binary("Xor", [](Node a, Node b) { return LogicalXor(a, b); });
  Binary("BitwiseAnd", [](Node a, Node b) { return BitwiseAnd(a, b); });
  Binary("BitwiseOr", [](Node a, Node b) { return BitwiseOr(a, b); });
  Binary("BitwiseXor", [](Node a, Node b) { return BitwiseXor(a, b); });
  Binary("Equal", [](Node a, Node b) { return Equal(a, b); });
  Binary("Less", [](Node a, Node b) { return LessThan(a, b); });
  Binary("Greater", [](Node a, Node b) { return GreaterThan(a, b); });
  Binary("LessOrEqual", [](Node a, Node b) { return LessOrEqual(a, b); });
  Binary("GreaterOrEqual", [](Node a, Node b) { return GreaterOrEqual(a, b); });
  Variadic("Sum", [](Node a, Node b) { return Add(a, b); });
  Variadic("Mean", [](Node a, Node b) { return Add(a, b); }, /*mean=*/true);
  Variadic("Max", [](Node a, Node b) { return Max(a, b); });
  Variadic("Min", [](Node a, Node b) { return Min(a, b); });

  RegisterOp("Pow", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), y = c.In(1);
    if (c.Int("broadcast", 0) != 0 && c.HasAttr("axis")) {  // opset < 7: y aligned from `axis`
      const int axis = NormAxis(c, c.Int("axis", 0), x.Rank());
      std::vector<int> axes;
      for (int k = 0; k < x.Rank() - axis - y.Rank(); ++k) axes.push_back(y.Rank() + k);
      if (!axes.empty()) y = ExpandAxes(y, axes);
    }
    if (x.DType() == y.DType()) return {Pow(x, y)};
    if (dtypes::IsFloat(x.DType())) return {Pow(x, ConvertDType(y, x.DType()))};
    // An integer base with another exponent type: computed in double, as
    // ONNX's reference (numpy) does, then cast back.
    return {ConvertDType(Pow(ConvertDType(x, dtypes::Float64), ConvertDType(y, dtypes::Float64)), x.DType())};
  });
  RegisterOp("Mod", [](OpContext& c) -> std::vector<Out> {
    Node a = c.In(0), b = c.In(1);
    if (a.DType() != b.DType()) c.Fail("operands must have one type");
    const bool fmod = c.Int("fmod", 0) != 0;
    if (!fmod && dtypes::IsFloat(a.DType())) c.Fail("fmod=0 is not defined for floats");
    Node r = Rem(a, b);
    if (fmod || dtypes::IsUnsignedInteger(a.DType())) return {r};
    // Python's %: the result takes the divisor's sign.
    Node zero = ZerosLike(r);
    Node fix = LogicalAnd(NotEqual(r, zero), NotEqual(LessThan(r, zero), LessThan(b, ZerosLike(b))));
    return {Where(fix, r + b, r)};
  });
  RegisterOp("BitShift", [](OpContext& c) -> std::vector<Out> {
    const std::string dir = c.Str("direction", "");
    if (dir == "LEFT") return {ShiftLeft(c.In(0), c.In(1))};
    if (dir == "RIGHT") return {ShiftRightLogical(c.In(0), c.In(1))};
    c.Fail("direction must be LEFT or RIGHT, got \"" + dir + "\"");
  });
  RegisterOp("Where", [](OpContext& c) -> std::vector<Out> { return {Where(c.In(0), c.In(1), c.In(2))}; });
  RegisterOp("Clip", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    Node lo, hi;
    if (c.Opset() < 11) {
      if (c.HasAttr("min")) lo = S(x, c.Float("min", 0));
      if (c.HasAttr("max")) hi = S(x, c.Float("max", 0));
    } else {
      lo = c.InOr(1);
      hi = c.InOr(2);
    }
    if (lo.Ok()) x = Max(x, lo);
    if (hi.Ok()) x = Min(x, hi);
    return {x};
  });
  RegisterOp("Cast", [](OpContext& c) -> std::vector<Out> {
    const auto* to = c.Attr("to");
    if (to && to->type() == ::onnx::AttributeProto::STRING) {  // opsets 1-5: the type's name, "FLOAT"
      ::onnx::TensorProto_DataType value{};
      if (!::onnx::TensorProto_DataType_Parse(to->s(), &value)) c.Fail("unknown type \"" + to->s() + "\"");
      return {CastTo(c.In(0), CastTarget(c, value))};
    }
    return {CastTo(c.In(0), CastTarget(c, c.Int("to", 0)))};
  });
  RegisterOp("CastLike", [](OpContext& c) -> std::vector<Out> { return {CastTo(c.In(0), c.DTypeOf(1))}; });
}

}  // namespace kiln::onnx::internal
