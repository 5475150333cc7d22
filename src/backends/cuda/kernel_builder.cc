// Copyright 2026 The Kiln Authors.
// The CUDA code generator's building blocks (see kernel_builder.h): dtype
// spellings and literals, KernelBuilder's per-op expressions of fusible ops,
// and kernel sources.
#include "src/backends/cuda/kernel_builder.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <sstream>
#include <utility>

#include "kiln/core/error.h"
#include "src/ir/sort_prefix.h"

namespace kiln::backends::cuda::gen {

std::string Str(int64_t v) { return std::to_string(v) + "LL"; }

bool IsHalfType(dtypes::DType dt) { return dt == dtypes::Float16 || dt == dtypes::BFloat16; }

bool IsFloatType(dtypes::DType dt) { return IsHalfType(dt) || dt == dtypes::Float32 || dt == dtypes::Float64; }

bool IsIntType(dtypes::DType dt) { return !IsFloatType(dt) && dt != dtypes::Bool && !dtypes::IsComplex(dt); }

bool IsSignedType(dtypes::DType dt) {
  return dt == dtypes::Int8 || dt == dtypes::Int16 || dt == dtypes::Int32 || dt == dtypes::Int64;
}

[[noreturn]] void Unsupported(const ir::Instruction& in, const std::string& what) {
  Throw("cuda: " + std::string(ir::OpName(in.op)) + " " + what + " (" + in.shape.ToString() +
        (in.location.empty() ? "" : ", " + in.location) + ")");
}

std::string ComputeType(dtypes::DType dt) {
  if (IsHalfType(dt)) return "float";
  if (dt == dtypes::Bool) return "bool";
  return StorageType(dt);
}

std::string LoadExpr(dtypes::DType dt, const std::string& ref) {
  if (dt == dtypes::Float16) return "kH2F(" + ref + ")";
  if (dt == dtypes::BFloat16) return "kB2F(" + ref + ")";
  if (dt == dtypes::Bool) return "(" + ref + " != 0)";
  return ref;
}

std::string StoreExpr(dtypes::DType dt, const std::string& v) {
  if (dt == dtypes::Float16) return "kF2H(" + v + ")";
  if (dt == dtypes::BFloat16) return "kF2B(" + v + ")";
  if (dt == dtypes::Bool) return "(unsigned char)(" + v + ")";
  return v;
}

std::string RoundExpr(dtypes::DType dt, const std::string& v) {
  if (dt == dtypes::Float16) return "kRoundH(" + v + ")";
  if (dt == dtypes::BFloat16) return "kRoundB(" + v + ")";
  return v;
}

std::string Literal(dtypes::DType dt, const std::byte* p) {
  char buf[64];
  switch (dt) {
    case dtypes::Bool: return std::to_integer<int>(p[0]) != 0 ? "true" : "false";
    case dtypes::Int8: { int8_t v; std::memcpy(&v, p, 1); return "(signed char)" + std::to_string(v); }
    case dtypes::Int16: { int16_t v; std::memcpy(&v, p, 2); return "(short)" + std::to_string(v); }
    case dtypes::Int32: { int32_t v; std::memcpy(&v, p, 4); return "(int)" + std::to_string(static_cast<int64_t>(v)) + "LL"; }
    case dtypes::Int64: { uint64_t v; std::memcpy(&v, p, 8); return "(long long)" + std::to_string(v) + "ULL"; }
    case dtypes::Uint8: { uint8_t v; std::memcpy(&v, p, 1); return "(unsigned char)" + std::to_string(v); }
    case dtypes::Uint16: { uint16_t v; std::memcpy(&v, p, 2); return "(unsigned short)" + std::to_string(v); }
    case dtypes::Uint32: { uint32_t v; std::memcpy(&v, p, 4); return "(unsigned int)" + std::to_string(v) + "u"; }
    case dtypes::Uint64: { uint64_t v; std::memcpy(&v, p, 8); return std::to_string(v) + "ULL"; }
    case dtypes::Float16: { uint16_t v; std::memcpy(&v, p, 2); return "kH2F((unsigned short)" + std::to_string(v) + ")"; }
    case dtypes::BFloat16: { uint16_t v; std::memcpy(&v, p, 2); return "kB2F((unsigned short)" + std::to_string(v) + ")"; }
    case dtypes::Float32: {
      uint32_t v; std::memcpy(&v, p, 4);
      std::snprintf(buf, sizeof buf, "__uint_as_float(0x%08xu)", v);
      return buf;
    }
    case dtypes::Float64: {
      uint64_t v; std::memcpy(&v, p, 8);
      std::snprintf(buf, sizeof buf, "__longlong_as_double(0x%016llxLL)", static_cast<unsigned long long>(v));
      return buf;
    }
    case dtypes::Complex64:
    case dtypes::Complex128: {  // the two parts, as the part type's literals
      const dtypes::DType part = dtypes::RealPart(dt);
      const size_t size = static_cast<size_t>(dtypes::SizeOf(part));
      return "kcMake(" + Literal(part, p) + ", " + Literal(part, p + size) + ")";
    }
    default: break;
  }
  Throw("cuda: no literal for dtype " + std::string(dtypes::Name(dt)));
}

std::string NumberLiteral(dtypes::DType dt, double v) {
  if (dtypes::IsComplex(dt)) {
    const dtypes::DType part = dtypes::RealPart(dt);
    return "kcMake(" + NumberLiteral(part, v) + ", " + NumberLiteral(part, 0) + ")";
  }
  const std::string ct = ComputeType(dt);
  if (std::isinf(v)) return "(" + ct + ")(" + std::string(v < 0 ? "-" : "") + "__longlong_as_double(0x7ff0000000000000LL))";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return "(" + ct + ")(" + buf + ")";
}

std::string NaNLiteral(dtypes::DType dt) {
  return "(" + ComputeType(dt) + ")__longlong_as_double(0x7ff8000000000000LL)";
}

std::vector<int64_t> StridesOf(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

Idx LinearIdx(const std::string& lin) { return Idx{{}, lin, false}; }

Idx AxesIdx(std::vector<std::string> axes) {
  for (std::string& a : axes) {
    const bool plain = std::all_of(a.begin(), a.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
    if (!plain) a = "(" + a + ")";
  }
  return Idx{std::move(axes), "", true};
}

std::string ClampIndex(dtypes::DType dt, const std::string& v, int64_t lo, int64_t hi) {
  if (dtypes::IsUnsignedInteger(dt)) {
    return "((u64)(" + v + ") > (u64)" + Str(hi) + " ? " + Str(hi) + " : (i64)(" + v + "))";
  }
  return "((i64)(" + v + ") < " + Str(lo) + " ? " + Str(lo) + " : ((i64)(" + v + ") > " + Str(hi) + " ? " + Str(hi) +
         " : (i64)(" + v + ")))";
}

std::string KernelBuilder::Unary(const ir::Instruction& in, const std::string& x) {
  if (dtypes::IsComplex(I(in.operands[0]).shape.DType())) return ComplexUnary(in, x);
  const dtypes::DType dt = in.shape.DType();
  const bool d = dt == dtypes::Float64;
  auto f = [&](const char* name32, const char* name64) { return std::string(d ? name64 : name32) + "(" + x + ")"; };
  switch (in.op) {
    case OpType::kAbs:
      if (IsFloatType(dt)) return f("fabsf", "fabs");
      return IsSignedType(dt) ? "kAbsI(" + x + ")" : x;
    case OpType::kNeg: return IsFloatType(dt) ? "-" + x : "kNeg(" + x + ")";
    case OpType::kSign: return IsFloatType(dt) ? "kSignF(" + x + ")" : "kSignI(" + x + ")";
    case OpType::kCeil: return f("ceilf", "ceil");
    case OpType::kFloor: return f("floorf", "floor");
    case OpType::kRound: return f("rintf", "rint");
    case OpType::kExp: return f("expf", "exp");
    case OpType::kExpm1: return f("expm1f", "expm1");
    case OpType::kLog: return f("logf", "log");
    case OpType::kLog1p: return f("log1pf", "log1p");
    case OpType::kLogistic: return "kLogistic(" + x + ")";
    case OpType::kSin: return f("sinf", "sin");
    case OpType::kCos: return f("cosf", "cos");
    case OpType::kTanh: return f("tanhf", "tanh");
    case OpType::kSqrt: return f("sqrtf", "sqrt");
    case OpType::kRsqrt: return d ? "(1.0 / sqrt(" + x + "))" : "(1.0f / sqrtf(" + x + "))";
    case OpType::kErf: return f("erff", "erf");
    case OpType::kIsFinite: return "(" + x + " - " + x + " == 0)";
    case OpType::kIsNaN: return "(" + x + " != " + x + ")";
    case OpType::kBitCount: return "kPopc(" + x + ")";
    case OpType::kClz: return "kClz(" + x + ")";
    case OpType::kBitwiseNot: return "(" + StorageType(dt) + ")(~" + x + ")";
    case OpType::kLogicalNot: return "(!" + x + ")";
    default: break;
  }
  Unsupported(in, "is not a unary op");
}

// complex_math.cuh's functions and operators.
std::string KernelBuilder::ComplexUnary(const ir::Instruction& in, const std::string& x) {
  auto f = [&](const char* name) { return std::string(name) + "(" + x + ")"; };
  switch (in.op) {
    case OpType::kAbs: return f("kcAbs");
    case OpType::kNeg: return "(-" + x + ")";
    case OpType::kSign: return f("kcSign");
    case OpType::kExp: return f("kcExp");
    case OpType::kExpm1: return f("kcExpm1");
    case OpType::kLog: return f("kcLog");
    case OpType::kLog1p: return f("kcLog1p");
    case OpType::kSin: return f("kcSin");
    case OpType::kCos: return f("kcCos");
    case OpType::kTanh: return f("kcTanh");
    case OpType::kSqrt: return f("kcSqrt");
    case OpType::kRsqrt: return f("kcRsqrt");
    default: break;
  }
  Unsupported(in, "is not defined on complex numbers");
}

std::string KernelBuilder::Binary(const ir::Instruction& in, dtypes::DType dt, const std::string& a,
                                  const std::string& b) {
  if (dtypes::IsComplex(dt)) {
    switch (in.op) {
      case OpType::kAdd: return "(" + a + " + " + b + ")";
      case OpType::kSub: return "(" + a + " - " + b + ")";
      case OpType::kMul: return "(" + a + " * " + b + ")";
      case OpType::kDiv: return "(" + a + " / " + b + ")";
      case OpType::kPow: return "kcPow(" + a + ", " + b + ")";
      case OpType::kEqual: return "(" + a + " == " + b + ")";
      case OpType::kNotEqual: return "(" + a + " != " + b + ")";
      default: Unsupported(in, "is not defined on complex numbers");
    }
  }
  const bool fl = IsFloatType(dt), d = dt == dtypes::Float64;
  auto op = [&](const char* o) { return "(" + a + " " + o + " " + b + ")"; };
  auto call = [&](const std::string& fname) { return fname + "(" + a + ", " + b + ")"; };
  switch (in.op) {
    case OpType::kAdd: return fl ? op("+") : call("kAdd");
    case OpType::kSub: return fl ? op("-") : call("kSub");
    case OpType::kMul: return fl ? op("*") : call("kMul");
    case OpType::kDiv: return fl ? op("/") : call("kDivI");
    case OpType::kRem: return fl ? call(d ? "fmod" : "fmodf") : call("kRemI");
    case OpType::kPow: return fl ? call(d ? "pow" : "powf") : call("kPowI");
    case OpType::kMax: return call("kMax");
    case OpType::kMin: return call("kMin");
    // CUDA's atan2f is within 3 ulp; through double it is correctly rounded
    // but for double rounding (the CPU's std::atan2 is within 1).
    case OpType::kAtan2:
      if (dt == dtypes::Float32) return "(float)atan2((double)" + a + ", (double)" + b + ")";
      return call(d ? "atan2" : "atan2f");
    case OpType::kBitwiseAnd: return "(" + StorageType(dt) + ")" + op("&");
    case OpType::kBitwiseOr: return "(" + StorageType(dt) + ")" + op("|");
    case OpType::kBitwiseXor: return "(" + StorageType(dt) + ")" + op("^");
    case OpType::kLogicalAnd: return op("&&");
    case OpType::kLogicalOr: return op("||");
    case OpType::kLogicalXor: return op("!=");
    case OpType::kShiftLeft: return call("kShl");
    case OpType::kShiftRightArithmetic: return call("kShrA");
    case OpType::kShiftRightLogical: return call("kShrL");
    case OpType::kEqual: return op("==");
    case OpType::kNotEqual: return op("!=");
    case OpType::kGreaterThan: return op(">");
    case OpType::kGreaterOrEqual: return op(">=");
    case OpType::kLessThan: return op("<");
    case OpType::kLessOrEqual: return op("<=");
    default: break;
  }
  Unsupported(in, "is not a binary op");
}

// Conversion with the CPU backend's rules: float to integer truncates and
// saturates (NaN gives 0), integers wrap, anything nonzero is true.
std::string KernelBuilder::Convert(dtypes::DType from, dtypes::DType to, const std::string& v) {
  if (dtypes::IsComplex(to)) {  // from a real (its imaginary part 0) or the other complex type
    const std::string part = ComputeType(dtypes::RealPart(to));
    if (dtypes::IsComplex(from)) {  // Complex128 to Complex64 rounds each part, past the range to infinity
      if (to == dtypes::Complex64 && from == dtypes::Complex128) return "kcNarrow(" + v + ")";
      return "kcMake((" + part + ")(" + v + ").re, (" + part + ")(" + v + ").im)";
    }
    const std::string re = from == dtypes::Bool ? "(" + v + " ? 1 : 0)" : v;
    return "kcMake((" + part + ")(" + re + "), (" + part + ")0)";
  }
  if (dtypes::IsComplex(from)) Throw("cuda: no conversion from complex to " + std::string(dtypes::Name(to)));
  const std::string st = StorageType(to);
  if (to == dtypes::Bool) return "(" + v + " != 0)";
  if (from == dtypes::Bool) return "(" + ComputeType(to) + ")(" + v + " ? 1 : 0)";
  if (IsFloatType(from) && IsIntType(to)) {
    const std::string ft = ComputeType(from);
    double hi = 0, lo = 0;
    std::string hi_lit, lo_lit;
    switch (to) {
#define KILN_LIMITS(D, T)                                                              \
  case dtypes::D:                                                                      \
    hi = static_cast<double>(std::numeric_limits<T>::max());                           \
    lo = static_cast<double>(std::numeric_limits<T>::lowest());                        \
    hi_lit = "(" + st + ")" + std::to_string(std::numeric_limits<T>::max()) + "ULL";   \
    lo_lit = "(" + st + ")(" + std::to_string(std::numeric_limits<T>::lowest()) + "LL)"; \
    break;
      KILN_LIMITS(Int8, int8_t)
      KILN_LIMITS(Int16, int16_t)
      KILN_LIMITS(Int32, int32_t)
      KILN_LIMITS(Uint8, uint8_t)
      KILN_LIMITS(Uint16, uint16_t)
      KILN_LIMITS(Uint32, uint32_t)
      KILN_LIMITS(Uint64, uint64_t)
#undef KILN_LIMITS
      case dtypes::Int64:
        hi = 9223372036854775807.0;
        lo = -9223372036854775808.0;
        hi_lit = "(long long)9223372036854775807LL";
        lo_lit = "(long long)(-9223372036854775807LL - 1)";
        break;
      default: break;
    }
    // max() rounds up to 2^digits in From (or is exact), lowest() is exact.
    char hb[64], lb[64];
    std::snprintf(hb, sizeof hb, "(%s)%.17g", ft.c_str(), hi);
    std::snprintf(lb, sizeof lb, "(%s)%.17g", ft.c_str(), lo);
    return "((" + v + " != " + v + ") ? (" + st + ")0 : (" + v + " >= " + hb + " ? " + hi_lit + " : (" + v +
           " <= " + lb + " ? " + lo_lit + " : (" + st + ")" + v + ")))";
  }
  return RoundExpr(to, "(" + ComputeType(to) + ")(" + v + ")");
}

// `cond ? then : else` where each branch's statements only run when taken.
std::string KernelBuilder::Select(const std::string& cond, const std::function<std::string()>& then_value,
                                  const std::function<std::string()>& else_value, dtypes::DType dt) {
  const std::string out = Tmp("s");
  Line(ComputeType(dt) + " " + out + ";");
  Open("if (" + cond + ")");
  Line(out + " = " + then_value() + ";");
  Close();
  Open("else");
  Line(out + " = " + else_value() + ";");
  Close();
  return out;
}

std::string KernelBuilder::Compute(int id, const Idx& idx, bool at_out) {
  const ir::Instruction& in = I(id);
  const dtypes::DType dt = in.shape.DType();
  const auto& dims = in.shape.Dims();
  auto operand = [&](size_t k) { return in.operands[k]; };
  auto operand_dims = [&](size_t k) -> const std::vector<int64_t>& { return I(operand(k)).shape.Dims(); };
  switch (ir::CategoryOf(in.op)) {
    case OpCategory::kUnary: return RoundExpr(dt, Unary(in, Value(operand(0), idx, at_out)));
    case OpCategory::kBinary:
      return RoundExpr(dt, Binary(in, dt, Value(operand(0), idx, at_out), Value(operand(1), idx, at_out)));
    case OpCategory::kComparison: {
      const dtypes::DType odt = I(operand(0)).shape.DType();
      return Binary(in, odt, Value(operand(0), idx, at_out), Value(operand(1), idx, at_out));
    }
    default: break;
  }
  switch (in.op) {
    case OpType::kWhere: {
      // Operands may be scalars (broadcast) in the IR? No: Where's operands
      // have the output's shape except a scalar predicate.
      const std::string c = Value(operand(0), I(operand(0)).shape.Size() == 1 && dims.size() > 0 ? LinearIdx("0") : idx,
                                  at_out && I(operand(0)).shape.Dims() == dims);
      return "(" + c + " ? " + Value(operand(1), idx, at_out) + " : " + Value(operand(2), idx, at_out) + ")";
    }
    case OpType::kClamp: {
      auto v = [&](size_t k) {
        const bool scalar = I(operand(k)).shape.Dims().empty() && !dims.empty();
        return Value(operand(k), scalar ? LinearIdx("0") : idx, at_out && !scalar);
      };
      return "kMin(kMax(" + v(1) + ", " + v(0) + "), " + v(2) + ")";
    }
    case OpType::kConvertDType:
      return Convert(I(operand(0)).shape.DType(), dt, Value(operand(0), idx, at_out));
    case OpType::kComplex: {  // the parts may broadcast: Complex's IR operands have the output's shape
      const std::string part = ComputeType(dtypes::RealPart(dt));
      return "kcMake((" + part + ")" + Value(operand(0), idx, at_out) + ", (" + part + ")" +
             Value(operand(1), idx, at_out) + ")";
    }
    case OpType::kReal:
    case OpType::kImag:
      return "(" + Value(operand(0), idx, at_out) + (in.op == OpType::kReal ? ").re" : ").im");
    case OpType::kReshape: {
      if (I(operand(0)).shape.Size() == 1) return Value(operand(0), LinearIdx("0"), false);
      return Value(operand(0), LinearIdx(Linear(idx, dims)), at_out);
    }
    case OpType::kIota: {
      const int64_t axis = ir::Attr<ir::AxesAttrs>(in).axes[0];
      const auto axes = Axes(idx, dims);
      return RoundExpr(dt, "(" + ComputeType(dt) + ")(" + axes[static_cast<size_t>(axis)] + ")");
    }
    case OpType::kTranspose: {
      const auto& perm = ir::Attr<ir::AxesAttrs>(in).axes;
      const auto axes = Axes(idx, dims);
      std::vector<std::string> src(perm.size());
      for (size_t i = 0; i < perm.size(); ++i) src[static_cast<size_t>(perm[i])] = axes[i];
      return Value(operand(0), AxesIdx(src));
    }
    case OpType::kBroadcastInDim: {
      const auto& map = ir::Attr<ir::AxesAttrs>(in).axes;
      const auto& od = operand_dims(0);
      if (I(operand(0)).shape.Size() == 1) return Value(operand(0), LinearIdx("0"));
      const auto axes = Axes(idx, dims);
      std::vector<std::string> src(od.size());
      for (size_t i = 0; i < od.size(); ++i) src[i] = od[i] == 1 ? "0LL" : axes[static_cast<size_t>(map[i])];
      bool identity = od == dims;
      for (size_t i = 0; i < map.size(); ++i) identity = identity && map[i] == static_cast<int64_t>(i);
      return Value(operand(0), AxesIdx(src), at_out && identity);
    }
    case OpType::kSlice: {
      const auto& a = ir::Attr<ir::SliceAttrs>(in);
      const auto axes = Axes(idx, dims);
      std::vector<std::string> src(axes.size());
      for (size_t d = 0; d < axes.size(); ++d) {
        src[d] = Str(a.starts[d]) + " + " + axes[d] + (a.strides[d] == 1 ? "" : " * " + Str(a.strides[d]));
      }
      return Value(operand(0), AxesIdx(src));
    }
    case OpType::kReverse: {
      const auto& rev = ir::Attr<ir::AxesAttrs>(in).axes;
      auto axes = Axes(idx, dims);
      for (int64_t a : rev) axes[static_cast<size_t>(a)] = Str(dims[static_cast<size_t>(a)] - 1) + " - " + axes[static_cast<size_t>(a)];
      return Value(operand(0), AxesIdx(axes));
    }
    case OpType::kPad: {
      const auto& a = ir::Attr<ir::PadAttrs>(in);
      const auto& od = operand_dims(0);
      const auto axes = Axes(idx, dims);
      std::string cond = "true";
      std::vector<std::string> src(axes.size());
      for (size_t d = 0; d < axes.size(); ++d) {
        const std::string p = Tmp("p");
        Line("const i64 " + p + " = " + axes[d] + " - " + Str(a.low[d]) + ";");
        const int64_t step = a.interior[d] + 1;
        cond += " && " + p + " >= 0";
        if (step != 1) cond += " && " + p + " % " + Str(step) + " == 0";
        cond += " && " + p + (step != 1 ? " / " + Str(step) : "") + " < " + Str(od[d]);
        src[d] = step != 1 ? p + " / " + Str(step) : p;
      }
      return Select(cond, [&] { return Value(operand(0), AxesIdx(src)); },
                    [&] { return Value(operand(1), LinearIdx("0")); }, dt);
    }
    case OpType::kConcatenate: {
      const auto axis = static_cast<size_t>(ir::Attr<ir::AxesAttrs>(in).axes[0]);
      const auto axes = Axes(idx, dims);
      const std::string out = Tmp("c");
      Line(ComputeType(dt) + " " + out + ";");
      int64_t offset = 0;
      for (size_t k = 0; k < in.operands.size(); ++k) {
        const int64_t size = operand_dims(k)[axis];
        const bool last = k + 1 == in.operands.size();
        Open(std::string(k == 0 ? "" : "else ") + (last ? "" : "if (" + axes[axis] + " < " + Str(offset + size) + ")"));
        auto src = axes;
        src[axis] = axes[axis] + " - " + Str(offset);
        Line(out + " = " + Value(operand(k), AxesIdx(src)) + ";");
        Close();
        offset += size;
      }
      return out;
    }
    case OpType::kDynamicSlice: {
      const auto& od = operand_dims(0);
      const auto axes = Axes(idx, dims);
      std::vector<std::string> src(axes.size());
      for (size_t d = 0; d < axes.size(); ++d) {
        const std::string s = Value(operand(d + 1), LinearIdx("0"));
        const std::string c = Tmp("st");
        Line("const i64 " + c + " = " + ClampIndex(I(operand(d + 1)).shape.DType(), s, 0, od[d] - dims[d]) + ";");
        src[d] = c + " + " + axes[d];
      }
      return Value(operand(0), AxesIdx(src));
    }
    case OpType::kDynamicUpdateSlice: {
      const auto& ud = operand_dims(1);
      const auto axes = Axes(idx, dims);
      std::string cond = "true";
      std::vector<std::string> src(axes.size());
      for (size_t d = 0; d < axes.size(); ++d) {
        const std::string s = Value(operand(d + 2), LinearIdx("0"));
        const std::string c = Tmp("st");
        Line("const i64 " + c + " = " + ClampIndex(I(operand(d + 2)).shape.DType(), s, 0, dims[d] - ud[d]) + ";");
        src[d] = axes[d] + " - " + c;
        cond += " && " + src[d] + " >= 0 && " + src[d] + " < " + Str(ud[d]);
      }
      const Idx whole = idx;
      return Select(cond, [&] { return Value(operand(1), AxesIdx(src)); },
                    [&] { return Value(operand(0), whole, at_out); }, dt);
    }
    case OpType::kGetTupleElement: {
      // Element i of a Sort: operand i gathered along the axis by the
      // permutation, the Sort's value in a Program (see Generator::Sort).
      const ir::Instruction& sort = I(operand(0));
      if (sort.op != OpType::kSort) Unsupported(in, "of " + std::string(ir::OpName(sort.op)) + " has no CUDA kernel");
      const auto axis = static_cast<size_t>(ir::Attr<ir::SortAttrs>(sort).axis);
      const int source = sort.operands[static_cast<size_t>(ir::Attr<ir::TupleIndexAttrs>(in).index)];
      const Idx whole = idx;
      auto axes = Axes(idx, dims);
      axes[axis] = Value(operand(0), whole, at_out);
      // A partial sort (TopK) leaves the permutation undefined past the
      // prefix its Slices read; clamped, a kernel computing every position
      // still reads inside the operand.
      if (ir::SortPrefixNeeded(fn_, operand(0)) < dims[axis]) {
        const std::string clamped = Tmp("p");
        Line("const int " + clamped + " = kMin(kMax(" + axes[axis] + ", 0), " + std::to_string(dims[axis] - 1) + ");");
        axes[axis] = clamped;
      }
      return Value(source, AxesIdx(axes));
    }
    default: break;
  }
  Unsupported(in, "cannot be computed inside a fused kernel");
}

std::string KernelSource(const std::string& name, const KernelBuilder& b, const ir::Function& fn, int out_id,
                         const std::string& loop, bool out_const) {
  std::ostringstream s;
  s << "extern \"C\" __global__ void __launch_bounds__(" << kBlockSize << ") " << name << "(";
  for (size_t k = 0; k < b.Inputs().size(); ++k) {
    s << "const " << StorageType(fn.instructions[static_cast<size_t>(b.Inputs()[k])].shape.DType()) << "* __restrict__ in"
      << k << ", ";
  }
  s << (out_const ? "const " : "") << StorageType(fn.instructions[static_cast<size_t>(out_id)].shape.DType())
    << "* out) {\n"
    << loop << "}\n";
  return s.str();
}

std::string ThreadLoop(const std::string& var, int64_t count, const std::string& body) {
  return "  for (i64 " + var + " = (i64)blockIdx.x * blockDim.x + threadIdx.x; " + var + " < " + Str(count) + "; " +
         var + " += (i64)gridDim.x * blockDim.x) {\n" + body + "  }\n";
}

std::string BlockLoop(const std::string& var, int64_t count, const std::string& body) {
  return "  for (i64 " + var + " = blockIdx.x; " + var + " < " + Str(count) + "; " + var + " += gridDim.x) {\n" +
         body + "  }\n";
}

}  // namespace kiln::backends::cuda::gen
