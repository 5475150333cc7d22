// Copyright 2026 The Kiln Authors.
// The emulator's stand-in for cuBLASLt's matmul (see emulated_library.h):
// descriptors, matrix layouts (column-major, leading dimension, batch count
// and stride), the preference, the heuristics and the product itself with
// the bias epilogue (one entry per row of D, added to every column), read
// as cuBLASLt documents them; mismatched extents, batches or types and
// attributes it does not model are refused with cuBLASLt's statuses. The
// sum is in double, rounded once to D's type.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kiln/core/float16.h"
#include "src/backends/cuda/emulated_library.h"

namespace kiln::backends::cuda {

namespace {

// The objects behind the opaque handles.
struct FakeDesc {
  cublasComputeType_t compute;
  cudaDataType_t scale;
  cublasOperation_t transa = CUBLAS_OP_N, transb = CUBLAS_OP_N;
  cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_DEFAULT;
  const void* bias = nullptr;
};
struct FakeLayout {
  cudaDataType type;
  uint64_t rows, cols;
  int64_t ld;
  int32_t batch = 1;
  int64_t stride = 0;
};
struct FakePreference {
  uint64_t max_workspace = 0;
};

FakeDesc* Of(cublasLtMatmulDesc_t d) { return reinterpret_cast<FakeDesc*>(d); }
FakeLayout* Of(cublasLtMatrixLayout_t l) { return reinterpret_cast<FakeLayout*>(l); }
FakePreference* Of(cublasLtMatmulPreference_t p) { return reinterpret_cast<FakePreference*>(p); }

// Copies the attribute's value, which must be exactly `size` bytes.
template <typename V>
cublasStatus_t Read(V* to, const void* buf, size_t size) {
  if (buf == nullptr || size != sizeof(V)) return CUBLAS_STATUS_INVALID_VALUE;
  std::memcpy(to, buf, sizeof(V));
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t DescCreate(cublasLtMatmulDesc_t* d, cublasComputeType_t compute, cudaDataType_t scale) {
  if (d == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *d = reinterpret_cast<cublasLtMatmulDesc_t>(new FakeDesc{compute, scale});
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t DescDestroy(cublasLtMatmulDesc_t d) {
  delete Of(d);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t DescSetAttribute(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, const void* buf,
                                size_t size) {
  if (d == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  FakeDesc& f = *Of(d);
  switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA: return Read(&f.transa, buf, size);
    case CUBLASLT_MATMUL_DESC_TRANSB: return Read(&f.transb, buf, size);
    case CUBLASLT_MATMUL_DESC_EPILOGUE: return Read(&f.epilogue, buf, size);
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER: return Read(&f.bias, buf, size);
    default: return CUBLAS_STATUS_NOT_SUPPORTED;  // not one Kiln sets: the stand-in needs it first
  }
}

cublasStatus_t LayoutCreate(cublasLtMatrixLayout_t* l, cudaDataType type, uint64_t rows, uint64_t cols, int64_t ld) {
  if (l == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  // Column-major: a column's rows must fit between two columns.
  if (ld < std::max<int64_t>(1, static_cast<int64_t>(rows))) return CUBLAS_STATUS_INVALID_VALUE;
  *l = reinterpret_cast<cublasLtMatrixLayout_t>(new FakeLayout{type, rows, cols, ld});
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t LayoutDestroy(cublasLtMatrixLayout_t l) {
  delete Of(l);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t LayoutSetAttribute(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t attr, const void* buf,
                                  size_t size) {
  if (l == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  FakeLayout& f = *Of(l);
  switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT: return Read(&f.batch, buf, size);
    case CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET: return Read(&f.stride, buf, size);
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
  }
}

cublasStatus_t PreferenceCreate(cublasLtMatmulPreference_t* p) {
  if (p == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  *p = reinterpret_cast<cublasLtMatmulPreference_t>(new FakePreference);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t PreferenceDestroy(cublasLtMatmulPreference_t p) {
  delete Of(p);
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t PreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr,
                                      const void* buf, size_t size) {
  if (p == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (attr != CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES) return CUBLAS_STATUS_NOT_SUPPORTED;
  return Read(&Of(p)->max_workspace, buf, size);
}

// Whether the compute and scale types go with the matrices' type (the
// combinations of cublasLtMatmul's table that Kiln uses).
bool TypesAgree(const FakeDesc& d, cudaDataType t) {
  switch (t) {
    case CUDA_R_64F: return d.compute == CUBLAS_COMPUTE_64F && d.scale == CUDA_R_64F;
    case CUDA_R_32F:
      return (d.compute == CUBLAS_COMPUTE_32F || d.compute == CUBLAS_COMPUTE_32F_FAST_TF32 ||
              d.compute == CUBLAS_COMPUTE_32F_FAST_16BF) &&
             d.scale == CUDA_R_32F;
    case CUDA_R_16F:
    case CUDA_R_16BF: return d.compute == CUBLAS_COMPUTE_32F && d.scale == CUDA_R_32F;
    default: return false;
  }
}

// D = op(A) op(B) must agree in extents, batch and types.
cublasStatus_t CheckProduct(const FakeDesc& d, const FakeLayout& a, const FakeLayout& b, const FakeLayout& c,
                            const FakeLayout& out) {
  const uint64_t a_rows = d.transa == CUBLAS_OP_N ? a.rows : a.cols, a_cols = d.transa == CUBLAS_OP_N ? a.cols : a.rows;
  const uint64_t b_rows = d.transb == CUBLAS_OP_N ? b.rows : b.cols, b_cols = d.transb == CUBLAS_OP_N ? b.cols : b.rows;
  if (a_rows != out.rows || b_cols != out.cols || a_cols != b_rows || c.rows != out.rows || c.cols != out.cols) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (a.batch != out.batch || b.batch != out.batch || c.batch != out.batch || out.batch < 1) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (a.type != out.type || b.type != out.type || c.type != out.type || !TypesAgree(d, out.type)) {
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  if (d.epilogue != CUBLASLT_EPILOGUE_DEFAULT && d.epilogue != CUBLASLT_EPILOGUE_BIAS) {
    return CUBLAS_STATUS_NOT_SUPPORTED;
  }
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t AlgoGetHeuristic(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, cublasLtMatrixLayout_t a,
                                cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                cublasLtMatmulPreference_t pref, int requested,
                                cublasLtMatmulHeuristicResult_t* results, int* found) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (desc == nullptr || a == nullptr || b == nullptr || c == nullptr || d == nullptr || pref == nullptr ||
      requested < 1 || results == nullptr || found == nullptr) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  *found = 0;
  if (const cublasStatus_t s = CheckProduct(*Of(desc), *Of(a), *Of(b), *Of(c), *Of(d)); s != CUBLAS_STATUS_SUCCESS) {
    return s;
  }
  results[0] = {};
  results[0].state = CUBLAS_STATUS_SUCCESS;
  results[0].wavesCount = 1;
  *found = 1;
  return CUBLAS_STATUS_SUCCESS;
}

double Load(const void* base, cudaDataType t, int64_t i) {
  switch (t) {
    case CUDA_R_64F: return static_cast<const double*>(base)[i];
    case CUDA_R_32F: return static_cast<const float*>(base)[i];
    case CUDA_R_16F: return static_cast<double>(static_cast<const float16*>(base)[i]);
    default: return static_cast<double>(static_cast<const bfloat16*>(base)[i]);
  }
}

void Store(void* base, cudaDataType t, int64_t i, double v) {
  switch (t) {
    case CUDA_R_64F: static_cast<double*>(base)[i] = v; break;
    case CUDA_R_32F: static_cast<float*>(base)[i] = static_cast<float>(v); break;
    case CUDA_R_16F: static_cast<float16*>(base)[i] = float16(static_cast<float>(v)); break;
    default: static_cast<bfloat16*>(base)[i] = bfloat16(static_cast<float>(v)); break;
  }
}

// D = alpha op(A) op(B) + beta C (+ the bias vector, one entry per row of
// D, added to every column), per batch item; the sum in double, rounded
// once to D's type. Checked now; computed on `stream`.
cublasStatus_t Matmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                      cublasLtMatrixLayout_t a_layout, const void* B, cublasLtMatrixLayout_t b_layout, const void* beta,
                      const void* C, cublasLtMatrixLayout_t c_layout, void* D, cublasLtMatrixLayout_t d_layout,
                      const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_size, cudaStream_t stream) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (desc == nullptr || a_layout == nullptr || b_layout == nullptr || c_layout == nullptr || d_layout == nullptr ||
      alpha == nullptr || beta == nullptr || algo == nullptr || (workspace_size > 0 && workspace == nullptr)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  // The descriptors' values now, as a captured product keeps them.
  const FakeDesc d = *Of(desc);
  const FakeLayout la = *Of(a_layout), lb = *Of(b_layout), lc = *Of(c_layout), ld = *Of(d_layout);
  if (const cublasStatus_t s = CheckProduct(d, la, lb, lc, ld); s != CUBLAS_STATUS_SUCCESS) return s;
  const bool bias = d.epilogue == CUBLASLT_EPILOGUE_BIAS;
  if (bias && d.bias == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  const bool f64 = d.scale == CUDA_R_64F;
  const double al = f64 ? *static_cast<const double*>(alpha) : *static_cast<const float*>(alpha);
  const double be = f64 ? *static_cast<const double*>(beta) : *static_cast<const float*>(beta);
  const auto rows = static_cast<int64_t>(ld.rows), cols = static_cast<int64_t>(ld.cols);
  const auto inner = static_cast<int64_t>(d.transa == CUBLAS_OP_N ? la.cols : la.rows);
  const auto at = [](const FakeLayout& l, bool transposed, int64_t i, int64_t j) {  // op(X)(i, j)'s index
    return transposed ? j + i * l.ld : i + j * l.ld;
  };
  // FAST_16BF: each Float32 operand rounded to BFloat16 (to nearest even),
  // as the tensor cores take it; products and sums stay exact here.
  // (TF32 is modelled as exact: a permission the library may not use.)
  const bool bf16_products = d.compute == CUBLAS_COMPUTE_32F_FAST_16BF;
  const auto operand = [bf16_products](const void* base, cudaDataType t, int64_t i) {
    const double v = Load(base, t, i);
    return bf16_products ? static_cast<double>(static_cast<float>(bfloat16(static_cast<float>(v)))) : v;
  };
  EmulatedStreamWork(stream, [=] {
  for (int64_t item = 0; item < ld.batch; ++item) {
    const int64_t ia = item * la.stride, ib = item * lb.stride, ic = item * lc.stride, id = item * ld.stride;
    for (int64_t j = 0; j < cols; ++j) {
      for (int64_t i = 0; i < rows; ++i) {
        double acc = 0;
        for (int64_t k = 0; k < inner; ++k) {
          acc += operand(A, la.type, ia + at(la, d.transa != CUBLAS_OP_N, i, k)) *
                 operand(B, lb.type, ib + at(lb, d.transb != CUBLAS_OP_N, k, j));
        }
        double v = al * acc;
        if (be != 0) v += be * Load(C, lc.type, ic + i + j * lc.ld);
        if (bias) v += Load(d.bias, ld.type, i);
        Store(D, ld.type, id + i + j * ld.ld, v);
      }
    }
  }
  });
  return CUBLAS_STATUS_SUCCESS;
}

}  // namespace

void FillEmulatedCublasLt(LibraryApi* api) {
  api->cublasLtMatmulDescCreate = DescCreate;
  api->cublasLtMatmulDescDestroy = DescDestroy;
  api->cublasLtMatmulDescSetAttribute = DescSetAttribute;
  api->cublasLtMatrixLayoutCreate = LayoutCreate;
  api->cublasLtMatrixLayoutDestroy = LayoutDestroy;
  api->cublasLtMatrixLayoutSetAttribute = LayoutSetAttribute;
  api->cublasLtMatmulPreferenceCreate = PreferenceCreate;
  api->cublasLtMatmulPreferenceDestroy = PreferenceDestroy;
  api->cublasLtMatmulPreferenceSetAttribute = PreferenceSetAttribute;
  api->cublasLtMatmulAlgoGetHeuristic = AlgoGetHeuristic;
  api->cublasLtMatmul = Matmul;
}

}  // namespace kiln::backends::cuda
