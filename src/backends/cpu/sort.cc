// Copyright 2026 The Kiln Authors.
#include "src/backends/cpu/sort.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <utility>

#include "kiln/core/float16.h"
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

namespace {

// An unsigned integer whose order is the total order of SortAttrs:
// -Inf < ... < -0 = +0 < ... < +Inf < NaN for floats, two's complement
// shifted for signed integers. `bits` receives the encoding's width.
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

uint64_t Encode(dtypes::DType dt, const std::byte* p) {
  switch (dt) {
    case dtypes::Bool: return Load<uint8_t>(p) != 0;
    case dtypes::Int8: return static_cast<uint8_t>(Load<int8_t>(p)) ^ 0x80u;
    case dtypes::Int16: return static_cast<uint16_t>(Load<int16_t>(p)) ^ 0x8000u;
    case dtypes::Int32: return static_cast<uint32_t>(Load<int32_t>(p)) ^ 0x80000000u;
    case dtypes::Int64: return static_cast<uint64_t>(Load<int64_t>(p)) ^ (uint64_t{1} << 63);
    case dtypes::Uint8: return Load<uint8_t>(p);
    case dtypes::Uint16: return Load<uint16_t>(p);
    case dtypes::Uint32: return Load<uint32_t>(p);
    case dtypes::Uint64: return Load<uint64_t>(p);
    case dtypes::Float16: return EncodeFloat32(static_cast<float>(Load<float16>(p)));
    case dtypes::BFloat16: return EncodeFloat32(static_cast<float>(Load<bfloat16>(p)));
    case dtypes::Float32: return EncodeFloat32(Load<float>(p));
    case dtypes::Float64: return EncodeFloat64(Load<double>(p));
    default: Throw("cpu: Sort does not support dtype " + std::string(dtypes::Name(dt)));
  }
}

// The width of Encode's result for `dt`.
int EncodedBits(dtypes::DType dt) {
  if (dt == dtypes::Float16 || dt == dtypes::BFloat16) return 32;
  return static_cast<int>(dtypes::SizeOf(dt)) * 8;
}

// One slice to sort: `len` elements `stride` elements apart, from `first`.
struct Slice {
  int64_t first, len, stride;
};

// The order of the slice's elements (perm[j]: the element that goes to j).
void SortSlice(const ir::SortAttrs& a, const std::vector<dtypes::DType>& dtypes,
               const std::vector<const std::byte*>& in, const std::vector<size_t>& esize, const Slice& s,
               const ElementLess* less, std::vector<int64_t>& perm) {
  perm.resize(static_cast<size_t>(s.len));
  auto at = [&](size_t operand, int64_t j) { return in[operand] + (s.first + j * s.stride) * static_cast<int64_t>(esize[operand]); };
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
    for (int64_t j = 0; j < s.len; ++j) {
      uint64_t e = Encode(dtypes[operand], at(operand, j));
      keys[k][static_cast<size_t>(j)] = a.descending[k] ? (~e & mask) : e;
    }
  }
  if (keys.size() == 1 && bits[0] <= 32 && s.len <= (int64_t{1} << 32)) {
    // One narrow key: sort (key << 32 | index) as plain integers.
    std::vector<uint64_t> packed(static_cast<size_t>(s.len));
    for (int64_t j = 0; j < s.len; ++j) packed[static_cast<size_t>(j)] = (keys[0][static_cast<size_t>(j)] << 32) | static_cast<uint64_t>(j);
    std::sort(packed.begin(), packed.end());
    for (int64_t j = 0; j < s.len; ++j) perm[static_cast<size_t>(j)] = static_cast<int64_t>(packed[static_cast<size_t>(j)] & 0xFFFFFFFFu);
    return;
  }
  std::iota(perm.begin(), perm.end(), int64_t{0});
  std::sort(perm.begin(), perm.end(), [&](int64_t x, int64_t y) {
    for (const auto& key : keys) {
      const uint64_t kx = key[static_cast<size_t>(x)], ky = key[static_cast<size_t>(y)];
      if (kx != ky) return kx < ky;
    }
    return x < y;  // the index as the last key: stable
  });
}

// out[j] = in[perm[j]] along the slice, for one operand of `esize` bytes.
void Permute(const std::byte* in, std::byte* out, size_t esize, const Slice& s, const std::vector<int64_t>& perm) {
  const auto e = static_cast<int64_t>(esize);
  for (int64_t j = 0; j < s.len; ++j) {
    std::memcpy(out + (s.first + j * s.stride) * e, in + (s.first + perm[static_cast<size_t>(j)] * s.stride) * e, esize);
  }
}

}  // namespace

void SortAlongAxis(const ir::SortAttrs& attrs, const std::vector<int64_t>& dims,
                   const std::vector<dtypes::DType>& dtypes, const std::vector<const void*>& inputs,
                   const std::vector<void*>& outputs, const ElementLess* less) {
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
    const Slice s{(slice / inner) * len * inner + slice % inner, len, inner};
    SortSlice(attrs, dtypes, in, esize, s, less, perm);
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
