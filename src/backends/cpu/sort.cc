// Copyright 2026 The Kiln Authors.
#include "src/backends/cpu/sort.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <numeric>
#include <utility>

#include "kiln/core/float16.h"
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

namespace {

// Keys are encoded as unsigned integers whose order is the total order of
// SortAttrs: -Inf < ... < -0 = +0 < ... < +Inf < NaN for floats, two's
// complement shifted for signed integers.
uint64_t EncodeFloat32(float f) {
  if (std::isnan(f)) return 0xFFFFFFFFu;
  if (f == 0.0f) f = 0.0f;  // -0 sorts as +0
  uint32_t u;
  std::memcpy(&u, &f, sizeof(u));
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}

uint64_t EncodeFloat64(double f) {
  if (std::isnan(f)) return ~uint64_t{0};
  if (f == 0.0) f = 0.0;
  uint64_t u;
  std::memcpy(&u, &f, sizeof(u));
  return (u >> 63) != 0 ? ~u : (u | (uint64_t{1} << 63));
}

template <typename T>
T Load(const std::byte* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Encodes `len` elements of type T, `stride` elements apart from `p`, into
// out (complemented within `mask` for a descending key).
template <typename T, typename F>
void EncodeLoop(const std::byte* p, int64_t len, int64_t stride, bool descending, uint64_t mask, uint64_t* out,
                F encode) {
  for (int64_t j = 0; j < len; ++j) {
    const uint64_t e = encode(Load<T>(p + j * stride * static_cast<int64_t>(sizeof(T))));
    out[j] = descending ? (~e & mask) : e;
  }
}

void EncodeAll(dtypes::DType dt, const std::byte* p, int64_t len, int64_t stride, bool descending, uint64_t mask,
               uint64_t* out) {
  auto run = [&](auto zero, auto encode) {
    EncodeLoop<decltype(zero)>(p, len, stride, descending, mask, out, encode);
  };
  switch (dt) {
    case dtypes::Bool: return run(uint8_t{}, [](uint8_t v) -> uint64_t { return v != 0; });
    case dtypes::Int8: return run(int8_t{}, [](int8_t v) -> uint64_t { return static_cast<uint8_t>(v) ^ 0x80u; });
    case dtypes::Int16:
      return run(int16_t{}, [](int16_t v) -> uint64_t { return static_cast<uint16_t>(v) ^ 0x8000u; });
    case dtypes::Int32:
      return run(int32_t{}, [](int32_t v) -> uint64_t { return static_cast<uint32_t>(v) ^ 0x80000000u; });
    case dtypes::Int64:
      return run(int64_t{}, [](int64_t v) -> uint64_t { return static_cast<uint64_t>(v) ^ (uint64_t{1} << 63); });
    case dtypes::Uint8: return run(uint8_t{}, [](uint8_t v) -> uint64_t { return v; });
    case dtypes::Uint16: return run(uint16_t{}, [](uint16_t v) -> uint64_t { return v; });
    case dtypes::Uint32: return run(uint32_t{}, [](uint32_t v) -> uint64_t { return v; });
    case dtypes::Uint64: return run(uint64_t{}, [](uint64_t v) -> uint64_t { return v; });
    case dtypes::Float16:
      return run(float16{}, [](float16 v) { return EncodeFloat32(static_cast<float>(v)); });
    case dtypes::BFloat16:
      return run(bfloat16{}, [](bfloat16 v) { return EncodeFloat32(static_cast<float>(v)); });
    case dtypes::Float32: return run(float{}, [](float v) { return EncodeFloat32(v); });
    case dtypes::Float64: return run(double{}, [](double v) { return EncodeFloat64(v); });
    default: Throw("cpu: Sort does not support dtype " + std::string(dtypes::Name(dt)));
  }
}

// The width of Encode's result for `dt`.
int EncodedBits(dtypes::DType dt) {
  if (dt == dtypes::Float16 || dt == dtypes::BFloat16) return 32;
  return static_cast<int>(dtypes::SizeOf(dt)) * 8;
}

// One slice to sort: `len` elements `stride` elements apart, from `first`;
// its first `prefix` positions must come out in order.
struct Slice {
  int64_t first, len, stride, prefix;
};

// Sorts [first, last) so that its first `prefix` elements are the smallest,
// in order (the rest in any order).
template <typename It, typename Less>
void SortPrefix(It first, It last, int64_t prefix, Less less) {
  if (prefix < last - first) {
    std::partial_sort(first, first + prefix, last, less);
  } else {
    std::sort(first, last, less);
  }
}

// Sorts `v` on all OpenMP threads: chunks sorted in parallel, then merged
// pairwise (the merges of one level in parallel too).
void ParallelSort(std::vector<uint64_t>& v) {
  const int threads = omp_get_max_threads();
  const auto n = static_cast<int64_t>(v.size());
  if (threads < 2 || n < 4 * kParallelThreshold) {
    std::sort(v.begin(), v.end());
    return;
  }
  int chunks = 1;
  while (chunks < threads) chunks *= 2;
  auto bound = [&](int c) { return v.begin() + n * c / chunks; };
#pragma omp parallel for schedule(static, 1)
  for (int c = 0; c < chunks; ++c) std::sort(bound(c), bound(c + 1));
  for (int width = 1; width < chunks; width *= 2) {
#pragma omp parallel for schedule(static, 1)
    for (int c = 0; c < chunks; c += 2 * width) std::inplace_merge(bound(c), bound(c + width), bound(c + 2 * width));
  }
}

// The first `prefix` (< len) positions of the order of a slice with one
// key of at most 32 bits, as SortSlice's packed path gives them: the
// `prefix` smallest (key << 32 | index) values, kept in a max-heap during
// one pass over the slice (encoded a chunk at a time), on every thread when
// `parallel` (then the heaps are merged). TopK and BottomK read such a
// prefix; this skips encoding, packing and partially sorting the whole
// slice. The values are distinct (the index), so the split does not change
// the result.
void SmallestPacked(dtypes::DType dt, const std::byte* first, int64_t len, int64_t stride, bool descending,
                    uint64_t mask, int64_t prefix, bool parallel, std::vector<int64_t>& perm) {
  perm.resize(static_cast<size_t>(prefix));
  if (prefix == 0) return;  // TopK of k = 0
  constexpr int64_t kChunk = 2048;
  const auto esize = static_cast<int64_t>(dtypes::SizeOf(dt));
  auto scan = [&](int64_t lo, int64_t hi, std::vector<uint64_t>& heap) {
    uint64_t encoded[kChunk];
    for (int64_t c = lo; c < hi; c += kChunk) {
      const int64_t n = std::min(kChunk, hi - c);
      EncodeAll(dt, first + c * stride * esize, n, stride, descending, mask, encoded);
      for (int64_t j = 0; j < n; ++j) {
        const uint64_t v = (encoded[j] << 32) | static_cast<uint64_t>(c + j);
        if (static_cast<int64_t>(heap.size()) < prefix) {
          heap.push_back(v);
          std::push_heap(heap.begin(), heap.end());
        } else if (v < heap.front()) {
          std::pop_heap(heap.begin(), heap.end());
          heap.back() = v;
          std::push_heap(heap.begin(), heap.end());
        }
      }
    }
  };
  std::vector<uint64_t> smallest;
  smallest.reserve(static_cast<size_t>(prefix));
  if (parallel && omp_get_max_threads() > 1 && len >= kParallelThreshold) {
#pragma omp parallel
    {
      const int64_t threads = omp_get_num_threads(), t = omp_get_thread_num();
      std::vector<uint64_t> heap;
      heap.reserve(static_cast<size_t>(prefix));
      scan(len * t / threads, len * (t + 1) / threads, heap);
#pragma omp critical(kiln_sort_prefix)
      smallest.insert(smallest.end(), heap.begin(), heap.end());
    }
  } else {
    scan(0, len, smallest);
  }
  std::sort(smallest.begin(), smallest.end());
  for (int64_t j = 0; j < prefix; ++j) perm[static_cast<size_t>(j)] = static_cast<int64_t>(smallest[static_cast<size_t>(j)] & 0xFFFFFFFFu);
}

// The order of the slice's elements (perm[j]: the element that goes to j).
// `parallel`: the slice is the only one, and may use every thread.
void SortSlice(const ir::SortAttrs& a, const std::vector<dtypes::DType>& dtypes,
               const std::vector<const std::byte*>& in, const std::vector<size_t>& esize, const Slice& s,
               const ElementLess* less, bool parallel, std::vector<int64_t>& perm) {
  auto at = [&](size_t operand, int64_t j) { return in[operand] + (s.first + j * s.stride) * static_cast<int64_t>(esize[operand]); };
  if (less == nullptr && a.keys.size() == 1 && s.prefix < s.len && s.len <= (int64_t{1} << 32)) {
    const auto operand = static_cast<size_t>(a.keys[0]);
    const int bits = EncodedBits(dtypes[operand]);
    if (bits <= 32) {
      SmallestPacked(dtypes[operand], at(operand, 0), s.len, s.stride, a.descending[0], (uint64_t{1} << bits) - 1,
                     s.prefix, parallel, perm);
      return;
    }
  }
  perm.resize(static_cast<size_t>(s.len));
  if (less != nullptr) {
    std::iota(perm.begin(), perm.end(), int64_t{0});
    std::vector<const std::byte*> lhs(in.size()), rhs(in.size());
    std::stable_sort(perm.begin(), perm.end(), [&](int64_t x, int64_t y) {
      for (size_t i = 0; i < in.size(); ++i) {
        lhs[i] = at(i, x);
        rhs[i] = at(i, y);
      }
      return (*less)(lhs, rhs);
    });
    return;
  }
  // Keys encoded once; descending keys are complemented within their width.
  std::vector<std::vector<uint64_t>> keys(a.keys.size(), std::vector<uint64_t>(static_cast<size_t>(s.len)));
  std::vector<int> bits(a.keys.size());
  for (size_t k = 0; k < a.keys.size(); ++k) {
    const auto operand = static_cast<size_t>(a.keys[k]);
    bits[k] = EncodedBits(dtypes[operand]);
    const uint64_t mask = bits[k] == 64 ? ~uint64_t{0} : (uint64_t{1} << bits[k]) - 1;
    EncodeAll(dtypes[operand], at(operand, 0), s.len, s.stride, a.descending[k], mask, keys[k].data());
  }
  if (keys.size() == 1 && bits[0] <= 32 && s.len <= (int64_t{1} << 32)) {
    // One narrow key: sort (key << 32 | index) as plain integers.
    std::vector<uint64_t> packed(static_cast<size_t>(s.len));
    for (int64_t j = 0; j < s.len; ++j) packed[static_cast<size_t>(j)] = (keys[0][static_cast<size_t>(j)] << 32) | static_cast<uint64_t>(j);
    if (parallel) {  // (a shorter prefix took SmallestPacked)
      ParallelSort(packed);
    } else {
      std::sort(packed.begin(), packed.end());
    }
    for (int64_t j = 0; j < s.len; ++j) perm[static_cast<size_t>(j)] = static_cast<int64_t>(packed[static_cast<size_t>(j)] & 0xFFFFFFFFu);
    return;
  }
  std::iota(perm.begin(), perm.end(), int64_t{0});
  SortPrefix(perm.begin(), perm.end(), s.prefix, [&](int64_t x, int64_t y) {
    for (const auto& key : keys) {
      const uint64_t kx = key[static_cast<size_t>(x)], ky = key[static_cast<size_t>(y)];
      if (kx != ky) return kx < ky;
    }
    return x < y;  // the index as the last key: stable
  });
}

// out[j] = in[perm[j]] along the slice, for one operand of `esize` bytes,
// for the positions in the prefix (no one reads the others).
void Permute(const std::byte* in, std::byte* out, size_t esize, const Slice& s, const std::vector<int64_t>& perm) {
  const auto e = static_cast<int64_t>(esize);
  for (int64_t j = 0; j < s.prefix; ++j) {
    std::memcpy(out + (s.first + j * s.stride) * e, in + (s.first + perm[static_cast<size_t>(j)] * s.stride) * e, esize);
  }
}

}  // namespace

void SortAlongAxis(const ir::SortAttrs& attrs, const std::vector<int64_t>& dims,
                   const std::vector<dtypes::DType>& dtypes, const std::vector<const void*>& inputs,
                   const std::vector<void*>& outputs, const ElementLess* less, int64_t prefix) {
  const auto axis = static_cast<size_t>(attrs.axis);
  int64_t outer = 1, inner = 1;
  for (size_t d = 0; d < axis; ++d) outer *= dims[d];
  for (size_t d = axis + 1; d < dims.size(); ++d) inner *= dims[d];
  const int64_t len = dims[axis];
  const int64_t slices = outer * inner;
  if (slices == 0 || len == 0) return;
  std::vector<const std::byte*> in;
  std::vector<size_t> esize;
  for (size_t i = 0; i < inputs.size(); ++i) {
    in.push_back(static_cast<const std::byte*>(inputs[i]));
    esize.push_back(dtypes::SizeOf(dtypes[i]));
  }
  auto run = [&](int64_t slice, std::vector<int64_t>& perm) {
    const Slice s{(slice / inner) * len * inner + slice % inner, len, inner, std::min(prefix, len)};
    SortSlice(attrs, dtypes, in, esize, s, less, slices == 1, perm);
    for (size_t i = 0; i < in.size(); ++i) Permute(in[i], static_cast<std::byte*>(outputs[i]), esize[i], s, perm);
  };
  if (less != nullptr || slices == 1 || slices * len < kParallelThreshold) {
    std::vector<int64_t> perm;
    for (int64_t slice = 0; slice < slices; ++slice) run(slice, perm);
    return;
  }
#pragma omp parallel
  {
    std::vector<int64_t> perm;
#pragma omp for schedule(static)
    for (int64_t slice = 0; slice < slices; ++slice) run(slice, perm);
  }
}

}  // namespace kiln::backends::cpu
