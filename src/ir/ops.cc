// Copyright 2026 The Kiln Authors.
#include "kiln/ir/ops.h"

#include <array>
#include <ostream>

namespace kiln::ir {

namespace {
struct OpInfo {
  std::string_view name;
  OpCategory category;
};
constexpr std::array<OpInfo, kNumOpTypes> kOpInfo = {{
#define KILN_X(name, category, dtype_class) {#name, OpCategory::category},
    KILN_IR_OPS(KILN_X)
#undef KILN_X
}};
}  // namespace

std::string_view OpName(OpType op) {
  auto i = static_cast<size_t>(op);
  return i < kOpInfo.size() ? kOpInfo[i].name : std::string_view("InvalidOp");
}

OpCategory CategoryOf(OpType op) { return kOpInfo.at(static_cast<size_t>(op)).category; }

std::ostream& operator<<(std::ostream& os, OpType op) { return os << OpName(op); }

bool Accepts(DTypeClass c, dtypes::DType dtype) {
  switch (c) {
    case DTypeClass::kFloat: return dtypes::IsFloat(dtype);
    case DTypeClass::kNumeric: return dtypes::IsFloat(dtype) || dtypes::IsInteger(dtype);
    case DTypeClass::kInteger: return dtypes::IsInteger(dtype);
    case DTypeClass::kBool: return dtype == dtypes::Bool;
    case DTypeClass::kAny: return dtype != dtypes::Invalid && !dtypes::IsComplex(dtype);
    case DTypeClass::kOwnRule: return false;
    case DTypeClass::kFloatOrComplex: return dtypes::IsFloatOrComplex(dtype);
    case DTypeClass::kNumericOrComplex:
      return dtypes::IsFloatOrComplex(dtype) || dtypes::IsInteger(dtype);
    case DTypeClass::kAnyOrComplex: return dtype != dtypes::Invalid;
  }
  return false;
}

std::string_view DTypeClassName(DTypeClass c) {
  switch (c) {
    case DTypeClass::kFloat: return "a float dtype";
    case DTypeClass::kNumeric: return "a numeric (integer or float) dtype";
    case DTypeClass::kInteger: return "an integer dtype";
    case DTypeClass::kBool: return "Bool";
    case DTypeClass::kAny: return "a real (non-complex) dtype";
    case DTypeClass::kOwnRule: return "the op's own dtype rule";
    case DTypeClass::kFloatOrComplex: return "a float or complex dtype";
    case DTypeClass::kNumericOrComplex: return "a numeric (integer, float or complex) dtype";
    case DTypeClass::kAnyOrComplex: return "any dtype";
  }
  return "";
}

}  // namespace kiln::ir
