// Copyright 2026 The Kiln Authors.
// Conformance tests of the elementwise ops (unary, binary, comparisons, Where,
// Clamp, ConvertDType) on every backend: each op against a naive reference
// computed in double (with the specified integer semantics written out
// independently of the kernels), on random inputs of every accepted dtype and
// the TestShapes, plus explicit edge cases and the graph-level error messages.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

#include "tests/testing/testing.h"

namespace kiln {
namespace {

using dtypes::DType;
using ir::OpType;
using graph::Node;
using tensors::Tensor;

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const std::vector<DType> kFloats = {dtypes::Float16, dtypes::BFloat16, dtypes::Float32, dtypes::Float64};
const std::vector<DType> kInts = {dtypes::Int8,  dtypes::Int16,  dtypes::Int32,  dtypes::Int64,
                                  dtypes::Uint8, dtypes::Uint16, dtypes::Uint32, dtypes::Uint64};
const std::vector<DType> kSignedInts = {dtypes::Int8, dtypes::Int16, dtypes::Int32, dtypes::Int64};
const std::vector<DType> kBool = {dtypes::Bool};

std::vector<DType> Concat(std::vector<DType> a, const std::vector<DType>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}
const std::vector<DType> kNumeric = Concat(kFloats, kInts);
// The real dtypes (Where and ConvertDType on complex values: complex_test.cc).
const std::vector<DType> kAllDTypes = [] {
  std::vector<DType> out;
  for (DType dt : dtypes::kAll) {
    if (!dtypes::IsComplex(dt)) out.push_back(dt);
  }
  return out;
}();

// The dtypes an op accepts, from the op table (ir::DTypeClassOf), in
// dtypes::kAll's order: the same source as the graph layer's checks and the
// kernels' dispatch, so the three cannot drift apart.
// Real dtypes only: the complex ones, where an op takes them, are checked
// against std::complex in tests/graph/complex_test.cc.
std::vector<DType> Accepted(ir::OpType op) {
  std::vector<DType> out;
  for (DType dt : dtypes::kAll) {
    if (ir::Accepts(ir::DTypeClassOf(op), dt) && !dtypes::IsComplex(dt)) out.push_back(dt);
  }
  return out;
}

// --------------------------------------- Integer reference helpers (naive).

int Width(DType dt) { return static_cast<int>(8 * dtypes::SizeOf(dt)); }

uint64_t Mask(DType dt) { return Width(dt) == 64 ? ~uint64_t{0} : (uint64_t{1} << Width(dt)) - 1; }

double MinOf(DType dt) { return dtypes::IsSignedInteger(dt) ? -std::ldexp(1, Width(dt) - 1) : 0; }

double MaxOf(DType dt) {
  return dtypes::IsSignedInteger(dt) ? std::ldexp(1, Width(dt) - 1) - 1 : std::ldexp(1, Width(dt)) - 1;
}

// The two's complement bits of integer value v, truncated to dt's width.
uint64_t ToBits(DType dt, double v) {
  const uint64_t bits = v >= 0x1p63 ? static_cast<uint64_t>(v) : static_cast<uint64_t>(static_cast<int64_t>(v));
  return bits & Mask(dt);
}

// The bits read as a w-bit signed integer.
double SignedView(DType dt, uint64_t bits) {
  bits &= Mask(dt);
  const bool negative = (bits >> (Width(dt) - 1)) & 1;
  return negative ? static_cast<double>(static_cast<int64_t>(bits | ~Mask(dt))) : static_cast<double>(bits);
}

// The value of dt whose bits are `bits`.
double FromBits(DType dt, uint64_t bits) {
  return dtypes::IsSignedInteger(dt) ? SignedView(dt, bits) : static_cast<double>(bits & Mask(dt));
}

// An exact integer result wrapped into dt (two's complement).
double WrapTo(DType dt, double v) { return FromBits(dt, ToBits(dt, v)); }

bool IsInt(DType dt) { return dtypes::IsInteger(dt); }

// ------------------------------------------------------- Op references.

double RefSign(double v) { return v > 0 ? 1 : (v < 0 ? -1 : v); }

double RefClz(DType dt, double v) {
  const uint64_t bits = ToBits(dt, v);
  int n = 0;
  for (int k = Width(dt) - 1; k >= 0 && !((bits >> k) & 1); --k) ++n;
  return n;
}

double RefBitCount(DType dt, double v) {
  const uint64_t bits = ToBits(dt, v);
  int n = 0;
  for (int k = 0; k < Width(dt); ++k) n += (bits >> k) & 1;
  return n;
}

double RefDiv(DType dt, double a, double b) {
  if (!IsInt(dt)) return a / b;
  if (b == 0) return dtypes::IsSignedInteger(dt) ? -1 : MaxOf(dt);
  if (a == MinOf(dt) && b == -1) return a;
  return std::trunc(a / b);
}

double RefRem(DType dt, double a, double b) {
  if (IsInt(dt) && b == 0) return a;
  return std::fmod(a, b) + 0.0;  // + 0.0: -0 -> 0 (INT_MIN % -1)
}

double RefPow(DType dt, double a, double b) {
  if (!IsInt(dt)) return std::pow(a, b);
  if (b < 0) return a == 1 ? 1 : (a == -1 ? (std::fmod(b, 2) == 0 ? 1 : -1) : 0);
  double r = 1;
  for (int i = 0; i < b; ++i) r = WrapTo(dt, r * a);
  return r;
}

double RefMax(double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::max(a, b); }
double RefMin(double a, double b) { return std::isnan(a) || std::isnan(b) ? kNaN : std::min(a, b); }

bool ShiftOutOfRange(DType dt, double amount) { return amount < 0 || amount >= Width(dt); }

double RefShiftLeft(DType dt, double a, double b) {
  return ShiftOutOfRange(dt, b) ? 0 : FromBits(dt, ToBits(dt, a) << static_cast<int>(b));
}

double RefShiftRightLogical(DType dt, double a, double b) {
  return ShiftOutOfRange(dt, b) ? 0 : FromBits(dt, ToBits(dt, a) >> static_cast<int>(b));
}

double RefShiftRightArithmetic(DType dt, double a, double b) {
  const double s = SignedView(dt, ToBits(dt, a));  // the top bit is the sign, unsigned types too
  const double shifted = ShiftOutOfRange(dt, b) ? (s < 0 ? -1 : 0) : std::floor(s / std::ldexp(1, static_cast<int>(b)));
  return WrapTo(dt, shifted);
}

double RefBitwise(DType dt, double a, double b, char op) {
  const uint64_t x = ToBits(dt, a), y = ToBits(dt, b);
  return FromBits(dt, op == '&' ? (x & y) : op == '|' ? (x | y) : (x ^ y));
}

double RefLogistic(double x) { return 1 / (1 + std::exp(-x)); }

// -------------------------------------------------------------- Tables.

struct UnaryCase {
  std::string name;
  std::function<Node(Node)> op;
  std::vector<DType> dtypes;
  double lo, hi;  // range of the random inputs
  std::function<double(DType, double)> ref;
  bool bool_output = false;
};

std::vector<UnaryCase> UnaryCases() {
  auto f = [](double (*fn)(double)) { return [fn](DType, double x) { return fn(x); }; };
  return {
      {"Abs", [](Node x) { return graph::Abs(x); }, Accepted(OpType::kAbs), -200, 200,
       [](DType dt, double x) { return IsInt(dt) ? WrapTo(dt, std::abs(x)) : std::abs(x); }},
      {"Neg", [](Node x) { return graph::Neg(x); }, Accepted(OpType::kNeg), -200, 200,
       [](DType dt, double x) { return IsInt(dt) ? WrapTo(dt, -x) : -x; }},
      {"Sign", [](Node x) { return graph::Sign(x); }, Accepted(OpType::kSign), -3, 3, [](DType, double x) { return RefSign(x); }},
      {"Ceil", [](Node x) { return graph::Ceil(x); }, Accepted(OpType::kCeil), -5, 5, f(std::ceil)},
      {"Floor", [](Node x) { return graph::Floor(x); }, Accepted(OpType::kFloor), -5, 5, f(std::floor)},
      {"Round", [](Node x) { return graph::Round(x); }, Accepted(OpType::kRound), -5, 5, f(std::nearbyint)},
      {"Exp", [](Node x) { return graph::Exp(x); }, Accepted(OpType::kExp), -10, 10, f(std::exp)},
      {"Expm1", [](Node x) { return graph::Expm1(x); }, Accepted(OpType::kExpm1), -3, 3, f(std::expm1)},
      {"Log", [](Node x) { return graph::Log(x); }, Accepted(OpType::kLog), 0.001, 100, f(std::log)},
      {"Log1p", [](Node x) { return graph::Log1p(x); }, Accepted(OpType::kLog1p), -0.9, 10, f(std::log1p)},
      {"Logistic", [](Node x) { return graph::Logistic(x); }, Accepted(OpType::kLogistic), -20, 20, f(RefLogistic)},
      {"Sin", [](Node x) { return graph::Sin(x); }, Accepted(OpType::kSin), -3, 3, f(std::sin)},
      {"Cos", [](Node x) { return graph::Cos(x); }, Accepted(OpType::kCos), -3, 3, f(std::cos)},
      {"Tanh", [](Node x) { return graph::Tanh(x); }, Accepted(OpType::kTanh), -5, 5, f(std::tanh)},
      {"Sqrt", [](Node x) { return graph::Sqrt(x); }, Accepted(OpType::kSqrt), 0, 100, f(std::sqrt)},
      {"Rsqrt", [](Node x) { return graph::Rsqrt(x); }, Accepted(OpType::kRsqrt), 0.001, 100,
       [](DType, double x) { return 1 / std::sqrt(x); }},
      {"Erf", [](Node x) { return graph::Erf(x); }, Accepted(OpType::kErf), -4, 4, f(std::erf)},
      {"IsFinite", [](Node x) { return graph::IsFinite(x); }, Accepted(OpType::kIsFinite), -3, 3,
       [](DType, double x) { return static_cast<double>(std::isfinite(x)); }, true},
      {"IsNaN", [](Node x) { return graph::IsNaN(x); }, Accepted(OpType::kIsNaN), -3, 3,
       [](DType, double x) { return static_cast<double>(std::isnan(x)); }, true},
      {"BitCount", [](Node x) { return graph::BitCount(x); }, Accepted(OpType::kBitCount), -1000, 1000, RefBitCount},
      {"Clz", [](Node x) { return graph::Clz(x); }, Accepted(OpType::kClz), -1000, 1000, RefClz},
      {"BitwiseNot", [](Node x) { return graph::BitwiseNot(x); }, Accepted(OpType::kBitwiseNot), -1000, 1000,
       [](DType dt, double x) { return FromBits(dt, ~ToBits(dt, x)); }},
      {"LogicalNot", [](Node x) { return graph::LogicalNot(x); }, Accepted(OpType::kLogicalNot), 0, 1,
       [](DType, double x) { return static_cast<double>(x == 0); }},
  };
}

struct BinaryCase {
  std::string name;
  std::function<Node(Node, Node)> op;
  std::vector<DType> dtypes;
  double lo_a, hi_a, lo_b, hi_b;  // ranges of the random inputs
  std::function<double(DType, double, double)> ref;
  bool comparison = false;
};

std::vector<BinaryCase> BinaryCases() {
  auto wrap = [](double (*fn)(double, double)) {
    return [fn](DType dt, double a, double b) { return IsInt(dt) ? WrapTo(dt, fn(a, b)) : fn(a, b); };
  };
  auto cmp = [](bool (*fn)(double, double)) { return [fn](DType, double a, double b) { return static_cast<double>(fn(a, b)); }; };
  return {
      {"Add", [](Node a, Node b) { return graph::Add(a, b); }, Accepted(OpType::kAdd), -200, 200, -200, 200,
       wrap([](double a, double b) { return a + b; })},
      {"Sub", [](Node a, Node b) { return graph::Sub(a, b); }, Accepted(OpType::kSub), -200, 200, -200, 200,
       wrap([](double a, double b) { return a - b; })},
      {"Mul", [](Node a, Node b) { return graph::Mul(a, b); }, Accepted(OpType::kMul), -200, 200, -200, 200,
       wrap([](double a, double b) { return a * b; })},
      {"Div", [](Node a, Node b) { return graph::Div(a, b); }, Accepted(OpType::kDiv), -200, 200, -5, 5, RefDiv},
      {"Rem", [](Node a, Node b) { return graph::Rem(a, b); }, Accepted(OpType::kRem), -200, 200, -5, 5, RefRem},
      {"PowInt", [](Node a, Node b) { return graph::Pow(a, b); }, kInts, -6, 6, -2, 7, RefPow},
      {"PowFloat", [](Node a, Node b) { return graph::Pow(a, b); }, kFloats, 0.1, 3, -3, 3, RefPow},
      {"Max", [](Node a, Node b) { return graph::Max(a, b); }, Accepted(OpType::kMax), -100, 100, -100, 100,
       [](DType, double a, double b) { return RefMax(a, b); }},
      {"Min", [](Node a, Node b) { return graph::Min(a, b); }, Accepted(OpType::kMin), -100, 100, -100, 100,
       [](DType, double a, double b) { return RefMin(a, b); }},
      {"Atan2", [](Node a, Node b) { return graph::Atan2(a, b); }, Accepted(OpType::kAtan2), -3, 3, -3, 3,
       [](DType, double a, double b) { return std::atan2(a, b); }},
      {"BitwiseAnd", [](Node a, Node b) { return graph::BitwiseAnd(a, b); }, Accepted(OpType::kBitwiseAnd), -1000, 1000, -1000, 1000,
       [](DType dt, double a, double b) { return RefBitwise(dt, a, b, '&'); }},
      {"BitwiseOr", [](Node a, Node b) { return graph::BitwiseOr(a, b); }, Accepted(OpType::kBitwiseOr), -1000, 1000, -1000, 1000,
       [](DType dt, double a, double b) { return RefBitwise(dt, a, b, '|'); }},
      {"BitwiseXor", [](Node a, Node b) { return graph::BitwiseXor(a, b); }, Accepted(OpType::kBitwiseXor), -1000, 1000, -1000, 1000,
       [](DType dt, double a, double b) { return RefBitwise(dt, a, b, '^'); }},
      {"LogicalAnd", [](Node a, Node b) { return graph::LogicalAnd(a, b); }, Accepted(OpType::kLogicalAnd), 0, 1, 0, 1,
       [](DType, double a, double b) { return static_cast<double>(a != 0 && b != 0); }},
      {"LogicalOr", [](Node a, Node b) { return graph::LogicalOr(a, b); }, Accepted(OpType::kLogicalOr), 0, 1, 0, 1,
       [](DType, double a, double b) { return static_cast<double>(a != 0 || b != 0); }},
      {"LogicalXor", [](Node a, Node b) { return graph::LogicalXor(a, b); }, Accepted(OpType::kLogicalXor), 0, 1, 0, 1,
       [](DType, double a, double b) { return static_cast<double>((a != 0) != (b != 0)); }},
      {"ShiftLeft", [](Node a, Node b) { return graph::ShiftLeft(a, b); }, Accepted(OpType::kShiftLeft), -1000, 1000, -2, 10,
       RefShiftLeft},
      {"ShiftRightArithmetic", [](Node a, Node b) { return graph::ShiftRightArithmetic(a, b); }, Accepted(OpType::kShiftRightArithmetic), -1000,
       1000, -2, 10, RefShiftRightArithmetic},
      {"ShiftRightLogical", [](Node a, Node b) { return graph::ShiftRightLogical(a, b); }, Accepted(OpType::kShiftRightLogical), -1000, 1000, -2,
       10, RefShiftRightLogical},
      {"Equal", [](Node a, Node b) { return graph::Equal(a, b); }, Accepted(OpType::kEqual), -3, 3, -3, 3,
       cmp([](double a, double b) { return a == b; }), true},
      {"NotEqual", [](Node a, Node b) { return graph::NotEqual(a, b); }, Accepted(OpType::kNotEqual), -3, 3, -3, 3,
       cmp([](double a, double b) { return a != b; }), true},
      {"GreaterThan", [](Node a, Node b) { return graph::GreaterThan(a, b); }, Accepted(OpType::kGreaterThan), -3, 3, -3, 3,
       cmp([](double a, double b) { return a > b; }), true},
      {"GreaterOrEqual", [](Node a, Node b) { return graph::GreaterOrEqual(a, b); }, Accepted(OpType::kGreaterOrEqual), -3, 3, -3, 3,
       cmp([](double a, double b) { return a >= b; }), true},
      {"LessThan", [](Node a, Node b) { return graph::LessThan(a, b); }, Accepted(OpType::kLessThan), -3, 3, -3, 3,
       cmp([](double a, double b) { return a < b; }), true},
      {"LessOrEqual", [](Node a, Node b) { return graph::LessOrEqual(a, b); }, Accepted(OpType::kLessOrEqual), -3, 3, -3, 3,
       cmp([](double a, double b) { return a <= b; }), true},
  };
}

// Special float inputs appended to the random ones: Inf, NaN, signed zeros,
// large arguments (overflow, and beyond Highway's valid ranges), tiny ones.
const std::vector<double> kSpecials = {kNaN, kInf, -kInf, 0.0,   -0.0, 1e-6,  -1e-6, 0.5,    -0.5,  1,
                                       -1,   2.5,  -2.5,  30,    -30,  1000,  -1000, 50000, -50000, 3.75};

// Values of `b` with every third element replaced by a's (for comparisons: ties).
Tensor WithTies(const Tensor& a, const Tensor& b) {
  std::vector<double> av = testing::ToDoubles(a), bv = testing::ToDoubles(b);
  for (size_t i = 0; i < bv.size(); i += 3) bv[i] = av[i];
  return testing::FromDoubles(b.Shape(), bv);
}

// Row-major values of `from` broadcast numpy-style to `to` dims.
std::vector<double> BroadcastValues(const std::vector<double>& values, const std::vector<int64_t>& from,
                                    const std::vector<int64_t>& to) {
  const int64_t total = testing::NumElements(to);
  std::vector<double> out(static_cast<size_t>(total));
  const size_t offset = to.size() - from.size();
  for (int64_t flat = 0; flat < total; ++flat) {
    int64_t rest = flat, src = 0, stride = 1;
    for (size_t axis = to.size(); axis-- > 0;) {
      const int64_t index = rest % to[axis];
      rest /= to[axis];
      if (axis >= offset) {
        const int64_t dim = from[axis - offset];
        src += (dim == 1 ? 0 : index) * stride;
        stride *= dim;
      }
    }
    out[static_cast<size_t>(flat)] = values[static_cast<size_t>(src)];
  }
  return out;
}

// Whether `got` has `shape` and values `want` (rounded to the dtype first when
// it is a float type, so that e.g. exp(1000) is Inf in Float32).
::testing::AssertionResult Matches(const Tensor& got, const shapes::Shape& shape, std::vector<double> want,
                                   double rtol) {
  if (dtypes::IsFloat(shape.DType())) want = testing::ToDoubles(testing::FromDoubles(shape, want));
  return testing::AllClose(got, shape, want, rtol, 0);
}

class ElementwiseTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }

  // Runs a unary case on x and compares with its reference rounded to the dtype.
  void CheckUnary(const UnaryCase& c, const Tensor& x) {
    const DType dt = x.DType();
    Tensor got = testing::Run1(Backend(), [&](const std::vector<Node>& p) { return c.op(p[0]); }, {x});
    std::vector<double> want = testing::ToDoubles(x);
    for (double& v : want) v = c.ref(dt, v);
    const auto out_shape = x.Shape().WithDType(c.bool_output ? dtypes::Bool : dt);
    EXPECT_TRUE(Matches(got, out_shape, want, testing::Tolerance(dt))) << c.name << " of " << x.ToString();
  }

  // Runs a binary case on (a, b) (possibly broadcast) against its reference.
  void CheckBinary(const BinaryCase& c, const Tensor& a, const Tensor& b) {
    const DType dt = a.DType();
    Tensor got = testing::Run1(Backend(), [&](const std::vector<Node>& p) { return c.op(p[0], p[1]); }, {a, b});
    const std::vector<int64_t> dims = got.Shape().Dims();
    const std::vector<double> av = BroadcastValues(testing::ToDoubles(a), a.Shape().Dims(), dims);
    const std::vector<double> bv = BroadcastValues(testing::ToDoubles(b), b.Shape().Dims(), dims);
    std::vector<double> want(av.size());
    for (size_t i = 0; i < want.size(); ++i) want[i] = c.ref(dt, av[i], bv[i]);
    const shapes::Shape out_shape(c.comparison ? dtypes::Bool : dt, dims);
    EXPECT_TRUE(Matches(got, out_shape, want, testing::Tolerance(dt)))
        << c.name << " of " << a.ToString() << " and " << b.ToString();
  }
};

INSTANTIATE_TEST_SUITE_P(Backends, ElementwiseTest, ::testing::ValuesIn(testing::BackendNames()));

TEST_P(ElementwiseTest, UnaryOpsMatchReference) {
  testing::Rng rng(1);
  for (const UnaryCase& c : UnaryCases()) {
    for (DType dt : c.dtypes) {
      for (const shapes::Shape& shape : testing::TestShapes(dt)) CheckUnary(c, testing::Random(shape, rng, c.lo, c.hi));
    }
  }
}

TEST_P(ElementwiseTest, FloatUnaryOpsOnSpecialValues) {
  for (const UnaryCase& c : UnaryCases()) {
    if (c.dtypes != kFloats) continue;
    for (DType dt : kFloats) {
      // Repeated to cover full vectors and a tail.
      std::vector<double> values;
      for (int r = 0; r < 3; ++r) values.insert(values.end(), kSpecials.begin(), kSpecials.end());
      CheckUnary(c, testing::FromDoubles(shapes::Make(dt, static_cast<int64_t>(values.size())), values));
    }
  }
}

TEST_P(ElementwiseTest, BinaryOpsMatchReference) {
  testing::Rng rng(2);
  for (const BinaryCase& c : BinaryCases()) {
    for (DType dt : c.dtypes) {
      for (const shapes::Shape& shape : testing::TestShapes(dt)) {
        Tensor a = testing::Random(shape, rng, c.lo_a, c.hi_a);
        Tensor b = testing::Random(shape, rng, c.lo_b, c.hi_b);
        CheckBinary(c, a, c.comparison ? WithTies(a, b) : b);
      }
    }
  }
}

TEST_P(ElementwiseTest, BinaryOpsBroadcast) {
  testing::Rng rng(3);
  const std::vector<std::pair<std::vector<int64_t>, std::vector<int64_t>>> pairs = {
      {{3, 1}, {1, 4}}, {{}, {2, 3}}, {{2, 3}, {}}, {{4}, {2, 3, 4}}, {{0, 1}, {1, 5}}};
  for (const BinaryCase& c : BinaryCases()) {
    for (DType dt : {c.dtypes.front(), c.dtypes.back()}) {
      for (const auto& [da, db] : pairs) {
        CheckBinary(c, testing::Random(shapes::Make(dt, da), rng, c.lo_a, c.hi_a),
                    testing::Random(shapes::Make(dt, db), rng, c.lo_b, c.hi_b));
      }
    }
  }
}

// ------------------------------------------------------------ Edge cases.

// Runs op on explicit values of dt and compares with explicit expectations
// (exactly, or within `rtol`).
template <typename Fn>
::testing::AssertionResult Check(const std::shared_ptr<backends::Backend>& backend, Fn op,
                                 const std::vector<std::vector<double>>& inputs, DType dt, DType out_dt,
                                 const std::vector<double>& want, double rtol = 0) {
  std::vector<Tensor> args;
  for (const auto& values : inputs) {
    args.push_back(testing::FromDoubles(shapes::Make(dt, static_cast<int64_t>(values.size())), values));
  }
  Tensor got = testing::Run1(backend, op, args);
  return Matches(got, shapes::Make(out_dt, static_cast<int64_t>(want.size())), want, rtol);
}

TEST_P(ElementwiseTest, IntegerDivisionAndRemainderEdgeCases) {
  auto div = [](const std::vector<Node>& p) { return graph::Div(p[0], p[1]); };
  auto rem = [](const std::vector<Node>& p) { return graph::Rem(p[0], p[1]); };
  for (DType dt : kSignedInts) {
    const double min = MinOf(dt);
    const std::vector<double> a = {7, -7, 7, -7, min, min, 5, 0, -5};
    const std::vector<double> b = {2, 2, -2, -2, -1, 1, 0, 0, 0};
    EXPECT_TRUE(Check(Backend(), div, {a, b}, dt, dt, {3, -3, -3, 3, min, min, -1, -1, -1})) << dt;
    EXPECT_TRUE(Check(Backend(), rem, {a, b}, dt, dt, {1, -1, 1, -1, 0, 0, 5, 0, -5})) << dt;
  }
  for (DType dt : {dtypes::Uint8, dtypes::Uint16, dtypes::Uint32, dtypes::Uint64}) {
    const std::vector<double> a = {7, 9, 0, 200};
    const std::vector<double> b = {2, 0, 0, 7};
    EXPECT_TRUE(Check(Backend(), div, {a, b}, dt, dt, {3, MaxOf(dt), MaxOf(dt), 28})) << dt;
    EXPECT_TRUE(Check(Backend(), rem, {a, b}, dt, dt, {1, 9, 0, 4})) << dt;
  }
  // Float division by zero and fmod.
  EXPECT_TRUE(Check(Backend(), div, {{1, -1, 0}, {0, 0, 0}}, dtypes::Float32, dtypes::Float32, {kInf, -kInf, kNaN}));
  EXPECT_TRUE(Check(Backend(), rem, {{5.5, -5.5, 1}, {2, 2, 0}}, dtypes::Float64, dtypes::Float64, {1.5, -1.5, kNaN}));
}

TEST_P(ElementwiseTest, IntegerWraparound) {
  auto abs = [](const std::vector<Node>& p) { return graph::Abs(p[0]); };
  auto neg = [](const std::vector<Node>& p) { return graph::Neg(p[0]); };
  auto mul = [](const std::vector<Node>& p) { return graph::Mul(p[0], p[1]); };
  auto add = [](const std::vector<Node>& p) { return graph::Add(p[0], p[1]); };
  auto pow = [](const std::vector<Node>& p) { return graph::Pow(p[0], p[1]); };
  // (Int64's maximum is not a double; it is checked with int64_t values below.)
  for (DType dt : {dtypes::Int8, dtypes::Int16, dtypes::Int32}) {
    const double min = MinOf(dt), max = MaxOf(dt);
    EXPECT_TRUE(Check(Backend(), abs, {{min, -1, max}}, dt, dt, {min, 1, max})) << dt;
    EXPECT_TRUE(Check(Backend(), neg, {{min, -1, max}}, dt, dt, {min, 1, -max})) << dt;
    EXPECT_TRUE(Check(Backend(), add, {{max, min}, {1, -1}}, dt, dt, {min, max})) << dt;
    EXPECT_TRUE(Check(Backend(), mul, {{max, min}, {2, -1}}, dt, dt, {-2, min})) << dt;
    // 3^(width) wraps; negative exponents: 0 unless the base is +-1.
    EXPECT_TRUE(Check(Backend(), pow, {{2, 1, -1, -1, 2, 0, -2}, {-1, -5, -3, -4, Width(dt) - 1.0, 0, 3}}, dt, dt,
                      {0, 1, -1, 1, min, 1, -8}))
        << dt;
  }
  constexpr int64_t kMin64 = std::numeric_limits<int64_t>::min(), kMax64 = std::numeric_limits<int64_t>::max();
  const auto s64 = shapes::Make(dtypes::Int64, 4);
  Tensor x64 = tensors::FromFlat<int64_t>(s64, {kMin64, kMax64, -1, kMax64});
  Tensor y64 = tensors::FromFlat<int64_t>(s64, {-1, 1, kMin64, 2});
  auto int64s = [](const Tensor& t) {
    auto flat = t.Flat<int64_t>();
    return std::vector<int64_t>(flat.begin(), flat.end());
  };
  EXPECT_EQ(int64s(testing::Run1(Backend(), abs, {x64})), (std::vector<int64_t>{kMin64, kMax64, 1, kMax64}));
  EXPECT_EQ(int64s(testing::Run1(Backend(), neg, {x64})), (std::vector<int64_t>{kMin64, -kMax64, 1, -kMax64}));
  EXPECT_EQ(int64s(testing::Run1(Backend(), add, {x64, y64})), (std::vector<int64_t>{kMax64, kMin64, kMax64, kMin64 + 1}));
  EXPECT_EQ(int64s(testing::Run1(Backend(), mul, {x64, y64})), (std::vector<int64_t>{kMin64, kMax64, kMin64, -2}));
  EXPECT_TRUE(Check(Backend(), neg, {{1, 0}}, dtypes::Uint8, dtypes::Uint8, {255, 0}));
  EXPECT_TRUE(Check(Backend(), mul, {{65535}, {65535}}, dtypes::Uint16, dtypes::Uint16, {1}));
  uint32_t three_to_40 = 1;
  for (int i = 0; i < 40; ++i) three_to_40 *= 3;
  EXPECT_TRUE(Check(Backend(), pow, {{3}, {40}}, dtypes::Uint32, dtypes::Uint32, {static_cast<double>(three_to_40)}));
  EXPECT_TRUE(Check(Backend(), pow, {{3}, {5}}, dtypes::Uint8, dtypes::Uint8, {243}));
  EXPECT_TRUE(Check(Backend(), pow, {{3}, {6}}, dtypes::Uint8, dtypes::Uint8, {729 % 256}));
}

TEST_P(ElementwiseTest, ShiftsOutOfRange) {
  auto shl = [](const std::vector<Node>& p) { return graph::ShiftLeft(p[0], p[1]); };
  auto sra = [](const std::vector<Node>& p) { return graph::ShiftRightArithmetic(p[0], p[1]); };
  auto srl = [](const std::vector<Node>& p) { return graph::ShiftRightLogical(p[0], p[1]); };
  for (DType dt : kSignedInts) {
    const double w = Width(dt), min = MinOf(dt);
    const std::vector<double> a = {1, -1, -8, 5, -5, 1, min};
    const std::vector<double> b = {w - 1, w, 1, -1, w + 3, 100, w - 1};
    EXPECT_TRUE(Check(Backend(), shl, {a, b}, dt, dt, {min, 0, -16, 0, 0, 0, 0})) << dt;
    EXPECT_TRUE(Check(Backend(), sra, {a, b}, dt, dt, {0, -1, -4, 0, -1, 0, -1})) << dt;
    EXPECT_TRUE(Check(Backend(), srl, {a, b}, dt, dt, {0, 0, FromBits(dt, ToBits(dt, -8) >> 1), 0, 0, 0, 1})) << dt;
  }
  for (DType dt : {dtypes::Uint8, dtypes::Uint16, dtypes::Uint32, dtypes::Uint64}) {
    const double w = Width(dt), top = std::ldexp(1, Width(dt) - 1);
    const std::vector<double> a = {1, 3, top, top, 6};
    const std::vector<double> b = {w - 1, w, 1, w + 5, 1};
    EXPECT_TRUE(Check(Backend(), shl, {a, b}, dt, dt, {top, 0, 0, 0, 12})) << dt;
    // Arithmetic shifts copy the top bit, for unsigned types too.
    EXPECT_TRUE(Check(Backend(), sra, {a, b}, dt, dt, {0, 0, top + top / 2, MaxOf(dt), 3})) << dt;
    EXPECT_TRUE(Check(Backend(), srl, {a, b}, dt, dt, {0, 0, top / 2, 0, 3})) << dt;
  }
}

TEST_P(ElementwiseTest, BitCountsOfExtremes) {
  auto clz = [](const std::vector<Node>& p) { return graph::Clz(p[0]); };
  auto popcount = [](const std::vector<Node>& p) { return graph::BitCount(p[0]); };
  for (DType dt : kInts) {
    const double w = Width(dt);
    const double all_ones = dtypes::IsSignedInteger(dt) ? -1 : MaxOf(dt);
    EXPECT_TRUE(Check(Backend(), clz, {{0, 1, all_ones, 2}}, dt, dt, {w, w - 1, 0, w - 2})) << dt;
    EXPECT_TRUE(Check(Backend(), popcount, {{0, 1, all_ones, 7}}, dt, dt, {0, 1, w, 3})) << dt;
  }
}

TEST_P(ElementwiseTest, NaNInMaxMinAndComparisons) {
  auto op = [](Node (*fn)(Node, Node, graph::Loc)) {
    return [fn](const std::vector<Node>& p) { return fn(p[0], p[1], graph::Loc::current()); };
  };
  const std::vector<double> a = {kNaN, 1, kNaN, 2, -kInf, 0};
  const std::vector<double> b = {1, kNaN, kNaN, 3, 1, kNaN};
  for (DType dt : kFloats) {
    EXPECT_TRUE(Check(Backend(), op(graph::Max), {a, b}, dt, dt, {kNaN, kNaN, kNaN, 3, 1, kNaN})) << dt;
    EXPECT_TRUE(Check(Backend(), op(graph::Min), {a, b}, dt, dt, {kNaN, kNaN, kNaN, 2, -kInf, kNaN})) << dt;
    const DType bt = dtypes::Bool;
    EXPECT_TRUE(Check(Backend(), op(graph::Equal), {a, b}, dt, bt, {0, 0, 0, 0, 0, 0})) << dt;
    EXPECT_TRUE(Check(Backend(), op(graph::NotEqual), {a, b}, dt, bt, {1, 1, 1, 1, 1, 1})) << dt;
    EXPECT_TRUE(Check(Backend(), op(graph::LessThan), {a, b}, dt, bt, {0, 0, 0, 1, 1, 0})) << dt;
    EXPECT_TRUE(Check(Backend(), op(graph::LessOrEqual), {a, b}, dt, bt, {0, 0, 0, 1, 1, 0})) << dt;
    EXPECT_TRUE(Check(Backend(), op(graph::GreaterThan), {a, b}, dt, bt, {0, 0, 0, 0, 0, 0})) << dt;
    EXPECT_TRUE(Check(Backend(), op(graph::GreaterOrEqual), {a, b}, dt, bt, {0, 0, 0, 0, 0, 0})) << dt;
  }
}

TEST_P(ElementwiseTest, RoundHalfToEven) {
  auto round = [](const std::vector<Node>& p) { return graph::Round(p[0]); };
  const std::vector<double> x = {0.5, 1.5, 2.5, -0.5, -2.5, 3.5, -1.25, 2.75, -0.0, kInf, kNaN};
  for (DType dt : kFloats) {
    EXPECT_TRUE(Check(Backend(), round, {x}, dt, dt, {0, 2, 2, -0.0, -2, 4, -1, 3, -0.0, kInf, kNaN})) << dt;
  }
}

TEST_P(ElementwiseTest, SignOfSpecialValues) {
  auto sign = [](const std::vector<Node>& p) { return graph::Sign(p[0]); };
  for (DType dt : kFloats) {
    EXPECT_TRUE(Check(Backend(), sign, {{kNaN, -kInf, kInf, -0.0, 0.0, -3}}, dt, dt, {kNaN, -1, 1, 0, 0, -1})) << dt;
  }
  EXPECT_TRUE(Check(Backend(), sign, {{0, 1, 255}}, dtypes::Uint8, dtypes::Uint8, {0, 1, 1}));
}

// Odd functions keep the sign of zero: tanh(-0) = -0 and tanh(+0) = +0 (a
// kernel computing -u / (u + 2) gets -0 for +0 unless it copies x's sign).
TEST_P(ElementwiseTest, OddFunctionsKeepTheSignOfZero) {
  for (DType dt : kFloats) {
    const Tensor x = testing::FromDoubles(shapes::Make(dt, 2), {0.0, -0.0});
    const std::pair<const char*, Node (*)(Node, graph::Loc)> fns[] = {
        {"Tanh", &graph::Tanh}, {"Sin", &graph::Sin}, {"Expm1", &graph::Expm1}, {"Erf", &graph::Erf}, {"Sqrt", &graph::Sqrt}};
    for (const auto& [name, op] : fns) {
      auto* fn = op;  // a variable, not a structured binding: Clang 14 cannot capture those
      const std::vector<double> got =
          testing::ToDoubles(testing::Run1(Backend(), [fn](const std::vector<Node>& p) { return fn(p[0], graph::Loc::current()); }, {x}));
      EXPECT_EQ(got[0], 0.0) << name << " " << dt;
      EXPECT_FALSE(std::signbit(got[0])) << name << " " << dt;
      EXPECT_EQ(got[1], 0.0) << name << " " << dt;
      EXPECT_TRUE(std::signbit(got[1])) << name << " " << dt;
    }
  }
}

TEST_P(ElementwiseTest, TranscendentalsOfInfAndNaN) {
  auto unary = [](Node (*fn)(Node, graph::Loc)) {
    return [fn](const std::vector<Node>& p) { return fn(p[0], graph::Loc::current()); };
  };
  const std::vector<double> x = {kInf, -kInf, kNaN, 0, 1000, -1000};
  for (DType dt : {dtypes::Float32, dtypes::Float64, dtypes::Float16, dtypes::BFloat16}) {
    EXPECT_TRUE(Check(Backend(), unary(graph::Exp), {x}, dt, dt, {kInf, 0, kNaN, 1, kInf, 0})) << dt;
    // log(1000) within the dtype's tolerance: a GPU's logf may be an ulp
    // from the correctly rounded value.
    EXPECT_TRUE(Check(Backend(), unary(graph::Log), {x}, dt, dt, {kInf, kNaN, kNaN, -kInf, std::log(1000.0), kNaN},
                      testing::Tolerance(dt)))
        << dt;
    EXPECT_TRUE(Check(Backend(), unary(graph::Tanh), {x}, dt, dt, {1, -1, kNaN, 0, 1, -1})) << dt;
    EXPECT_TRUE(Check(Backend(), unary(graph::Logistic), {x}, dt, dt, {1, 0, kNaN, 0.5, 1, 0})) << dt;
    EXPECT_TRUE(Check(Backend(), unary(graph::IsFinite), {x}, dt, dtypes::Bool, {0, 0, 0, 1, 1, 1})) << dt;
    EXPECT_TRUE(Check(Backend(), unary(graph::IsNaN), {x}, dt, dtypes::Bool, {0, 0, 1, 0, 0, 0})) << dt;
  }
}

// ---------------------------------------------------- Where and Clamp.

// Float32 Exp, Tanh and Logistic over their whole ranges (the CPU backend
// has its own float32 kernels for them): 200,001 points each through the
// overflow and underflow thresholds (Exp and Logistic reach the subnormals
// and 0), tanh's saturation, and tiny arguments on a log scale, all within
// 4 ulp-ish (5e-7 relative) of the double-precision result rounded to float;
// results below the smallest normal float may be 0 (the CPU backend flushes
// subnormals: see denormals_test.cc).
TEST_P(ElementwiseTest, Float32ExpTanhLogisticAcrossTheirRanges) {
  auto sweep = [](double lo, double hi) {
    std::vector<double> x;
    for (int i = 0; i <= 200000; ++i) x.push_back(static_cast<double>(static_cast<float>(lo + (hi - lo) * i / 200000)));
    for (double tiny = 1e-38; tiny < 1; tiny *= 1.7) {
      x.push_back(static_cast<double>(static_cast<float>(tiny)));
      x.push_back(-static_cast<double>(static_cast<float>(tiny)));
    }
    return x;
  };
  struct Case {
    const char* name;
    Node (*op)(Node, graph::Loc);
    double (*ref)(double);
    double lo, hi;
  };
  const Case cases[] = {
      {"Exp", graph::Exp, [](double v) { return std::exp(v); }, -110, 95},
      {"Tanh", graph::Tanh, [](double v) { return std::tanh(v); }, -25, 25},
      {"Logistic", graph::Logistic, RefLogistic, -110, 95},
  };
  for (const Case& c : cases) {
    const std::vector<double> x = sweep(c.lo, c.hi);
    const auto shape = shapes::Make(dtypes::Float32, static_cast<int64_t>(x.size()));
    std::vector<double> want;
    for (double v : x) want.push_back(static_cast<double>(static_cast<float>(c.ref(v))));
    Tensor got = testing::Run1(Backend(), [&](const std::vector<Node>& p) { return c.op(p[0], graph::Loc::current()); },
                               {testing::FromDoubles(shape, x)});
    EXPECT_TRUE(testing::AllClose(got, shape, want, 5e-7, std::numeric_limits<float>::min())) << c.name;
  }
}

TEST_P(ElementwiseTest, WhereSelectsEveryDType) {
  testing::Rng rng(4);
  for (DType dt : kAllDTypes) {
    for (const shapes::Shape& shape : testing::TestShapes(dt)) {
      Tensor cond = testing::Random(shape.WithDType(dtypes::Bool), rng);
      Tensor t = testing::Random(shape, rng), f = testing::Random(shape, rng);
      Tensor got = testing::Run1(
          Backend(), [](const std::vector<Node>& p) { return graph::Where(p[0], p[1], p[2]); }, {cond, t, f});
      std::vector<double> c = testing::ToDoubles(cond), want = testing::ToDoubles(t), fv = testing::ToDoubles(f);
      for (size_t i = 0; i < want.size(); ++i) want[i] = c[i] != 0 ? want[i] : fv[i];
      EXPECT_TRUE(testing::AllClose(got, testing::FromDoubles(shape, want), 0, 0)) << shape;
    }
  }
  // A scalar condition broadcasts.
  Tensor got = testing::Run1(
      Backend(),
      [](const std::vector<Node>& p) {
        return graph::Where(graph::Scalar(p[0].Graph(), dtypes::Bool, 1), p[0], graph::Neg(p[0]));
      },
      {testing::FromDoubles(shapes::Make(dtypes::Int32, 3), {1, 2, 3})});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Int32, 3), {1, 2, 3}, 0, 0));
}

TEST_P(ElementwiseTest, ClampNumericDTypes) {
  testing::Rng rng(5);
  for (DType dt : kNumeric) {
    for (const shapes::Shape& shape : testing::TestShapes(dt)) {
      Tensor lo = testing::Random(shape, rng, -50, 0), x = testing::Random(shape, rng, -100, 100);
      Tensor hi = testing::Random(shape, rng, 0, 50);
      Tensor got = testing::Run1(
          Backend(), [](const std::vector<Node>& p) { return graph::Clamp(p[0], p[1], p[2]); }, {lo, x, hi});
      std::vector<double> l = testing::ToDoubles(lo), want = testing::ToDoubles(x), h = testing::ToDoubles(hi);
      for (size_t i = 0; i < want.size(); ++i) want[i] = std::min(std::max(want[i], l[i]), h[i]);
      EXPECT_TRUE(testing::AllClose(got, testing::FromDoubles(shape, want), 0, 0)) << shape;
    }
  }
  // Scalar bounds broadcast; NaN propagates.
  Tensor got = testing::Run1(
      Backend(),
      [](const std::vector<Node>& p) {
        graph::Graph* g = p[0].Graph();
        return graph::Clamp(graph::Scalar(g, dtypes::Float32, -1), p[0], graph::Scalar(g, dtypes::Float32, 1));
      },
      {testing::FromDoubles(shapes::Make(dtypes::Float32, 5), {-5, 0.5, 5, kNaN, -kInf})});
  EXPECT_TRUE(testing::AllClose(got, shapes::Make(dtypes::Float32, 5), {-1, 0.5, 1, kNaN, -1}, 0, 0));
}

// -------------------------------------------------------- ConvertDType.

// The reference conversion of an in-range value.
double RefConvert(double v, DType to) {
  if (to == dtypes::Bool) return v != 0;
  if (dtypes::IsInteger(to)) return std::trunc(v);
  return v;
}

TEST_P(ElementwiseTest, ConvertBetweenAllDTypes) {
  testing::Rng rng(6);
  for (DType from : kAllDTypes) {
    for (DType to : kAllDTypes) {
      for (const auto& shape : {shapes::Make(from, 2, 3, 5), shapes::Make(from), shapes::Make(from, 0)}) {
        // Unsigned targets get non-negative values (negative ones saturate, tested below).
        const double lo = dtypes::IsUnsignedInteger(to) ? 0 : -100;
        Tensor x = testing::Random(shape, rng, lo, 100);
        Tensor got = testing::Run1(
            Backend(), [to](const std::vector<Node>& p) { return graph::ConvertDType(p[0], to); }, {x});
        std::vector<double> want = testing::ToDoubles(x);
        for (double& v : want) v = RefConvert(v, to);
        EXPECT_TRUE(testing::AllClose(got, testing::FromDoubles(shape.WithDType(to), want), testing::Tolerance(to), 0))
            << from << " -> " << to;
      }
    }
  }
}

TEST_P(ElementwiseTest, ConvertFloatToIntSaturatesAndMapsNaNToZero) {
  const std::vector<double> x = {kNaN, kInf, -kInf, 1e30, -1e30, 2.9, -2.9, 0.5, -0.5, 100};
  for (DType from : kFloats) {
    for (DType to : kInts) {
      const double min = MinOf(to), max = MaxOf(to);
      const double trunc_neg = dtypes::IsSignedInteger(to) ? -2 : 0;
      const double hundred = std::min(100.0, max);
      EXPECT_TRUE(Check(
          Backend(), [to](const std::vector<Node>& p) { return graph::ConvertDType(p[0], to); }, {x}, from, to,
          {0, max, min, max, min, 2, trunc_neg, 0, 0, hundred}))
          << from << " -> " << to;
    }
  }
  // Values just inside the range convert exactly.
  EXPECT_TRUE(Check(
      Backend(), [](const std::vector<Node>& p) { return graph::ConvertDType(p[0], dtypes::Int32); },
      {{2147483647.0, -2147483648.0, 2147483646.5}}, dtypes::Float64, dtypes::Int32,
      {2147483647.0, -2147483648.0, 2147483646.0}));
}

TEST_P(ElementwiseTest, ConvertSpecialCases) {
  auto convert = [](DType to) {
    return [to](const std::vector<Node>& p) { return graph::ConvertDType(p[0], to); };
  };
  // Anything nonzero, NaN included, is true.
  EXPECT_TRUE(Check(Backend(), convert(dtypes::Bool), {{0, -0.0, 0.5, kNaN, -kInf}}, dtypes::Float32, dtypes::Bool,
                    {0, 0, 1, 1, 1}));
  EXPECT_TRUE(Check(Backend(), convert(dtypes::Bool), {{0, 256, -1}}, dtypes::Int32, dtypes::Bool, {0, 1, 1}));
  // Integer to integer wraps.
  EXPECT_TRUE(Check(Backend(), convert(dtypes::Int8), {{300, -129, 127}}, dtypes::Int32, dtypes::Int8, {44, 127, 127}));
  EXPECT_TRUE(Check(Backend(), convert(dtypes::Uint8), {{-1, 256}}, dtypes::Int32, dtypes::Uint8, {255, 0}));
  // Int to float rounds to nearest; floats narrow with rounding and overflow to Inf.
  EXPECT_TRUE(Check(Backend(), convert(dtypes::Float32), {{16777217}}, dtypes::Int32, dtypes::Float32, {16777216}));
  EXPECT_TRUE(Check(Backend(), convert(dtypes::Float16), {{1e6, -1e6, 1, kNaN}}, dtypes::Float32, dtypes::Float16,
                    {kInf, -kInf, 1, kNaN}));
  EXPECT_TRUE(Check(Backend(), convert(dtypes::Float32), {{1, 0}}, dtypes::Bool, dtypes::Float32, {1, 0}));
}

// ------------------------------------------------------ Large arrays.

// Arrays large enough for the CUDA backend's vector loads (four elements per
// thread from cuda::kVectorizeMinElements, 2^20), with elements of every
// size: Mul, Max, Equal (Bool output) and LogicalXor (Bool inputs) on 2^20 + 3
// elements (three past the last group of four), and a row vector broadcast
// over [4097, 256] (read per element beside a vector-loaded input).
TEST_P(ElementwiseTest, LargeArraysMatchReference) {
  testing::Rng rng(8);
  std::map<std::string, BinaryCase> cases;
  for (const BinaryCase& c : BinaryCases()) cases.emplace(c.name, c);
  const std::vector<std::pair<const char*, DType>> runs = {
      {"Mul", dtypes::Int8},      {"Mul", dtypes::Float16},  {"Mul", dtypes::BFloat16}, {"Mul", dtypes::Float32},
      {"Mul", dtypes::Float64},   {"Mul", dtypes::Int64},    {"Max", dtypes::Uint16},   {"Max", dtypes::Float32},
      {"Equal", dtypes::Float32}, {"Equal", dtypes::Int8},   {"LogicalXor", dtypes::Bool}};
  for (const auto& [name, dt] : runs) {
    const BinaryCase& c = cases.at(name);
    const auto shape = shapes::Make(dt, (int64_t{1} << 20) + 3);
    Tensor a = testing::Random(shape, rng, c.lo_a, c.hi_a), b = testing::Random(shape, rng, c.lo_b, c.hi_b);
    CheckBinary(c, a, c.comparison ? WithTies(a, b) : b);
  }
  for (DType dt : {dtypes::Float32, dtypes::BFloat16}) {
    Tensor a = testing::Random(shapes::Make(dt, 4097, 256), rng, -100, 100);
    CheckBinary(cases.at("Add"), a, testing::Random(shapes::Make(dt, 256), rng, -100, 100));
  }
}

// ------------------------------------------------------ In-place chains.

TEST_P(ElementwiseTest, InPlaceChainsLeaveInputsUntouched) {
  testing::Rng rng(7);
  const auto shape = shapes::Make(dtypes::Float32, 100000);
  Tensor x = testing::Random(shape, rng), y = testing::Random(shape, rng);
  const std::vector<double> xv = testing::ToDoubles(x), yv = testing::ToDoubles(y);
  auto outs = testing::Run(
      Backend(),
      [](const std::vector<Node>& p) {
        Node sum = graph::Add(p[0], p[1]);
        return std::vector<Node>{graph::Neg(graph::Exp(sum)), graph::LessThan(graph::Mul(p[0], p[1]), p[1])};
      },
      {x, y});
  std::vector<double> want(xv.size()), less(xv.size());
  for (size_t i = 0; i < xv.size(); ++i) {
    want[i] = -std::exp(xv[i] + yv[i]);
    less[i] = xv[i] * yv[i] < yv[i];
  }
  EXPECT_TRUE(testing::AllClose(outs[0], shape, want, testing::Tolerance(dtypes::Float32), 0));
  EXPECT_TRUE(testing::AllClose(outs[1], shape.WithDType(dtypes::Bool), less, 0, 0));
  EXPECT_TRUE(testing::AllClose(x, shape, xv, 0, 0));
  EXPECT_TRUE(testing::AllClose(y, shape, yv, 0, 0));

  // Int8 -> Bool comparisons may write over their (same-sized) operand.
  const auto s8 = shapes::Make(dtypes::Int8, 37);
  Tensor a = testing::Random(s8, rng, -100, 100), b = testing::Random(s8, rng, -100, 100);
  Tensor got = testing::Run1(
      Backend(),
      [](const std::vector<Node>& p) { return graph::LogicalNot(graph::GreaterThan(graph::Sub(p[0], p[1]), p[1])); },
      {a, b});
  const std::vector<double> av = testing::ToDoubles(a), bv = testing::ToDoubles(b);
  std::vector<double> want8(av.size());
  for (size_t i = 0; i < av.size(); ++i) want8[i] = !(WrapTo(dtypes::Int8, av[i] - bv[i]) > bv[i]);
  EXPECT_TRUE(testing::AllClose(got, s8.WithDType(dtypes::Bool), want8, 0, 0));
}

// --------------------------------------------------------------- Errors.

TEST(ElementwiseErrors, GraphLevelDTypeAndShapeErrors) {
  auto g = graph::NewGraph();
  Node f3 = graph::Parameter(g.get(), "f3", shapes::Make(dtypes::Float32, 3));
  Node f4 = graph::Parameter(g.get(), "f4", shapes::Make(dtypes::Float32, 4));
  Node i3 = graph::Parameter(g.get(), "i3", shapes::Make(dtypes::Int32, 3));
  Node b3 = graph::Parameter(g.get(), "b3", shapes::Make(dtypes::Bool, 3));
  KILN_EXPECT_ERROR(graph::Exp(i3), "Exp: requires a float or complex dtype, got Int32[3] (elementwise_test.cc:");
  KILN_EXPECT_ERROR(graph::Clz(f3), "Clz: requires an integer dtype, got Float32[3]");
  KILN_EXPECT_ERROR(graph::Abs(b3), "Abs: requires a numeric (integer, float or complex) dtype, got Bool[3]");
  KILN_EXPECT_ERROR(graph::LogicalNot(i3), "LogicalNot: requires Bool, got Int32[3]");
  KILN_EXPECT_ERROR(graph::Add(f3, i3), "Add: dtypes differ: Float32[3] and Int32[3]");
  KILN_EXPECT_ERROR(graph::Add(f3, f4), "Add: shapes Float32[3] and Float32[4] cannot be broadcast");
  KILN_EXPECT_ERROR(graph::LogicalAnd(f3, f3), "LogicalAnd: requires Bool, got Float32[3] and Float32[3]");
  KILN_EXPECT_ERROR(graph::BitwiseAnd(f3, f3), "BitwiseAnd: requires an integer dtype");
  KILN_EXPECT_ERROR(graph::Atan2(i3, i3), "Atan2: requires a float dtype");
  KILN_EXPECT_ERROR(graph::LessThan(f3, i3), "LessThan: dtypes differ");
  KILN_EXPECT_ERROR(graph::Where(f3, f3, f3), "Where: condition must be Bool, got Float32[3]");
  KILN_EXPECT_ERROR(graph::Where(b3, f3, i3), "Where: branch dtypes differ: Float32[3] and Int32[3]");
  KILN_EXPECT_ERROR(graph::Clamp(b3, b3, b3), "Clamp: requires a numeric dtype, got Bool[3]");
  KILN_EXPECT_ERROR(graph::Clamp(f3, i3, f3), "Clamp: dtypes differ");
  KILN_EXPECT_ERROR(graph::Clamp(f4, f3, f4), "Clamp: shapes Float32[4] and Float32[3] cannot be broadcast");
  KILN_EXPECT_ERROR(graph::ConvertDType(f3, dtypes::Invalid), "ConvertDType: target dtype is Invalid");
}

// The op table's dtype classes are the only source: every dtype an op's
// class leaves out is refused by its graph builder, and every dtype it names
// is run against the reference above (the kernels dispatch on the same class).
TEST(ElementwiseErrors, DTypeRulesComeFromTheOpTable) {
  EXPECT_EQ(Accepted(OpType::kExp), kFloats);
  EXPECT_EQ(Accepted(OpType::kAdd), Concat(kInts, kFloats));
  EXPECT_TRUE(ir::Accepts(ir::DTypeClassOf(OpType::kExp), dtypes::Complex64));
  EXPECT_FALSE(ir::Accepts(ir::DTypeClassOf(OpType::kErf), dtypes::Complex64));
  EXPECT_FALSE(ir::Accepts(ir::DTypeClassOf(OpType::kLessThan), dtypes::Complex128));
  auto g = graph::NewGraph();
  int refused = 0;
  for (const UnaryCase& c : UnaryCases()) {
    for (DType dt : dtypes::kAll) {
      if (std::find(c.dtypes.begin(), c.dtypes.end(), dt) != c.dtypes.end() || dtypes::IsComplex(dt)) continue;
      Node x = graph::Parameter(g.get(), std::to_string(refused) + "_u", shapes::Make(dt, 2));
      KILN_EXPECT_ERROR(c.op(x), c.name + ": requires ");
      ++refused;
    }
  }
  for (const BinaryCase& c : BinaryCases()) {
    if (c.name.starts_with("Pow")) continue;  // one op, split into two cases by dtype
    for (DType dt : dtypes::kAll) {
      if (std::find(c.dtypes.begin(), c.dtypes.end(), dt) != c.dtypes.end() || dtypes::IsComplex(dt)) continue;
      Node x = graph::Parameter(g.get(), std::to_string(refused) + "_b", shapes::Make(dt, 2));
      KILN_EXPECT_ERROR(c.op(x, x), c.name + ": requires ");
      ++refused;
    }
  }
  EXPECT_GT(refused, 100);
}

TEST(ElementwiseErrors, CpuKernelRejectsUnsupportedDTypeInHandBuiltIR) {
  // The graph layer never emits this; a hand-built function must still fail cleanly.
  auto fn = std::make_shared<ir::Function>();
  fn->name = "bad";
  const auto shape = shapes::Make(dtypes::Int32, 3);
  fn->instructions.push_back({ir::OpType::kParameter, {}, shape, ir::ParameterAttrs{0, "x"}, "here.cc:1"});
  fn->instructions.push_back({ir::OpType::kExp, {0}, shape, ir::NoAttrs{}, "here.cc:2"});
  fn->parameters = {0};
  fn->outputs = {1};
  KILN_EXPECT_ERROR(backends::NewWithName("cpu")->Compile(fn), "cpu Exp: unsupported dtype Int32 (here.cc:2)");
}

}  // namespace
}  // namespace kiln
