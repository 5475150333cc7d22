// Copyright 2026 The Kiln Authors.
// Elementwise kernels that move four elements per thread. A one-element
// grid-stride loop keeps one 4-byte load per thread in flight while the
// thread computes, which leaves a long elementwise chain short of the
// memory bandwidth; the vector form loads four consecutive elements of
// every same-shape input at once (one 16-byte load for Float32, as
// PyTorch's vectorized elementwise kernels do), computes the four outputs
// and stores them at once:
//
//   const bool kv_aligned = ((size_t)in0 & 15) == 0 && ((size_t)out & 15) == 0;
//   const i64 kv_groups = kv_aligned ? N / 4 : 0;
//   for (i64 kv_q = thread; kv_q < kv_groups; kv_q += threads) {
//     const i64 i = kv_q * 4;
//     const KVec4<float, 16> kv_in0 = *(const KVec4<float, 16>*)(in0 + i);
//     KVec4<float, 16> kv_out;
//     { <the body for element i + 0, reading kv_in0.v[0]> kv_out.v[0] = ...; }
//     ... (elements 1-3)
//     *(KVec4<float, 16>*)(out + i) = kv_out;
//   }
//   for (i64 i = kv_groups * 4 + thread; i < N; i += threads) { <the one-element body> }
//
// The second loop takes the last N % 4 elements, and all of them where a
// buffer is not aligned (the allocator's are; a caller's may not be).
// Inputs read at other indices (broadcasts, slices) are loaded per element
// as in the one-element body. Each thread reads its four elements of every
// input before it writes them, so an output written over an input (the
// runner's in-place reuse, same element size) stays correct.
#include <algorithm>
#include <string>

#include "src/backends/cuda/generator.h"

namespace kiln::backends::cuda::gen {
namespace {

// Elements per thread.
constexpr int kLanes = 4;

// A longer one-element body would make NVRTC compile five copies of a large
// kernel, for a kernel that is compute-bound anyway.
constexpr int kMaxBodyLines = 48;

bool VectorDType(dtypes::DType dt) { return dt != dtypes::Complex64 && dt != dtypes::Complex128; }

// The byte alignment of four elements of dt: 4 bytes for Bool, 16 for
// Float32, 16 (not 32) for Float64, which the compiler loads as two
// 16-byte halves.
int VectorAlignment(dtypes::DType dt) { return std::min<int>(16, kLanes * static_cast<int>(dtypes::SizeOf(dt))); }

std::string VecType(dtypes::DType dt) {
  return "KVec4<" + StorageType(dt) + ", " + std::to_string(VectorAlignment(dt)) + ">";
}

int64_t LineCount(const std::string& s) { return std::count(s.begin(), s.end(), '\n'); }

}  // namespace

std::optional<KernelSpec> Generator::Vectorized(int id, const char* kind, const KernelBuilder& scalar,
                                                const std::string& scalar_body,
                                                const std::function<std::string(KernelBuilder&, const Idx&)>& value) {
  const ir::Instruction& in = I(id);
  const int64_t n = in.shape.Size();
  const dtypes::DType out_dt = in.shape.DType();
  if (options_.vectorize_min_elements <= 0 || n < options_.vectorize_min_elements || n < kLanes ||
      !VectorDType(out_dt) || LineCount(scalar_body) > kMaxBodyLines) {
    return std::nullopt;
  }
  // The inputs read at the output's index: loaded four at a time.
  std::vector<size_t> vector_inputs;
  for (size_t k = 0; k < scalar.Inputs().size(); ++k) {
    const ir::Instruction& input = I(scalar.Inputs()[k]);
    if (scalar.ElementwiseInputs()[k] && input.shape.Size() == n && VectorDType(input.shape.DType())) {
      vector_inputs.push_back(k);
    }
  }
  if (vector_inputs.empty()) return std::nullopt;

  KernelBuilder vb(fn_, p_.materialized);
  for (int input : scalar.Inputs()) vb.Input(input);  // the same argument order
  std::string aligned = "((size_t)out & " + std::to_string(VectorAlignment(out_dt) - 1) + ") == 0";
  std::string loads;
  for (size_t k : vector_inputs) {
    const dtypes::DType dt = I(scalar.Inputs()[k]).shape.DType();
    const std::string arg = "in" + std::to_string(k);
    aligned += " && ((size_t)" + arg + " & " + std::to_string(VectorAlignment(dt) - 1) + ") == 0";
    loads += "    const " + VecType(dt) + " kv_" + arg + " = *(const " + VecType(dt) + "*)(" + arg + " + i);\n";
  }
  std::string lanes;
  for (int u = 0; u < kLanes; ++u) {
    for (size_t k : vector_inputs) {
      const int input = scalar.Inputs()[k];
      vb.Bind(input, LoadExpr(I(input).shape.DType(), "kv_in" + std::to_string(k) + ".v[" + std::to_string(u) + "]"));
    }
    const std::string index = "kv_i" + std::to_string(u);
    vb.PushScope(3);
    vb.Line("const i64 " + index + " = i + " + std::to_string(u) + ";");
    const std::string v = value(vb, LinearIdx(index));
    vb.PopScope();
    lanes += "    {\n" + vb.TakeBody() + "      kv_out.v[" + std::to_string(u) + "] = " + StoreExpr(out_dt, v) + ";\n    }\n";
  }
  if (vb.Inputs() != scalar.Inputs()) Throw("cuda: the vector form of " + Name(id, kind) + " reads other inputs");

  const std::string count = Str(n);
  const std::string loop =
      "  const bool kv_aligned = " + aligned + ";\n" +
      "  const i64 kv_groups = kv_aligned ? " + count + " / " + std::to_string(kLanes) + " : 0;\n" +
      "  for (i64 kv_q = (i64)blockIdx.x * blockDim.x + threadIdx.x; kv_q < kv_groups; kv_q += (i64)gridDim.x * "
      "blockDim.x) {\n" +
      "    const i64 i = kv_q * " + std::to_string(kLanes) + ";\n" + loads + "    " + VecType(out_dt) + " kv_out;\n" +
      lanes + "    *(" + VecType(out_dt) + "*)(out + i) = kv_out;\n  }\n" +
      "  #pragma unroll 1\n"  // the tail: no unrolled copies of the body
      "  for (i64 i = kv_groups * " + std::to_string(kLanes) + " + (i64)blockIdx.x * blockDim.x + threadIdx.x; i < " +
      count + "; i += (i64)gridDim.x * blockDim.x) {\n" + scalar_body + "  }\n";
  KernelSpec k = Finish(scalar, id, kind, loop, (n + kLanes - 1) / kLanes, false);
  k.vectorized = true;
  return k;
}

}  // namespace kiln::backends::cuda::gen
