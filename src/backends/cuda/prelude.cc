// Copyright 2026 The Kiln Authors.
// The device functions every generated kernel starts with: 16-bit float
// conversions (without cuda_fp16.h, so NVRTC needs no include path), integer
// arithmetic with the CPU backend's wrap-around and division rules, NaN
// propagating max/min, Sort's key order, and Philox4x32-10 (the CPU's
// philox.h, bit for bit).
#include "src/backends/cuda/prelude.h"

namespace kiln::backends::cuda {

const char* KernelPrelude() {
  return R"KILN(
typedef long long i64;
typedef unsigned long long u64;

#ifndef KILN_CUDA_EMULATION
__device__ __forceinline__ float kH2F(unsigned short h) { float f; asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h)); return f; }
__device__ __forceinline__ unsigned short kF2H(float f) { unsigned short h; asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f)); return h; }
#else  // the host emulator (emulator.h): the same conversions in integer arithmetic
__device__ __forceinline__ float kH2F(unsigned short h) {
  const unsigned sign = (unsigned)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0) { const float v = (float)m * 5.9604644775390625e-8f; return sign ? -v : v; }  // m * 2^-24
  if (e == 31) return __uint_as_float(sign | 0x7f800000u | (m << 13));
  return __uint_as_float(sign | ((e + 112u) << 23) | (m << 13));
}
__device__ __forceinline__ unsigned short kF2H(float f) {
  const unsigned x = __float_as_uint(f), sign = (x >> 16) & 0x8000u, ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) return (unsigned short)(sign | 0x7e00u);  // NaN
  if (ax >= 0x477ff000u) return (unsigned short)(sign | 0x7c00u);  // from 65520 up: Inf
  if (ax < 0x38800000u) return (unsigned short)(sign | (unsigned)rintf(__uint_as_float(ax) * 16777216.0f));  // subnormal
  unsigned r = ax - 0x38000000u;  // rebias the exponent, then round 23 mantissa bits to 10, to nearest even
  r += 0xfffu + ((r >> 13) & 1u);
  return (unsigned short)(sign | (r >> 13));
}
#endif
__device__ __forceinline__ float kB2F(unsigned short b) { return __uint_as_float(((unsigned)b) << 16); }
__device__ __forceinline__ unsigned short kF2B(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);  // round to nearest even
  return (unsigned short)(u >> 16);
}
// Rounding a float result to a 16-bit float, kept in float.
__device__ __forceinline__ float kRoundH(float f) { return kH2F(kF2H(f)); }
__device__ __forceinline__ float kRoundB(float f) { return kB2F(kF2B(f)); }

// Unsigned types of each width, for wrap-around arithmetic without UB.
template <class T> struct KU;
template <> struct KU<signed char> { typedef unsigned int W; typedef unsigned char U; typedef signed char S; };
template <> struct KU<unsigned char> { typedef unsigned int W; typedef unsigned char U; typedef signed char S; };
template <> struct KU<short> { typedef unsigned int W; typedef unsigned short U; typedef short S; };
template <> struct KU<unsigned short> { typedef unsigned int W; typedef unsigned short U; typedef short S; };
template <> struct KU<int> { typedef unsigned int W; typedef unsigned int U; typedef int S; };
template <> struct KU<unsigned int> { typedef unsigned int W; typedef unsigned int U; typedef int S; };
template <> struct KU<long long> { typedef u64 W; typedef u64 U; typedef long long S; };
template <> struct KU<u64> { typedef u64 W; typedef u64 U; typedef long long S; };

template <class T> __device__ __forceinline__ T kAdd(T a, T b) { typedef typename KU<T>::W W; return (T)((W)a + (W)b); }
template <class T> __device__ __forceinline__ T kSub(T a, T b) { typedef typename KU<T>::W W; return (T)((W)a - (W)b); }
template <class T> __device__ __forceinline__ T kMul(T a, T b) { typedef typename KU<T>::W W; return (T)((W)a * (W)b); }
template <class T> __device__ __forceinline__ T kNeg(T a) { typedef typename KU<T>::W W; return (T)((W)0 - (W)a); }
template <class T> __device__ __forceinline__ T kAbsI(T a) { return a < (T)0 ? kNeg(a) : a; }
template <class T> __device__ __forceinline__ bool kIsMinI(T a) { return (T)(-1) < (T)0 && a == (T)((typename KU<T>::U)1 << (sizeof(T) * 8 - 1)); }
// x / 0 is all bits set; INT_MIN / -1 is INT_MIN (as XLA specifies).
template <class T> __device__ __forceinline__ T kDivI(T a, T b) {
  if (b == (T)0) return (T)(-1);
  if ((T)(-1) < (T)0 && b == (T)(-1) && kIsMinI(a)) return a;
  return (T)(a / b);
}
// x % 0 is x; INT_MIN % -1 is 0.
template <class T> __device__ __forceinline__ T kRemI(T a, T b) {
  if (b == (T)0) return a;
  if ((T)(-1) < (T)0 && b == (T)(-1)) return (T)0;
  return (T)(a % b);
}
template <class T> __device__ __forceinline__ T kPowI(T base, T e) {
  if ((T)(-1) < (T)0 && e < (T)0) {
    if (base == (T)1) return (T)1;
    if (base == (T)(-1)) return (e & (T)1) ? (T)(-1) : (T)1;
    return (T)0;
  }
  typedef typename KU<T>::W W;
  W result = 1, square = (W)base;
  for (typename KU<T>::U x = (typename KU<T>::U)e; x != 0; x >>= 1) {
    if (x & 1) result *= square;
    square *= square;
  }
  return (T)result;
}
template <class T> __device__ __forceinline__ bool kShiftOut(T b) { return (typename KU<T>::U)b >= sizeof(T) * 8; }
template <class T> __device__ __forceinline__ T kShl(T a, T b) { typedef typename KU<T>::W W; return kShiftOut(b) ? (T)0 : (T)((W)a << (unsigned)b); }
template <class T> __device__ __forceinline__ T kShrL(T a, T b) { typedef typename KU<T>::U U; return kShiftOut(b) ? (T)0 : (T)((U)a >> (unsigned)b); }
template <class T> __device__ __forceinline__ T kShrA(T a, T b) {
  typedef typename KU<T>::S S;
  const S s = (S)a;
  if (kShiftOut(b)) return (T)(s < 0 ? (S)(-1) : (S)0);
  return (T)(S)(s >> (unsigned)b);
}
template <class T> __device__ __forceinline__ T kPopc(T a) {
  typedef typename KU<T>::U U;
  return sizeof(T) == 8 ? (T)__popcll((u64)(U)a) : (T)__popc((unsigned)(U)a);
}
template <class T> __device__ __forceinline__ T kClz(T a) {
  typedef typename KU<T>::U U;
  return sizeof(T) == 8 ? (T)__clzll((long long)(U)a) : (T)(__clz((int)(unsigned)(U)a) - (int)(32 - sizeof(T) * 8));
}
template <class T> __device__ __forceinline__ T kSignI(T x) { return (T)(-1) < (T)0 ? (T)((x > (T)0) - (x < (T)0)) : (T)(x != (T)0); }
template <class T> __device__ __forceinline__ T kSignF(T x) { return x > (T)0 ? (T)1 : (x < (T)0 ? (T)(-1) : x); }
// Max and Min propagate NaN (for floats; for integers x != x is false).
template <class T> __device__ __forceinline__ T kMax(T a, T b) { return (a > b || a != a) ? a : b; }
template <class T> __device__ __forceinline__ T kMin(T a, T b) { return (a < b || a != a) ? a : b; }
// Sort keys: floats as unsigned integers in Sort's total order (-Inf < ...
// < -0 = +0 < ... < +Inf < NaN, every NaN equal), as the CPU's sort.cc.
__device__ __forceinline__ unsigned kSortKey(float f) {
  if (f != f) return 0xffffffffu;
  const unsigned u = f == 0.0f ? 0u : __float_as_uint(f);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ u64 kSortKey(double f) {
  if (f != f) return ~0ull;
  const u64 u = f == 0.0 ? 0ull : (u64)__double_as_longlong(f);
  return (u >> 63) ? ~u : (u | (1ull << 63));
}
__device__ __forceinline__ float kLogistic(float x) { return 1.0f / (1.0f + expf(-x)); }
__device__ __forceinline__ double kLogistic(double x) { return 1.0 / (1.0 + exp(-x)); }

// Philox4x32-10 (see src/backends/cpu/philox.h).
struct KPhilox { unsigned c[4]; };
__device__ __forceinline__ KPhilox kPhilox(u64 counter_lo, u64 counter_hi, u64 block, u64 seed) {
  const u64 sum = counter_lo + block;
  const u64 hi = counter_hi + (sum < counter_lo ? 1ull : 0ull);
  unsigned c0 = (unsigned)sum, c1 = (unsigned)(sum >> 32), c2 = (unsigned)hi, c3 = (unsigned)(hi >> 32);
  unsigned k0 = (unsigned)seed, k1 = (unsigned)(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    if (r > 0) { k0 += 0x9E3779B9u; k1 += 0xBB67AE85u; }
    const u64 p0 = (u64)0xD2511F53u * c0;
    const u64 p1 = (u64)0xCD9E8D57u * c2;
    const unsigned n0 = (unsigned)(p1 >> 32) ^ c1 ^ k0, n1 = (unsigned)p1;
    const unsigned n2 = (unsigned)(p0 >> 32) ^ c3 ^ k1, n3 = (unsigned)p0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
  }
  KPhilox out; out.c[0] = c0; out.c[1] = c1; out.c[2] = c2; out.c[3] = c3;
  return out;
}

// The low sizeof(T) bytes of a word as a T, and back (little-endian).
template <class T> __device__ __forceinline__ T kFromBits(u64 bits) { union { u64 u; T t; } x; x.u = bits; return x.t; }
template <class T> __device__ __forceinline__ u64 kToBits(T v) { union { u64 u; T t; } x; x.u = 0; x.t = v; return x.u; }

// A compare-and-swap loop's first guess: a plain read other threads'
// atomics may race (the loop checks it), marked for the emulator's race
// check.
template <class T> __device__ __forceinline__ T kRacyLoad(const T* p) {
#ifdef KILN_CUDA_EMULATION
  return kemu_racy_load(p);
#else
  return *p;
#endif
}

// Atomic updates for Scatter: native where the hardware has them, else a
// compare-and-swap loop on the aligned word holding the value.
template <class T, class F> __device__ void kAtomicCas(T* p, F f) {
  if (sizeof(T) == 8) {
    u64* q = (u64*)p;
    u64 old = kRacyLoad(q), assumed;
    do { assumed = old; old = atomicCAS(q, assumed, kToBits(f(kFromBits<T>(assumed)))); } while (old != assumed);
  } else {
    const size_t addr = (size_t)p;
    unsigned* q = (unsigned*)(addr & ~(size_t)3);
    const unsigned shift = (unsigned)(addr & 3) * 8;
    const unsigned mask = (sizeof(T) == 4 ? 0xffffffffu : (sizeof(T) == 2 ? 0xffffu : 0xffu)) << shift;
    unsigned old = kRacyLoad(q), assumed;
    do {
      assumed = old;
      const T v = f(kFromBits<T>((u64)((assumed & mask) >> shift)));
      old = atomicCAS(q, assumed, (assumed & ~mask) | (((unsigned)kToBits(v) << shift) & mask));
    } while (old != assumed);
  }
}
)KILN";
}

// Four consecutive elements aligned to A bytes: the vector loads and stores
// of elementwise kernels (codegen_vector.cc). Only modules with such a
// kernel include it, so the others' sources (and cache entries) stay as
// they were.
const char* VectorSource() {
  return "template <class T, int A> struct alignas(A) KVec4 { T v[4]; };\n";
}

// complex_math.cuh and attention.cuh are the argument of KILN_CUDA_SOURCE:
// here their text.
#define KILN_CUDA_SOURCE(...) #__VA_ARGS__
const char* ComplexMathSource() {
  return
#include "src/backends/cuda/complex_math.cuh"
      ;  // NOLINT(whitespace/semicolon)
}
const char* AttentionSource() {
  return
#include "src/backends/cuda/attention.cuh"
      ;  // NOLINT(whitespace/semicolon)
}
#undef KILN_CUDA_SOURCE

}  // namespace kiln::backends::cuda
