// Copyright 2026 The Kiln Authors.
// Vectorized float32/float64 math of the elementwise CPU kernels (Highway),
// with IEEE special cases (Inf, NaN, out-of-domain inputs, overflow) matching
// the C++ standard library functions.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kiln::backends::cpu {

/// The unary float functions computed by MathF32 / MathF64.
enum class MathOp : uint8_t {
  kCeil,
  kFloor,
  kRound,  // half to even
  kExp,
  kExpm1,
  kLog,
  kLog1p,
  kLogistic,  // 1 / (1 + exp(-x))
  kSin,
  kCos,
  kTanh,
  kSqrt,
  kRsqrt,  // 1 / sqrt(x)
  kErf,
  kCount,  // the number of ops above: keep it last
};

/// Computes out[i] = op(in[i]) for i in [0, n), serially (callers split large
/// arrays across threads). `out` may equal `in`. Results are within a few
/// ULP of the correctly rounded value (Ceil, Floor, Round, Sqrt exact).
void MathF32(MathOp op, const float* in, float* out, int64_t n);
/// Float64 version of MathF32.
void MathF64(MathOp op, const double* in, double* out, int64_t n);

/// The maximum (or minimum, if `is_min`) of x[0..n), NaN if any element is
/// NaN, -Inf (+Inf) for n = 0: vectorized, with the NaN check folded into
/// the same pass.
float RowExtremumF32(const float* x, int64_t n, bool is_min);
/// Float64 version of RowExtremumF32.
double RowExtremumF64(const double* x, int64_t n, bool is_min);

/// Outputs of at least this many bytes are written with StreamCopy by the
/// fused and the per-op elementwise kernels. Measured over 16M floats (2
/// threads): the chain tanh(2x+1)*sigmoid(x) 10.5 -> 8.4-9.2 ms, x * 2
/// 3.6 -> 2.8 ms, Exp 5.0 -> 4.0 ms. Softmax as four passes went from 15.4
/// to 16.7 ms, and streaming only the values a function returns (its result,
/// not exp(x - max)) made it 19.3 ms, so all large outputs stream.
inline constexpr int64_t kStreamMinBytes = int64_t{32} << 20;

/// Copies `bytes` from `src` to `dst` with non-temporal (streaming) stores
/// where `dst` is vector-aligned: the destination's lines are not read into
/// the cache first. Call StreamFence before another thread reads `dst`.
void StreamCopy(void* dst, const void* src, size_t bytes);
/// Orders this thread's streaming stores before its later stores.
void StreamFence();

}  // namespace kiln::backends::cpu
