// Copyright 2026 The Kiln Authors.
// Element conversions and accumulator types shared by the CPU kernels that
// sum products or windows (DotGeneral, ConvGeneral, ReduceWindow,
// SelectAndScatter).
#pragma once

#include <complex>
#include <cstdint>
#include <type_traits>

#include "kiln/core/float16.h"

namespace kiln::backends::cpu {

/// Whether T is one of the 16-bit float storage types.
template <typename T>
inline constexpr bool kIsHalf = std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>;

/// Converts one element, going through float for the half types.
template <typename Dst, typename Src>
inline Dst ConvertElement(Src v) {
  if constexpr (std::is_same_v<Src, Dst>) return v;
  else if constexpr (kIsHalf<Src>) return ConvertElement<Dst>(static_cast<float>(v));
  else if constexpr (kIsHalf<Dst>) return Dst(static_cast<float>(v));
  else return static_cast<Dst>(v);
}

/// Whether T is std::complex<float> or std::complex<double>.
template <typename T>
inline constexpr bool kIsComplex = false;
template <typename T>
inline constexpr bool kIsComplex<std::complex<T>> = true;

/// The type values of T are compared in: float for half types, else T.
template <typename T>
using ComputeType = std::conditional_t<kIsHalf<T>, float, T>;

/// The type sums and products of T accumulate in: T itself for float and
/// complex types, float for half types; for
/// integers an unsigned type of at least 32 bits, so that sums and products
/// wrap around (two's complement, as XLA) without undefined behaviour, and
/// small types do not promote to int.
template <typename T>
using AccType = std::conditional_t<
    std::is_floating_point_v<T> || kIsComplex<T>, T,
    std::conditional_t<kIsHalf<T>, float, std::conditional_t<(sizeof(T) <= 4), uint32_t, uint64_t>>>;

}  // namespace kiln::backends::cpu
