// Copyright 2026 The Kiln Authors.
// IEEE half precision (float16) and bfloat16 storage types.
//
// Both are 16-bit storage types: arithmetic converts to float, computes, and
// rounds back (round-to-nearest-even), as XLA and PyTorch do on CPU.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <iosfwd>

#if defined(__F16C__)
#include <immintrin.h>
#endif

namespace kiln {

namespace internal {
// Portable conversions (src/core/float16.cc).
float HalfBitsToFloatSoftware(uint16_t h);
uint16_t FloatToHalfBitsSoftware(float f);

// Inline so kernels converting per element stay fast: one F16C instruction
// where the target has it (x86-64-v3 and later), else the portable code.
inline float HalfBitsToFloat(uint16_t h) {
#if defined(__F16C__)
  return _cvtsh_ss(h);
#else
  return HalfBitsToFloatSoftware(h);
#endif
}
inline uint16_t FloatToHalfBits(float f) {
#if defined(__F16C__)
  return static_cast<uint16_t>(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT));
#else
  return FloatToHalfBitsSoftware(f);
#endif
}
}  // namespace internal

/// IEEE 754 binary16.
struct float16 {
  uint16_t bits = 0;
  float16() = default;
  /// Converts from float with round-to-nearest-even; overflow gives +-Inf.
  explicit float16(float f) : bits(internal::FloatToHalfBits(f)) {}
  explicit float16(double d) : float16(static_cast<float>(d)) {}
  explicit operator float() const { return internal::HalfBitsToFloat(bits); }
  explicit operator double() const { return static_cast<double>(static_cast<float>(*this)); }
  static float16 FromBits(uint16_t b) {
    float16 h;
    h.bits = b;
    return h;
  }
  friend bool operator==(float16 a, float16 b) { return float(a) == float(b); }
};

/// Brain float: the top 16 bits of a float32.
struct bfloat16 {
  uint16_t bits = 0;
  bfloat16() = default;
  /// Converts from float with round-to-nearest-even; NaN stays NaN.
  explicit bfloat16(float f) {
    uint32_t u = std::bit_cast<uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      bits = static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
    } else {
      uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
      bits = static_cast<uint16_t>((u + rounding) >> 16);
    }
  }
  explicit bfloat16(double d) : bfloat16(static_cast<float>(d)) {}
  explicit operator float() const { return std::bit_cast<float>(static_cast<uint32_t>(bits) << 16); }
  explicit operator double() const { return static_cast<double>(static_cast<float>(*this)); }
  static bfloat16 FromBits(uint16_t b) {
    bfloat16 h;
    h.bits = b;
    return h;
  }
  friend bool operator==(bfloat16 a, bfloat16 b) { return float(a) == float(b); }
};

std::ostream& operator<<(std::ostream& os, float16 v);
std::ostream& operator<<(std::ostream& os, bfloat16 v);

}  // namespace kiln
