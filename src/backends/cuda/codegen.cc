// Copyright 2026 The Kiln Authors.
// Kernel generation for the CUDA backend (see codegen.h): the fusion plan,
// the per-op expressions of fusible ops and the kernel bodies of the others.
#include "src/backends/cuda/codegen.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <optional>
#include <sstream>
#include <utility>

#include "kiln/core/error.h"
#include "src/backends/cuda/prelude.h"
#include "src/ir/cumulative_window.h"
#include "src/ir/sort_prefix.h"

// GCC 12 reports false -Wrestrict overlaps in `"literal" + std::string`
// concatenations once inlined (GCC bug 105329); this file is made of them.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wrestrict"
#endif

namespace kiln::backends::cuda {

using ir::OpCategory;
using ir::OpType;

namespace {

std::string Str(int64_t v) { return std::to_string(v) + "LL"; }

bool IsHalfType(dtypes::DType dt) { return dt == dtypes::Float16 || dt == dtypes::BFloat16; }
bool IsFloatType(dtypes::DType dt) { return IsHalfType(dt) || dt == dtypes::Float32 || dt == dtypes::Float64; }
bool IsIntType(dtypes::DType dt) { return !IsFloatType(dt) && dt != dtypes::Bool; }
bool IsSignedType(dtypes::DType dt) {
  return dt == dtypes::Int8 || dt == dtypes::Int16 || dt == dtypes::Int32 || dt == dtypes::Int64;
}

[[noreturn]] void Unsupported(const ir::Instruction& in, const std::string& what) {
  Throw("cuda: " + std::string(ir::OpName(in.op)) + " " + what + " (" + in.shape.ToString() +
        (in.location.empty() ? "" : ", " + in.location) + ")");
}

// The type values are computed in: float for the 16-bit floats, bool for Bool.
std::string ComputeType(dtypes::DType dt) {
  if (IsHalfType(dt)) return "float";
  if (dt == dtypes::Bool) return "bool";
  return StorageType(dt);
}

// An expression converting a stored element to its compute type.
std::string LoadExpr(dtypes::DType dt, const std::string& ref) {
  if (dt == dtypes::Float16) return "kH2F(" + ref + ")";
  if (dt == dtypes::BFloat16) return "kB2F(" + ref + ")";
  if (dt == dtypes::Bool) return "(" + ref + " != 0)";
  return ref;
}

// An expression converting a compute value to its stored form.
std::string StoreExpr(dtypes::DType dt, const std::string& v) {
  if (dt == dtypes::Float16) return "kF2H(" + v + ")";
  if (dt == dtypes::BFloat16) return "kF2B(" + v + ")";
  if (dt == dtypes::Bool) return "(unsigned char)(" + v + ")";
  return v;
}

// Rounds a compute value to the precision of dt (16-bit floats only).
std::string RoundExpr(dtypes::DType dt, const std::string& v) {
  if (dt == dtypes::Float16) return "kRoundH(" + v + ")";
  if (dt == dtypes::BFloat16) return "kRoundB(" + v + ")";
  return v;
}

// An exact literal of element `i` of a constant, in compute type.
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
    default: break;
  }
  Throw("cuda: no literal for dtype " + std::string(dtypes::Name(dt)));
}

// A literal of a double value in compute type dt (identities, bounds).
std::string NumberLiteral(dtypes::DType dt, double v) {
  const std::string ct = ComputeType(dt);
  if (std::isinf(v)) return "(" + ct + ")(" + std::string(v < 0 ? "-" : "") + "__longlong_as_double(0x7ff0000000000000LL))";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return "(" + ct + ")(" + buf + ")";
}

// A quiet NaN in compute type dt (a floating-point type).
std::string NaNLiteral(dtypes::DType dt) {
  return "(" + ComputeType(dt) + ")__longlong_as_double(0x7ff8000000000000LL)";
}

std::vector<int64_t> StridesOf(const std::vector<int64_t>& dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

// An index into a value: per-axis expressions and/or the row-major linear
// expression (either may be empty; one is always set).
struct Idx {
  std::vector<std::string> axes;
  std::string linear;
  bool has_axes = false;
};

Idx LinearIdx(const std::string& lin) { return Idx{{}, lin, false}; }
// Axis expressions are parenthesized (unless plain names), so ops can
// compose them freely ("3 - (k + 1)").
Idx AxesIdx(std::vector<std::string> axes) {
  for (std::string& a : axes) {
    const bool plain = std::all_of(a.begin(), a.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
    if (!plain) a = "(" + a + ")";
  }
  return Idx{std::move(axes), "", true};
}

// An i64 expression of index value `v` (of integer dtype `dt`) clamped to
// [lo, hi] (lo <= 0 <= hi), exact for every value of the dtype: an
// unsigned index above hi is hi, not a negative number.
std::string ClampIndex(dtypes::DType dt, const std::string& v, int64_t lo, int64_t hi) {
  if (dtypes::IsUnsignedInteger(dt)) {
    return "((u64)(" + v + ") > (u64)" + Str(hi) + " ? " + Str(hi) + " : (i64)(" + v + "))";
  }
  return "((i64)(" + v + ") < " + Str(lo) + " ? " + Str(lo) + " : ((i64)(" + v + ") > " + Str(hi) + " ? " + Str(hi) +
         " : (i64)(" + v + ")))";
}

// ----------------------------------------------------------------------
// Builds one kernel: the statements computing values, memoized per (value,
// index) within nested scopes.
class KernelBuilder {
 public:
  KernelBuilder(const ir::Function& fn, const std::vector<bool>& materialized) : fn_(fn), materialized_(materialized) {
    scopes_.emplace_back();
  }

  const ir::Instruction& I(int id) const { return fn_.instructions[static_cast<size_t>(id)]; }

  // A fresh local name.
  std::string Tmp(const char* prefix = "t") { return std::string("k_") + prefix + std::to_string(counter_++); }
  // The statements emitted so far, removed from the builder (which keeps its
  // inputs and names), so a kernel can place them in different loops.
  std::string TakeBody() {
    std::string s = std::move(body_);
    body_.clear();
    return s;
  }
  void PushScope(int indent) {
    scopes_.emplace_back();
    indent_ = indent;
  }
  void PopScope() { scopes_.pop_back(); }

  void Line(const std::string& s) { body_ += std::string(static_cast<size_t>(indent_) * 2, ' ') + s + "\n"; }
  void Open(const std::string& s) {
    Line(s + " {");
    ++indent_;
    scopes_.emplace_back();
  }
  void Close(const std::string& suffix = "") {
    scopes_.pop_back();
    --indent_;
    Line("}" + suffix);
  }

  // The kernel argument name of materialized value `id` (registering it).
  std::string Input(int id) {
    for (size_t k = 0; k < inputs_.size(); ++k) {
      if (inputs_[k] == id) return "in" + std::to_string(k);
    }
    inputs_.push_back(id);
    elementwise_.push_back(true);
    return "in" + std::to_string(inputs_.size() - 1);
  }
  void MarkNonElementwise(int id) {
    for (size_t k = 0; k < inputs_.size(); ++k) {
      if (inputs_[k] == id) elementwise_[k] = false;
    }
  }

  // The linear index of `idx` in a value of `dims`.
  std::string Linear(const Idx& idx, const std::vector<int64_t>& dims) {
    if (!idx.linear.empty()) return idx.linear;
    if (dims.empty()) return "0LL";
    const auto strides = StridesOf(dims);
    std::string s;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (dims[d] == 1) continue;
      s += (s.empty() ? "" : " + ") + ("(" + idx.axes[d] + ")" + (strides[d] == 1 ? "" : " * " + Str(strides[d])));
    }
    if (s.empty()) return "0LL";
    const std::string name = Tmp("l");
    Line("const i64 " + name + " = " + s + ";");
    return name;
  }

  // Per-axis index expressions of `idx` in a value of `dims`.
  std::vector<std::string> Axes(const Idx& idx, const std::vector<int64_t>& dims) {
    if (idx.has_axes) return idx.axes;
    const auto strides = StridesOf(dims);
    std::vector<std::string> axes(dims.size());
    for (size_t d = 0; d < dims.size(); ++d) {
      if (dims[d] == 1) {
        axes[d] = "0LL";
        continue;
      }
      std::string e = "(" + idx.linear + ")";
      if (strides[d] != 1) e = "(" + e + " / " + Str(strides[d]) + ")";
      if (d > 0) e = "(" + e + " % " + Str(dims[d]) + ")";
      const std::string name = Tmp("a");
      Line("const i64 " + name + " = " + e + ";");
      axes[d] = name;
    }
    return axes;
  }

  // Loads materialized value `id` at `idx`, in compute type.
  std::string Load(int id, const Idx& idx, bool at_output_index) {
    const ir::Instruction& in = I(id);
    const std::string arg = Input(id);
    if (!at_output_index) MarkNonElementwise(id);
    const std::string lin = in.shape.Size() == 1 ? "0" : Linear(idx, in.shape.Dims());
    return LoadExpr(in.shape.DType(), arg + "[" + lin + "]");
  }

  // The value of instruction `id` at `idx` (a local variable name or literal).
  // `at_output_index`: idx is the kernel's output linear index.
  std::string Value(int id, const Idx& idx, bool at_output_index = false) {
    const ir::Instruction& in = I(id);
    if (auto bound = bound_.find(id); bound != bound_.end()) return bound->second;
    if (in.op == OpType::kConstant && in.shape.Size() == 1) {
      return Literal(in.shape.DType(), ir::Attr<ir::ConstantAttrs>(in).data->data());
    }
    const std::string key = std::to_string(id) + "@" + (idx.has_axes ? Join(idx.axes) : idx.linear);
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto found = it->find(key);
      if (found != it->end()) return found->second;
    }
    std::string expr;
    if (materialized_[static_cast<size_t>(id)]) {
      expr = Load(id, idx, at_output_index);
    } else {
      expr = Compute(id, idx, at_output_index);
    }
    const std::string name = Tmp("v");
    Line("const " + ComputeType(in.shape.DType()) + " " + name + " = " + expr + ";");
    scopes_.back()[key] = name;
    return name;
  }

  // Makes scalar `id` (a sub-function's parameter) the expression `expr`.
  void Bind(int id, const std::string& expr) { bound_[id] = expr; }

  std::string Body() const { return body_; }
  const std::vector<int>& Inputs() const { return inputs_; }
  const std::vector<bool>& ElementwiseInputs() const { return elementwise_; }

  // The expression of a fusible op at `idx`.
  std::string Compute(int id, const Idx& idx, bool at_out);

 private:
  static std::string Join(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + ",";
    return s;
  }
  std::string Unary(const ir::Instruction& in, const std::string& x);
  std::string Binary(const ir::Instruction& in, dtypes::DType dt, const std::string& a, const std::string& b);
  std::string Convert(dtypes::DType from, dtypes::DType to, const std::string& v);
  std::string Select(const std::string& cond, const std::function<std::string()>& then_value,
                     const std::function<std::string()>& else_value, dtypes::DType dt);

  const ir::Function& fn_;
  const std::vector<bool>& materialized_;
  std::vector<std::map<std::string, std::string>> scopes_;
  std::map<int, std::string> bound_;
  std::vector<int> inputs_;
  std::vector<bool> elementwise_;
  std::string body_;
  int indent_ = 2;
  int counter_ = 0;
};

std::string KernelBuilder::Unary(const ir::Instruction& in, const std::string& x) {
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

std::string KernelBuilder::Binary(const ir::Instruction& in, dtypes::DType dt, const std::string& a,
                                  const std::string& b) {
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

// ----------------------------------------------------------------- Plan.

// Ops computed from their output index (fusible into consumers).
bool IsFusible(OpType op) {
  switch (ir::CategoryOf(op)) {
    case OpCategory::kUnary:
    case OpCategory::kBinary:
    case OpCategory::kComparison: return true;
    default: break;
  }
  switch (op) {
    case OpType::kWhere:
    case OpType::kClamp:
    case OpType::kConvertDType:
    case OpType::kReshape:
    case OpType::kIota:
    case OpType::kTranspose:
    case OpType::kBroadcastInDim:
    case OpType::kSlice:
    case OpType::kReverse:
    case OpType::kPad:
    case OpType::kConcatenate:
    case OpType::kDynamicSlice:
    case OpType::kDynamicUpdateSlice: return true;
    default: return false;
  }
}

// IsFusible for instruction `in` of `fn`: also a Sort's elements, gathered
// by its permutation where they are read (a While's or If's elements are
// buffers the sub-function wrote).
bool IsFusible(const ir::Function& fn, const ir::Instruction& in) {
  if (in.op == OpType::kGetTupleElement) return fn.instructions[static_cast<size_t>(in.operands[0])].op == OpType::kSort;
  return IsFusible(in.op);
}

bool IsReduce(OpType op) {
  switch (op) {
    case OpType::kReduceSum:
    case OpType::kReduceProduct:
    case OpType::kReduceMax:
    case OpType::kReduceMin:
    case OpType::kReduceLogicalAnd:
    case OpType::kReduceLogicalOr:
    case OpType::kReduceLogicalXor:
    case OpType::kReduceBitwiseAnd:
    case OpType::kReduceBitwiseOr:
    case OpType::kReduceBitwiseXor: return true;
    default: return false;
  }
}

// Whether consumer `in` computes operand `k` inline (else it needs a buffer).
// A Sort reads its keys (or, with a comparator, all its operands) in its
// kernels; its other operands are only read by its GetTupleElements.
bool ReadsOperandInline(const ir::Instruction& in, size_t k) {
  if (IsFusible(in.op)) return true;
  // Linear algebra copies its (last) operand into its buffer first.
  if (in.op == OpType::kCholesky) return k == 0;
  if (in.op == OpType::kTriangularSolve) return k == 1;
  if (IsReduce(in.op) || in.op == OpType::kArgMinMax) return k == 0;
  if (in.op == OpType::kSort) {
    const auto& a = ir::Attr<ir::SortAttrs>(in);
    return a.comparator < 0 && std::find(a.keys.begin(), a.keys.end(), static_cast<int64_t>(k)) == a.keys.end();
  }
  return false;
}

// Cheap to recompute in each consumer: scalar values and Iota.
bool IsCheap(const ir::Instruction& in) {
  return in.op == OpType::kIota || (in.op == OpType::kConstant && in.shape.Size() == 1);
}

// Puts DotGeneral operands into [batch, free, contracting] or [batch,
// contracting, free] layouts (inserting Transposes where needed), so each
// product is one batched matrix product.
ir::Function CanonicalizeDots(const ir::Function& fn) {
  ir::Function out;
  out.name = fn.name;
  out.subfunctions = fn.subfunctions;
  std::vector<int> map(fn.instructions.size());
  auto add = [&](ir::Instruction in) {
    out.instructions.push_back(std::move(in));
    return static_cast<int>(out.instructions.size()) - 1;
  };
  for (size_t id = 0; id < fn.instructions.size(); ++id) {
    ir::Instruction in = fn.instructions[id];
    for (int& o : in.operands) o = map[static_cast<size_t>(o)];
    if (in.op == OpType::kDotGeneral) {
      auto& a = std::get<ir::DotGeneralAttrs>(in.attrs);
      for (int side = 0; side < 2; ++side) {
        const int opnd = in.operands[static_cast<size_t>(side)];
        const ir::Instruction& x = out.instructions[static_cast<size_t>(opnd)];
        auto& batch = side == 0 ? a.lhs_batch : a.rhs_batch;
        auto& contracting = side == 0 ? a.lhs_contracting : a.rhs_contracting;
        std::vector<int64_t> free;
        for (int64_t d = 0; d < x.shape.Rank(); ++d) {
          if (std::find(batch.begin(), batch.end(), d) == batch.end() &&
              std::find(contracting.begin(), contracting.end(), d) == contracting.end()) {
            free.push_back(d);
          }
        }
        // lhs wants [batch, free, contracting]; rhs [batch, contracting, free];
        // the other order is a transposed matrix, also fine.
        std::vector<int64_t> want = batch, alt = batch;
        const auto& first = side == 0 ? free : contracting;
        const auto& second = side == 0 ? contracting : free;
        want.insert(want.end(), first.begin(), first.end());
        want.insert(want.end(), second.begin(), second.end());
        alt.insert(alt.end(), second.begin(), second.end());
        alt.insert(alt.end(), first.begin(), first.end());
        std::vector<int64_t> identity(static_cast<size_t>(x.shape.Rank()));
        std::iota(identity.begin(), identity.end(), 0);
        if (want == identity || alt == identity) continue;
        ir::Instruction t;
        t.op = OpType::kTranspose;
        t.operands = {opnd};
        std::vector<int64_t> tdims;
        for (int64_t d : want) tdims.push_back(x.shape.Dims()[static_cast<size_t>(d)]);
        t.shape = shapes::Shape(x.shape.DType(), tdims);
        t.attrs = ir::AxesAttrs{want};
        t.location = in.location;
        in.operands[static_cast<size_t>(side)] = add(std::move(t));
        // The operand's axes are now numbered in `want` order.
        const auto nb = static_cast<int64_t>(batch.size());
        const auto nf = static_cast<int64_t>(first.size());
        for (size_t i = 0; i < batch.size(); ++i) batch[i] = static_cast<int64_t>(i);
        for (size_t i = 0; i < contracting.size(); ++i) {
          contracting[i] = side == 0 ? nb + static_cast<int64_t>(free.size()) + static_cast<int64_t>(i)
                                     : nb + static_cast<int64_t>(i);
        }
        (void)nf;
      }
    }
    map[id] = add(std::move(in));
  }
  for (int p : fn.parameters) out.parameters.push_back(map[static_cast<size_t>(p)]);
  for (int o : fn.outputs) out.outputs.push_back(map[static_cast<size_t>(o)]);
  return out;
}

std::vector<bool> PlanMaterialized(const ir::Function& fn) {
  const size_t n = fn.instructions.size();
  std::vector<int> users(n, 0);
  std::vector<bool> needs_buffer(n, false);
  for (size_t id = 0; id < n; ++id) {
    const auto& in = fn.instructions[id];
    for (size_t k = 0; k < in.operands.size(); ++k) {
      const auto o = static_cast<size_t>(in.operands[k]);
      ++users[o];
      if (!ReadsOperandInline(in, k)) needs_buffer[o] = true;
    }
  }
  for (int o : fn.outputs) needs_buffer[static_cast<size_t>(o)] = true, users[static_cast<size_t>(o)] += 2;
  std::vector<bool> m(n, false);
  for (size_t id = 0; id < n; ++id) {
    const auto& in = fn.instructions[id];
    if (in.op == OpType::kParameter || needs_buffer[id] || !IsFusible(fn, in)) {
      m[id] = !(in.op == OpType::kConstant && in.shape.Size() == 1 && !needs_buffer[id]);
      continue;
    }
    if (IsCheap(in)) continue;
    // Broadcasting a scalar costs one load per element: duplicate it.
    if (in.op == OpType::kBroadcastInDim && fn.instructions[static_cast<size_t>(in.operands[0])].shape.Size() == 1) {
      continue;
    }
    m[id] = users[id] > 1;
  }
  return m;
}

// ---------------------------------------------------------------- Kernels.

std::string KernelSource(const std::string& name, const KernelBuilder& b, const ir::Function& fn, int out_id,
                         const std::string& loop, bool out_const = false) {
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

// The grid-stride loop over `count` items, `var` the item index.
std::string ThreadLoop(const std::string& var, int64_t count, const std::string& body) {
  return "  for (i64 " + var + " = (i64)blockIdx.x * blockDim.x + threadIdx.x; " + var + " < " + Str(count) + "; " +
         var + " += (i64)gridDim.x * blockDim.x) {\n" + body + "  }\n";
}
std::string BlockLoop(const std::string& var, int64_t count, const std::string& body) {
  return "  for (i64 " + var + " = blockIdx.x; " + var + " < " + Str(count) + "; " + var + " += gridDim.x) {\n" +
         body + "  }\n";
}

class Generator {
 public:
  Generator(Program& p, const ProgramOptions& options) : p_(p), fn_(p.function), options_(options) {}

  void Run() {
    const size_t count = fn_.instructions.size();  // not the scratch values steps append
    for (size_t id = 0; id < count; ++id) {
      const ir::Instruction& in = fn_.instructions[id];
      const int vid = static_cast<int>(id);
      if (!p_.materialized[id]) continue;
      if (in.op == OpType::kParameter) {
        p_.steps.push_back({StepKind::kParameter, vid, ir::Attr<ir::ParameterAttrs>(in).index});
      } else if (in.op == OpType::kConstant) {
        p_.steps.push_back({StepKind::kConstant, vid, 0});
      } else if (in.op == OpType::kBitcast || (in.op == OpType::kReshape && p_.materialized[static_cast<size_t>(in.operands[0])])) {
        if (!p_.materialized[static_cast<size_t>(in.operands[0])]) Unsupported(in, "needs a materialized operand");
        p_.steps.push_back({StepKind::kAlias, vid, 0});
      } else if (in.op == OpType::kSort) {
        Sort(vid);
      } else if (in.op == OpType::kWhile || in.op == OpType::kIf) {
        p_.steps.push_back({in.op == OpType::kWhile ? StepKind::kWhile : StepKind::kIf, vid, 0});
      } else if (in.op == OpType::kLu) {
        Lu(vid);
      } else if (in.op == OpType::kQr) {
        Qr(vid);
      } else if (in.op == OpType::kEigh) {
        Eigh(vid);
      } else if (in.op == OpType::kSvd) {
        Svd(vid);
      } else if (in.op == OpType::kGetTupleElement && elements_.count(in.operands[0]) > 0) {
        // An element of a factorization: its buffer.
        const auto index = static_cast<size_t>(ir::Attr<ir::TupleIndexAttrs>(in).index);
        p_.function.instructions[id].operands[0] = elements_.at(in.operands[0]).at(index);
        p_.steps.push_back({StepKind::kAlias, vid, 0});
      } else if (in.op == OpType::kGetTupleElement && !IsFusible(fn_, in)) {
        if (I(in.operands[0]).op != OpType::kWhile && I(in.operands[0]).op != OpType::kIf) {
          Unsupported(in, "of " + std::string(ir::OpName(I(in.operands[0]).op)) + " has no CUDA kernel");
        }
        p_.steps.push_back({StepKind::kTupleElement, vid, static_cast<int>(ir::Attr<ir::TupleIndexAttrs>(in).index)});
      } else if (in.shape.Size() == 0) {
        p_.steps.push_back({StepKind::kKernel, vid, Add(EmptyKernel(vid))});
      } else if (IsFusible(fn_, in)) {
        p_.steps.push_back({StepKind::kKernel, vid, Add(Elementwise(vid))});
      } else if (IsReduce(in.op)) {
        p_.steps.push_back({StepKind::kKernel, vid, Add(Reduce(vid))});
      } else {
        switch (in.op) {
          case OpType::kArgMinMax: p_.steps.push_back({StepKind::kKernel, vid, Add(ArgMinMax(vid))}); break;
          case OpType::kDotGeneral: Dot(vid); break;
          case OpType::kConvGeneral:
            if (!GemmConv(vid)) p_.steps.push_back({StepKind::kKernel, vid, Add(Conv(vid))});
            break;
          case OpType::kReduceWindow: p_.steps.push_back({StepKind::kKernel, vid, Add(ReduceWindow(vid))}); break;
          case OpType::kSelectAndScatter:
            p_.steps.push_back({StepKind::kKernel, vid, Add(SelectAndScatter(vid))});
            break;
          case OpType::kGather: p_.steps.push_back({StepKind::kKernel, vid, Add(Gather(vid))}); break;
          case OpType::kScatterSum:
          case OpType::kScatterMax:
          case OpType::kScatterMin:
          case OpType::kScatterUpdate:
            if (in.op == OpType::kScatterSum && IsHalfType(in.shape.DType()) &&
                fn_.instructions[static_cast<size_t>(in.operands[2])].shape.Size() > 0) {
              HalfScatterSum(vid);
              break;
            }
            p_.steps.push_back({StepKind::kKernel, vid, Add(CopyOperand(vid))});
            if (fn_.instructions[static_cast<size_t>(in.operands[2])].shape.Size() > 0) {
              p_.steps.push_back({StepKind::kUpdate, vid, Add(Scatter(vid, vid))});
            }
            break;
          case OpType::kRNGBitGenerator: p_.steps.push_back({StepKind::kKernel, vid, Add(Rng(vid))}); break;
          case OpType::kCholesky: Cholesky(vid); break;
          case OpType::kTriangularSolve: TriangularSolve(vid); break;
          default: Unsupported(in, "has no CUDA kernel");
        }
      }
    }
  }

 private:
  const ir::Instruction& I(int id) const { return fn_.instructions[static_cast<size_t>(id)]; }
  int Add(KernelSpec k) {
    p_.kernels.push_back(std::move(k));
    return static_cast<int>(p_.kernels.size()) - 1;
  }
  std::string Name(int id, const char* kind) { return std::string("kiln_") + kind + "_" + std::to_string(id); }

  KernelSpec Finish(const KernelBuilder& b, int id, const char* kind, const std::string& loop, int64_t items,
                    bool per_block) {
    KernelSpec k;
    k.name = Name(id, kind);
    k.source = KernelSource(k.name, b, fn_, id, loop);
    k.inputs = b.Inputs();
    k.elementwise_input = b.ElementwiseInputs();
    k.work_items = items;
    k.block_per_item = per_block;
    return k;
  }

  KernelSpec EmptyKernel(int id) {
    KernelBuilder b(fn_, p_.materialized);
    return Finish(b, id, "empty", "", 0, false);
  }

  KernelSpec Elementwise(int id) {
    const ir::Instruction& in = I(id);
    KernelBuilder b(fn_, p_.materialized);
    const std::string v = b.Compute(id, LinearIdx("i"), true);
    const std::string body = b.Body() + "    out[i] = " + StoreExpr(in.shape.DType(), v) + ";\n";
    return Finish(b, id, "fused", ThreadLoop("i", in.shape.Size(), body), in.shape.Size(), false);
  }

  // Float16/BFloat16 ScatterSum accumulates in float32 (as on the CPU):
  // the operand is widened into a scratch buffer, the updates are added to
  // it atomically, and the sums are rounded once into the output.
  void HalfScatterSum(int id) {
    const ir::Instruction& in = I(id);
    const shapes::Shape shape = in.shape;
    const int operand = in.operands[0];
    const int wide = AddScratch(shape.WithDType(dtypes::Float32));
    {
      KernelBuilder b(fn_, p_.materialized);
      const std::string v = b.Value(operand, LinearIdx("i"), true);
      const std::string body = b.Body() + "    out[i] = (float)" + v + ";\n";
      p_.steps.push_back({StepKind::kKernel, wide, Add(FinishScratch(b, wide, "widen", ThreadLoop("i", shape.Size(), body), shape.Size()))});
    }
    p_.steps.push_back({StepKind::kUpdate, wide, Add(Scatter(id, wide))});
    KernelBuilder b(fn_, p_.materialized);
    const std::string v = b.Value(wide, LinearIdx("i"), true);
    const std::string body = b.Body() + "    out[i] = " + StoreExpr(shape.DType(), v) + ";\n";
    p_.steps.push_back({StepKind::kKernel, id, Add(Finish(b, id, "narrow", ThreadLoop("i", shape.Size(), body), shape.Size(), false))});
  }

  // Operand k of `id` (of the same shape) copied into its buffer.
  KernelSpec CopyOperand(int id, size_t k = 0) {
    const ir::Instruction& in = I(id);
    KernelBuilder b(fn_, p_.materialized);
    const std::string v = b.Value(in.operands[k], LinearIdx("i"), true);
    const std::string body = b.Body() + "    out[i] = " + StoreExpr(in.shape.DType(), v) + ";\n";
    return Finish(b, id, "copy", ThreadLoop("i", in.shape.Size(), body), in.shape.Size(), false);
  }

  // Reductions: the accumulator type, identity and combining expression.
  struct ReduceKind {
    std::string acc_type, identity;
    std::function<std::string(const std::string&, const std::string&)> combine;
  };
  ReduceKind KindOf(OpType op, dtypes::DType dt) {
    const std::string acc = IsHalfType(dt) ? "float" : ComputeType(dt);
    auto lit = [&](double v) { return "(" + acc + ")(" + NumberLiteral(dt, v) + ")"; };
    switch (op) {
      case OpType::kReduceSum:
        return {acc, lit(0), [dt](const std::string& a, const std::string& b) {
                  return IsFloatType(dt) ? "(" + a + " + " + b + ")" : "kAdd(" + a + ", " + b + ")";
                }};
      case OpType::kReduceProduct:
        return {acc, lit(1), [dt](const std::string& a, const std::string& b) {
                  return IsFloatType(dt) ? "(" + a + " * " + b + ")" : "kMul(" + a + ", " + b + ")";
                }};
      case OpType::kReduceMax: {
        std::string id = IsFloatType(dt) ? lit(-INFINITY) : "(" + acc + ")" + IntLimit(dt, false);
        return {acc, id, [](const std::string& a, const std::string& b) { return "kMax(" + a + ", " + b + ")"; }};
      }
      case OpType::kReduceMin: {
        std::string id = IsFloatType(dt) ? lit(INFINITY) : "(" + acc + ")" + IntLimit(dt, true);
        return {acc, id, [](const std::string& a, const std::string& b) { return "kMin(" + a + ", " + b + ")"; }};
      }
      case OpType::kReduceLogicalAnd:
        return {"bool", "true", [](const std::string& a, const std::string& b) { return "(" + a + " && " + b + ")"; }};
      case OpType::kReduceLogicalOr:
        return {"bool", "false", [](const std::string& a, const std::string& b) { return "(" + a + " || " + b + ")"; }};
      case OpType::kReduceLogicalXor:
        return {"bool", "false", [](const std::string& a, const std::string& b) { return "(" + a + " != " + b + ")"; }};
      case OpType::kReduceBitwiseAnd:
        return {acc, "(" + acc + ")(~0ULL)",
                [acc](const std::string& a, const std::string& b) { return "(" + acc + ")(" + a + " & " + b + ")"; }};
      case OpType::kReduceBitwiseOr:
        return {acc, "(" + acc + ")0",
                [acc](const std::string& a, const std::string& b) { return "(" + acc + ")(" + a + " | " + b + ")"; }};
      case OpType::kReduceBitwiseXor:
        return {acc, "(" + acc + ")0",
                [acc](const std::string& a, const std::string& b) { return "(" + acc + ")(" + a + " ^ " + b + ")"; }};
      default: break;
    }
    Throw("cuda: not a reduction");
  }

  // The largest (or smallest, `max` false... ) value of an integer dtype as a literal.
  static std::string IntLimit(dtypes::DType dt, bool max) {
    switch (dt) {
      case dtypes::Int8: return max ? "127" : "(-128)";
      case dtypes::Int16: return max ? "32767" : "(-32768)";
      case dtypes::Int32: return max ? "2147483647" : "(-2147483647 - 1)";
      case dtypes::Int64: return max ? "9223372036854775807LL" : "(-9223372036854775807LL - 1)";
      case dtypes::Uint8: return max ? "255" : "0";
      case dtypes::Uint16: return max ? "65535" : "0";
      case dtypes::Uint32: return max ? "4294967295u" : "0u";
      case dtypes::Uint64: return max ? "18446744073709551615ULL" : "0ULL";
      default: return "0";
    }
  }

  // A tree reduction of `v` across the block into thread 0 (shared memory).
  static std::string BlockCombine(const std::string& acc_type, const std::string& v,
                                  const std::function<std::string(const std::string&, const std::string&)>& combine) {
    std::string s;
    s += "    __shared__ " + acc_type + " red[" + std::to_string(kBlockSize) + "];\n";
    s += "    red[threadIdx.x] = " + v + ";\n    __syncthreads();\n";
    s += "    for (int w = " + std::to_string(kBlockSize / 2) + "; w > 0; w >>= 1) {\n";
    s += "      if ((int)threadIdx.x < w) red[threadIdx.x] = " + combine("red[threadIdx.x]", "red[threadIdx.x + w]") +
         ";\n      __syncthreads();\n    }\n";
    return s;
  }

  KernelSpec Reduce(int id) {
    const ir::Instruction& in = I(id);
    const ir::Instruction& x = I(in.operands[0]);
    const auto& raxes = ir::Attr<ir::AxesAttrs>(in).axes;
    const auto& xd = x.shape.Dims();
    std::vector<int64_t> kept, red;
    for (int64_t d = 0; d < static_cast<int64_t>(xd.size()); ++d) {
      (std::find(raxes.begin(), raxes.end(), d) != raxes.end() ? red : kept).push_back(d);
    }
    int64_t rsize = 1;
    for (int64_t d : red) rsize *= xd[static_cast<size_t>(d)];
    const int64_t outs = in.shape.Size();
    const ReduceKind k = KindOf(in.op, in.shape.DType());
    const bool per_block = rsize >= 128;
    KernelBuilder b(fn_, p_.materialized);
    std::vector<int64_t> rdims;
    for (int64_t d : red) rdims.push_back(xd[static_cast<size_t>(d)]);
    const std::vector<std::string> oax = b.Axes(LinearIdx("o"), in.shape.Dims());
    const std::string opre = b.TakeBody();
    b.PushScope(3);  // the values of the accumulation loop
    const std::vector<std::string> rax = b.Axes(LinearIdx("r"), rdims);
    std::vector<std::string> xax(xd.size());
    for (size_t i = 0; i < kept.size(); ++i) xax[static_cast<size_t>(kept[i])] = oax[i];
    for (size_t i = 0; i < red.size(); ++i) xax[static_cast<size_t>(red[i])] = rax[i];
    const std::string v = b.Value(in.operands[0], AxesIdx(xax));
    b.PopScope();
    const dtypes::DType dt = in.shape.DType();
    // Float sums are compensated (Kahan): each thread adds thousands of
    // elements of a large reduction in sequence, and the CPU sums pairwise.
    // A non-finite compensation (after an Inf) is dropped so Inf + x stays Inf.
    const bool kahan = in.op == OpType::kReduceSum && IsFloatType(dt);
    std::string loop_body = b.TakeBody();
    if (kahan) {
      loop_body += "      { const " + k.acc_type + " y = (" + k.acc_type + ")" + v + " - comp; const " + k.acc_type +
                   " t = acc + y; comp = (t - acc) - y; if (!(comp - comp == 0)) comp = 0; acc = t; }\n";
    } else {
      loop_body += "      acc = " + k.combine("acc", "(" + k.acc_type + ")" + v) + ";\n";
    }
    std::string body;
    body += opre;
    body += "    " + k.acc_type + " acc = " + k.identity + ";\n";
    if (kahan) body += "    " + k.acc_type + " comp = 0;\n";
    if (per_block) {
      body += "    for (i64 r = threadIdx.x; r < " + Str(rsize) + "; r += blockDim.x) {\n" + loop_body + "    }\n";
      body += BlockCombine(k.acc_type, "acc", k.combine);
      body += "    if (threadIdx.x == 0) out[o] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")red[0]") + ";\n";
      body += "    __syncthreads();\n";
    } else {
      body += "    for (i64 r = 0; r < " + Str(rsize) + "; ++r) {\n" + loop_body + "    }\n";
      body += "    out[o] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")acc") + ";\n";
    }
    KernelSpec spec = Finish(b, id, "reduce", per_block ? BlockLoop("o", outs, body) : ThreadLoop("o", outs, body),
                             outs, per_block);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  KernelSpec ArgMinMax(int id) {
    const ir::Instruction& in = I(id);
    const ir::Instruction& x = I(in.operands[0]);
    const auto& a = ir::Attr<ir::ArgMinMaxAttrs>(in);
    const auto axis = static_cast<size_t>(a.axis);
    const auto& xd = x.shape.Dims();
    KernelBuilder b(fn_, p_.materialized);
    std::vector<std::string> oax = b.Axes(LinearIdx("o"), in.shape.Dims());
    std::string pre = b.TakeBody();
    b.PushScope(3);
    std::vector<std::string> xax;
    for (size_t d = 0, o = 0; d < xd.size(); ++d) xax.push_back(d == axis ? "r" : oax[o++]);
    const std::string v = b.Value(in.operands[0], AxesIdx(xax));
    b.PopScope();
    const std::string loop_values = b.TakeBody();
    const std::string ct = ComputeType(x.shape.DType());
    const std::string better = a.is_min ? "<" : ">";
    // The first extremum, or the first NaN (a NaN beats everything).
    std::string body = pre + "    i64 best = 0; " + ct + " best_v = (" + ct + ")0; bool nan = false;\n";
    body += "    for (i64 r = 0; r < " + Str(xd[axis]) + "; ++r) {\n" + loop_values;
    body += "      if (nan) break;\n";
    body += "      if (" + v + " != " + v + ") { best = r; nan = true; }\n";
    body += "      else if (r == 0 || " + v + " " + better + " best_v) { best = r; best_v = " + v + "; }\n    }\n";
    body += "    out[o] = (" + StorageType(in.shape.DType()) + ")best;\n";
    KernelSpec spec = Finish(b, id, "argminmax", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  void Dot(int id) {
    const ir::Instruction& in = I(id);
    const auto& a = ir::Attr<ir::DotGeneralAttrs>(in);
    const ir::Instruction& lhs = I(in.operands[0]);
    const ir::Instruction& rhs = I(in.operands[1]);
    MatmulSpec m;
    m.lhs = in.operands[0];
    m.rhs = in.operands[1];
    auto prod = [](const std::vector<int64_t>& dims, const std::vector<int64_t>& axes) {
      int64_t p = 1;
      for (int64_t ax : axes) p *= dims[static_cast<size_t>(ax)];
      return p;
    };
    m.batch = prod(lhs.shape.Dims(), a.lhs_batch);
    m.k = prod(lhs.shape.Dims(), a.lhs_contracting);
    const int64_t lhs_size = lhs.shape.Size(), rhs_size = rhs.shape.Size();
    m.m = m.batch * m.k == 0 ? 0 : lhs_size / (m.batch * m.k);
    m.n = m.batch * m.k == 0 ? 0 : rhs_size / (m.batch * m.k);
    if (m.batch * m.k == 0) {  // recover m and n from the output when an extent is 0
      const int64_t nb = static_cast<int64_t>(a.lhs_batch.size());
      const int64_t nm = lhs.shape.Rank() - nb - static_cast<int64_t>(a.lhs_contracting.size());
      m.m = 1;
      for (int64_t i = 0; i < nm; ++i) m.m *= in.shape.Dims()[static_cast<size_t>(nb + i)];
      m.n = 1;
      for (size_t i = static_cast<size_t>(nb + nm); i < in.shape.Dims().size(); ++i) m.n *= in.shape.Dims()[i];
    }
    // After CanonicalizeDots: lhs is [b, m, k] unless its contracting axes come first.
    const int64_t nb = static_cast<int64_t>(a.lhs_batch.size());
    m.transpose_lhs = !a.lhs_contracting.empty() && a.lhs_contracting[0] == nb &&
                      lhs.shape.Rank() > nb + static_cast<int64_t>(a.lhs_contracting.size());
    const int64_t rb = static_cast<int64_t>(a.rhs_batch.size());
    m.transpose_rhs = !a.rhs_contracting.empty() && a.rhs_contracting[0] != rb;
    if (MatmulDType(in.shape.DType()) && in.shape.Size() > 0 && m.k > 0) {
      m.dtype = in.shape.DType();
      p_.matmuls.push_back(m);
      p_.steps.push_back({StepKind::kMatmul, id, static_cast<int>(p_.matmuls.size()) - 1});
      return;
    }
    // Generic kernel (integers, empty contractions).
    KernelBuilder b(fn_, p_.materialized);
    const std::string L = b.Input(m.lhs), R = b.Input(m.rhs);
    const dtypes::DType dt = in.shape.DType();
    const std::string acc = IsHalfType(dt) ? "float" : ComputeType(dt);
    const std::string li = m.transpose_lhs ? "(bi * " + Str(m.k) + " + kk) * " + Str(m.m) + " + mi"
                                           : "(bi * " + Str(m.m) + " + mi) * " + Str(m.k) + " + kk";
    const std::string ri = m.transpose_rhs ? "(bi * " + Str(m.n) + " + ni) * " + Str(m.k) + " + kk"
                                           : "(bi * " + Str(m.k) + " + kk) * " + Str(m.n) + " + ni";
    const std::string lv = "(" + acc + ")" + LoadExpr(lhs.shape.DType(), L + "[" + li + "]");
    const std::string rv = "(" + acc + ")" + LoadExpr(rhs.shape.DType(), R + "[" + ri + "]");
    std::string body = "    const i64 ni = o % " + Str(std::max<int64_t>(m.n, 1)) + ", mi = (o / " +
                       Str(std::max<int64_t>(m.n, 1)) + ") % " + Str(std::max<int64_t>(m.m, 1)) + ", bi = o / " +
                       Str(std::max<int64_t>(m.n * m.m, 1)) + ";\n";
    body += "    " + acc + " acc = (" + acc + ")0;\n";
    body += "    for (i64 kk = 0; kk < " + Str(m.k) + "; ++kk) acc = " +
            (IsFloatType(dt) ? "acc + " + lv + " * " + rv : "kAdd(acc, kMul(" + lv + ", " + rv + "))") + ";\n";
    body += "    out[o] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")acc") + ";\n";
    KernelSpec spec = Finish(b, id, "dot", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    p_.steps.push_back({StepKind::kKernel, id, Add(std::move(spec))});
  }

  // ------------------------------------------------------ Linear algebra.
  //
  // On cuSOLVER and cuBLAS (SolverSpec): a kernel copies the operand into
  // the output's buffer (its producers fused), the library factors or
  // solves in place, and a kernel per matrix then gives the CPU backend's
  // results where LAPACK reports a failure: NaN matrices.

  // Matrices up to this order go through the libraries' batched entry
  // points when there are several (one launch for the batch; those are
  // written for small matrices).
  static constexpr int64_t kBatchedOrder = 64;

  int AddSolver(const SolverSpec& s) {
    p_.solvers.push_back(s);
    return static_cast<int>(p_.solvers.size()) - 1;
  }

  // Row-major L (A = L Lᵀ) is the column-major reading of U (A = UᵀU): the
  // library factors the opposite triangle of the same bytes.
  void Cholesky(int id) {
    const ir::Instruction& in = I(id);
    const auto& d = in.shape.Dims();
    if (d.size() < 2 || d.back() != d[d.size() - 2] || in.shape != I(in.operands[0]).shape) {
      Unsupported(in, "has inconsistent shapes " + I(in.operands[0]).shape.ToString() + " -> " + in.shape.ToString());
    }
    RequireSolverDType(in, in.shape);
    SolverSpec s;
    s.kind = SolverSpec::Kind::kPotrf;
    s.dtype = in.shape.DType();
    s.rows = s.cols = d.back();
    s.batch = in.shape.Size() / (s.rows * s.cols);
    s.lower = !ir::Attr<ir::LinalgAttrs>(in).lower;
    s.batched = s.batch > 1 && s.rows <= kBatchedOrder;
    p_.steps.push_back({StepKind::kKernel, id, Add(CopyOperand(id))});
    s.outputs = {AddScratch(shapes::Shape(dtypes::Int32, {s.batch}))};
    p_.steps.push_back({StepKind::kSolver, id, AddSolver(s)});
    p_.steps.push_back({StepKind::kUpdate, id, Add(CholeskyFinish(id, s))});
  }

  // NaN where potrf failed (not positive definite) or the factor is not
  // finite (the triangle read held NaN or Inf); zeros in the other triangle.
  KernelSpec CholeskyFinish(int id, const SolverSpec& s) {
    const std::string T = ComputeType(s.dtype), N = Str(s.rows), NN = Str(s.rows * s.rows);
    // The row-major triangle kept (the opposite of the column-major one).
    const std::string keep = s.lower ? "c >= r" : "c <= r";
    KernelBuilder b(fn_, p_.materialized);
    const std::string info = b.Input(s.outputs[0]);
    std::string body = "    __shared__ int bad;\n";
    body += "    const i64 base = mat * " + NN + ";\n";
    body += "    if (threadIdx.x == 0) bad = " + info + "[mat] != 0;\n";
    body += "    __syncthreads();\n";
    body += "    for (i64 e = threadIdx.x; e < " + NN + "; e += blockDim.x) {\n";
    body += "      const i64 r = e / " + N + ", c = e % " + N + ";\n";
    body += "      if (" + keep + " && !(out[base + e] - out[base + e] == (" + T + ")0)) bad = 1;\n";
    body += "    }\n    __syncthreads();\n";
    body += "    const int failed = bad;\n";
    body += "    for (i64 e = threadIdx.x; e < " + NN + "; e += blockDim.x) {\n";
    body += "      const i64 r = e / " + N + ", c = e % " + N + ";\n";
    body += "      if (failed) out[base + e] = " + NaNLiteral(s.dtype) + ";\n";
    body += "      else if (!(" + keep + ")) out[base + e] = (" + T + ")0;\n";
    body += "    }\n    __syncthreads();\n";  // all have read `bad` before the next matrix resets it
    KernelSpec k = Finish(b, id, "cholesky_finish", BlockLoop("mat", s.batch, body), s.batch, true);
    std::fill(k.elementwise_input.begin(), k.elementwise_input.end(), false);
    return k;
  }

  // Row-major B (m x n) read column-major is Bᵀ: op(A) X = B is
  // Xᵀ op(A)ᵀ = Bᵀ, a right-side solve of the column-major reading by the
  // column-major reading of A (Aᵀ, the opposite triangle), with the same
  // transpose flag; X op(A) = B is likewise a left-side solve.
  void TriangularSolve(int id) {
    const ir::Instruction& in = I(id);
    const shapes::Shape& as = I(in.operands[0]).shape;
    const shapes::Shape& bs = I(in.operands[1]).shape;
    const auto& attrs = ir::Attr<ir::LinalgAttrs>(in);
    if (as.Rank() < 2 || as.Rank() != bs.Rank() || in.shape != bs || as.DType() != bs.DType() ||
        !std::equal(as.Dims().begin(), as.Dims().end() - 2, bs.Dims().begin()) ||
        as.Dims()[as.Rank() - 2] != as.Dims().back() ||
        as.Dims().back() != bs.Dims()[static_cast<size_t>(attrs.left_side ? bs.Rank() - 2 : bs.Rank() - 1)]) {
      Unsupported(in, "has inconsistent shapes " + as.ToString() + " and " + bs.ToString() + " -> " + in.shape.ToString());
    }
    RequireSolverDType(in, in.shape);
    SolverSpec s;
    s.kind = SolverSpec::Kind::kTrsm;
    s.dtype = in.shape.DType();
    s.rows = bs.Dims().back();
    s.cols = bs.Dims()[bs.Rank() - 2];
    s.batch = bs.Size() / (s.rows * s.cols);
    s.lower = !attrs.lower;
    s.left_side = !attrs.left_side;
    s.transpose = attrs.transpose_a;
    s.unit_diagonal = attrs.unit_diagonal;
    s.a = in.operands[0];
    s.batched = s.batch > 1;
    p_.steps.push_back({StepKind::kKernel, id, Add(CopyOperand(id, 1))});
    p_.steps.push_back({StepKind::kSolver, id, AddSolver(s)});
    if (!s.unit_diagonal) p_.steps.push_back({StepKind::kUpdate, id, Add(TriangularSolveFinish(id, s))});
  }

  // NaN solutions where A has a zero on its diagonal (LAPACK's trtrs
  // reports it; trsm divides by it).
  KernelSpec TriangularSolveFinish(int id, const SolverSpec& s) {
    const int64_t k = s.left_side ? s.rows : s.cols;
    KernelBuilder b(fn_, p_.materialized);
    const std::string a = b.Input(s.a);
    std::string body = "    __shared__ int bad;\n";
    body += "    if (threadIdx.x == 0) bad = 0;\n";
    body += "    __syncthreads();\n";
    body += "    for (i64 i = threadIdx.x; i < " + Str(k) + "; i += blockDim.x) {\n";
    body += "      if (" + a + "[mat * " + Str(k * k) + " + i * " + Str(k + 1) + "] == (" + ComputeType(s.dtype) + ")0) bad = 1;\n";
    body += "    }\n    __syncthreads();\n";
    body += "    const int failed = bad;\n";
    body += "    for (i64 e = threadIdx.x; failed && e < " + Str(s.rows * s.cols) + "; e += blockDim.x) out[mat * " +
            Str(s.rows * s.cols) + " + e] = " + NaNLiteral(s.dtype) + ";\n";
    body += "    __syncthreads();\n";
    KernelSpec spec = Finish(b, id, "trsm_finish", BlockLoop("mat", s.batch, body), s.batch, true);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  // ------------------------------------------------------ Factorizations.
  //
  // Lu, Qr, Eigh and Svd produce tuples: the instruction's value is one
  // element (its shape changed to that element's), the others are scratch
  // values, and their GetTupleElements alias them (elements_). The library
  // works on a column-major scratch copy; kernels then write each element
  // from it, NaN for a matrix that was not finite or that the library
  // reports failing, as on the CPU.

  // The element values of factorization `id` ([0] its own), from `results`.
  std::vector<int> FactorizationElements(int id, const std::vector<shapes::Shape>& results, size_t own) {
    p_.function.instructions[static_cast<size_t>(id)].shape = results[own];
    std::vector<int> e;
    for (size_t i = 0; i < results.size(); ++i) e.push_back(i == own ? id : AddScratch(results[i]));
    elements_[id] = e;
    return e;
  }

  // A scratch [batch, n, m]: the m x n matrices of `operand` in column-major
  // order (transposed), or its bytes as they are (`transpose` false).
  int ColumnMajorCopy(int operand, int64_t batch, int64_t m, int64_t n, bool transpose) {
    const int col = AddScratch(shapes::Shape(I(operand).shape.DType(), {batch, n, m}));
    KernelBuilder b(fn_, p_.materialized);
    std::string v, body;
    if (transpose) {  // col[mat, c, r] = a[mat, r, c]
      v = b.Value(operand, LinearIdx("src"));
      body = "    const i64 mat = i / " + Str(m * n) + ", rem = i % " + Str(m * n) + ", c = rem / " + Str(m) +
             ", r = rem % " + Str(m) + ";\n    const i64 src = mat * " + Str(m * n) + " + r * " + Str(n) + " + c;\n";
    } else {
      v = b.Value(operand, LinearIdx("i"), true);
    }
    body += b.Body() + "    out[i] = " + v + ";\n";
    p_.steps.push_back({StepKind::kKernel, col, Add(FinishScratch(b, col, "to_col", ThreadLoop("i", batch * m * n, body), batch * m * n))});
    return col;
  }

  // Element `out_id` ([batch, rows, cols]) from `src`: element (r, c) of its
  // column-major rows x cols matrices (`column_major`) or the same bytes;
  // NaN for the matrices where any of the Int32 [batch] `failed` flags is
  // set.
  void Result(int out_id, int src, const std::vector<int>& failed, int64_t rows, int64_t cols, bool column_major) {
    const shapes::Shape& shape = I(out_id).shape;
    if (shape.Size() == 0) {
      p_.steps.push_back({StepKind::kKernel, out_id, Add(EmptyKernel(out_id))});
      return;
    }
    KernelBuilder b(fn_, p_.materialized);
    const std::string S = b.Input(src);
    std::string cond;
    for (int f : failed) cond += (cond.empty() ? "" : " || ") + b.Input(f) + "[mat] != 0";
    std::string body = "    const i64 mat = i / " + Str(rows * cols) + ";\n";
    std::string v = S + "[i]";
    if (column_major) {
      body += "    const i64 r = i % " + Str(rows * cols) + " / " + Str(cols) + ", c = i % " + Str(cols) + ";\n";
      v = S + "[mat * " + Str(rows * cols) + " + c * " + Str(rows) + " + r]";
    }
    if (!cond.empty()) v = "(" + cond + ") ? " + NaNLiteral(shape.DType()) + " : " + v;
    body += "    out[i] = " + v + ";\n";
    KernelSpec spec = Finish(b, out_id, "result", ThreadLoop("i", shape.Size(), body), shape.Size(), false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    p_.steps.push_back({StepKind::kKernel, out_id, Add(std::move(spec))});
  }

  // Element `out_id`: identity matrices (`identity`) or zeros; for the
  // results of empty factorizations.
  void Constant(int out_id, bool identity) {
    const shapes::Shape& shape = I(out_id).shape;
    if (shape.Size() == 0) {
      p_.steps.push_back({StepKind::kKernel, out_id, Add(EmptyKernel(out_id))});
      return;
    }
    const int64_t n = shape.Dims().back();
    KernelBuilder b(fn_, p_.materialized);
    const std::string T = ComputeType(shape.DType());
    const std::string v = identity ? "(i % " + Str(n * n) + " / " + Str(n) + " == i % " + Str(n) + ") ? (" + T +
                                         ")1 : (" + T + ")0"
                                   : "(" + T + ")0";
    p_.steps.push_back({StepKind::kKernel, out_id, Add(Finish(b, out_id, "fill", ThreadLoop("i", shape.Size(), "    out[i] = " + v + ";\n"), shape.Size(), false))});
  }

  int Flags(int64_t batch) { return AddScratch(shapes::Shape(dtypes::Int32, {batch})); }

  // Lu: getrf on the transposed matrix (LU of the column-major reading
  // would be that of Aᵀ), transposed back; kernels turn LAPACK's 1-based
  // row swaps into the pivots and the permutation (identities where not
  // finite).
  void Lu(int id) {
    const ir::Instruction& in = I(id);
    const int operand = in.operands[0];
    const shapes::Shape as = I(operand).shape;
    RequireSolverDType(in, as);
    const std::vector<shapes::Shape> results = ir::FactorizationResults(in.op, as, ir::Attr<ir::LinalgAttrs>(in));
    const int64_t m = as.Dims()[as.Rank() - 2], n = as.Dims().back(), k = std::min(m, n);
    const int64_t batch = m == 0 ? 0 : results[2].Size() / m;
    const std::vector<int> e = FactorizationElements(id, results, 0);
    if (results[0].Size() == 0) {
      p_.steps.push_back({StepKind::kKernel, id, Add(EmptyKernel(id))});
      p_.steps.push_back({StepKind::kKernel, e[1], Add(EmptyKernel(e[1]))});
      p_.steps.push_back({StepKind::kKernel, e[2], Add(LuPermutation(e[2], -1, -1, batch, m, k))});
      return;
    }
    SolverSpec s = Spec(SolverSpec::Kind::kGetrf, as.DType(), batch, m, n);
    s.batched = batch > 1 && m == n && m <= kBatchedOrder;
    const int col = ColumnMajorCopy(operand, batch, m, n, true);
    s.outputs = {AddScratch(shapes::Shape(s.batched ? dtypes::Int32 : dtypes::Int64, {batch, k})), Flags(batch)};
    // Whether each input is finite (the factor of a singular matrix may
    // hold Inf where the library divides by a zero pivot).
    const int bad = Flags(batch);
    p_.steps.push_back({StepKind::kKernel, bad, Add(NotFinite(col, bad, batch, m, n, Triangle::kAll))});
    p_.steps.push_back({StepKind::kSolver, col, AddSolver(s)});
    Result(id, col, {bad}, m, n, true);
    {  // 0-based pivots (the identity where not finite)
      KernelBuilder b(fn_, p_.materialized);
      const std::string P = b.Input(s.outputs[0]), B = b.Input(bad);
      const std::string body = "    out[i] = " + B + "[i / " + Str(k) + "] ? (int)(i % " + Str(k) + ") : (int)" + P +
                               "[i] - 1;\n";
      p_.steps.push_back({StepKind::kKernel, e[1], Add(FinishScratch(b, e[1], "lu_pivots", ThreadLoop("i", batch * k, body), batch * k))});
    }
    p_.steps.push_back({StepKind::kKernel, e[2], Add(LuPermutation(e[2], s.outputs[0], bad, batch, m, k))});
  }

  // Qr: geqrf on the transposed matrix; R from its upper triangle, Q by
  // orgqr from the reflectors copied into a column-major m x (m or k)
  // scratch, transposed back.
  void Qr(int id) {
    const ir::Instruction& in = I(id);
    const int operand = in.operands[0];
    const shapes::Shape as = I(operand).shape;
    RequireSolverDType(in, as);
    const bool full = ir::Attr<ir::LinalgAttrs>(in).full_matrices;
    const std::vector<shapes::Shape> results = ir::FactorizationResults(in.op, as, ir::Attr<ir::LinalgAttrs>(in));
    const int64_t m = as.Dims()[as.Rank() - 2], n = as.Dims().back(), k = std::min(m, n);
    const int64_t qcols = full ? m : k, rrows = full ? m : k;
    const int64_t batch = BatchOf(as);
    const std::vector<int> e = FactorizationElements(id, results, 0);
    if (k == 0 || batch == 0) {
      Constant(id, true);
      Constant(e[1], false);
      return;
    }
    SolverSpec s = Spec(SolverSpec::Kind::kGeqrf, as.DType(), batch, m, n);
    const int col = ColumnMajorCopy(operand, batch, m, n, true);
    const int tau = AddScratch(shapes::Shape(as.DType(), {batch, k}));
    s.outputs = {tau, Flags(batch)};
    const int bad = Flags(batch);
    p_.steps.push_back({StepKind::kKernel, bad, Add(NotFinite(col, bad, batch, m, n, Triangle::kAll))});
    p_.steps.push_back({StepKind::kSolver, col, AddSolver(s)});
    {  // r[mat, i, j] = the upper triangle of the first rrows rows
      KernelBuilder b(fn_, p_.materialized);
      const std::string C = b.Input(col), B = b.Input(bad);
      const std::string T = ComputeType(as.DType());
      std::string body = "    const i64 mat = i / " + Str(rrows * n) + ", r = i % " + Str(rrows * n) + " / " + Str(n) +
                         ", c = i % " + Str(n) + ";\n";
      body += "    out[i] = " + B + "[mat] ? " + NaNLiteral(as.DType()) + " : c >= r ? " + C +
              "[mat * " + Str(m * n) + " + c * " + Str(m) + " + r] : (" + T + ")0;\n";
      KernelSpec spec = FinishScratch(b, e[1], "qr_r", ThreadLoop("i", batch * rrows * n, body), batch * rrows * n);
      p_.steps.push_back({StepKind::kKernel, e[1], Add(std::move(spec))});
    }
    const int q = AddScratch(shapes::Shape(as.DType(), {batch, qcols, m}));
    {  // the reflectors (the first k columns), zeros after them
      KernelBuilder b(fn_, p_.materialized);
      const std::string C = b.Input(col);
      const std::string body = "    const i64 mat = i / " + Str(m * qcols) + ", j = i % " + Str(m * qcols) + ";\n" +
                               "    out[i] = j < " + Str(m * k) + " ? " + C + "[mat * " + Str(m * n) + " + j] : (" +
                               ComputeType(as.DType()) + ")0;\n";
      p_.steps.push_back({StepKind::kKernel, q, Add(FinishScratch(b, q, "qr_reflectors", ThreadLoop("i", batch * m * qcols, body), batch * m * qcols))});
    }
    SolverSpec g = Spec(SolverSpec::Kind::kOrgqr, as.DType(), batch, m, qcols);
    g.reflectors = k;
    g.a = tau;
    g.outputs = {Flags(batch)};
    p_.steps.push_back({StepKind::kSolver, q, AddSolver(g)});
    Result(id, q, {bad, g.outputs[0]}, m, qcols, true);
  }

  // Eigh: syevd on a copy of the bytes (symmetric: the column-major reading
  // is the same matrix; the row-major triangle read is the opposite
  // column-major one); the eigenvectors (columns, column-major) transposed
  // into row-major columns.
  void Eigh(int id) {
    const ir::Instruction& in = I(id);
    const int operand = in.operands[0];
    const shapes::Shape as = I(operand).shape;
    RequireSolverDType(in, as);
    const bool lower = ir::Attr<ir::LinalgAttrs>(in).lower;
    const std::vector<shapes::Shape> results = ir::FactorizationResults(in.op, as, ir::Attr<ir::LinalgAttrs>(in));
    const int64_t n = as.Dims().back();
    const std::vector<int> e = FactorizationElements(id, results, 1);
    if (as.Size() == 0) {
      Constant(id, false);
      Constant(e[0], false);
      return;
    }
    const int64_t batch = as.Size() / (n * n);
    SolverSpec s = Spec(SolverSpec::Kind::kSyevd, as.DType(), batch, n, n);
    s.lower = !lower;
    const int work = ColumnMajorCopy(operand, batch, n, n, false);
    const int w = AddScratch(shapes::Shape(as.DType(), {batch, n}));
    s.outputs = {w, Flags(batch)};
    const int bad = Flags(batch);
    p_.steps.push_back({StepKind::kKernel, bad, Add(NotFinite(work, bad, batch, n, n, lower ? Triangle::kLower : Triangle::kUpper))});
    p_.steps.push_back({StepKind::kSolver, work, AddSolver(s)});
    Result(e[0], w, {bad, s.outputs[1]}, 1, n, false);
    Result(id, work, {bad, s.outputs[1]}, n, n, true);
  }

  // Svd: gesvd needs rows >= cols. A tall matrix (m >= n) is transposed
  // into column-major order and its U and Vᵀ transposed back. A wide one's
  // bytes read column-major are Aᵀ (n x m, tall): Aᵀ = U' S V'ᵀ gives
  // A = V' S U'ᵀ, and the column-major V'ᵀ and U' are, byte for byte, the
  // row-major u and vt.
  void Svd(int id) {
    const ir::Instruction& in = I(id);
    const int operand = in.operands[0];
    const shapes::Shape as = I(operand).shape;
    RequireSolverDType(in, as);
    const auto attrs = ir::Attr<ir::LinalgAttrs>(in);
    const std::vector<shapes::Shape> results = ir::FactorizationResults(in.op, as, attrs);
    const int64_t m = as.Dims()[as.Rank() - 2], n = as.Dims().back(), k = std::min(m, n);
    const bool uv = attrs.compute_uv, full = attrs.full_matrices;
    const std::vector<int> e = FactorizationElements(id, results, uv ? 1 : 0);
    const int s_out = uv ? e[1] : e[0];
    const int64_t batch = k == 0 ? 0 : results[uv ? 1 : 0].Size() / k;
    if (batch == 0) {
      Constant(s_out, false);
      if (uv) Constant(e[0], true), Constant(e[2], true);
      return;
    }
    const bool tall = m >= n;
    const int64_t rows = tall ? m : n, cols = tall ? n : m;  // the library's (column-major) matrix
    SolverSpec s = Spec(SolverSpec::Kind::kGesvd, as.DType(), batch, rows, cols);
    s.full_matrices = full;
    s.compute_uv = uv;
    const int work = ColumnMajorCopy(operand, batch, m, n, tall);
    const int sv = AddScratch(shapes::Shape(as.DType(), {batch, k}));
    s.outputs = {sv};
    // U: rows x (rows or k); Vᵀ: (cols or k) x cols, column-major.
    const int64_t ucols = full ? rows : k, vtrows = full ? cols : k;
    int u = -1, vt = -1;
    if (uv) {
      u = AddScratch(shapes::Shape(as.DType(), {batch, ucols, rows}));
      vt = AddScratch(shapes::Shape(as.DType(), {batch, cols, vtrows}));
      s.outputs.push_back(u);
      s.outputs.push_back(vt);
    }
    s.outputs.push_back(Flags(batch));
    const int bad = Flags(batch);
    p_.steps.push_back({StepKind::kKernel, bad, Add(NotFinite(work, bad, batch, m, n, Triangle::kAll))});
    p_.steps.push_back({StepKind::kSolver, work, AddSolver(s)});
    const std::vector<int> failed = {bad, s.outputs.back()};
    Result(s_out, sv, failed, 1, k, false);
    if (!uv) return;
    if (tall) {
      Result(e[0], u, failed, m, ucols, true);
      Result(e[2], vt, failed, vtrows, n, true);
    } else {
      Result(e[0], vt, failed, m, vtrows, false);
      Result(e[2], u, failed, ucols, n, false);
    }
  }

  SolverSpec Spec(SolverSpec::Kind kind, dtypes::DType dtype, int64_t batch, int64_t rows, int64_t cols) {
    SolverSpec s;
    s.kind = kind;
    s.dtype = dtype;
    s.batch = batch;
    s.rows = rows;
    s.cols = cols;
    return s;
  }

  static int64_t BatchOf(const shapes::Shape& a) {
    int64_t b = 1;
    for (size_t d = 0; d + 2 < a.Dims().size(); ++d) b *= a.Dims()[d];
    return b;
  }

  // The row permutation of each matrix: the identity with LAPACK's swaps
  // (1-based, in `pivots`; none without) applied in order, one thread per
  // matrix; the identity where `bad`.
  KernelSpec LuPermutation(int perm, int pivots, int bad, int64_t batch, int64_t m, int64_t k) {
    KernelBuilder b(fn_, p_.materialized);
    std::string body = "    int* p = out + mat * " + Str(m) + ";\n";
    body += "    for (i64 j = 0; j < " + Str(m) + "; ++j) p[j] = (int)j;\n";
    if (pivots >= 0) {
      const std::string P = b.Input(pivots), B = b.Input(bad);
      body += "    if (!" + B + "[mat]) {\n";
      body += "      for (i64 r = 0; r < " + Str(k) + "; ++r) {\n";
      body += "        const i64 t = (i64)" + P + "[mat * " + Str(k) + " + r] - 1;\n";
      body += "        const int x = p[r]; p[r] = p[t]; p[t] = x;\n";
      body += "      }\n    }\n";
    }
    return FinishScratch(b, perm, "lu_perm", ThreadLoop("mat", batch, body), batch);
  }

  // Which elements of a row-major matrix NotFinite checks.
  enum class Triangle { kAll, kLower, kUpper };

  // bad[mat] = whether the rows x cols matrix `mat` of `x` holds NaN or Inf
  // (in the given row-major triangle).
  KernelSpec NotFinite(int x, int bad, int64_t batch, int64_t rows, int64_t cols, Triangle triangle) {
    KernelBuilder b(fn_, p_.materialized);
    const std::string X = b.Input(x);
    const std::string T = ComputeType(I(x).shape.DType());
    const int64_t size = rows * cols;
    std::string body = "    __shared__ int any;\n";
    body += "    if (threadIdx.x == 0) any = 0;\n";
    body += "    __syncthreads();\n";
    body += "    for (i64 e = threadIdx.x; e < " + Str(size) + "; e += blockDim.x) {\n";
    if (triangle != Triangle::kAll) {
      body += "      const i64 r = e / " + Str(cols) + ", c = e % " + Str(cols) + ";\n";
      body += std::string("      if (") + (triangle == Triangle::kLower ? "c > r" : "c < r") + ") continue;\n";
    }
    body += "      const " + T + " v = " + X + "[mat * " + Str(size) + " + e];\n";
    body += "      if (!(v - v == (" + T + ")0)) any = 1;\n";
    body += "    }\n    __syncthreads();\n";
    body += "    if (threadIdx.x == 0) out[mat] = any;\n";
    body += "    __syncthreads();\n";
    KernelSpec spec = Finish(b, bad, "not_finite", BlockLoop("mat", batch, body), batch, true);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  void RequireSolverDType(const ir::Instruction& in, const shapes::Shape& a) {
    if (a.DType() != dtypes::Float32 && a.DType() != dtypes::Float64) {
      Unsupported(in, "of " + a.ToString() + " is not supported (Float32 and Float64 only)");
    }
  }


  // A scratch value (a buffer with no instruction of its own), appended to
  // the program's function so kernels and steps can name it.
  int AddScratch(const shapes::Shape& shape) {
    ir::Instruction t;
    t.op = OpType::kParameter;
    t.shape = shape;
    t.attrs = ir::ParameterAttrs{-1, "scratch"};
    p_.function.instructions.push_back(std::move(t));
    p_.materialized.push_back(true);
    return static_cast<int>(p_.function.instructions.size()) - 1;
  }

  // Convolutions without groups as one matrix product on cuBLASLt: the
  // input's patches are written as rows of a scratch matrix P [batch x
  // output positions, input features x kernel taps] (im2col), the kernel is
  // viewed (or packed) as W [features x taps, output features], and P * W
  // is the output (or is permuted into the output's layout). This covers
  // the forward convolution and both of its gradients as autodiff writes
  // them. Returns false where the direct kernel is used instead.
  bool GemmConv(int id) {
    const ir::Instruction& in = I(id);
    const auto a = ir::Attr<ir::ConvAttrs>(in);
    const int x_id = in.operands[0], w_id = in.operands[1];
    const shapes::Shape xs_shape = I(x_id).shape, ws_shape = I(w_id).shape, out_shape = in.shape;
    const dtypes::DType dt = out_shape.DType();
    if (!MatmulDType(dt) || a.feature_group_count != 1 || a.batch_group_count != 1 || out_shape.Size() == 0) return false;
    const auto sz = [](int64_t v) { return static_cast<size_t>(v); };
    const auto& xd = xs_shape.Dims();
    const auto& wd = ws_shape.Dims();
    const auto& od = out_shape.Dims();
    const size_t ns = a.input_spatial_axes.size();
    const int64_t features_out = od[sz(a.output_feature_axis)];
    const int64_t rows = out_shape.Size() / features_out;
    const int64_t kc = ws_shape.Size() / features_out;
    if (kc == 0) return false;
    // Above 1 GiB of patches the direct kernel is used rather than the memory.
    if (rows * kc * static_cast<int64_t>(dtypes::SizeOf(dt)) > (int64_t{1} << 30)) return false;
    // The kernel's axes other than its output features, in memory order: the
    // order of P's columns, so W needs no copy when output features are
    // its first or last axis.
    const auto w_rank = static_cast<int64_t>(wd.size());
    std::vector<int64_t> w_axes;
    for (int64_t d = 0; d < w_rank; ++d) {
      if (d != a.kernel_output_feature_axis) w_axes.push_back(d);
    }
    MatmulSpec m;
    m.m = rows;
    m.k = kc;
    m.n = features_out;
    m.lhs = AddScratch(shapes::Shape(dt, {rows, kc}));
    if (a.kernel_output_feature_axis == w_rank - 1) {
      m.rhs = w_id;
    } else if (a.kernel_output_feature_axis == 0) {
      m.rhs = w_id;
      m.transpose_rhs = true;
    } else {
      m.rhs = AddScratch(shapes::Shape(dt, {kc, features_out}));
    }
    const bool direct_out = a.output_batch_axis == 0 && a.output_feature_axis == static_cast<int64_t>(ns) + 1 &&
                            [&] {
                              for (size_t j = 0; j < ns; ++j) {
                                if (a.output_spatial_axes[j] != static_cast<int64_t>(j) + 1) return false;
                              }
                              return true;
                            }();
    const int y_id = direct_out ? id : AddScratch(shapes::Shape(dt, {rows, features_out}));
    const std::string ct = ComputeType(dt);
    // 1. P: patches, zeros for padding and dilation holes.
    {
      KernelBuilder b(fn_, p_.materialized);
      const std::string X = b.Input(x_id);
      const auto xstr = StridesOf(xd);
      std::vector<int64_t> row_dims{od[sz(a.output_batch_axis)]};
      for (size_t j = 0; j < ns; ++j) row_dims.push_back(od[sz(a.output_spatial_axes[j])]);
      std::vector<int64_t> col_dims;
      for (int64_t d : w_axes) col_dims.push_back(wd[sz(d)]);
      std::string body = "    const i64 r = i / " + Str(kc) + ", col = i % " + Str(kc) + ";\n";
      body += b.TakeBody();
      const std::vector<std::string> rax = b.Axes(LinearIdx("r"), row_dims);
      const std::vector<std::string> cax = b.Axes(LinearIdx("col"), col_dims);
      body += b.TakeBody();
      // Column axis of each kernel axis.
      auto col_of = [&](int64_t kernel_axis) {
        for (size_t c = 0; c < w_axes.size(); ++c) {
          if (w_axes[c] == kernel_axis) return cax[c];
        }
        return std::string("0LL");
      };
      std::string cond = "true";
      std::string off = rax[0] + " * " + Str(xstr[sz(a.input_batch_axis)]) + " + " + col_of(a.kernel_input_feature_axis) +
                        " * " + Str(xstr[sz(a.input_feature_axis)]);
      for (size_t j = 0; j < ns; ++j) {
        const std::string q = "q" + std::to_string(j);
        body += "    i64 " + q + " = " + rax[j + 1] + " * " + Str(a.strides[j]) + " - " + Str(a.padding_low[j]) + " + " +
                col_of(a.kernel_spatial_axes[j]) + " * " + Str(a.kernel_dilation[j]) + ";\n";
        if (a.input_dilation[j] != 1) {
          cond += " && " + q + " >= 0 && " + q + " % " + Str(a.input_dilation[j]) + " == 0";
          body += "    " + q + " = " + q + " / " + Str(a.input_dilation[j]) + ";\n";
        }
        cond += " && " + q + " >= 0 && " + q + " < " + Str(xd[sz(a.input_spatial_axes[j])]);
        off += " + " + q + " * " + Str(xstr[sz(a.input_spatial_axes[j])]);
      }
      // (The dilation test reads q before the division; it runs first.)
      const std::string st = StorageType(dt);
      std::string pre_cond = "true";
      if (std::any_of(a.input_dilation.begin(), a.input_dilation.end(), [](int64_t v) { return v != 1; })) {
        // Recompute the undivided positions for the dilation test.
        pre_cond = "true";
        for (size_t j = 0; j < ns; ++j) {
          if (a.input_dilation[j] == 1) continue;
          const std::string raw = "(" + rax[j + 1] + " * " + Str(a.strides[j]) + " - " + Str(a.padding_low[j]) + " + " +
                                  col_of(a.kernel_spatial_axes[j]) + " * " + Str(a.kernel_dilation[j]) + ")";
          pre_cond += " && " + raw + " >= 0 && " + raw + " % " + Str(a.input_dilation[j]) + " == 0";
        }
        cond = pre_cond;
        for (size_t j = 0; j < ns; ++j) {
          const std::string q = "q" + std::to_string(j);
          cond += " && " + q + " < " + Str(xd[sz(a.input_spatial_axes[j])]) + " && " + q + " >= 0";
        }
      }
      body += "    out[i] = (" + cond + ") ? " + X + "[" + off + "] : (" + st + ")0;\n";
      p_.steps.push_back({StepKind::kKernel, m.lhs, Add(FinishScratch(b, m.lhs, "im2col", ThreadLoop("i", rows * kc, body), rows * kc))});
    }
    // 2. W packed as [taps x features, output features] when its output
    // features sit in the middle of its axes.
    if (m.rhs != w_id) {
      KernelBuilder b(fn_, p_.materialized);
      const std::string W = b.Input(w_id);
      const auto wstr = StridesOf(wd);
      std::vector<int64_t> col_dims;
      for (int64_t d : w_axes) col_dims.push_back(wd[sz(d)]);
      std::string body = "    const i64 col = i / " + Str(features_out) + ", o = i % " + Str(features_out) + ";\n";
      const std::vector<std::string> cax = b.Axes(LinearIdx("col"), col_dims);
      body += b.TakeBody();
      std::string off = "o * " + Str(wstr[sz(a.kernel_output_feature_axis)]);
      for (size_t c = 0; c < w_axes.size(); ++c) off += " + " + cax[c] + " * " + Str(wstr[sz(w_axes[c])]);
      body += "    out[i] = " + W + "[" + off + "];\n";
      p_.steps.push_back({StepKind::kKernel, m.rhs, Add(FinishScratch(b, m.rhs, "pack", ThreadLoop("i", kc * features_out, body), kc * features_out))});
    }
    // 3. The product.
    m.dtype = dt;
    p_.matmuls.push_back(m);
    p_.steps.push_back({StepKind::kMatmul, y_id, static_cast<int>(p_.matmuls.size()) - 1});
    // 4. [rows, output features] into the output's layout.
    if (!direct_out) {
      KernelBuilder b(fn_, p_.materialized);
      const std::string Y = b.Input(y_id);
      const std::vector<std::string> oax = b.Axes(LinearIdx("i"), od);
      std::string body = b.TakeBody();
      std::string r = oax[sz(a.output_batch_axis)];
      for (size_t j = 0; j < ns; ++j) r = "(" + r + ") * " + Str(od[sz(a.output_spatial_axes[j])]) + " + " + oax[sz(a.output_spatial_axes[j])];
      body += "    out[i] = " + Y + "[(" + r + ") * " + Str(features_out) + " + " + oax[sz(a.output_feature_axis)] + "];\n";
      KernelSpec spec = Finish(b, id, "conv_out", ThreadLoop("i", out_shape.Size(), body), out_shape.Size(), false);
      std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
      p_.steps.push_back({StepKind::kKernel, id, Add(std::move(spec))});
    }
    return true;
  }

  KernelSpec FinishScratch(const KernelBuilder& b, int scratch_id, const char* kind, const std::string& loop, int64_t items) {
    KernelSpec spec = Finish(b, scratch_id, kind, loop, items, false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  KernelSpec Conv(int id) {
    const ir::Instruction& in = I(id);
    const auto& a = ir::Attr<ir::ConvAttrs>(in);
    const ir::Instruction& x = I(in.operands[0]);
    const ir::Instruction& w = I(in.operands[1]);
    const auto& xd = x.shape.Dims();
    const auto& wd = w.shape.Dims();
    const auto& od = in.shape.Dims();
    const auto xs = StridesOf(xd), ws = StridesOf(wd);
    KernelBuilder b(fn_, p_.materialized);
    const std::string X = b.Input(in.operands[0]), W = b.Input(in.operands[1]);
    std::vector<std::string> oax = b.Axes(LinearIdx("o"), od);
    const dtypes::DType dt = in.shape.DType();
    const std::string acc = IsHalfType(dt) ? "float" : ComputeType(dt);
    const auto sz = [](auto v) { return static_cast<size_t>(v); };
    const int64_t out_features = od[sz(a.output_feature_axis)];
    const int64_t cin_group = wd[sz(a.kernel_input_feature_axis)];
    const int64_t fgroup_out = out_features / a.feature_group_count;
    const int64_t bgroup_out = out_features / a.batch_group_count;
    const int64_t out_batch = od[sz(a.output_batch_axis)];
    std::string body = b.Body();
    const std::string of = oax[sz(a.output_feature_axis)], ob = oax[sz(a.output_batch_axis)];
    body += "    const i64 in_batch = (" + of + " / " + Str(bgroup_out) + ") * " + Str(out_batch) + " + " + ob + ";\n";
    body += "    const i64 c0 = (" + of + " / " + Str(fgroup_out) + ") * " + Str(cin_group) + ";\n";
    body += "    " + acc + " acc = (" + acc + ")0;\n";
    body += "    for (i64 c = 0; c < " + Str(cin_group) + "; ++c) {\n";
    std::string xoff = "in_batch * " + Str(xs[sz(a.input_batch_axis)]) + " + (c0 + c) * " + Str(xs[sz(a.input_feature_axis)]);
    std::string woff = "c * " + Str(ws[sz(a.kernel_input_feature_axis)]) + " + " + of + " * " +
                       Str(ws[sz(a.kernel_output_feature_axis)]);
    std::string close;
    for (size_t s = 0; s < a.input_spatial_axes.size(); ++s) {
      const std::string ks = "k" + std::to_string(s), ps = "q" + std::to_string(s);
      const int64_t kdim = wd[sz(a.kernel_spatial_axes[s])];
      const int64_t xdim = xd[sz(a.input_spatial_axes[s])];
      body += "    for (i64 " + ks + " = 0; " + ks + " < " + Str(kdim) + "; ++" + ks + ") {\n";
      body += "      i64 " + ps + " = " + oax[sz(a.output_spatial_axes[s])] + " * " + Str(a.strides[s]) + " - " +
              Str(a.padding_low[s]) + " + " + ks + " * " + Str(a.kernel_dilation[s]) + ";\n";
      if (a.input_dilation[s] != 1) {
        body += "      if (" + ps + " < 0 || " + ps + " % " + Str(a.input_dilation[s]) + " != 0) continue;\n";
        body += "      " + ps + " /= " + Str(a.input_dilation[s]) + ";\n";
      }
      body += "      if (" + ps + " < 0 || " + ps + " >= " + Str(xdim) + ") continue;\n";
      xoff += " + " + ps + " * " + Str(xs[sz(a.input_spatial_axes[s])]);
      woff += " + " + ks + " * " + Str(ws[sz(a.kernel_spatial_axes[s])]);
      close += "    }\n";
    }
    const std::string xv = "(" + acc + ")" + LoadExpr(x.shape.DType(), X + "[" + xoff + "]");
    const std::string wv = "(" + acc + ")" + LoadExpr(w.shape.DType(), W + "[" + woff + "]");
    body += "      acc = " + (IsFloatType(dt) ? "acc + " + xv + " * " + wv : "kAdd(acc, kMul(" + xv + ", " + wv + "))") + ";\n";
    body += close + "    }\n";
    body += "    out[o] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")acc") + ";\n";
    KernelSpec spec = Finish(b, id, "conv", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  // A cumulative window (CumSum and friends, ir::AsCumulativeWindow) viewed
  // as [outer, n, inner] around its axis.
  struct Scan {
    int64_t outer = 1, n = 1, inner = 1;
    bool exclusive = false, reverse = false;
  };
  static std::optional<Scan> AsScan(const ir::WindowAttrs& a, const std::vector<int64_t>& dims, dtypes::DType dt) {
    if (dt == dtypes::Bool) return std::nullopt;
    const std::optional<ir::CumulativeWindow> c = ir::AsCumulativeWindow(a, dims);
    if (!c) return std::nullopt;
    Scan s{.exclusive = c->exclusive, .reverse = c->reverse};
    for (size_t d = 0; d < dims.size(); ++d) {
      if (static_cast<int>(d) < c->axis) s.outer *= dims[d];
      else if (static_cast<int>(d) > c->axis) s.inner *= dims[d];
    }
    s.n = dims[static_cast<size_t>(c->axis)];
    return s;
  }
  // Scan lane `u`'s outer index `su` and inner index `sl`.
  static std::string ScanLane(const Scan& s) {
    return "    const i64 su = u / " + Str(s.inner) + ", sl = u % " + Str(s.inner) + ";\n";
  }
  // The loop header of a scan lane: `i` walks the axis in the scan's
  // direction and `off` is the element's offset.
  static std::string ScanLoop(const Scan& s) {
    return "    for (i64 st = 0; st < " + Str(s.n) + "; ++st) {\n" + "      const i64 i = " +
           (s.reverse ? Str(s.n - 1) + " - st" : std::string("st")) + ";\n" + "      const i64 off = (su * " + Str(s.n) +
           " + i) * " + Str(s.inner) + " + sl;\n";
  }

  // A cumulative ReduceWindow as one sequential scan per lane: O(1) work per
  // element instead of the generic window loop's O(n) taps.
  KernelSpec ScanWindow(int id, const Scan& s, const ReduceKind& k) {
    const ir::Instruction& in = I(id);
    const dtypes::DType dt = in.shape.DType();
    KernelBuilder b(fn_, p_.materialized);
    const std::string X = b.Input(in.operands[0]);
    const std::string load = "(" + k.acc_type + ")" + LoadExpr(I(in.operands[0]).shape.DType(), X + "[off]");
    const std::string store = "      out[off] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")acc") + ";\n";
    const std::string combine = "      acc = " + k.combine("acc", load) + ";\n";
    std::string body = b.Body() + ScanLane(s) + "    " + k.acc_type + " acc = " + k.identity + ";\n" + ScanLoop(s);
    body += (s.exclusive ? store + combine : combine + store) + "    }\n";
    KernelSpec spec = Finish(b, id, "scan", ThreadLoop("u", s.outer * s.inner, body), s.outer * s.inner, false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  KernelSpec ReduceWindow(int id) {
    const ir::Instruction& in = I(id);
    const auto& a = ir::Attr<ir::WindowAttrs>(in);
    const ir::Instruction& x = I(in.operands[0]);
    const auto& xd = x.shape.Dims();
    const auto xs = StridesOf(xd);
    const dtypes::DType dt = in.shape.DType();
    static const OpType kOps[] = {OpType::kReduceSum, OpType::kReduceProduct, OpType::kReduceMax, OpType::kReduceMin};
    const ReduceKind k = KindOf(kOps[static_cast<int>(a.reduction)], dt);
    if (const std::optional<Scan> s = AsScan(a, xd, dt)) return ScanWindow(id, *s, k);
    KernelBuilder b(fn_, p_.materialized);
    const std::string X = b.Input(in.operands[0]);
    std::vector<std::string> oax = b.Axes(LinearIdx("o"), in.shape.Dims());
    std::string body = b.Body() + "    " + k.acc_type + " acc = " + k.identity + ";\n";
    std::string off = "0LL", close;
    for (size_t d = 0; d < xd.size(); ++d) {
      const std::string w = "w" + std::to_string(d), p = "q" + std::to_string(d);
      body += "    for (i64 " + w + " = 0; " + w + " < " + Str(a.window_dimensions[d]) + "; ++" + w + ") {\n";
      body += "      i64 " + p + " = " + oax[d] + " * " + Str(a.strides[d]) + " - " + Str(a.padding_low[d]) + " + " + w +
              " * " + Str(a.window_dilations[d]) + ";\n";
      if (a.base_dilations[d] != 1) {
        body += "      if (" + p + " < 0 || " + p + " % " + Str(a.base_dilations[d]) + " != 0) continue;\n";
        body += "      " + p + " /= " + Str(a.base_dilations[d]) + ";\n";
      }
      body += "      if (" + p + " < 0 || " + p + " >= " + Str(xd[d]) + ") continue;\n";
      off += " + " + p + " * " + Str(xs[d]);
      close += "    }\n";
    }
    body += "      acc = " + k.combine("acc", "(" + k.acc_type + ")" + LoadExpr(x.shape.DType(), X + "[" + off + "]")) + ";\n";
    body += close + "    out[o] = " + StoreExpr(dt, "(" + ComputeType(dt) + ")acc") + ";\n";
    KernelSpec spec = Finish(b, id, "window", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  // Deterministic: each operand element sums the source values of the
  // windows that cover it and select it (the first max/min of the window).
  KernelSpec SelectAndScatter(int id) {
    const ir::Instruction& in = I(id);
    const auto& a = ir::Attr<ir::WindowAttrs>(in);
    const ir::Instruction& x = I(in.operands[0]);
    const ir::Instruction& src = I(in.operands[1]);
    const auto& xd = x.shape.Dims();
    const auto& sd = src.shape.Dims();
    const auto xs = StridesOf(xd), ss = StridesOf(sd);
    const dtypes::DType dt = in.shape.DType();
    const std::string acc = IsHalfType(dt) ? "float" : ComputeType(dt);
    const std::string ct = ComputeType(dt);
    const bool is_max = a.reduction == ir::WindowReduction::kMax;
    if (const std::optional<Scan> s = AsScan(a, xd, dt)) return ScanSelectAndScatter(id, *s, acc, ct, is_max);
    KernelBuilder b(fn_, p_.materialized);
    const std::string X = b.Input(in.operands[0]), S = b.Input(in.operands[1]);
    std::vector<std::string> pax = b.Axes(LinearIdx("o"), xd);
    std::string body = b.Body() + "    " + acc + " acc = (" + acc + ")0;\n";
    const size_t r = xd.size();
    // Loop over windows (source positions) that may cover this element.
    std::string close, soff = "0LL";
    for (size_t d = 0; d < r; ++d) {
      const std::string s = "s" + std::to_string(d);
      // Operand position in dilated, padded coordinates.
      const std::string pd = "(" + pax[d] + " * " + Str(a.base_dilations[d]) + " + " + Str(a.padding_low[d]) + ")";
      const int64_t span = (a.window_dimensions[d] - 1) * a.window_dilations[d];
      body += "    for (i64 " + s + " = (" + pd + " - " + Str(span) + " <= 0 ? 0LL : (" + pd + " - " + Str(span) + " + " +
              Str(a.strides[d] - 1) + ") / " + Str(a.strides[d]) + "); " + s + " <= " + pd + " / " + Str(a.strides[d]) +
              " && " + s + " < " + Str(sd[d]) + "; ++" + s + ") {\n";
      body += "      if ((" + pd + " - " + s + " * " + Str(a.strides[d]) + ") % " + Str(a.window_dilations[d]) +
              " != 0) continue;\n";
      soff += " + " + s + " * " + Str(ss[d]);
      close += "    }\n";
    }
    // Select within window s: first best over the window positions in bounds.
    body += "      i64 sel = -1; " + ct + " best = (" + ct + ")0;\n";
    std::string wclose, xoff = "0LL";
    for (size_t d = 0; d < r; ++d) {
      const std::string w = "w" + std::to_string(d), q = "q" + std::to_string(d), s = "s" + std::to_string(d);
      body += "      for (i64 " + w + " = 0; " + w + " < " + Str(a.window_dimensions[d]) + "; ++" + w + ") {\n";
      body += "        i64 " + q + " = " + s + " * " + Str(a.strides[d]) + " - " + Str(a.padding_low[d]) + " + " + w +
              " * " + Str(a.window_dilations[d]) + ";\n";
      if (a.base_dilations[d] != 1) {
        body += "        if (" + q + " < 0 || " + q + " % " + Str(a.base_dilations[d]) + " != 0) continue;\n";
        body += "        " + q + " /= " + Str(a.base_dilations[d]) + ";\n";
      }
      body += "        if (" + q + " < 0 || " + q + " >= " + Str(xd[d]) + ") continue;\n";
      xoff += " + " + q + " * " + Str(xs[d]);
      wclose += "      }\n";
    }
    body += "        const " + ct + " v = " + LoadExpr(x.shape.DType(), X + "[" + xoff + "]") + ";\n";
    // The first best element; a NaN beats every number.
    body += "        if (sel < 0 || (v " + std::string(is_max ? ">" : "<") + " best) || (v != v && best == best)) { sel = " +
            xoff + "; best = v; }\n";
    body += wclose;
    body += "      if (sel == o) acc = acc + (" + acc + ")" + LoadExpr(src.shape.DType(), S + "[" + soff + "]") + ";\n";
    body += close + "    out[o] = " + StoreExpr(dt, "(" + ct + ")acc") + ";\n";
    KernelSpec spec = Finish(b, id, "select_scatter", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  // SelectAndScatter over a cumulative window (CumMax/CumMin gradients) as
  // one scan per lane, as the CPU's window_scan.cc: the lane's selection
  // only moves in the scan's direction, so the source values summed since it
  // last moved are written when it moves again. O(n) per lane.
  KernelSpec ScanSelectAndScatter(int id, const Scan& s, const std::string& acc, const std::string& ct, bool is_max) {
    const ir::Instruction& in = I(id);
    const dtypes::DType dt = in.shape.DType();
    KernelBuilder b(fn_, p_.materialized);
    const std::string X = b.Input(in.operands[0]), S = b.Input(in.operands[1]);
    const std::string zero = "      out[off] = " + StoreExpr(dt, "(" + ct + ")0") + ";\n";
    const std::string flush =
        "if (best >= 0) out[(su * " + Str(s.n) + " + best) * " + Str(s.inner) + " + sl] = " + StoreExpr(dt, "(" + ct + ")acc") + ";";
    const std::string src = "(" + acc + ")" + LoadExpr(I(in.operands[1]).shape.DType(), S + "[off]");
    const std::string better = is_max ? ">" : "<";
    // Going forward the first best stays unless beaten (a NaN beats every
    // number); going backward an element at least as good as the selection
    // comes first in every window that holds it.
    const std::string beats = "(v " + better + " bv || (v != v && bv == bv))";
    const std::string take = s.reverse ? "!(bv " + better + " v || (bv != bv && v == v))" : beats;
    std::string body = b.Body() + ScanLane(s) + ScanLoop(s) + zero + "    }\n";
    body += "    i64 best = -1; " + ct + " bv = (" + ct + ")0; " + acc + " acc = (" + acc + ")0;\n" + ScanLoop(s);
    body += "      const " + ct + " v = " + LoadExpr(I(in.operands[0]).shape.DType(), X + "[off]") + ";\n";
    if (s.exclusive) body += "      if (best >= 0) acc = acc + " + src + ";\n";
    body += "      if (best < 0 || " + take + ") { " + flush + " best = i; bv = v; acc = (" + acc + ")0; }\n";
    if (!s.exclusive) body += "      acc = acc + " + src + ";\n";
    body += "    }\n    " + flush + "\n";
    KernelSpec spec = Finish(b, id, "scan_select", ThreadLoop("u", s.outer * s.inner, body), s.outer * s.inner, false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  // The start-index component `k` of the index vector at batch position
  // `batch_axes` (axes of `indices` other than index_vector_dim), clamped
  // to [lo, hi].
  static std::string IndexComponent(const std::string& I_arg, const ir::Instruction& indices, int64_t ivd,
                                     const std::vector<std::string>& batch_axes, int64_t k, int64_t lo, int64_t hi) {
    const auto& id = indices.shape.Dims();
    const auto is = StridesOf(id);
    std::string off = "0LL";
    for (size_t d = 0, b = 0; d < id.size(); ++d) {
      const std::string ax = static_cast<int64_t>(d) == ivd ? Str(k) : batch_axes[b++];
      off += " + (" + ax + ") * " + Str(is[d]);
    }
    return ClampIndex(indices.shape.DType(), I_arg + "[" + off + "]", lo, hi);
  }

  KernelSpec Gather(int id) {
    const ir::Instruction& in = I(id);
    const auto& a = ir::Attr<ir::GatherAttrs>(in);
    const ir::Instruction& x = I(in.operands[0]);
    const ir::Instruction& ind = I(in.operands[1]);
    const auto& xd = x.shape.Dims();
    const auto xs = StridesOf(xd);
    KernelBuilder b(fn_, p_.materialized);
    const std::string X = b.Input(in.operands[0]), IDX = b.Input(in.operands[1]);
    std::vector<std::string> oax = b.Axes(LinearIdx("o"), in.shape.Dims());
    std::vector<std::string> batch, offs;
    for (size_t d = 0; d < oax.size(); ++d) {
      (std::find(a.offset_dims.begin(), a.offset_dims.end(), static_cast<int64_t>(d)) != a.offset_dims.end() ? offs : batch)
          .push_back(oax[d]);
    }
    std::string body = b.Body();
    std::vector<std::string> xi(xd.size(), "0LL");
    for (size_t k = 0; k < a.start_index_map.size(); ++k) {
      const auto d = static_cast<size_t>(a.start_index_map[k]);
      const std::string s = "st" + std::to_string(k);
      const int64_t max_start = xd[d] - a.slice_sizes[d];
      body += "    const i64 " + s + " = " +
              IndexComponent(IDX, ind, a.index_vector_dim, batch, static_cast<int64_t>(k), 0, max_start) + ";\n";
      xi[d] = s;
    }
    for (size_t d = 0, o = 0; d < xd.size(); ++d) {
      if (std::find(a.collapsed_slice_dims.begin(), a.collapsed_slice_dims.end(), static_cast<int64_t>(d)) !=
          a.collapsed_slice_dims.end()) {
        continue;
      }
      xi[d] = "(" + xi[d] + " + " + offs[o++] + ")";
    }
    std::string off = "0LL";
    for (size_t d = 0; d < xd.size(); ++d) off += " + " + xi[d] + " * " + Str(xs[d]);
    body += "    out[o] = " + X + "[" + off + "];\n";
    KernelSpec spec = Finish(b, id, "gather", ThreadLoop("o", in.shape.Size(), body), in.shape.Size(), false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  // Scatter's second pass: each update element combined atomically into the
  // output (which already holds a copy of the operand); out-of-bounds
  // elements are skipped.
  // `out_id` is the buffer written: the scatter's own value, or the float32
  // scratch of a Float16/BFloat16 ScatterSum.
  KernelSpec Scatter(int id, int out_id) {
    const ir::Instruction& in = I(id);
    const auto& a = ir::Attr<ir::ScatterAttrs>(in);
    const ir::Instruction& ind = I(in.operands[1]);
    const ir::Instruction& upd = I(in.operands[2]);
    const auto& od = in.shape.Dims();
    const auto os = StridesOf(od);
    const dtypes::DType dt = I(out_id).shape.DType();
    KernelBuilder b(fn_, p_.materialized);
    const std::string IDX = b.Input(in.operands[1]), U = b.Input(in.operands[2]);
    std::vector<std::string> uax = b.Axes(LinearIdx("u"), upd.shape.Dims());
    std::vector<std::string> batch, win;
    for (size_t d = 0; d < uax.size(); ++d) {
      (std::find(a.update_window_dims.begin(), a.update_window_dims.end(), static_cast<int64_t>(d)) !=
               a.update_window_dims.end()
           ? win
           : batch)
          .push_back(uax[d]);
    }
    std::string body = b.Body();
    std::vector<std::string> oi(od.size(), "0LL");
    for (size_t k = 0; k < a.scatter_dims_to_operand_dims.size(); ++k) {
      const auto d = static_cast<size_t>(a.scatter_dims_to_operand_dims[k]);
      const std::string s = "st" + std::to_string(k);
      body += "    const i64 " + s + " = " +
              IndexComponent(IDX, ind, a.index_vector_dim, batch, static_cast<int64_t>(k), -od[d], od[d]) + ";\n";
      oi[d] = s;
    }
    std::string cond = "true", off = "0LL";
    for (size_t d = 0, w = 0; d < od.size(); ++d) {
      if (std::find(a.inserted_window_dims.begin(), a.inserted_window_dims.end(), static_cast<int64_t>(d)) ==
          a.inserted_window_dims.end()) {
        oi[d] = "(" + oi[d] + " + " + win[w++] + ")";
      }
      const std::string q = "q" + std::to_string(d);
      body += "    const i64 " + q + " = " + oi[d] + ";\n";
      cond += " && " + q + " >= 0 && " + q + " < " + Str(od[d]);
      off += " + " + q + " * " + Str(os[d]);
    }
    const std::string st = StorageType(dt), ct = ComputeType(dt);
    const std::string uv = LoadExpr(upd.shape.DType(), U + "[u]");
    body += "    if (!(" + cond + ")) continue;\n";
    body += "    " + st + "* p = out + (" + off + ");\n";
    body += "    const " + ct + " v = " + uv + ";\n";
    switch (in.op) {
      case OpType::kScatterUpdate: body += "    *p = " + StoreExpr(dt, "v") + ";\n"; break;
      case OpType::kScatterSum:
        if (dt == dtypes::Float32 || dt == dtypes::Float64 || dt == dtypes::Int32 || dt == dtypes::Uint32 ||
            dt == dtypes::Uint64) {
          body += "    atomicAdd(p, v);\n";
        } else if (dt == dtypes::Int64) {
          body += "    atomicAdd((u64*)p, (u64)v);\n";
        } else {
          body += "    kAtomicCas(p, [&](" + st + " old) { return " +
                  StoreExpr(dt, IsFloatType(dt) ? "(" + LoadExpr(dt, "old") + " + v)" : "kAdd(" + LoadExpr(dt, "old") + ", v)") +
                  "; });\n";
        }
        break;
      case OpType::kScatterMax:
      case OpType::kScatterMin: {
        const char* f = in.op == OpType::kScatterMax ? "kMax" : "kMin";
        if (dt == dtypes::Bool) {
          body += "    kAtomicCas(p, [&](" + st + " old) { return " + StoreExpr(dt, std::string(in.op == OpType::kScatterMax ? "(old != 0) || v" : "(old != 0) && v")) + "; });\n";
        } else {
          body += "    kAtomicCas(p, [&](" + st + " old) { return " + StoreExpr(dt, std::string(f) + "(" + LoadExpr(dt, "old") + ", v)") + "; });\n";
        }
        break;
      }
      default: Unsupported(in, "is not a scatter");
    }
    // ScatterUpdate applies the updates in order (the last duplicate wins, as
    // on the CPU): one thread walks them. The combining scatters are atomic,
    // unless the program is deterministic: then they walk in order too.
    const bool serial = in.op == OpType::kScatterUpdate || options_.deterministic;
    const std::string loop = serial ? "  if (blockIdx.x != 0 || threadIdx.x != 0) return;\n  for (i64 u = 0; u < " +
                                          Str(upd.shape.Size()) + "; ++u) {\n" + body + "  }\n"
                                    : ThreadLoop("u", upd.shape.Size(), body);
    KernelSpec spec = Finish(b, out_id, "scatter", loop, serial ? 1 : upd.shape.Size(), false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  // Sort computes a permutation, the Sort's value in the Program: Int32 of
  // the operands' shape, holding at each position along the axis the
  // position the element there comes from (what ArgSort returns); each
  // GetTupleElement gathers its operand by it, fused into its consumers.
  // Blocks first sort chunks of up to kSortChunk positions of a lane in
  // shared memory (bitonic), then each pass merges pairs of sorted runs:
  // every element finds its place by a binary search in the other run. Ties
  // are broken by position, so every sort is stable.
  static constexpr int64_t kSortChunk = 2048;

  void Sort(int id) {
    // Copies: AddScratch below appends to the instructions.
    const shapes::Shape xs = I(I(id).operands[0]).shape.WithDType(dtypes::Int32);
    const SortLanes lanes = LanesOf(id);
    const int64_t n = lanes.n;
    if (n > std::numeric_limits<int32_t>::max()) Unsupported(I(id), "sorts more than 2^31 - 1 elements per lane");
    p_.function.instructions[static_cast<size_t>(id)].shape = xs;
    if (xs.Size() == 0) {
      p_.steps.push_back({StepKind::kKernel, id, Add(EmptyKernel(id))});
      return;
    }
    int64_t chunk = 1;
    while (chunk < std::min(n, kSortChunk)) chunk *= 2;
    int passes = 0;
    for (int64_t run = chunk; run < n; run *= 2) ++passes;
    // TopK and BottomK read a prefix: merges then keep the first `prefix`
    // positions of each run only.
    const int64_t prefix = std::min(n, ir::SortPrefixNeeded(fn_, id));
    int prev = passes == 0 ? id : AddScratch(xs);
    p_.steps.push_back({StepKind::kKernel, prev, Add(SortChunks(id, prev, lanes, chunk))});
    for (int pass = 1; pass <= passes; ++pass) {
      const int next = pass == passes ? id : AddScratch(xs);
      p_.steps.push_back({StepKind::kKernel, next, Add(MergeRuns(id, prev, next, lanes, chunk << (pass - 1), prefix))});
      prev = next;
    }
  }

  // A Sort's lanes: `count` of them, each of n positions `inner` apart.
  struct SortLanes {
    int64_t n = 0, inner = 1, count = 0;
    // The offset of lane `u`'s first element.
    std::string Base(const std::string& u) const {
      return "(" + u + " / " + Str(inner) + ") * " + Str(n * inner) + " + " + u + " % " + Str(inner);
    }
  };
  SortLanes LanesOf(int id) const {
    const shapes::Shape& x = I(I(id).operands[0]).shape;
    const auto axis = static_cast<size_t>(ir::Attr<ir::SortAttrs>(I(id)).axis);
    SortLanes l;
    l.n = x.Dims()[axis];
    for (size_t d = axis + 1; d < x.Dims().size(); ++d) l.inner *= x.Dims()[d];
    l.count = l.n == 0 ? 0 : x.Size() / l.n;
    return l;
  }

  // A sort kernel's spec: its comparator's function (named `cmp`) before
  // it, and no input overwritten in place (keys are read at any position).
  KernelSpec FinishSort(int id, const KernelBuilder& b, int out_id, const char* kind, const std::string& cmp,
                        const std::string& loop, int64_t items, bool per_block) {
    KernelSpec spec = Finish(b, out_id, kind, loop, items, per_block);
    if (ir::Attr<ir::SortAttrs>(I(id)).comparator >= 0) spec.source = ComparatorFunction(id, cmp) + spec.source;
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  // `before(base, a, b)`: whether the element at position a of the lane
  // starting at `base` goes before the one at b (positions >= n, the
  // padding of a chunk, go last).
  // Registers the operands it reads as (non-elementwise) inputs of `b`;
  // `cmp` names the comparator's function (ComparatorFunction), if any.
  std::string BeforeLambda(int id, KernelBuilder& b, const SortLanes& lanes, const std::string& cmp) {
    const ir::Instruction& in = I(id);
    const int64_t n = lanes.n, inner = lanes.inner;
    const auto& a = ir::Attr<ir::SortAttrs>(in);
    auto at = [&](size_t k, const char* pos) {
      const int opnd = in.operands[k];
      return LoadExpr(I(opnd).shape.DType(), b.Input(opnd) + "[base + (i64)" + pos + " * " + Str(inner) + "]");
    };
    std::string s = "    auto before = [&](i64 base, int a, int b) -> bool {\n";
    s += "      if (b >= " + Str(n) + ") return a < " + Str(n) + " || a < b;\n";
    s += "      if (a >= " + Str(n) + ") return false;\n";
    if (a.comparator >= 0) {
      std::string lhs, rhs;
      for (size_t k = 0; k < in.operands.size(); ++k) {
        lhs += (k == 0 ? "" : ", ") + at(k, "a") + ", " + at(k, "b");
        rhs += (k == 0 ? "" : ", ") + at(k, "b") + ", " + at(k, "a");
      }
      s += "      if (" + cmp + "(" + lhs + ")) return true;\n";
      s += "      if (" + cmp + "(" + rhs + ")) return false;\n";
    } else {
      for (size_t i = 0; i < a.keys.size(); ++i) {
        const auto k = static_cast<size_t>(a.keys[i]);
        const bool is_float = IsFloatType(I(in.operands[k]).shape.DType());
        auto key = [&](const char* pos) { return is_float ? "kSortKey(" + at(k, pos) + ")" : at(k, pos); };
        s += "      { const auto ka = " + key("a") + "; const auto kb = " + key("b") + "; if (ka != kb) return " +
             (a.descending[i] ? "kb < ka" : "ka < kb") + "; }\n";
      }
    }
    s += "      return a < b;\n    };\n";
    for (int opnd : in.operands) b.MarkNonElementwise(opnd);
    return s;
  }

  // The comparator sub-function of a Sort as a __device__ function of
  // (lhs_0, rhs_0, lhs_1, rhs_1, ...) in compute types, placed before the
  // kernel that calls it.
  std::string ComparatorFunction(int id, const std::string& name) {
    const ir::Instruction& in = I(id);
    const ir::Function& cmp = *fn_.subfunctions[static_cast<size_t>(ir::Attr<ir::SortAttrs>(in).comparator)];
    const std::vector<bool> computed(cmp.instructions.size(), false);
    KernelBuilder b(cmp, computed);
    b.PushScope(1);
    std::string params;
    for (size_t i = 0; i < cmp.parameters.size(); ++i) {
      const std::string name = "p" + std::to_string(i);
      b.Bind(cmp.parameters[i], name);
      params += (i == 0 ? "" : ", ") + ComputeType(cmp.instructions[static_cast<size_t>(cmp.parameters[i])].shape.DType()) +
                " " + name;
    }
    const std::string v = b.Value(cmp.outputs[0], LinearIdx("0"));
    return "__device__ __forceinline__ bool " + name + "(" + params + ") {\n" + b.Body() + "  return " + v +
           ";\n}\n";
  }

  // Sorts each chunk of `chunk` positions (a power of 2) of every lane in
  // shared memory with a bitonic network over positions. A block takes
  // several chunks when they are short (up to kSortChunk positions in all),
  // so rows of a few elements do not each take a block.
  KernelSpec SortChunks(int id, int out_id, const SortLanes& lanes, int64_t chunk) {
    const int64_t n = lanes.n, inner = lanes.inner;
    const int64_t chunks = (n + chunk - 1) / chunk, items = lanes.count * chunks;
    const int64_t per_block = std::min(kSortChunk / chunk, items), blocks = (items + per_block - 1) / per_block;
    KernelBuilder b(fn_, p_.materialized);
    const std::string C = std::to_string(chunk), S = std::to_string(chunk * per_block);
    const std::string cmp = Name(out_id, "cmp");
    // Position t of the shared array: chunk `item` of the block, element
    // `local` of it, `pos` along the lane starting at `base`.
    const std::string where = "const int local = t & " + std::to_string(chunk - 1) + "; const i64 item = first + t / " + C +
                              "; const i64 u = item / " + Str(chunks) + ", base = " + lanes.Base("u") + ";";
    std::string body = BeforeLambda(id, b, lanes, cmp);
    body += "    const i64 first = blk * " + Str(per_block) + ";\n";
    body += "    __shared__ int s[" + S + "];\n";
    body += "    for (int t = threadIdx.x; t < " + S + "; t += blockDim.x) s[t] = (int)((first + t / " + C + ") % " +
            Str(chunks) + " * " + C + " + (t & " + std::to_string(chunk - 1) + "));\n";
    body += "    __syncthreads();\n";
    body += "    for (int k = 2; k <= " + C + "; k <<= 1) {\n";
    body += "      for (int j = k >> 1; j > 0; j >>= 1) {\n";
    body += "        for (int t = threadIdx.x; t < " + S + "; t += blockDim.x) {\n";
    body += "          const int o = t ^ j;\n";
    body += "          if (o <= t) continue;\n";
    body += "          " + where + "\n";
    body += "          if (item >= " + Str(items) + ") continue;\n";
    body += "          const int x = s[t], y = s[o];\n";
    body += "          if ((local & k) == 0 ? before(base, y, x) : before(base, x, y)) { s[t] = y; s[o] = x; }\n";
    body += "        }\n        __syncthreads();\n      }\n    }\n";
    body += "    for (int t = threadIdx.x; t < " + S + "; t += blockDim.x) {\n";
    body += "      " + where + "\n";
    body += "      const i64 pos = item % " + Str(chunks) + " * " + C + " + local;\n";
    body += "      if (item < " + Str(items) + " && pos < " + Str(n) + ") out[base + pos * " + Str(inner) + "] = s[t];\n";
    body += "    }\n";
    body += "    __syncthreads();\n";  // before the next blocks' chunks refill s
    return FinishSort(id, b, out_id, "sort_chunks", cmp, BlockLoop("blk", blocks, body), blocks, true);
  }

  // One merge pass: runs of `width` sorted positions (in `prev`) merged in
  // pairs into `out_id`. With prefix < n only each run's first `prefix`
  // positions are read and written (the others are left undefined).
  KernelSpec MergeRuns(int id, int prev, int out_id, const SortLanes& lanes, int64_t width, int64_t prefix) {
    const int64_t n = lanes.n, inner = lanes.inner, size = lanes.count * n;
    KernelBuilder b(fn_, p_.materialized);
    const std::string P = b.Input(prev);
    auto pos = [&](const std::string& j) { return P + "[base + " + j + " * " + Str(inner) + "]"; };
    std::string body = "    const i64 u = e / " + Str(n) + ", j = e % " + Str(n) + ";\n";
    const std::string cmp = Name(out_id, "cmp");
    const bool partial = prefix < n;
    body += "    const i64 base = " + lanes.Base("u") + ";\n" + BeforeLambda(id, b, lanes, cmp);
    body += "    const i64 run = j / " + Str(width) + " * " + Str(width) + ", other = run ^ " + Str(width) + ";\n";
    if (partial) body += "    if (j - run >= " + Str(prefix) + ") continue;\n";
    body += "    const int x = " + pos("j") + ";\n";
    body += "    i64 dest = j;\n";
    body += "    if (other < " + Str(n) + ") {\n";
    body += "      i64 lo = other, hi = kMin(other + " + Str(partial ? std::min(width, prefix) : width) + ", " + Str(n) +
            ");\n";
    body += "      while (lo < hi) {\n";
    body += "        const i64 mid = (lo + hi) / 2;\n";
    body += "        if (before(base, " + pos("mid") + ", x)) lo = mid + 1; else hi = mid;\n";
    body += "      }\n";
    body += "      dest = kMin(run, other) + (j - run) + (lo - other);\n";
    if (partial) body += "      if (dest - kMin(run, other) >= " + Str(prefix) + ") continue;\n";
    body += "    }\n";
    body += "    out[base + dest * " + Str(inner) + "] = x;\n";
    return FinishSort(id, b, out_id, "sort_merge", cmp, ThreadLoop("e", size, body), size, false);
  }

  KernelSpec Rng(int id) {
    const ir::Instruction& in = I(id);
    const dtypes::DType dt = in.shape.DType();
    const int64_t per_block = dt == dtypes::Uint64 ? 2 : 4;
    const int64_t size = in.shape.Size();
    const int64_t blocks = (size + per_block - 1) / per_block;
    KernelBuilder b(fn_, p_.materialized);
    const std::string S = b.Input(in.operands[0]);
    const std::string st = StorageType(dt);
    std::string body = "    const KPhilox w = kPhilox(" + S + "[1], " + S + "[2], (u64)blk, " + S + "[0]);\n";
    body += "    const i64 first = blk * " + Str(per_block) + ";\n";
    if (dt == dtypes::Uint64) {
      body += "    for (int e = 0; e < 2 && first + e < " + Str(size) + "; ++e) out[first + e] = (u64)w.c[2 * e] | ((u64)w.c[2 * e + 1] << 32);\n";
    } else {
      body += "    for (int e = 0; e < 4 && first + e < " + Str(size) + "; ++e) out[first + e] = (" + st + ")w.c[e];\n";
    }
    KernelSpec spec = Finish(b, id, "rng", ThreadLoop("blk", blocks, body), blocks, false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    return spec;
  }

  Program& p_;
  const ir::Function& fn_;
  ProgramOptions options_;
  // Per factorization (Lu): the values holding its tuple's elements.
  std::map<int, std::vector<int>> elements_;
};

}  // namespace

std::string StorageType(dtypes::DType dtype) {
  switch (dtype) {
    case dtypes::Bool: return "unsigned char";
    case dtypes::Int8: return "signed char";
    case dtypes::Int16: return "short";
    case dtypes::Int32: return "int";
    case dtypes::Int64: return "long long";
    case dtypes::Uint8: return "unsigned char";
    case dtypes::Uint16: return "unsigned short";
    case dtypes::Uint32: return "unsigned int";
    case dtypes::Uint64: return "u64";
    case dtypes::Float16:
    case dtypes::BFloat16: return "unsigned short";
    case dtypes::Float32: return "float";
    case dtypes::Float64: return "double";
    default: break;
  }
  Throw("cuda: unsupported dtype " + std::string(dtypes::Name(dtype)));
}

bool MatmulDType(dtypes::DType dtype) {
  return dtype == dtypes::Float16 || dtype == dtypes::BFloat16 || dtype == dtypes::Float32 || dtype == dtypes::Float64;
}

std::string ModuleSource(const Program& program) {
  std::string s = KernelPrelude();
  for (const KernelSpec& k : program.kernels) s += "\n" + k.source;
  return s;
}

Capabilities ProgramCapabilities() {
  Capabilities caps;
  for (size_t i = 0; i < caps.ops.size(); ++i) caps.ops[i] = true;
  // Complex numbers (with the FFT) run on the CPU backend only so far
  // (issue 13; cuFFT is the plan): a graph with one of them gets "does not
  // implement op Fft" here. Without the fused Attention,
  // layers::DotProductAttention uses the composed ops. Collectives on device
  // buffers are NCCL's job (issue 14).
  for (ir::OpType op : {ir::OpType::kAttention, ir::OpType::kAttentionGrad,
                        ir::OpType::kComplex, ir::OpType::kReal, ir::OpType::kImag, ir::OpType::kFft,
                        ir::OpType::kCollective}) {
    caps.ops[static_cast<size_t>(op)] = false;
  }
  for (size_t i = 1; i <= static_cast<size_t>(dtypes::Float64); ++i) caps.dtypes[i] = true;
  return caps;
}

ProgramOptions ProgramOptionsFromEnvironment() {
  const char* v = std::getenv("KILN_CUDA_DETERMINISTIC");
  return {.deterministic = v != nullptr && std::string(v) == "1"};
}

Program GenerateProgram(const ir::Function& fn, const ProgramOptions& options) {
  Program p;
  p.function = CanonicalizeDots(fn);
  p.materialized = PlanMaterialized(p.function);
  // Room for the scratch values convolutions (at most 3 each), sorts (a
  // merge pass each: at most 21) and factorizations (at most 8) add, so references to instructions stay
  // valid while they are appended.
  size_t extra = 0;
  for (const ir::Instruction& in : p.function.instructions) {
    const bool factorization =
        in.op == OpType::kLu || in.op == OpType::kQr || in.op == OpType::kEigh || in.op == OpType::kSvd;
    extra += in.op == OpType::kSort ? 24 : factorization ? 10 : 0;
  }
  p.function.instructions.reserve(p.function.instructions.size() * 4 + extra + 16);
  Generator(p, options).Run();
  // The last GetTupleElement of each While or If element takes its buffer.
  std::map<std::pair<int, int>, size_t> last_reader;
  for (size_t si = 0; si < p.steps.size(); ++si) {
    const Step& step = p.steps[si];
    if (step.kind != StepKind::kTupleElement) continue;
    last_reader[{p.function.instructions[static_cast<size_t>(step.value)].operands[0], step.index}] = si;
  }
  for (const auto& [element, si] : last_reader) p.steps[si].take = true;
  return p;
}

}  // namespace kiln::backends::cuda
