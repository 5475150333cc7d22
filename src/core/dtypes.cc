// Copyright 2026 The Kiln Authors.
#include "kiln/core/dtypes.h"

#include <ostream>

#include "kiln/core/error.h"

namespace kiln {

void ThrowInvalidDType(const char* where) { Throw(std::string(where) + ": invalid dtype"); }
void ThrowComplexDType(dtypes::DType dtype, const char* where) {
  Throw(std::string(where) + ": " + dtypes::Name(dtype) + " is not supported here (complex numbers are not ordered "
        "and have no kernels in this code path)");
}

namespace dtypes {

const char* Name(DType dtype) {
  switch (dtype) {
    case DType::Invalid: return "Invalid";
    case DType::Bool: return "Bool";
    case DType::Int8: return "Int8";
    case DType::Int16: return "Int16";
    case DType::Int32: return "Int32";
    case DType::Int64: return "Int64";
    case DType::Uint8: return "Uint8";
    case DType::Uint16: return "Uint16";
    case DType::Uint32: return "Uint32";
    case DType::Uint64: return "Uint64";
    case DType::Float16: return "Float16";
    case DType::BFloat16: return "BFloat16";
    case DType::Float32: return "Float32";
    case DType::Float64: return "Float64";
    case DType::Complex64: return "Complex64";
    case DType::Complex128: return "Complex128";
  }
  return "Invalid";
}

DType FromName(const std::string& name) {
  for (DType d : kAll) {
    if (name == Name(d)) return d;
  }
  std::string known;
  for (DType d : kAll) known += std::string(known.empty() ? "" : ", ") + Name(d);
  Throw("unknown dtype \"" + name + "\"; known dtypes: " + known);
}

size_t SizeOf(DType dtype) {
  switch (dtype) {
    case DType::Bool:
    case DType::Int8:
    case DType::Uint8: return 1;
    case DType::Int16:
    case DType::Uint16:
    case DType::Float16:
    case DType::BFloat16: return 2;
    case DType::Int32:
    case DType::Uint32:
    case DType::Float32: return 4;
    case DType::Int64:
    case DType::Uint64:
    case DType::Float64:
    case DType::Complex64: return 8;
    case DType::Complex128: return 16;
    case DType::Invalid: break;
  }
  return 0;
}

bool IsFloat(DType d) { return d == Float16 || d == BFloat16 || d == Float32 || d == Float64; }
bool IsHalf(DType d) { return d == Float16 || d == BFloat16; }
bool IsSignedInteger(DType d) { return d == Int8 || d == Int16 || d == Int32 || d == Int64; }
bool IsUnsignedInteger(DType d) { return d == Uint8 || d == Uint16 || d == Uint32 || d == Uint64; }
bool IsInteger(DType d) { return IsSignedInteger(d) || IsUnsignedInteger(d); }
bool IsSigned(DType d) { return IsFloat(d) || IsSignedInteger(d); }
bool IsComplex(DType d) { return d == Complex64 || d == Complex128; }
bool IsFloatOrComplex(DType d) { return IsFloat(d) || IsComplex(d); }
DType RealPart(DType d) {
  if (d == Complex64) return Float32;
  if (d == Complex128) return Float64;
  return d;
}
DType ComplexOf(DType d) {
  if (d == Float32 || d == Complex64) return Complex64;
  if (d == Float64 || d == Complex128) return Complex128;
  return Invalid;
}

std::ostream& operator<<(std::ostream& os, DType dtype) { return os << Name(dtype); }

}  // namespace dtypes
}  // namespace kiln
