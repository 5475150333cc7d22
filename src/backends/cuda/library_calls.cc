// Copyright 2026 The Kiln Authors.
// Products on cuBLASLt and factorizations on cuSOLVER and cuBLAS (see
// library_calls.h), every call through the LibraryApi it is given.
#include "src/backends/cuda/library_calls.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "kiln/core/error.h"

namespace kiln::backends::cuda {

void CheckLt(cublasStatus_t s, const std::string& what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    Throw("cuda: cuBLASLt " + what + " failed (status " + std::to_string(static_cast<int>(s)) + ")");
  }
}

void CheckBlas(cublasStatus_t s, const std::string& what) {
  if (s != CUBLAS_STATUS_SUCCESS) {
    Throw("cuda: cuBLAS " + what + " failed (status " + std::to_string(static_cast<int>(s)) + ")");
  }
}

void CheckSolver(cusolverStatus_t s, const std::string& what) {
  if (s != CUSOLVER_STATUS_SUCCESS) {
    Throw("cuda: cuSOLVER " + what + " failed (status " + std::to_string(static_cast<int>(s)) + ")");
  }
}

const LibraryApi& LinkedLibraryApi() {
  static const LibraryApi api = [] {
    LibraryApi a;
#define KILN_LIBRARY_LINKED(name) a.name = &::name;
    KILN_CUDA_LIBRARY_FUNCTIONS(KILN_LIBRARY_LINKED)
#undef KILN_LIBRARY_LINKED
    return a;
  }();
  return api;
}

namespace {

cublasFillMode_t Fill(bool lower) { return lower ? CUBLAS_FILL_MODE_LOWER : CUBLAS_FILL_MODE_UPPER; }

// A cuSOLVER call's workspaces: device memory (freed in stream order) and
// host memory, which must outlive the asynchronous calls: the stream is
// synchronized before it is freed.
struct Workspace {
  Workspace(const LibraryContext& c, size_t device_bytes, size_t host_bytes)
      : synchronize(c.synchronize), mem(device_bytes > 0 ? c.allocate(device_bytes) : nullptr), host(host_bytes) {}
  ~Workspace() {
    if (!host.empty()) synchronize();
  }
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* Device() const { return mem.get(); }
  void* Host() { return host.empty() ? nullptr : host.data(); }
  std::function<void()> synchronize;
  std::shared_ptr<void> mem;
  std::vector<char> host;
};

int Int32(int64_t v, const char* what) {
  if (v > std::numeric_limits<int>::max()) {
    Throw(std::string("cuda: ") + what + " takes 32-bit sizes; got " + std::to_string(v));
  }
  return static_cast<int>(v);
}

cudaDataType SolverType(dtypes::DType dt) { return dt == dtypes::Float64 ? CUDA_R_64F : CUDA_R_32F; }

// Cholesky: the 64-bit potrf per matrix, or potrfBatched for many small
// ones (one launch for the batch).
void RunPotrf(const LibraryContext& c, const LibraryCall& s, void* x, void* const* inputs, void* info) {
  const LibraryApi& api = *c.api;
  const SolverHandles h = c.solver();
  const bool f64 = s.dtype == dtypes::Float64;
  const int64_t elem = f64 ? 8 : 4, stride = s.rows * s.rows * elem;
  if (s.batched) {
    const int n = Int32(s.rows, "potrfBatched"), batch = Int32(s.batch, "potrfBatched");
    CheckSolver(f64 ? api.cusolverDnDpotrfBatched(h.handle, Fill(s.lower), n, static_cast<double**>(inputs[0]), n,
                                                  static_cast<int*>(info), batch)
                    : api.cusolverDnSpotrfBatched(h.handle, Fill(s.lower), n, static_cast<float**>(inputs[0]), n,
                                                  static_cast<int*>(info), batch),
                "potrfBatched");
    return;
  }
  const cudaDataType type = SolverType(s.dtype);
  size_t device_bytes = 0, host_bytes = 0;
  CheckSolver(api.cusolverDnXpotrf_bufferSize(h.handle, h.params, Fill(s.lower), s.rows, type, x, s.rows, type,
                                              &device_bytes, &host_bytes),
              "potrf workspace query");
  Workspace w(c, device_bytes, host_bytes);
  for (int64_t i = 0; i < s.batch; ++i) {
    CheckSolver(api.cusolverDnXpotrf(h.handle, h.params, Fill(s.lower), s.rows, type,
                                     static_cast<char*>(x) + i * stride, s.rows, type, w.Device(), device_bytes,
                                     w.Host(), host_bytes, static_cast<int*>(info) + i),
                "potrf");
  }
}

// Triangular solves: trsm per matrix, or trsmBatched (pointer arrays) for a batch.
void RunTrsm(const LibraryContext& c, const LibraryCall& s, void* x, void* const* inputs) {
  const LibraryApi& api = *c.api;
  cublasHandle_t h = c.blas();
  const bool f64 = s.dtype == dtypes::Float64;
  const int64_t k = s.left_side ? s.rows : s.cols;
  const cublasSideMode_t side = s.left_side ? CUBLAS_SIDE_LEFT : CUBLAS_SIDE_RIGHT;
  const cublasOperation_t op = s.transpose ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasDiagType_t diag = s.unit_diagonal ? CUBLAS_DIAG_UNIT : CUBLAS_DIAG_NON_UNIT;
  const float one32 = 1;
  const double one64 = 1;
  if (!s.batched) {  // one call per matrix: trsm solves one
    const size_t esize = f64 ? sizeof(double) : sizeof(float);
    for (int64_t i = 0; i < s.batch; ++i) {
      const void* a = static_cast<const char*>(inputs[0]) + static_cast<size_t>(i * k * k) * esize;
      void* b = static_cast<char*>(x) + static_cast<size_t>(i * s.rows * s.cols) * esize;
      CheckBlas(f64 ? api.cublasDtrsm_v2_64(h, side, Fill(s.lower), op, diag, s.rows, s.cols, &one64,
                                            static_cast<const double*>(a), k, static_cast<double*>(b), s.rows)
                    : api.cublasStrsm_v2_64(h, side, Fill(s.lower), op, diag, s.rows, s.cols, &one32,
                                            static_cast<const float*>(a), k, static_cast<float*>(b), s.rows),
                "trsm");
    }
    return;
  }
  CheckBlas(f64 ? api.cublasDtrsmBatched_64(h, side, Fill(s.lower), op, diag, s.rows, s.cols, &one64,
                                            static_cast<const double* const*>(inputs[1]), k,
                                            static_cast<double* const*>(inputs[2]), s.rows, s.batch)
                : api.cublasStrsmBatched_64(h, side, Fill(s.lower), op, diag, s.rows, s.cols, &one32,
                                            static_cast<const float* const*>(inputs[1]), k,
                                            static_cast<float* const*>(inputs[2]), s.rows, s.batch),
            "trsmBatched");
}

// LU: cuBLAS's getrfBatched (square matrices, 32-bit pivots) for a batch
// of small ones, else the 64-bit getrf per matrix (64-bit pivots).
void RunGetrf(const LibraryContext& c, const LibraryCall& s, void* x, void* const* inputs, void* pivots, void* info) {
  const LibraryApi& api = *c.api;
  const bool f64 = s.dtype == dtypes::Float64;
  const int64_t elem = f64 ? 8 : 4, stride = s.rows * s.cols * elem, k = std::min(s.rows, s.cols);
  if (s.batched) {
    const int n = Int32(s.rows, "getrfBatched"), batch = Int32(s.batch, "getrfBatched");
    cublasHandle_t h = c.blas();
    CheckBlas(f64 ? api.cublasDgetrfBatched(h, n, static_cast<double* const*>(inputs[0]), n, static_cast<int*>(pivots),
                                            static_cast<int*>(info), batch)
                  : api.cublasSgetrfBatched(h, n, static_cast<float* const*>(inputs[0]), n, static_cast<int*>(pivots),
                                            static_cast<int*>(info), batch),
              "getrfBatched");
    return;
  }
  const SolverHandles h = c.solver();
  const cudaDataType type = SolverType(s.dtype);
  size_t device_bytes = 0, host_bytes = 0;
  CheckSolver(api.cusolverDnXgetrf_bufferSize(h.handle, h.params, s.rows, s.cols, type, x, s.rows, type, &device_bytes,
                                              &host_bytes),
              "getrf workspace query");
  Workspace w(c, device_bytes, host_bytes);
  for (int64_t i = 0; i < s.batch; ++i) {
    CheckSolver(api.cusolverDnXgetrf(h.handle, h.params, s.rows, s.cols, type, static_cast<char*>(x) + i * stride,
                                     s.rows, static_cast<int64_t*>(pivots) + i * k, type, w.Device(), device_bytes,
                                     w.Host(), host_bytes, static_cast<int*>(info) + i),
                "getrf");
  }
}

// QR's reflectors: the 64-bit geqrf per matrix.
void RunGeqrf(const LibraryContext& c, const LibraryCall& s, void* x, void* tau, void* info) {
  const LibraryApi& api = *c.api;
  const SolverHandles h = c.solver();
  const cudaDataType type = SolverType(s.dtype);
  const int64_t elem = s.dtype == dtypes::Float64 ? 8 : 4, k = std::min(s.rows, s.cols);
  size_t device_bytes = 0, host_bytes = 0;
  CheckSolver(api.cusolverDnXgeqrf_bufferSize(h.handle, h.params, s.rows, s.cols, type, x, s.rows, type, tau, type,
                                              &device_bytes, &host_bytes),
              "geqrf workspace query");
  Workspace w(c, device_bytes, host_bytes);
  for (int64_t i = 0; i < s.batch; ++i) {
    CheckSolver(api.cusolverDnXgeqrf(h.handle, h.params, s.rows, s.cols, type,
                                     static_cast<char*>(x) + i * s.rows * s.cols * elem, s.rows, type,
                                     static_cast<char*>(tau) + i * k * elem, type, w.Device(), device_bytes, w.Host(),
                                     host_bytes, static_cast<int*>(info) + i),
                "geqrf");
  }
}

// Q from the reflectors: orgqr (32-bit sizes; cuSOLVER has no 64-bit one).
void RunOrgqr(const LibraryContext& c, const LibraryCall& s, void* x, const void* tau, void* info) {
  const LibraryApi& api = *c.api;
  cusolverDnHandle_t h = c.solver().handle;
  const bool f64 = s.dtype == dtypes::Float64;
  const int m = Int32(s.rows, "orgqr"), n = Int32(s.cols, "orgqr"), k = Int32(s.reflectors, "orgqr");
  Int32(s.rows * s.cols, "orgqr");
  int lwork = 0;
  CheckSolver(f64 ? api.cusolverDnDorgqr_bufferSize(h, m, n, k, static_cast<const double*>(x), m,
                                                    static_cast<const double*>(tau), &lwork)
                  : api.cusolverDnSorgqr_bufferSize(h, m, n, k, static_cast<const float*>(x), m,
                                                    static_cast<const float*>(tau), &lwork),
              "orgqr workspace query");
  Workspace w(c, static_cast<size_t>(lwork) * (f64 ? 8 : 4), 0);
  for (int64_t i = 0; i < s.batch; ++i) {
    const int64_t at = i * s.rows * s.cols, tau_at = i * s.reflectors;
    CheckSolver(f64 ? api.cusolverDnDorgqr(h, m, n, k, static_cast<double*>(x) + at, m,
                                           static_cast<const double*>(tau) + tau_at, static_cast<double*>(w.Device()),
                                           lwork, static_cast<int*>(info) + i)
                    : api.cusolverDnSorgqr(h, m, n, k, static_cast<float*>(x) + at, m,
                                           static_cast<const float*>(tau) + tau_at, static_cast<float*>(w.Device()),
                                           lwork, static_cast<int*>(info) + i),
                "orgqr");
  }
}

// Symmetric eigendecomposition: the 64-bit syevd (divide and conquer, as
// the CPU's LAPACK) per matrix.
void RunSyevd(const LibraryContext& c, const LibraryCall& s, void* x, void* w_out, void* info) {
  const LibraryApi& api = *c.api;
  const SolverHandles h = c.solver();
  const cudaDataType type = SolverType(s.dtype);
  const int64_t elem = s.dtype == dtypes::Float64 ? 8 : 4, n = s.rows;
  size_t device_bytes = 0, host_bytes = 0;
  CheckSolver(api.cusolverDnXsyevd_bufferSize(h.handle, h.params, CUSOLVER_EIG_MODE_VECTOR, Fill(s.lower), n, type, x,
                                              n, type, w_out, type, &device_bytes, &host_bytes),
              "syevd workspace query");
  Workspace w(c, device_bytes, host_bytes);
  for (int64_t i = 0; i < s.batch; ++i) {
    CheckSolver(api.cusolverDnXsyevd(h.handle, h.params, CUSOLVER_EIG_MODE_VECTOR, Fill(s.lower), n, type,
                                     static_cast<char*>(x) + i * n * n * elem, n, type,
                                     static_cast<char*>(w_out) + i * n * elem, type, w.Device(), device_bytes,
                                     w.Host(), host_bytes, static_cast<int*>(info) + i),
                "syevd");
  }
}

// SVD of tall matrices (rows >= cols, which cuSOLVER's gesvd needs): the
// 64-bit gesvd per matrix.
void RunGesvd(const LibraryContext& c, const LibraryCall& s, void* x, void* const* outputs) {
  const LibraryApi& api = *c.api;
  const SolverHandles h = c.solver();
  const cudaDataType type = SolverType(s.dtype);
  const int64_t elem = s.dtype == dtypes::Float64 ? 8 : 4, k = s.cols, ucols = s.full_matrices ? s.rows : k;
  const signed char job = !s.compute_uv ? 'N' : s.full_matrices ? 'A' : 'S';
  char* sv = static_cast<char*>(outputs[0]);
  char* u = s.compute_uv ? static_cast<char*>(outputs[1]) : nullptr;
  char* vt = s.compute_uv ? static_cast<char*>(outputs[2]) : nullptr;
  int* info = static_cast<int*>(outputs[s.compute_uv ? 3 : 1]);
  // gesvd checks ldu >= rows and ldvt >= cols even when U and Vᵀ are not
  // computed (their pointers are then null).
  const int64_t ldu = s.rows, ldvt = k;
  size_t device_bytes = 0, host_bytes = 0;
  CheckSolver(api.cusolverDnXgesvd_bufferSize(h.handle, h.params, job, job, s.rows, s.cols, type, x, s.rows, type, sv,
                                              type, u, ldu, type, vt, ldvt, type, &device_bytes, &host_bytes),
              "gesvd workspace query");
  Workspace w(c, device_bytes, host_bytes);
  for (int64_t i = 0; i < s.batch; ++i) {
    CheckSolver(api.cusolverDnXgesvd(h.handle, h.params, job, job, s.rows, s.cols, type,
                                     static_cast<char*>(x) + i * s.rows * s.cols * elem, s.rows, type,
                                     sv + i * k * elem, type, u != nullptr ? u + i * s.rows * ucols * elem : nullptr,
                                     ldu, type, vt != nullptr ? vt + i * k * k * elem : nullptr, ldvt, type,
                                     w.Device(), device_bytes, w.Host(), host_bytes, info + i),
                "gesvd");
  }
}

cudaDataType_t LtType(dtypes::DType dt) {
  switch (dt) {
    case dtypes::Float16: return CUDA_R_16F;
    case dtypes::BFloat16: return CUDA_R_16BF;
    case dtypes::Float32: return CUDA_R_32F;
    case dtypes::Float64: return CUDA_R_64F;
    default: Throw("cuda: no cuBLASLt type for " + std::string(dtypes::Name(dt)));
  }
}

void Layout(const LibraryApi& api, cublasLtMatrixLayout_t* l, cudaDataType_t type, uint64_t rows, uint64_t cols,
            int64_t ld, int64_t batch, int64_t stride) {
  CheckLt(api.cublasLtMatrixLayoutCreate(l, type, rows, cols, std::max<int64_t>(ld, 1)), "layout");
  const int32_t count = static_cast<int32_t>(batch);
  CheckLt(api.cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count), "batch");
  CheckLt(api.cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof stride),
          "batch stride");
}

}  // namespace

void RunSolverCall(const LibraryContext& c, const LibraryCall& s, void* x, void* const* inputs,
                   void* const* outputs) {
  switch (s.kind) {
    case LibraryCall::Kind::kPotrf: RunPotrf(c, s, x, inputs, outputs[0]); return;
    case LibraryCall::Kind::kTrsm: RunTrsm(c, s, x, inputs); return;
    case LibraryCall::Kind::kGetrf: RunGetrf(c, s, x, inputs, outputs[0], outputs[1]); return;
    case LibraryCall::Kind::kGeqrf: RunGeqrf(c, s, x, outputs[0], outputs[1]); return;
    case LibraryCall::Kind::kOrgqr: RunOrgqr(c, s, x, inputs[0], outputs[0]); return;
    case LibraryCall::Kind::kSyevd: RunSyevd(c, s, x, outputs[0], outputs[1]); return;
    case LibraryCall::Kind::kGesvd: RunGesvd(c, s, x, outputs); return;
    default: Throw("cuda: not a factorization or triangular solve (a Kiln bug)");
  }
}

LtMatmul::LtMatmul(const LtContext& c, const MatmulSpec& s, bool tf32)
    : api_(c.api), f64_(s.dtype == dtypes::Float64) {
  const LibraryApi& api = *api_;
  const dtypes::DType dt = s.dtype;
  const cudaDataType_t type = LtType(dt);
  // Float32 takes the least precise compute type allowed: BFloat16 products
  // where the DotGeneral permits them, TF32 where KILN_CUDA_TF32=1, else exact.
  cublasComputeType_t compute = f64_ ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
  if (dt == dtypes::Float32 && s.bf16_products) {
    compute = CUBLAS_COMPUTE_32F_FAST_16BF;
  } else if (dt == dtypes::Float32 && tf32) {
    compute = CUBLAS_COMPUTE_32F_FAST_TF32;
  }
  const cudaDataType_t scale = f64_ ? CUDA_R_64F : CUDA_R_32F;
  // The destructor does not run when the constructor throws: free what was made.
  struct Guard {
    LtMatmul* m;
    ~Guard() {
      if (m != nullptr) m->Release();
    }
  } guard{this};
  const cublasOperation_t op_a = s.transpose_rhs ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = s.transpose_lhs ? CUBLAS_OP_T : CUBLAS_OP_N;
  // The product's descriptor for `compute` (made again if the first has no algorithm).
  const auto describe = [&](cublasComputeType_t compute_type) {
    if (desc_ != nullptr) api.cublasLtMatmulDescDestroy(desc_);
    desc_ = nullptr;
    CheckLt(api.cublasLtMatmulDescCreate(&desc_, compute_type, scale), "descriptor");
    CheckLt(api.cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a), "transa");
    CheckLt(api.cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b), "transb");
    if (s.bias >= 0) {
      // D (n x m, column-major) gets the [n] vector added to every column:
      // each row of the row-major product. Its type is D's (the default).
      const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
      CheckLt(api.cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof epilogue),
              "epilogue");
    }
  };
  describe(compute);
  const auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  // A := rhs (n x k or, transposed, k x n stored), B := lhs, D: n x m.
  Layout(api, &a_, type, s.transpose_rhs ? u(s.k) : u(s.n), s.transpose_rhs ? u(s.n) : u(s.k),
         s.transpose_rhs ? s.k : s.n, s.batch, s.k * s.n);
  Layout(api, &b_, type, s.transpose_lhs ? u(s.m) : u(s.k), s.transpose_lhs ? u(s.k) : u(s.m),
         s.transpose_lhs ? s.m : s.k, s.batch, s.m * s.k);
  Layout(api, &d_, type, u(s.n), u(s.m), s.n, s.batch, s.m * s.n);
  cublasLtMatmulPreference_t pref;
  CheckLt(api.cublasLtMatmulPreferenceCreate(&pref), "preference");
  if (const cublasStatus_t set = api.cublasLtMatmulPreferenceSetAttribute(
          pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &c.workspace_size, sizeof c.workspace_size);
      set != CUBLAS_STATUS_SUCCESS) {
    api.cublasLtMatmulPreferenceDestroy(pref);
    CheckLt(set, "workspace preference");
  }
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  cublasStatus_t st = api.cublasLtMatmulAlgoGetHeuristic(c.handle, desc_, a_, b_, d_, d_, pref, 1, &result, &found);
  const bool reduced = compute == CUBLAS_COMPUTE_32F_FAST_16BF || compute == CUBLAS_COMPUTE_32F_FAST_TF32;
  if ((st != CUBLAS_STATUS_SUCCESS || found == 0) && reduced) {
    // Reduced precision is a permission, not a demand: where cuBLASLt has no
    // algorithm for it (a GPU without such tensor cores), the exact product.
    try {
      describe(CUBLAS_COMPUTE_32F);
    } catch (...) {
      api.cublasLtMatmulPreferenceDestroy(pref);
      throw;
    }
    found = 0;
    st = api.cublasLtMatmulAlgoGetHeuristic(c.handle, desc_, a_, b_, d_, d_, pref, 1, &result, &found);
  }
  api.cublasLtMatmulPreferenceDestroy(pref);
  if (st != CUBLAS_STATUS_SUCCESS || found == 0) {
    Throw("cuda: cuBLASLt has no algorithm for a " + std::string(dtypes::Name(dt)) + " product of [" +
          std::to_string(s.batch) + ", " + std::to_string(s.m) + ", " + std::to_string(s.k) + "] x [" +
          std::to_string(s.batch) + ", " + std::to_string(s.k) + ", " + std::to_string(s.n) + "]");
  }
  algo_ = result.algo;
  guard.m = nullptr;
}

LtMatmul::~LtMatmul() { Release(); }

void LtMatmul::Release() {
  if (a_ != nullptr) api_->cublasLtMatrixLayoutDestroy(a_);
  if (b_ != nullptr) api_->cublasLtMatrixLayoutDestroy(b_);
  if (d_ != nullptr) api_->cublasLtMatrixLayoutDestroy(d_);
  if (desc_ != nullptr) api_->cublasLtMatmulDescDestroy(desc_);
  a_ = b_ = d_ = nullptr;
  desc_ = nullptr;
}

void LtMatmul::Run(const LtContext& c, const void* lhs, const void* rhs, const void* bias, void* out,
                   void* stream) const {
  const LibraryApi& api = *api_;
  if (bias != nullptr) {
    CheckLt(api.cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias), "bias");
  }
  const float alpha32 = 1, beta32 = 0;
  const double alpha64 = 1, beta64 = 0;
  const void* alpha = f64_ ? static_cast<const void*>(&alpha64) : &alpha32;
  const void* beta = f64_ ? static_cast<const void*>(&beta64) : &beta32;
  CheckLt(api.cublasLtMatmul(c.handle, desc_, alpha, rhs, a_, lhs, b_, beta, out, d_, out, d_, &algo_, c.workspace,
                             c.workspace_size, static_cast<cudaStream_t>(stream)),
          "matmul");
}

namespace {

void CheckFft(cufftResult r, const std::string& what) {
  if (r != CUFFT_SUCCESS) Throw("cuda: cuFFT " + what + " failed (status " + std::to_string(static_cast<int>(r)) + ")");
}

}  // namespace

FftPlan::FftPlan(const LibraryApi* api, const LibraryCall& s, void* stream) : api_(api), s_(s) {
  const bool f64 = s.dtype == dtypes::Float64;
  std::vector<int> n;
  for (int64_t l : s.lengths) n.push_back(static_cast<int>(l));  // the generator checked the int range
  const int rank = static_cast<int>(n.size()), batch = static_cast<int>(s.batch);
  // `batch` items one after the other, each packed (cuFFT's basic layout).
  const auto basic = [&](cufftType type) {
    CheckFft(api_->cufftPlanMany(&plan_, rank, n.data(), nullptr, 1, 0, nullptr, 1, 0, type, batch), "plan");
  };
  switch (s.kind) {
    case LibraryCall::Kind::kFft: basic(f64 ? CUFFT_Z2Z : CUFFT_C2C); break;
    case LibraryCall::Kind::kRfft: basic(f64 ? CUFFT_D2Z : CUFFT_R2C); break;
    case LibraryCall::Kind::kIrfft: basic(f64 ? CUFFT_Z2D : CUFFT_C2R); break;
    case LibraryCall::Kind::kIrfftLead: {
      // Per item: `cols` transforms one element apart, their elements
      // `cols` apart (the advanced layout, with the lengths as embedding).
      const int cols = static_cast<int>(s.cols);
      CheckFft(api_->cufftPlanMany(&plan_, rank, n.data(), n.data(), cols, 1, n.data(), cols, 1,
                                   f64 ? CUFFT_Z2Z : CUFFT_C2C, cols),
               "plan");
      break;
    }
    default: Throw("cuda: not a Fourier transform");
  }
  if (const cufftResult r = api_->cufftSetStream(plan_, static_cast<cudaStream_t>(stream)); r != CUFFT_SUCCESS) {
    api_->cufftDestroy(plan_);
    CheckFft(r, "set stream");
  }
}

FftPlan::~FftPlan() { api_->cufftDestroy(plan_); }

void FftPlan::Run(void* x, void* const* inputs) const {
  const bool f64 = s_.dtype == dtypes::Float64;
  switch (s_.kind) {
    case LibraryCall::Kind::kFft: C2C(x, s_.inverse ? CUFFT_INVERSE : CUFFT_FORWARD); break;
    case LibraryCall::Kind::kRfft:
      CheckFft(f64 ? api_->cufftExecD2Z(plan_, static_cast<cufftDoubleReal*>(inputs[0]),
                                        static_cast<cufftDoubleComplex*>(x))
                   : api_->cufftExecR2C(plan_, static_cast<cufftReal*>(inputs[0]), static_cast<cufftComplex*>(x)),
               "R2C");
      break;
    case LibraryCall::Kind::kIrfft:
      CheckFft(f64 ? api_->cufftExecZ2D(plan_, static_cast<cufftDoubleComplex*>(inputs[0]),
                                        static_cast<cufftDoubleReal*>(x))
                   : api_->cufftExecC2R(plan_, static_cast<cufftComplex*>(inputs[0]), static_cast<cufftReal*>(x)),
               "C2R");
      break;
    case LibraryCall::Kind::kIrfftLead: {
      int64_t item = s_.cols;
      for (int64_t l : s_.lengths) item *= l;
      for (int64_t b = 0; b < s_.batch; ++b) C2C(static_cast<char*>(x) + b * item * (f64 ? 16 : 8), CUFFT_INVERSE);
      break;
    }
    default: break;
  }
}

void FftPlan::C2C(void* x, int direction) const {
  if (s_.dtype == dtypes::Float64) {
    auto* z = static_cast<cufftDoubleComplex*>(x);
    CheckFft(api_->cufftExecZ2Z(plan_, z, z, direction), "Z2Z");
  } else {
    auto* c = static_cast<cufftComplex*>(x);
    CheckFft(api_->cufftExecC2C(plan_, c, c, direction), "C2C");
  }
}

namespace {

// Plans every product on cuBLASLt; false if one with a bias epilogue has
// no algorithm (other failures throw).
bool PlanMatmuls(const Program& p, const PlanContext& c, LibraryPlans* plans) {
  plans->matmuls.clear();
  try {
    for (const MatmulSpec& m : p.matmuls) plans->matmuls.push_back(std::make_unique<LtMatmul>(c.lt, m, c.tf32));
  } catch (const Error&) {
    plans->matmuls.clear();
    if (std::none_of(p.matmuls.begin(), p.matmuls.end(), [](const MatmulSpec& m) { return m.bias >= 0; })) throw;
    return false;
  }
  return true;
}

// Plans every convolution on cuDNN; false where cuDNN refuses some, which
// `options` then keeps off cuDNN (all of them: one more generation does).
bool PlanConvs(const Program& p, const PlanContext& c, ProgramOptions* options, LibraryPlans* plans) {
  plans->convs.clear();
  plans->conv_workspace = 0;
  if (p.convs.empty()) return true;
  if (c.cudnn == nullptr) {
    options->cudnn = false;
    return false;
  }
  std::lock_guard lock(*c.cudnn_mu);
  const size_t refused_before = options->cudnn_refused.size();
  for (const ConvSpec& s : p.convs) {
    try {
      plans->convs.push_back(std::make_unique<CudnnConv>(*c.cudnn, s, kMaxConvWorkspace, c.tf32));
      plans->conv_workspace = std::max(plans->conv_workspace, plans->convs.back()->WorkspaceBytes());
    } catch (const Error& e) {
      CountCudnn(&CudnnStats::refused, 1);
      if (c.warn_off_cudnn) c.warn_off_cudnn(e.what());
      options->cudnn_refused.push_back(s.id);
    }
  }
  if (options->cudnn_refused.size() > refused_before) {
    plans->convs.clear();
    plans->conv_workspace = 0;
    return false;
  }
  return true;
}

}  // namespace

Program PlanProgram(const ir::Function& fn, ProgramOptions* options, const PlanContext& c, LibraryPlans* plans) {
  for (;;) {
    Program p = GenerateProgram(fn, *options);
    if (!PlanMatmuls(p, c, plans)) {
      options->epilogues = false;
    } else if (PlanConvs(p, c, options, plans)) {
      return p;
    }
  }
}

std::vector<std::unique_ptr<FftPlan>> PlanFfts(const LibraryApi* api, const Program& p, void* stream) {
  std::vector<std::unique_ptr<FftPlan>> plans;
  for (const LibraryCall& s : p.library_calls) {
    plans.push_back(IsFourier(s.kind) ? std::make_unique<FftPlan>(api, s, stream) : nullptr);
  }
  return plans;
}

bool IsFourier(LibraryCall::Kind k) {
  return k == LibraryCall::Kind::kFft || k == LibraryCall::Kind::kRfft || k == LibraryCall::Kind::kIrfft ||
         k == LibraryCall::Kind::kIrfftLead;
}

}  // namespace kiln::backends::cuda
