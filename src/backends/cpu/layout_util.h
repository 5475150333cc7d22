// Copyright 2026 The Kiln Authors.
// Index helpers shared by the CPU data-movement and reduction kernels: an N-d
// loop over "rows" (the innermost axis) of two strided arrays, simplified at
// compile time so the run-time loop is as short and contiguous as possible.
#pragma once

#include <cstdint>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::backends::cpu {

/// An N-d index space walked in row-major order over two arrays `a` and `b`
/// with per-axis element strides (0 for a broadcast or reduced axis, negative
/// for a reversed one). The last axis is the row: the tight inner loop.
struct RowLoop {
  std::vector<int64_t> dims;
  std::vector<int64_t> a_strides, b_strides;

  int Rank() const { return static_cast<int>(dims.size()); }
  /// Number of points of the index space.
  int64_t Size() const;
  /// Number of rows (the product of all dims but the last); 1 for rank <= 1.
  int64_t NumRows() const;
};

/// Row-major strides (in elements) of `dims`.
std::vector<int64_t> RowMajorStrides(const std::vector<int64_t>& dims);

/// Drops size-1 axes and merges neighbouring axes that both arrays traverse as
/// one (stride[i] == stride[i+1] * dims[i+1] for a and b), so that e.g. a copy
/// of contiguous blocks becomes a 2-d loop. An empty space stays as is; a
/// one-point space becomes rank 1 with dims {1}.
RowLoop Simplify(const RowLoop& loop);

/// Calls fn(a_offset, b_offset, row_length) for rows [row_begin, row_end) of
/// `loop` (rank >= 1), in row-major order. Offsets are in elements.
template <typename Fn>
void ForEachRow(const RowLoop& loop, int64_t row_begin, int64_t row_end, Fn&& fn) {
  const int inner = loop.Rank() - 1;
  const int64_t n = loop.dims[inner];
  if (row_begin >= row_end || n == 0) return;
  // Multi-index of row_begin over the outer axes (one division per axis, once).
  std::vector<int64_t> idx(static_cast<size_t>(inner), 0);
  int64_t a_off = 0, b_off = 0;
  for (int64_t k = inner - 1, rem = row_begin; k >= 0; --k) {
    idx[k] = rem % loop.dims[k];
    rem /= loop.dims[k];
    a_off += idx[k] * loop.a_strides[k];
    b_off += idx[k] * loop.b_strides[k];
  }
  for (int64_t row = row_begin; row < row_end; ++row) {
    fn(a_off, b_off, n);
    for (int k = inner - 1; k >= 0; --k) {  // odometer increment
      a_off += loop.a_strides[k];
      b_off += loop.b_strides[k];
      if (++idx[k] < loop.dims[k]) break;
      a_off -= loop.dims[k] * loop.a_strides[k];
      b_off -= loop.dims[k] * loop.b_strides[k];
      idx[k] = 0;
    }
  }
}

/// Unsigned integer type of `kBytes` bytes: data-movement kernels copy
/// elements as opaque words so one instantiation serves every dtype of a width.
/// (16 bytes, Complex128: a pair of words, copied as one value.)
struct Word16 {
  uint64_t lo, hi;
};
template <size_t kBytes>
using Word = std::conditional_t<
    kBytes == 1, uint8_t,
    std::conditional_t<kBytes == 2, uint16_t,
                       std::conditional_t<kBytes == 4, uint32_t, std::conditional_t<kBytes == 8, uint64_t, Word16>>>>;

/// Calls fn(W{}) with W the Word of `bytes` (1, 2, 4, 8 or 16).
template <typename Fn>
decltype(auto) DispatchWord(size_t bytes, Fn&& fn) {
  switch (bytes) {
    case 1: return fn(Word<1>{});
    case 2: return fn(Word<2>{});
    case 4: return fn(Word<4>{});
    case 8: return fn(Word<8>{});
    case 16: return fn(Word<16>{});
    default: break;
  }
  Throw("cpu: unsupported element size " + std::to_string(bytes));
}

/// Copies one row of n elements: dst[i * ds] = src[i * ss]. The common
/// stride patterns get their own loops so GCC vectorizes them.
template <typename W>
inline void CopyRow(const W* src, int64_t ss, W* dst, int64_t ds, int64_t n) {
  if (ds == 1) {
    if (ss == 1) {
      std::memcpy(dst, src, static_cast<size_t>(n) * sizeof(W));
    } else if (ss == 0) {
      const W v = *src;
      for (int64_t i = 0; i < n; ++i) dst[i] = v;
    } else {
      for (int64_t i = 0; i < n; ++i) dst[i] = src[i * ss];
    }
  } else if (ss == 1) {
    for (int64_t i = 0; i < n; ++i) dst[i * ds] = src[i];
  } else {
    for (int64_t i = 0; i < n; ++i) dst[i * ds] = src[i * ss];
  }
}

/// Copies the elements of a simplified `loop` from `src` (array a) to `dst`
/// (array b), in parallel chunks of rows when it is large.
void StridedCopy(const RowLoop& loop, size_t elem_bytes, const void* src, void* dst);

/// Fills n elements of elem_bytes each with the element at `value`.
void FillElements(void* dst, const void* value, int64_t n, size_t elem_bytes);

}  // namespace kiln::backends::cpu
