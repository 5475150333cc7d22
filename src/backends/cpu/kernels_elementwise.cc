// Copyright 2026 The Kiln Authors.
// CPU kernels of the elementwise ops: unary, binary, comparisons, Where,
// Clamp and ConvertDType. (Reshape and Bitcast need none: the executor
// aliases the bytes.)
//
// One mechanism serves every op: a functor per op whose templated call
// operator works in the "compute type" (float for the 16-bit floats, the
// dtype's own type otherwise), one tile loop template per arity (a serial
// loop over n elements, see fusion_tiles.h), and a tile factory that
// dispatches on the operand dtype, instantiating only the dtypes the op
// accepts (the op table's dtype classes, ir::DTypeClassOf, which the graph
// layer checks too). The per-op kernel runs the tile loop over
// chunks of the whole array, in parallel when large; fused groups (fusion.cc)
// run the same tile loops over cache-sized tiles, so both paths share every
// op's arithmetic. The float functions with a real cost (Exp, Log, Sin, Tanh,
// ...) go through the Highway kernels of elementwise_math.h.
//
// Integer semantics are total, with no undefined behaviour (UBSan runs the
// tests): signed arithmetic wraps (computed in unsigned), and division by zero
// and out-of-range shift amounts have the results documented in
// include/kiln/graph/ops.h. Every kernel reads element i only to write
// element i, so the output may be one of the inputs (in-place execution).
#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "src/backends/cpu/elementwise_math.h"
#include "src/backends/cpu/fusion_tiles.h"
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

namespace {

using ir::OpType;

// ------------------------------------------------------------------ Types.

template <typename T>
constexpr bool kIsHalf = std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>;

template <typename T>
constexpr bool kIsFloat = std::is_floating_point_v<T> || kIsHalf<T>;

template <typename T>
constexpr bool kIsInt = std::is_integral_v<T> && !std::is_same_v<T, bool>;

template <typename T>
constexpr bool kIsComplex = std::is_same_v<T, dtypes::complex64> || std::is_same_v<T, dtypes::complex128>;

// The type elements of T are computed in: float for the 16-bit floats.
template <typename T>
using Compute = std::conditional_t<kIsHalf<T>, float, T>;

// An unsigned type at least as wide as int: arithmetic in it wraps, whereas
// narrower types would be promoted to (signed) int, whose overflow is UB.
template <typename T>
using Wrap = std::conditional_t<(sizeof(T) < sizeof(unsigned)), unsigned, std::make_unsigned_t<T>>;

template <typename T>
Compute<T> Load(T v) {
  return static_cast<Compute<T>>(v);
}

template <typename T, typename C>
T StoreAs(C v) {
  if constexpr (std::is_same_v<T, C>) return v;
  else if constexpr (kIsHalf<T>) return T(static_cast<float>(v));
  else return static_cast<T>(v);
}

// Whether C++ type T belongs to the dtype class K (the op table's
// ir::DTypeClassOf, the same classes the graph layer checks).
template <ir::DTypeClass K, typename T>
constexpr bool Accepts() {
  switch (K) {
    case ir::DTypeClass::kFloat: return kIsFloat<T>;
    case ir::DTypeClass::kNumeric: return kIsFloat<T> || kIsInt<T>;
    case ir::DTypeClass::kInteger: return kIsInt<T>;
    case ir::DTypeClass::kBool: return std::is_same_v<T, bool>;
    case ir::DTypeClass::kAny: return !kIsComplex<T>;
    case ir::DTypeClass::kOwnRule: return false;
    case ir::DTypeClass::kFloatOrComplex: return kIsFloat<T> || kIsComplex<T>;
    case ir::DTypeClass::kNumericOrComplex: return kIsFloat<T> || kIsInt<T> || kIsComplex<T>;
    case ir::DTypeClass::kAnyOrComplex: return true;
  }
  return false;
}

// Calls make(T{}) for the C++ type T of `dtype` if op Op accepts it (other
// types are never instantiated); throws otherwise. The graph layer rejects
// such dtypes first, so the throw only guards hand-built IR.
template <OpType Op, typename Make>
TileKernel DispatchAccepted(dtypes::DType dtype, const ir::Instruction& instr, Make&& make) {
  constexpr ir::DTypeClass K = ir::DTypeClassOf(Op);
  return DispatchDTypeWithComplex(dtype, [&](auto zero) -> TileKernel {
    using T = decltype(zero);
    if constexpr (Accepts<K, T>()) {
      return make(zero);
    } else {
      Throw("cpu " + std::string(ir::OpName(instr.op)) + ": unsupported dtype " + dtypes::Name(dtype) + " (" +
            instr.location + ")");
    }
  });
}

// ---------------------------------------------------------- Tile loops.

// The loops convert each element to its compute type, apply Op (a stateless
// functor) and store the result as Out. `omp simd` is safe in place:
// iteration i only touches element i of every array.

template <typename Out, typename In, typename Op>
void UnaryTile(const void* const* in, void* out, int64_t n) {
  const In* x = static_cast<const In*>(in[0]);
  Out* y = static_cast<Out*>(out);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = StoreAs<Out>(Op{}(Load(x[i])));
}

template <typename Out, typename In, typename Op>
void BinaryTile(const void* const* in, void* out, int64_t n) {
  const In* a = static_cast<const In*>(in[0]);
  const In* b = static_cast<const In*>(in[1]);
  Out* y = static_cast<Out*>(out);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = StoreAs<Out>(Op{}(Load(a[i]), Load(b[i])));
}

// The output type of op on T: Bool for predicates, the real part's type for
// a real function of a complex value (Abs), T otherwise.
template <typename T, typename Op, typename... Args>
using OutputOf = std::conditional_t<
    std::is_same_v<std::invoke_result_t<Op, Args...>, bool>, bool,
    std::conditional_t<kIsComplex<T> && !kIsComplex<std::invoke_result_t<Op, Args...>>,
                       std::invoke_result_t<Op, Args...>, T>>;

// Tile factory of unary op `Type` given by functor Op, on the dtypes it accepts.
template <typename Op, OpType Type>
TileKernel UnaryTileOf(const ir::Function& fn, const ir::Instruction& instr) {
  return DispatchAccepted<Type>(OperandShape(fn, instr, 0).DType(), instr, [](auto zero) -> TileKernel {
    using T = decltype(zero);
    return &UnaryTile<OutputOf<T, Op, Compute<T>>, T, Op>;
  });
}

// Tile factory of binary op or comparison `Type` given by functor Op, on the
// dtypes it accepts.
template <typename Op, OpType Type>
TileKernel BinaryTileOf(const ir::Function& fn, const ir::Instruction& instr) {
  return DispatchAccepted<Type>(OperandShape(fn, instr, 0).DType(), instr, [](auto zero) -> TileKernel {
    using T = decltype(zero);
    return &BinaryTile<OutputOf<T, Op, Compute<T>, Compute<T>>, T, Op>;
  });
}

// ------------------------------------------------- Float math (Highway).

// The math kernels cost 10-50x a simple loop per element, so threads pay off
// on smaller arrays (see TileCost).
constexpr int kMathCost = 8;
// Elements of the 16-bit floats converted at a time: a stack buffer in L1.
constexpr int64_t kHalfChunk = 2048;

template <typename T, MathOp kOp>
void MathTile(const void* const* in, void* out, int64_t n) {
  const T* x = static_cast<const T*>(in[0]);
  T* y = static_cast<T*>(out);
  if constexpr (std::is_same_v<T, float>) {
    MathF32(kOp, x, y, n);
  } else if constexpr (std::is_same_v<T, double>) {
    MathF64(kOp, x, y, n);
  } else {  // 16-bit floats: computed in float32.
    float buffer[kHalfChunk];
    for (int64_t begin = 0; begin < n; begin += kHalfChunk) {
      const int64_t size = std::min(kHalfChunk, n - begin);
      for (int64_t k = 0; k < size; ++k) buffer[k] = static_cast<float>(x[begin + k]);
      MathF32(kOp, buffer, buffer, size);
      for (int64_t k = 0; k < size; ++k) y[begin + k] = T(buffer[k]);
    }
  }
}

// MathTile<T, op> for every MathOp, indexed by the op.
template <typename T, int... kOps>
constexpr std::array<TileKernel, sizeof...(kOps)> MathTiles(std::integer_sequence<int, kOps...>) {
  return {&MathTile<T, static_cast<MathOp>(kOps)>...};
}
constexpr int kNumMathOps = static_cast<int>(MathOp::kCount);

MathOp MathOpOf(OpType op) {
  switch (op) {
    case OpType::kCeil: return MathOp::kCeil;
    case OpType::kFloor: return MathOp::kFloor;
    case OpType::kRound: return MathOp::kRound;
    case OpType::kExp: return MathOp::kExp;
    case OpType::kExpm1: return MathOp::kExpm1;
    case OpType::kLog: return MathOp::kLog;
    case OpType::kLog1p: return MathOp::kLog1p;
    case OpType::kLogistic: return MathOp::kLogistic;
    case OpType::kSin: return MathOp::kSin;
    case OpType::kCos: return MathOp::kCos;
    case OpType::kTanh: return MathOp::kTanh;
    case OpType::kSqrt: return MathOp::kSqrt;
    case OpType::kRsqrt: return MathOp::kRsqrt;
    case OpType::kErf: return MathOp::kErf;
    default: break;
  }
  Throw("cpu: " + std::string(ir::OpName(op)) + " is not a math op");
}

// exp(z) - 1 without the cancellation of exp(z) - 1 near 0: the real part is
// expm1(x) cos(y) - 2 sin^2(y / 2). A real z stays real (its imaginary zero
// keeps its sign). For |x| > 1, |exp(z)| is beyond [1/e, e], so exp(z) - 1
// cancels nothing, and std::exp handles overflow and the special values.
template <typename C>
C ComplexExpm1(C z) {
  using R = typename C::value_type;
  const R x = z.real(), y = z.imag();
  if (y == 0) return {std::expm1(x), y};
  if (!(std::abs(x) <= R(1)) || !std::isfinite(y)) return std::exp(z) - R(1);
  const R half_sin = std::sin(y / 2);
  return {std::expm1(x) * std::cos(y) - 2 * half_sin * half_sin, std::exp(x) * std::sin(y)};
}

// log(1 + z) without losing a small z to the rounding of 1 + z: |1 + z|^2 =
// 1 + (x (2 + x) + y^2), so the real part is log1p(x (2 + x) + y^2) / 2. Away
// from 0 (and for infinities and NaN), std::log(1 + z).
template <typename C>
C ComplexLog1p(C z) {
  using R = typename C::value_type;
  const R x = z.real(), y = z.imag();
  if (!(std::abs(x) < R(0.5) && std::abs(y) < R(0.5))) return std::log(R(1) + z);
  const R re = y == 0 ? std::log1p(x) : std::log1p(std::fma(y, y, x * (2 + x))) / 2;
  return {re, std::atan2(y, 1 + x)};
}

// Complex math, per element: std::complex's functions (principal branches),
// and the two above.
template <typename T, MathOp kOp>
void ComplexMathTile(const void* const* in, void* out, int64_t n) {
  const T* x = static_cast<const T*>(in[0]);
  T* y = static_cast<T*>(out);
  for (int64_t i = 0; i < n; ++i) {
    const T v = x[i];
    if constexpr (kOp == MathOp::kExp) y[i] = std::exp(v);
    else if constexpr (kOp == MathOp::kExpm1) y[i] = ComplexExpm1(v);
    else if constexpr (kOp == MathOp::kLog1p) y[i] = ComplexLog1p(v);
    else if constexpr (kOp == MathOp::kLog) y[i] = std::log(v);
    else if constexpr (kOp == MathOp::kSin) y[i] = std::sin(v);
    else if constexpr (kOp == MathOp::kCos) y[i] = std::cos(v);
    else if constexpr (kOp == MathOp::kTanh) y[i] = std::tanh(v);
    else if constexpr (kOp == MathOp::kSqrt) y[i] = std::sqrt(v);
    else if constexpr (kOp == MathOp::kRsqrt) y[i] = T(1) / std::sqrt(v);
  }
}

template <typename T>
TileKernel ComplexMathTileOf(MathOp op, const ir::Instruction& instr) {
  switch (op) {
    case MathOp::kExp: return &ComplexMathTile<T, MathOp::kExp>;
    case MathOp::kExpm1: return &ComplexMathTile<T, MathOp::kExpm1>;
    case MathOp::kLog1p: return &ComplexMathTile<T, MathOp::kLog1p>;
    case MathOp::kLog: return &ComplexMathTile<T, MathOp::kLog>;
    case MathOp::kSin: return &ComplexMathTile<T, MathOp::kSin>;
    case MathOp::kCos: return &ComplexMathTile<T, MathOp::kCos>;
    case MathOp::kTanh: return &ComplexMathTile<T, MathOp::kTanh>;
    case MathOp::kSqrt: return &ComplexMathTile<T, MathOp::kSqrt>;
    case MathOp::kRsqrt: return &ComplexMathTile<T, MathOp::kRsqrt>;
    default: break;
  }
  Throw("cpu " + std::string(ir::OpName(instr.op)) + ": not defined on complex numbers (" + instr.location + ")");
}

TileKernel MathTileOf(const ir::Function& fn, const ir::Instruction& instr) {
  const MathOp op = MathOpOf(instr.op);
  const dtypes::DType dtype = OperandShape(fn, instr, 0).DType();
  if (!ir::Accepts(ir::DTypeClassOf(instr.op), dtype)) {
    Throw("cpu " + std::string(ir::OpName(instr.op)) + ": unsupported dtype " + dtypes::Name(dtype) + " (" +
          instr.location + ")");
  }
  return DispatchDTypeWithComplex(dtype, [&](auto zero) -> TileKernel {
    using T = decltype(zero);
    if constexpr (kIsComplex<T>) {
      return ComplexMathTileOf<T>(op, instr);
    } else if constexpr (kIsFloat<T>) {
      static constexpr auto kTiles = MathTiles<T>(std::make_integer_sequence<int, kNumMathOps>());
      return kTiles[static_cast<size_t>(op)];
    } else {
      Throw("cpu " + std::string(ir::OpName(instr.op)) + ": unsupported dtype " + dtypes::Name(dtype));
    }
  });
}

// ------------------------------------------------------- Unary functors.

struct AbsOp {  // the modulus for complex numbers (a real result)
  template <typename T>
  auto operator()(T x) const {
    if constexpr (std::is_unsigned_v<T>) return x;
    else if constexpr (kIsInt<T>) return x < 0 ? static_cast<T>(Wrap<T>(0) - static_cast<Wrap<T>>(x)) : x;  // INT_MIN stays
    else return std::abs(x);  // std::hypot for complex: no overflow
  }
};

struct NegOp {
  template <typename T>
  T operator()(T x) const {
    if constexpr (kIsInt<T>) return static_cast<T>(Wrap<T>(0) - static_cast<Wrap<T>>(x));  // wraps, unsigned too
    else return -x;
  }
};

// -1, 0, 1; for complex z, z / |z| (0 at 0), as torch.sgn, with z scaled
// by its largest part first so |z| cannot overflow; an infinite z gives its
// direction's limit (inf + 5i -> 1, inf + inf i -> (1 + i) / sqrt(2)), NaN
// in either part NaN.
struct SignOp {
  template <typename T>
  T operator()(T x) const {
    if constexpr (kIsComplex<T>) {
      using R = typename T::value_type;
      const R re = x.real(), im = x.imag();
      constexpr R kNaN = std::numeric_limits<R>::quiet_NaN();
      if (std::isnan(re) || std::isnan(im)) return T(kNaN, kNaN);
      if (x == T(0)) return x;
      T scaled;
      if (std::isinf(re) || std::isinf(im)) {
        scaled = T(std::isinf(re) ? std::copysign(R(1), re) : std::copysign(R(0), re),
                   std::isinf(im) ? std::copysign(R(1), im) : std::copysign(R(0), im));
      } else {
        scaled = x / std::max(std::abs(re), std::abs(im));
      }
      return scaled / std::abs(scaled);
    } else if constexpr (std::is_unsigned_v<T>) {
      return x != 0;
    } else if constexpr (kIsInt<T>) {
      return static_cast<T>((x > 0) - (x < 0));
    } else {
      return x > 0 ? T(1) : (x < 0 ? T(-1) : x);  // +-0 and NaN unchanged
    }
  }
};

struct IsFiniteOp {
  template <typename T>
  bool operator()(T x) const { return std::isfinite(x); }
};

struct IsNaNOp {
  template <typename T>
  bool operator()(T x) const { return std::isnan(x); }
};

struct BitCountOp {
  template <typename T>
  T operator()(T x) const { return static_cast<T>(std::popcount(static_cast<std::make_unsigned_t<T>>(x))); }
};

struct ClzOp {  // std::countl_zero(0) is the bit width.
  template <typename T>
  T operator()(T x) const { return static_cast<T>(std::countl_zero(static_cast<std::make_unsigned_t<T>>(x))); }
};

struct BitwiseNotOp {
  template <typename T>
  T operator()(T x) const { return static_cast<T>(~x); }
};

struct LogicalNotOp {
  bool operator()(bool x) const { return !x; }
};

// ------------------------------------------------------ Binary functors.

struct AddOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (kIsInt<T>) return static_cast<T>(static_cast<Wrap<T>>(a) + static_cast<Wrap<T>>(b));
    else return a + b;
  }
};

struct SubOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (kIsInt<T>) return static_cast<T>(static_cast<Wrap<T>>(a) - static_cast<Wrap<T>>(b));
    else return a - b;
  }
};

struct MulOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (kIsInt<T>) return static_cast<T>(static_cast<Wrap<T>>(a) * static_cast<Wrap<T>>(b));
    else return a * b;
  }
};

// Integer division truncates; x / 0 is all bits set (-1, or the unsigned
// maximum) and INT_MIN / -1 is INT_MIN, as XLA specifies.
struct DivOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (kIsInt<T>) {
      if (b == 0) return static_cast<T>(-1);
      if constexpr (std::is_signed_v<T>) {
        if (a == std::numeric_limits<T>::min() && b == -1) return a;
      }
      return static_cast<T>(a / b);
    } else {
      return a / b;
    }
  }
};

// Remainder with the dividend's sign; for integers x % 0 is x and
// INT_MIN % -1 is 0.
struct RemOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (kIsInt<T>) {
      if (b == 0) return a;
      if constexpr (std::is_signed_v<T>) {
        if (a == std::numeric_limits<T>::min() && b == -1) return 0;
      }
      return static_cast<T>(a % b);
    } else {
      return std::fmod(a, b);
    }
  }
};

// Integer power by squaring, wrapping on overflow. A negative exponent gives
// 0 (the truncated reciprocal) unless the base is 1 or -1.
template <typename T>
T IntPow(T base, T exponent) {
  if constexpr (std::is_signed_v<T>) {
    if (exponent < 0) {
      if (base == 1) return 1;
      if (base == -1) return (exponent & 1) ? T(-1) : T(1);
      return 0;
    }
  }
  Wrap<T> result = 1, square = static_cast<Wrap<T>>(base);
  for (auto e = static_cast<std::make_unsigned_t<T>>(exponent); e != 0; e >>= 1) {
    if (e & 1) result *= square;
    square *= square;
  }
  return static_cast<T>(result);
}

// Complex powers are exp(b log a) (std::pow), except at a = 0, where that
// gives NaN: 0^0 = 1 and 0^b = 0 for Re(b) > 0, as numpy and PyTorch.
struct PowOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (kIsInt<T>) {
      return IntPow(a, b);
    } else if constexpr (kIsComplex<T>) {
      if (a == T(0)) {
        if (b == T(0)) return T(1);
        if (b.real() > 0) return T(0);
      }
      return std::pow(a, b);
    } else {
      return std::pow(a, b);
    }
  }
};

// Max and Min return NaN if either operand is NaN (std::max does not): the
// comparison is false when b is NaN, selecting b, and a != a catches a NaN a.
// (Bitwise | rather than ||: no branch, so GCC vectorizes the select.)
struct MaxOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (kIsFloat<T>) return ((a > b) | (a != a)) ? a : b;
    else return a > b ? a : b;
  }
};

struct MinOp {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (kIsFloat<T>) return ((a < b) | (a != a)) ? a : b;
    else return a < b ? a : b;
  }
};

struct Atan2Op {
  template <typename T>
  T operator()(T y, T x) const { return std::atan2(y, x); }
};

struct BitwiseAndOp {
  template <typename T>
  T operator()(T a, T b) const { return static_cast<T>(a & b); }
};

struct BitwiseOrOp {
  template <typename T>
  T operator()(T a, T b) const { return static_cast<T>(a | b); }
};

struct BitwiseXorOp {
  template <typename T>
  T operator()(T a, T b) const { return static_cast<T>(a ^ b); }
};

struct LogicalAndOp {
  bool operator()(bool a, bool b) const { return a && b; }
};

struct LogicalOrOp {
  bool operator()(bool a, bool b) const { return a || b; }
};

struct LogicalXorOp {
  bool operator()(bool a, bool b) const { return a != b; }
};

// Whether shifting by `amount` is outside [0, bit width): a negative amount
// converts to an unsigned value >= the width, so one comparison covers both.
template <typename T>
bool ShiftOutOfRange(T amount) {
  return static_cast<std::make_unsigned_t<T>>(amount) >= sizeof(T) * 8;
}

struct ShiftLeftOp {  // in unsigned: shifting into the sign bit is then defined.
  template <typename T>
  T operator()(T a, T b) const {
    return ShiftOutOfRange(b) ? T(0) : static_cast<T>(static_cast<Wrap<T>>(a) << b);
  }
};

struct ShiftRightLogicalOp {  // the exact-width unsigned type shifts in zeros.
  template <typename T>
  T operator()(T a, T b) const {
    return ShiftOutOfRange(b) ? T(0) : static_cast<T>(static_cast<std::make_unsigned_t<T>>(a) >> b);
  }
};

// Shifts in copies of the top bit, for unsigned types too (the bit pattern is
// shifted as if signed, as XLA does); shifts out of range give 0 or -1.
struct ShiftRightArithmeticOp {
  template <typename T>
  T operator()(T a, T b) const {
    const auto s = static_cast<std::make_signed_t<T>>(a);
    if (ShiftOutOfRange(b)) return static_cast<T>(s < 0 ? -1 : 0);
    return static_cast<T>(s >> b);  // C++20: arithmetic shift
  }
};

// Comparisons: IEEE semantics, so NaN compares unequal (and not ordered).
struct EqualOp {
  template <typename T>
  bool operator()(T a, T b) const { return a == b; }
};

struct NotEqualOp {
  template <typename T>
  bool operator()(T a, T b) const { return a != b; }
};

struct GreaterThanOp {
  template <typename T>
  bool operator()(T a, T b) const { return a > b; }
};

struct GreaterOrEqualOp {
  template <typename T>
  bool operator()(T a, T b) const { return a >= b; }
};

struct LessThanOp {
  template <typename T>
  bool operator()(T a, T b) const { return a < b; }
};

struct LessOrEqualOp {
  template <typename T>
  bool operator()(T a, T b) const { return a <= b; }
};

// ------------------------------------------------------- Where and Clamp.

// Where only moves elements, so it is instantiated per element size (a
// same-size unsigned type) rather than per dtype. The select is written as a
// bit mask (all ones where cond) so it compiles to vector code: the ternary
// compiled to a branch per element, mispredicted half the time on a ReLU
// mask (4.4 ms instead of 0.5 ms over 3.2M floats).
template <typename U>
void WhereTile(const void* const* in, void* out, int64_t n) {
  const auto* cond = static_cast<const uint8_t*>(in[0]);  // Bool: 0 or 1
  const U* on_true = static_cast<const U*>(in[1]);
  const U* on_false = static_cast<const U*>(in[2]);
  U* y = static_cast<U*>(out);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) {
    const U mask = static_cast<U>(U{0} - static_cast<U>(cond[i] != 0));  // (a Bitcast Bool may hold 2..255)
    y[i] = static_cast<U>((on_true[i] & mask) | (on_false[i] & static_cast<U>(~mask)));
  }
}

TileKernel WhereTileOf(const ir::Function&, const ir::Instruction& instr) {
  switch (dtypes::SizeOf(instr.shape.DType())) {
    case 1: return &WhereTile<uint8_t>;
    case 2: return &WhereTile<uint16_t>;
    case 4: return &WhereTile<uint32_t>;
    case 8: return &WhereTile<uint64_t>;
    case 16: return &WhereTile<unsigned __int128>;  // Complex128
    default: break;
  }
  Throw("cpu Where: unsupported dtype " + instr.shape.ToString() + " (" + instr.location + ")");
}

// min(max(x, lo), hi) with the NaN-propagating Max and Min.
template <typename T>
void ClampTile(const void* const* in, void* out, int64_t n) {
  const T* lo = static_cast<const T*>(in[0]);
  const T* x = static_cast<const T*>(in[1]);
  const T* hi = static_cast<const T*>(in[2]);
  T* y = static_cast<T*>(out);
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = StoreAs<T>(MinOp{}(MaxOp{}(Load(x[i]), Load(lo[i])), Load(hi[i])));
}

TileKernel ClampTileOf(const ir::Function& fn, const ir::Instruction& instr) {
  return DispatchAccepted<OpType::kClamp>(OperandShape(fn, instr, 1).DType(), instr,
                                         [](auto zero) -> TileKernel { return &ClampTile<decltype(zero)>; });
}

// ---------------------------------------------------------- ConvertDType.

// Float to integer: truncates toward zero, saturates at the integer's range,
// NaN gives 0 (C++'s static_cast is UB out of range).
template <typename To, typename From>
To SaturatingCast(From v) {
  if (v != v) return 0;
  // max() rounds to 2^digits (or is exact), lowest() is exact (0 or -2^digits).
  constexpr From kHigh = static_cast<From>(std::numeric_limits<To>::max());
  constexpr From kLow = static_cast<From>(std::numeric_limits<To>::lowest());
  if (v >= kHigh) return std::numeric_limits<To>::max();
  if (v <= kLow) return std::numeric_limits<To>::lowest();
  return static_cast<To>(v);
}

// Converts a value in compute type (float for the 16-bit floats) to To.
// Integer to integer wraps (C++20 modular conversion); anything nonzero,
// NaN included, is true.
// To a complex dtype, a real value becomes value + 0i. (Complex to real is
// refused by the graph layer: it would drop the imaginary part.)
template <typename To>
struct ConvertOp {
  template <typename From>
  To operator()(From v) const {
    if constexpr (kIsComplex<To> && !kIsComplex<From>) return To(static_cast<typename To::value_type>(v));
    else if constexpr (std::is_same_v<To, bool>) return v != From(0);
    else if constexpr (kIsHalf<To>) return To(static_cast<float>(v));
    else if constexpr (std::is_floating_point_v<From> && std::is_integral_v<To>) return SaturatingCast<To>(v);
    else return static_cast<To>(v);
  }
};

TileKernel ConvertTileOf(const ir::Function& fn, const ir::Instruction& instr) {
  return DispatchDTypeWithComplex(OperandShape(fn, instr, 0).DType(), [&](auto from) {
    return DispatchDTypeWithComplex(instr.shape.DType(), [&](auto to) -> TileKernel {
      using To = decltype(to);
      using From = decltype(from);
      if constexpr (kIsComplex<From> && !kIsComplex<To>) {
        Throw("cpu ConvertDType: complex to real drops the imaginary part (" + instr.location + ")");
      } else {
        return &UnaryTile<To, From, ConvertOp<To>>;
      }
    });
  });
}

// ------------------------------------------------------ Per-op kernels.

// Elements per work item of the per-op kernels: big enough that the call per
// chunk is noise, small enough to balance the threads on the math ops, which
// go parallel from 4096 elements.
constexpr int64_t kChunk = 2048;

// The kernel of a whole array: `tile` over chunks, in parallel when large.
// in_bytes[i] and out_bytes are the element widths, to offset each array.
// Large outputs are written with streaming stores (see kStreamMinBytes).
Kernel ChunkedKernel(TileKernel tile, std::vector<size_t> in_bytes, size_t out_bytes, int64_t n, bool parallel) {
  const bool stream = parallel && n * static_cast<int64_t>(out_bytes) >= kStreamMinBytes;
  return [tile, in_bytes = std::move(in_bytes), out_bytes, n, parallel, stream](const void* const* in, void* out) {
    if (!parallel) {
      tile(in, out, n);
      return;
    }
    const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel
    {
      // Streaming: each chunk is computed into this buffer, then copied out.
      alignas(64) std::byte buffer[kChunk * 16];  // the widest element: Complex128
#pragma omp for
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t begin = c * kChunk, len = std::min(kChunk, n - begin);
        const void* ptrs[3];  // at most 3 operands (Where, Clamp)
        for (size_t k = 0; k < in_bytes.size(); ++k) {
          ptrs[k] = static_cast<const std::byte*>(in[k]) + begin * in_bytes[k];
        }
        std::byte* dst = static_cast<std::byte*>(out) + begin * out_bytes;
        if (!stream) {
          tile(ptrs, dst, len);
        } else {
          tile(ptrs, buffer, len);
          StreamCopy(dst, buffer, static_cast<size_t>(len) * out_bytes);
        }
      }
      if (stream) StreamFence();
    }
  };
}

using TileFactory = TileKernel (*)(const ir::Function& fn, const ir::Instruction& instr);

// The tile factory of every elementwise op (nullptr for the others).
std::array<TileFactory, ir::kNumOpTypes> MakeTileFactories() {
  std::array<TileFactory, ir::kNumOpTypes> table{};
  auto set = [&table](OpType op, TileFactory factory) { table[static_cast<size_t>(op)] = factory; };
  for (OpType op : {OpType::kCeil, OpType::kFloor, OpType::kRound, OpType::kExp, OpType::kExpm1, OpType::kLog,
                    OpType::kLog1p, OpType::kLogistic, OpType::kSin, OpType::kCos, OpType::kTanh, OpType::kSqrt,
                    OpType::kRsqrt, OpType::kErf}) {
    const ir::DTypeClass c = ir::DTypeClassOf(op);
    if (c != ir::DTypeClass::kFloat && c != ir::DTypeClass::kFloatOrComplex) {
      Throw("cpu: math op " + std::string(ir::OpName(op)) + " must take floats (and maybe complex numbers) only");
    }
    set(op, MathTileOf);
  }
  set(OpType::kAbs, UnaryTileOf<AbsOp, OpType::kAbs>);
  set(OpType::kNeg, UnaryTileOf<NegOp, OpType::kNeg>);
  set(OpType::kSign, UnaryTileOf<SignOp, OpType::kSign>);
  set(OpType::kIsFinite, UnaryTileOf<IsFiniteOp, OpType::kIsFinite>);
  set(OpType::kIsNaN, UnaryTileOf<IsNaNOp, OpType::kIsNaN>);
  set(OpType::kBitCount, UnaryTileOf<BitCountOp, OpType::kBitCount>);
  set(OpType::kClz, UnaryTileOf<ClzOp, OpType::kClz>);
  set(OpType::kBitwiseNot, UnaryTileOf<BitwiseNotOp, OpType::kBitwiseNot>);
  set(OpType::kLogicalNot, UnaryTileOf<LogicalNotOp, OpType::kLogicalNot>);

  set(OpType::kAdd, BinaryTileOf<AddOp, OpType::kAdd>);
  set(OpType::kSub, BinaryTileOf<SubOp, OpType::kSub>);
  set(OpType::kMul, BinaryTileOf<MulOp, OpType::kMul>);
  set(OpType::kDiv, BinaryTileOf<DivOp, OpType::kDiv>);
  set(OpType::kRem, BinaryTileOf<RemOp, OpType::kRem>);
  set(OpType::kPow, BinaryTileOf<PowOp, OpType::kPow>);
  set(OpType::kMax, BinaryTileOf<MaxOp, OpType::kMax>);
  set(OpType::kMin, BinaryTileOf<MinOp, OpType::kMin>);
  set(OpType::kAtan2, BinaryTileOf<Atan2Op, OpType::kAtan2>);
  set(OpType::kBitwiseAnd, BinaryTileOf<BitwiseAndOp, OpType::kBitwiseAnd>);
  set(OpType::kBitwiseOr, BinaryTileOf<BitwiseOrOp, OpType::kBitwiseOr>);
  set(OpType::kBitwiseXor, BinaryTileOf<BitwiseXorOp, OpType::kBitwiseXor>);
  set(OpType::kLogicalAnd, BinaryTileOf<LogicalAndOp, OpType::kLogicalAnd>);
  set(OpType::kLogicalOr, BinaryTileOf<LogicalOrOp, OpType::kLogicalOr>);
  set(OpType::kLogicalXor, BinaryTileOf<LogicalXorOp, OpType::kLogicalXor>);
  set(OpType::kShiftLeft, BinaryTileOf<ShiftLeftOp, OpType::kShiftLeft>);
  set(OpType::kShiftRightArithmetic, BinaryTileOf<ShiftRightArithmeticOp, OpType::kShiftRightArithmetic>);
  set(OpType::kShiftRightLogical, BinaryTileOf<ShiftRightLogicalOp, OpType::kShiftRightLogical>);

  set(OpType::kEqual, BinaryTileOf<EqualOp, OpType::kEqual>);
  set(OpType::kNotEqual, BinaryTileOf<NotEqualOp, OpType::kNotEqual>);
  set(OpType::kGreaterThan, BinaryTileOf<GreaterThanOp, OpType::kGreaterThan>);
  set(OpType::kGreaterOrEqual, BinaryTileOf<GreaterOrEqualOp, OpType::kGreaterOrEqual>);
  set(OpType::kLessThan, BinaryTileOf<LessThanOp, OpType::kLessThan>);
  set(OpType::kLessOrEqual, BinaryTileOf<LessOrEqualOp, OpType::kLessOrEqual>);

  set(OpType::kWhere, WhereTileOf);
  set(OpType::kClamp, ClampTileOf);
  set(OpType::kConvertDType, ConvertTileOf);
  return table;
}

const std::array<TileFactory, ir::kNumOpTypes>& TileFactories() {
  static const std::array<TileFactory, ir::kNumOpTypes> table = MakeTileFactories();
  return table;
}

// The per-op kernel of every elementwise op: its tile kernel over chunks.
Kernel MakeElementwise(const ir::Function& fn, const ir::Instruction& instr) {
  std::vector<size_t> in_bytes;
  for (size_t i = 0; i < instr.operands.size(); ++i) in_bytes.push_back(dtypes::SizeOf(OperandShape(fn, instr, i).DType()));
  const int64_t n = instr.shape.Size();
  return ChunkedKernel(MakeTileKernel(fn, instr), std::move(in_bytes), dtypes::SizeOf(instr.shape.DType()), n,
                       n * TileCost(instr.op) > kParallelThreshold);
}

}  // namespace

bool HasTileKernel(ir::OpType op) { return TileFactories()[static_cast<size_t>(op)] != nullptr; }

TileKernel MakeTileKernel(const ir::Function& fn, const ir::Instruction& instr) {
  const TileFactory factory = TileFactories()[static_cast<size_t>(instr.op)];
  if (factory == nullptr) {
    Throw("cpu: " + std::string(ir::OpName(instr.op)) + " is not an elementwise op (" + instr.location + ")");
  }
  return factory(fn, instr);
}

int TileCost(ir::OpType op) { return TileFactories()[static_cast<size_t>(op)] == MathTileOf ? kMathCost : 1; }

void RegisterElementwiseKernels(KernelTable& table) {
  for (int op = 0; op < ir::kNumOpTypes; ++op) {
    if (TileFactories()[static_cast<size_t>(op)] != nullptr) table[static_cast<size_t>(op)] = MakeElementwise;
  }
}

}  // namespace kiln::backends::cpu
