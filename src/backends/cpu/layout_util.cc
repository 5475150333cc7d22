// Copyright 2026 The Kiln Authors.
#include "src/backends/cpu/layout_util.h"

#include <algorithm>

#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

namespace {

// Parallel copies split the work in about this many pieces: enough to balance
// the threads, few enough that each piece's set-up (a few divisions) is noise.
constexpr int64_t kCopyChunks = 64;

template <typename W>
void StridedCopyTyped(const RowLoop& loop, const W* src, W* dst) {
  const int inner = loop.Rank() - 1;
  const int64_t sa = loop.a_strides[inner], sb = loop.b_strides[inner];
  const int64_t rows = loop.NumRows(), n = loop.dims[inner];
  const auto copy = [&](int64_t a, int64_t b, int64_t len) { CopyRow(src + a, sa, dst + b, sb, len); };
  if (loop.Size() <= kParallelThreshold) {
    ForEachRow(loop, 0, rows, copy);
  } else if (rows >= kCopyChunks) {
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < kCopyChunks; ++c) ForEachRow(loop, rows * c / kCopyChunks, rows * (c + 1) / kCopyChunks, copy);
  } else {
    // Few long rows: split each row into segments.
    const int64_t segments = (kCopyChunks + rows - 1) / rows;
#pragma omp parallel for schedule(static)
    for (int64_t item = 0; item < rows * segments; ++item) {
      const int64_t row = item / segments, seg = item % segments;
      const int64_t lo = n * seg / segments, hi = n * (seg + 1) / segments;
      ForEachRow(loop, row, row + 1,
                 [&](int64_t a, int64_t b, int64_t) { CopyRow(src + a + lo * sa, sa, dst + b + lo * sb, sb, hi - lo); });
    }
  }
}

}  // namespace

int64_t RowLoop::Size() const {
  int64_t s = 1;
  for (int64_t d : dims) s *= d;
  return s;
}

int64_t RowLoop::NumRows() const {
  int64_t s = 1;
  for (int k = 0; k + 1 < Rank(); ++k) s *= dims[k];
  return s;
}

std::vector<int64_t> RowMajorStrides(const std::vector<int64_t>& dims) {
  std::vector<int64_t> strides(dims.size(), 1);
  for (int k = static_cast<int>(dims.size()) - 2; k >= 0; --k) strides[k] = strides[k + 1] * dims[k + 1];
  return strides;
}

RowLoop Simplify(const RowLoop& loop) {
  RowLoop out;
  if (loop.Size() == 0) return RowLoop{{0}, {0}, {0}};
  for (int k = 0; k < loop.Rank(); ++k) {
    if (loop.dims[k] == 1) continue;  // contributes no offset
    const int last = out.Rank() - 1;
    if (last >= 0 && out.a_strides[last] == loop.a_strides[k] * loop.dims[k] &&
        out.b_strides[last] == loop.b_strides[k] * loop.dims[k]) {
      // Axis `last` steps exactly over a whole run of axis k in both arrays.
      out.dims[last] *= loop.dims[k];
      out.a_strides[last] = loop.a_strides[k];
      out.b_strides[last] = loop.b_strides[k];
      continue;
    }
    out.dims.push_back(loop.dims[k]);
    out.a_strides.push_back(loop.a_strides[k]);
    out.b_strides.push_back(loop.b_strides[k]);
  }
  if (out.dims.empty()) return RowLoop{{1}, {1}, {1}};
  return out;
}

void StridedCopy(const RowLoop& loop, size_t elem_bytes, const void* src, void* dst) {
  if (loop.Size() == 0) return;
  DispatchWord(elem_bytes, [&](auto zero) {
    using W = decltype(zero);
    StridedCopyTyped(loop, static_cast<const W*>(src), static_cast<W*>(dst));
  });
}

void FillElements(void* dst, const void* value, int64_t n, size_t elem_bytes) {
  DispatchWord(elem_bytes, [&](auto zero) {
    using W = decltype(zero);
    W v;
    std::memcpy(&v, value, sizeof(W));
    W* d = static_cast<W*>(dst);
#pragma omp parallel for simd if (n > 8 * kParallelThreshold)
    for (int64_t i = 0; i < n; ++i) d[i] = v;
  });
}

}  // namespace kiln::backends::cpu
