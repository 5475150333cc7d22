// Copyright 2026 The Kiln Authors.
// kiln::dtypes: the element types of tensors and graph values.
#pragma once

#include <cstddef>
#include <complex>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <type_traits>
#include <utility>

#include "kiln/core/float16.h"

namespace kiln::dtypes {

/// Element type of a tensor. Printed as "Float32", "Int64", ...
enum class DType : uint8_t {
  Invalid = 0,
  Bool,
  Int8,
  Int16,
  Int32,
  Int64,
  Uint8,
  Uint16,
  Uint32,
  Uint64,
  Float16,
  BFloat16,
  Float32,
  Float64,
  Complex64,   // std::complex<float>: real and imaginary Float32 parts
  Complex128,  // std::complex<double>
};

inline constexpr DType Invalid = DType::Invalid;
inline constexpr DType Bool = DType::Bool;
inline constexpr DType Int8 = DType::Int8;
inline constexpr DType Int16 = DType::Int16;
inline constexpr DType Int32 = DType::Int32;
inline constexpr DType Int64 = DType::Int64;
inline constexpr DType Uint8 = DType::Uint8;
inline constexpr DType Uint16 = DType::Uint16;
inline constexpr DType Uint32 = DType::Uint32;
inline constexpr DType Uint64 = DType::Uint64;
inline constexpr DType Float16 = DType::Float16;
inline constexpr DType BFloat16 = DType::BFloat16;
inline constexpr DType Float32 = DType::Float32;
inline constexpr DType Float64 = DType::Float64;
inline constexpr DType Complex64 = DType::Complex64;
inline constexpr DType Complex128 = DType::Complex128;

/// The C++ types of the complex dtypes.
using complex64 = std::complex<float>;
using complex128 = std::complex<double>;

/// Every valid dtype, in enum order.
inline constexpr DType kAll[] = {Bool,   Int8,    Int16,    Int32,   Int64,   Uint8,     Uint16,     Uint32,
                                 Uint64, Float16, BFloat16, Float32, Float64, Complex64, Complex128};

/// "Float32", "Int64", ... ("Invalid" for DType::Invalid).
const char* Name(DType dtype);
/// Parses a name as printed by Name(); throws kiln::Error for an unknown name.
DType FromName(const std::string& name);
/// Size of one element in bytes (Bool is one byte).
size_t SizeOf(DType dtype);
/// Float16, BFloat16, Float32, Float64.
bool IsFloat(DType dtype);
/// Signed or unsigned integers (not Bool).
bool IsInteger(DType dtype);
bool IsSignedInteger(DType dtype);
bool IsUnsignedInteger(DType dtype);
/// Float16 and BFloat16: stored in 16 bits, computed in float32.
bool IsHalf(DType dtype);
/// Floats and signed integers.
bool IsSigned(DType dtype);
/// Complex64 and Complex128.
bool IsComplex(DType dtype);
/// Floats and complex numbers: the dtypes that carry gradients.
bool IsFloatOrComplex(DType dtype);
/// The dtype of a complex dtype's real and imaginary parts (Complex64 ->
/// Float32, Complex128 -> Float64); other dtypes are returned unchanged.
DType RealPart(DType dtype);
/// The complex dtype with parts of `dtype` (Float32 -> Complex64, Float64 ->
/// Complex128; a complex dtype is returned unchanged); Invalid for the others.
DType ComplexOf(DType dtype);

std::ostream& operator<<(std::ostream& os, DType dtype);

/// The C++ type of each dtype: DTypeOf<float>() == Float32.
template <typename T>
constexpr DType DTypeOf() {
  if constexpr (std::is_same_v<T, bool>) return Bool;
  else if constexpr (std::is_same_v<T, int8_t>) return Int8;
  else if constexpr (std::is_same_v<T, int16_t>) return Int16;
  else if constexpr (std::is_same_v<T, int32_t>) return Int32;
  else if constexpr (std::is_same_v<T, int64_t> || std::is_same_v<T, long long>) return Int64;  // NOLINT
  else if constexpr (std::is_same_v<T, uint8_t>) return Uint8;
  else if constexpr (std::is_same_v<T, uint16_t>) return Uint16;
  else if constexpr (std::is_same_v<T, uint32_t>) return Uint32;
  else if constexpr (std::is_same_v<T, uint64_t> || std::is_same_v<T, unsigned long long>) return Uint64;  // NOLINT
  else if constexpr (std::is_same_v<T, float16>) return Float16;
  else if constexpr (std::is_same_v<T, bfloat16>) return BFloat16;
  else if constexpr (std::is_same_v<T, float>) return Float32;
  else if constexpr (std::is_same_v<T, double>) return Float64;
  else if constexpr (std::is_same_v<T, complex64>) return Complex64;
  else if constexpr (std::is_same_v<T, complex128>) return Complex128;
  else return Invalid;
}

/// True if T is one of the C++ types of a dtype.
template <typename T>
inline constexpr bool kIsElementType = DTypeOf<T>() != Invalid;

}  // namespace kiln::dtypes

namespace kiln {

/// Calls fn(T{}) with T the C++ type of `dtype` (e.g. float for Float32),
/// for the real dtypes. Throws kiln::Error for Invalid and for the complex
/// dtypes, which most generic code does not handle: code that does calls
/// DispatchDTypeWithComplex.
template <typename Fn>
decltype(auto) DispatchDType(dtypes::DType dtype, Fn&& fn);
/// DispatchDType, and complex64 / complex128 for the complex dtypes.
template <typename Fn>
decltype(auto) DispatchDTypeWithComplex(dtypes::DType dtype, Fn&& fn);

}  // namespace kiln

#include "kiln/core/dtypes_dispatch.inc"
