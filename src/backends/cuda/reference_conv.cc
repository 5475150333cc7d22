// Copyright 2026 The Kiln Authors.
// The CUDA emulator's cuDNN (see reference_conv.h): ConvSpec's three
// calls as loops straight from their definitions, each output element
// gathered (so every element is written, as cuDNN's beta = 0 does).
#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/core/float16.h"
#include "src/backends/cuda/reference_conv.h"

namespace kiln::backends::cuda {

namespace {

// A spatial position or extent (cuDNN has 2 or 3 spatial axes; unused
// trailing axes stay 0, or 1 as extents).
using Pos = std::array<int64_t, 3>;

// Steps `idx` to the next position within `dims` (row-major); false after
// the last.
bool Next(Pos& idx, const Pos& dims) {
  for (size_t j = idx.size(); j-- > 0;) {
    if (++idx[j] < dims[j]) return true;
    idx[j] = 0;
  }
  return false;
}

// The spatial extents of cuDNN-ordered dims.
Pos Tail(const std::vector<int64_t>& v) {
  Pos t = {1, 1, 1};
  for (size_t j = 2; j < v.size(); ++j) t[j - 2] = v[j];
  return t;
}

int64_t Offset(const std::vector<int64_t>& strides, int64_t a, int64_t b, const Pos& spatial) {
  int64_t off = a * strides[0] + b * strides[1];
  for (size_t j = 2; j < strides.size(); ++j) off += spatial[j - 2] * strides[j];
  return off;
}

template <typename T>
void Conv(const ConvSpec& s, const void* a_v, const void* b_v, void* out_v) {
  const T* a = static_cast<const T*>(a_v);
  const T* b = static_cast<const T*>(b_v);
  T* out = static_cast<T*>(out_v);
  const std::vector<int64_t> ws = s.FilterStrides();
  const Pos xsp = Tail(s.x_dims), ysp = Tail(s.y_dims), wsp = Tail(s.w_dims);
  const size_t ns = s.x_dims.size() - 2;
  const int64_t n_count = s.x_dims[0], c_count = s.x_dims[1], k_count = s.y_dims[1];
  const int64_t cg = s.w_dims[1], kg = k_count / s.groups;
  Pos pos = {0, 0, 0};
  // The image position tap `r` of response position `o` reads; false in the padding.
  const auto image_at = [&](const Pos& o, const Pos& r) {
    for (size_t j = 0; j < ns; ++j) {
      pos[j] = o[j] * s.strides[j] - s.padding[j] + r[j] * s.dilation[j];
      if (pos[j] < 0 || pos[j] >= xsp[j]) return false;
    }
    return true;
  };
  Pos o = {0, 0, 0}, r = {0, 0, 0}, i = {0, 0, 0};
  switch (s.kind) {
    case ConvSpec::Kind::kForward:  // a = x, b = w, out = y
      for (int64_t n = 0; n < n_count; ++n) {
        for (int64_t k = 0; k < k_count; ++k) {
          std::fill(o.begin(), o.end(), 0);
          do {
            double acc = 0;
            for (int64_t c = 0; c < cg; ++c) {
              std::fill(r.begin(), r.end(), 0);
              do {
                if (!image_at(o, r)) continue;
                acc += static_cast<double>(a[Offset(s.x_strides, n, (k / kg) * cg + c, pos)]) *
                       static_cast<double>(b[Offset(ws, k, c, r)]);
              } while (Next(r, wsp));
            }
            out[Offset(s.y_strides, n, k, o)] = static_cast<T>(acc);
          } while (Next(o, ysp));
        }
      }
      break;
    case ConvSpec::Kind::kBackwardData:  // a = y, b = w, out = x
      for (int64_t n = 0; n < n_count; ++n) {
        for (int64_t c = 0; c < c_count; ++c) {
          std::fill(i.begin(), i.end(), 0);
          do {
            double acc = 0;
            for (int64_t k = 0; k < k_count; ++k) {
              std::fill(r.begin(), r.end(), 0);
              do {
                bool hit = true;  // some response position o reads x at i through tap r
                for (size_t j = 0; j < ns && hit; ++j) {
                  const int64_t t = i[j] + s.padding[j] - r[j] * s.dilation[j];
                  o[j] = t / s.strides[j];
                  hit = t >= 0 && t % s.strides[j] == 0 && o[j] < ysp[j];
                }
                if (hit) {
                  acc += static_cast<double>(a[Offset(s.y_strides, n, k, o)]) *
                         static_cast<double>(b[Offset(ws, k, c, r)]);
                }
              } while (Next(r, wsp));
            }
            out[Offset(s.x_strides, n, c, i)] = static_cast<T>(acc);
          } while (Next(i, xsp));
        }
      }
      break;
    case ConvSpec::Kind::kBackwardFilter:  // a = x, b = y, out = w
      for (int64_t k = 0; k < k_count; ++k) {
        for (int64_t c = 0; c < cg; ++c) {
          std::fill(r.begin(), r.end(), 0);
          do {
            double acc = 0;
            for (int64_t n = 0; n < n_count; ++n) {
              std::fill(o.begin(), o.end(), 0);
              do {
                if (!image_at(o, r)) continue;
                acc += static_cast<double>(a[Offset(s.x_strides, n, c, pos)]) *
                       static_cast<double>(b[Offset(s.y_strides, n, k, o)]);
              } while (Next(o, ysp));
            }
            out[Offset(ws, k, c, r)] = static_cast<T>(acc);
          } while (Next(r, wsp));
        }
      }
      break;
  }
}

}  // namespace

void RunReferenceConv(const ConvSpec& s, const void* a, const void* b, void* out) {
  if (!ConvSpecIsConsistent(s)) Throw("cuda-emu: cuDNN would reject a convolution spec (inconsistent extents)");
  if (s.kind != ConvSpec::Kind::kForward && s.groups != 1) Throw("cuda-emu: a grouped cuDNN backward call");
  // The images are packed as the spec's format says (the generator hands
  // cuDNN no other strides).
  if (s.x_strides != CudnnPackedStrides(s.x_dims, s.channels_last) ||
      s.y_strides != CudnnPackedStrides(s.y_dims, s.channels_last)) {
    Throw("cuda-emu: a cuDNN image is not packed " + std::string(s.channels_last ? "NHWC" : "NCHW"));
  }
  switch (s.dtype) {
    case dtypes::Float32: Conv<float>(s, a, b, out); break;
    case dtypes::Float16: Conv<float16>(s, a, b, out); break;
    case dtypes::BFloat16: Conv<bfloat16>(s, a, b, out); break;
    default: Throw("cuda-emu: no cuDNN convolution for " + std::string(dtypes::Name(s.dtype)));
  }
}

}  // namespace kiln::backends::cuda
