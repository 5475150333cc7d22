// Copyright 2026 The Kiln Authors.
// The emulator's stand-ins for dense linear algebra (see
// emulated_library.h): cuSOLVER's 64-bit potrf, getrf, geqrf, syevd and
// gesvd, its orgqr and potrfBatched, and cuBLAS's trsm, trsmBatched and
// getrfBatched. Each reads its column-major arguments as the library's
// documentation defines them (leading dimensions, side, triangle,
// transpose and diagonal flags, pointer arrays, workspaces and their
// queries) and rejects what the library rejects, with its status. The
// arithmetic is LAPACK's (the _work entry points), and textbook
// substitution in double for trsm, run on the handle's stream.
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <type_traits>
#include <vector>

#include "src/backends/cuda/emulated_library.h"

namespace kiln::backends::cuda {

namespace {

// Submits a call's computation to its handle's stream (cublasSetStream,
// cusolverDnSetStream): arguments are checked at the call, as the
// libraries check them; the matrices, pointer arrays and `info` are device
// memory, read and written when the stream runs.
template <typename H>
void OnStream(H h, std::function<void()> work) {
  EmulatedStreamWork(reinterpret_cast<const EmulatedLibraryHandle*>(h)->stream, std::move(work));
}

// ------------------------------------------------------------ cuBLAS: trsm.

// trsm's argument checks: the handle, the sizes and leading dimensions.
cublasStatus_t TrsmCheck(cublasHandle_t handle, cublasSideMode_t side, int64_t m, int64_t n, int64_t lda, int64_t ldb,
                         const void* alpha) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const int64_t k = side == CUBLAS_SIDE_LEFT ? m : n;
  if (m < 0 || n < 0 || lda < std::max<int64_t>(1, k) || ldb < std::max<int64_t>(1, m) || alpha == nullptr) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  return CUBLAS_STATUS_SUCCESS;
}

// B := alpha op(A)⁻¹ B (left) or alpha B op(A)⁻¹ (right); B is m x n with
// leading dimension ldb, A k x k (k = m or n) with lda, of which only the
// `uplo` triangle is read (and its diagonal unless `diag` is unit).
template <typename T>
void TrsmSolve(cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t trans, cublasDiagType_t diag, int64_t m,
               int64_t n, double alpha, const T* A, int64_t lda, T* B, int64_t ldb) {
  const bool left = side == CUBLAS_SIDE_LEFT;
  const int64_t k = left ? m : n;
  const bool lower = uplo == CUBLAS_FILL_MODE_LOWER, transposed = trans != CUBLAS_OP_N;
  // op(A)(i, j), read from the stored triangle only.
  const auto op = [&](int64_t i, int64_t j) -> double {
    const int64_t r = transposed ? j : i, c = transposed ? i : j;
    if (r == c) return diag == CUBLAS_DIAG_UNIT ? 1.0 : static_cast<double>(A[r + c * lda]);
    if (lower ? r < c : r > c) return 0.0;  // the other triangle: never read
    return static_cast<double>(A[r + c * lda]);
  };
  const bool op_lower = lower != transposed;
  std::vector<double> v(static_cast<size_t>(k));
  const int64_t lines = left ? n : m;  // columns of B (left) or rows (right)
  for (int64_t line = 0; line < lines; ++line) {
    const auto at = [&](int64_t t) -> T& { return left ? B[t + line * ldb] : B[line + t * ldb]; };
    for (int64_t t = 0; t < k; ++t) {
      v[static_cast<size_t>(t)] = alpha * static_cast<double>(at(t));
    }
    // left: op(A) x = v; right: x op(A) = v, i.e. op(A)ᵀ xᵀ = vᵀ (the
    // opposite triangle).
    const bool forward = left ? op_lower : !op_lower;
    for (int64_t step = 0; step < k; ++step) {
      const int64_t i = forward ? step : k - 1 - step;
      double sum = v[static_cast<size_t>(i)];
      for (int64_t j = 0; j < k; ++j) {
        if (j == i || (forward ? j > i : j < i)) continue;
        sum -= (left ? op(i, j) : op(j, i)) * v[static_cast<size_t>(j)];
      }
      v[static_cast<size_t>(i)] = sum / op(i, i);
    }
    for (int64_t t = 0; t < k; ++t) at(t) = static_cast<T>(v[static_cast<size_t>(t)]);
  }
}

// alpha is read at the call (host pointer mode).
template <typename T>
cublasStatus_t Trsm(cublasHandle_t handle, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t trans,
                    cublasDiagType_t diag, int64_t m, int64_t n, const T* alpha, const T* A, int64_t lda, T* B,
                    int64_t ldb) {
  if (const cublasStatus_t s = TrsmCheck(handle, side, m, n, lda, ldb, alpha); s != CUBLAS_STATUS_SUCCESS) return s;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (A == nullptr || B == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
  const double a = static_cast<double>(*alpha);
  OnStream(handle, [=] { TrsmSolve(side, uplo, trans, diag, m, n, a, A, lda, B, ldb); });
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t Strsm(cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t trans,
                     cublasDiagType_t diag, int64_t m, int64_t n, const float* alpha, const float* A, int64_t lda,
                     float* B, int64_t ldb) {
  return Trsm(h, side, uplo, trans, diag, m, n, alpha, A, lda, B, ldb);
}
cublasStatus_t Dtrsm(cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t trans,
                     cublasDiagType_t diag, int64_t m, int64_t n, const double* alpha, const double* A, int64_t lda,
                     double* B, int64_t ldb) {
  return Trsm(h, side, uplo, trans, diag, m, n, alpha, A, lda, B, ldb);
}

template <typename T>
cublasStatus_t TrsmBatched(cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t trans,
                           cublasDiagType_t diag, int64_t m, int64_t n, const T* alpha, const T* const A[],
                           int64_t lda, T* const B[], int64_t ldb, int64_t batch) {
  if (const cublasStatus_t s = TrsmCheck(h, side, m, n, lda, ldb, alpha); s != CUBLAS_STATUS_SUCCESS) return s;
  if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (batch > 0 && (A == nullptr || B == nullptr)) return CUBLAS_STATUS_INVALID_VALUE;
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  const double a = static_cast<double>(*alpha);
  // The pointer arrays are device memory: read when the stream runs.
  OnStream(h, [=] {
    for (int64_t i = 0; i < batch; ++i) TrsmSolve(side, uplo, trans, diag, m, n, a, A[i], lda, B[i], ldb);
  });
  return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t StrsmBatched(cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t trans,
                            cublasDiagType_t diag, int64_t m, int64_t n, const float* alpha, const float* const A[],
                            int64_t lda, float* const B[], int64_t ldb, int64_t batch) {
  return TrsmBatched(h, side, uplo, trans, diag, m, n, alpha, A, lda, B, ldb, batch);
}
cublasStatus_t DtrsmBatched(cublasHandle_t h, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t trans,
                            cublasDiagType_t diag, int64_t m, int64_t n, const double* alpha, const double* const A[],
                            int64_t lda, double* const B[], int64_t ldb, int64_t batch) {
  return TrsmBatched(h, side, uplo, trans, diag, m, n, alpha, A, lda, B, ldb, batch);
}

// ------------------------------------------- LAPACK, by element type.

lapack_int Potrf(char uplo, lapack_int n, float* a, lapack_int lda) {
  return LAPACKE_spotrf_work(LAPACK_COL_MAJOR, uplo, n, a, lda);
}
lapack_int Potrf(char uplo, lapack_int n, double* a, lapack_int lda) {
  return LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, uplo, n, a, lda);
}
lapack_int Getrf(lapack_int m, lapack_int n, float* a, lapack_int lda, lapack_int* ipiv) {
  return LAPACKE_sgetrf_work(LAPACK_COL_MAJOR, m, n, a, lda, ipiv);
}
lapack_int Getrf(lapack_int m, lapack_int n, double* a, lapack_int lda, lapack_int* ipiv) {
  return LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, m, n, a, lda, ipiv);
}
// A workspace query's answer (a float, for large sizes rounded down below
// the true minimum by LAPACK before 3.11) as a number of elements.
template <typename T>
size_t Elements(T query) {
  const double q = std::ceil(static_cast<double>(query) * (1 + 4 * std::numeric_limits<T>::epsilon()));
  return static_cast<size_t>(std::max(q, 1.0));
}

// The `_work` entry points, with LAPACK's workspace query first: unlike
// LAPACKE's high-level ones they do not refuse NaN inputs (cuSOLVER
// computes with them, and Kiln's kernels around the call flag them).
template <typename T, typename Call>
lapack_int WithWorkspace(Call call) {
  T query = 0;
  if (const lapack_int info = call(&query, -1); info != 0) return info;
  std::vector<T> work(Elements(query));
  return call(work.data(), static_cast<lapack_int>(work.size()));
}

lapack_int Geqrf(lapack_int m, lapack_int n, float* a, lapack_int lda, float* tau) {
  return WithWorkspace<float>([&](float* w, lapack_int l) {
    return LAPACKE_sgeqrf_work(LAPACK_COL_MAJOR, m, n, a, lda, tau, w, l);
  });
}
lapack_int Geqrf(lapack_int m, lapack_int n, double* a, lapack_int lda, double* tau) {
  return WithWorkspace<double>([&](double* w, lapack_int l) {
    return LAPACKE_dgeqrf_work(LAPACK_COL_MAJOR, m, n, a, lda, tau, w, l);
  });
}
lapack_int Orgqr(lapack_int m, lapack_int n, lapack_int k, float* a, lapack_int lda, const float* tau) {
  return WithWorkspace<float>([&](float* w, lapack_int l) {
    return LAPACKE_sorgqr_work(LAPACK_COL_MAJOR, m, n, k, a, lda, tau, w, l);
  });
}
lapack_int Orgqr(lapack_int m, lapack_int n, lapack_int k, double* a, lapack_int lda, const double* tau) {
  return WithWorkspace<double>([&](double* w, lapack_int l) {
    return LAPACKE_dorgqr_work(LAPACK_COL_MAJOR, m, n, k, a, lda, tau, w, l);
  });
}
// syevd has an integer workspace too, asked for in the same query.
template <typename T, typename Call>
lapack_int WithWorkspaces(Call call) {
  T query = 0;
  lapack_int iquery = 0;
  if (const lapack_int info = call(&query, -1, &iquery, -1); info != 0) return info;
  std::vector<T> work(Elements(query));
  std::vector<lapack_int> iwork(static_cast<size_t>(std::max<lapack_int>(iquery, 1)));
  return call(work.data(), static_cast<lapack_int>(work.size()), iwork.data(), static_cast<lapack_int>(iwork.size()));
}
lapack_int Syevd(char jobz, char uplo, lapack_int n, float* a, lapack_int lda, float* w) {
  return WithWorkspaces<float>([&](float* wk, lapack_int l, lapack_int* iw, lapack_int li) {
    return LAPACKE_ssyevd_work(LAPACK_COL_MAJOR, jobz, uplo, n, a, lda, w, wk, l, iw, li);
  });
}
lapack_int Syevd(char jobz, char uplo, lapack_int n, double* a, lapack_int lda, double* w) {
  return WithWorkspaces<double>([&](double* wk, lapack_int l, lapack_int* iw, lapack_int li) {
    return LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, jobz, uplo, n, a, lda, w, wk, l, iw, li);
  });
}
lapack_int Gesvd(char jobu, char jobvt, lapack_int m, lapack_int n, float* a, lapack_int lda, float* s, float* u,
                 lapack_int ldu, float* vt, lapack_int ldvt) {
  return WithWorkspace<float>([&](float* w, lapack_int l) {
    return LAPACKE_sgesvd_work(LAPACK_COL_MAJOR, jobu, jobvt, m, n, a, lda, s, u, ldu, vt, ldvt, w, l);
  });
}
lapack_int Gesvd(char jobu, char jobvt, lapack_int m, lapack_int n, double* a, lapack_int lda, double* s, double* u,
                 lapack_int ldu, double* vt, lapack_int ldvt) {
  return WithWorkspace<double>([&](double* w, lapack_int l) {
    return LAPACKE_dgesvd_work(LAPACK_COL_MAJOR, jobu, jobvt, m, n, a, lda, s, u, ldu, vt, ldvt, w, l);
  });
}

char Uplo(cublasFillMode_t f) { return f == CUBLAS_FILL_MODE_LOWER ? 'L' : 'U'; }
lapack_int L(int64_t v) { return static_cast<lapack_int>(v); }

// ------------------------------------------------- cuSOLVER's 64-bit API.

// The element size of a real type the solver takes with itself as the
// compute type (Kiln's only use), or 0.
size_t SolverElement(cudaDataType data, cudaDataType compute) {
  if (data != compute) return 0;
  return data == CUDA_R_32F ? 4 : data == CUDA_R_64F ? 8 : 0;
}

// The device workspace the stand-ins ask for: a few elements per column,
// so that a call given less (or none) than its query said is caught.
size_t DeviceWorkspace(int64_t n, size_t element) { return static_cast<size_t>(std::max<int64_t>(n, 1)) * element * 4; }

bool WorkspaceOk(const void* device, size_t device_bytes, size_t wanted) {
  return device_bytes >= wanted && (wanted == 0 || device != nullptr);
}

// The host workspace the stand-ins of syevd and gesvd ask for (the others
// ask for none, as cuSOLVER's do), so the caller's host workspace is
// exercised: it must be passed, and outlive the call.
constexpr size_t kHostWorkspace = 64;

cusolverStatus_t PotrfBufferSize(cusolverDnHandle_t handle, cusolverDnParams_t params, cublasFillMode_t, int64_t n,
                                 cudaDataType type, const void*, int64_t lda, cudaDataType compute, size_t* device,
                                 size_t* host) {
  if (handle == nullptr || params == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  const size_t e = SolverElement(type, compute);
  if (e == 0) return CUSOLVER_STATUS_NOT_SUPPORTED;
  if (n < 0 || lda < std::max<int64_t>(1, n)) return CUSOLVER_STATUS_INVALID_VALUE;
  *device = DeviceWorkspace(n, e);
  *host = 0;
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t Potrf(cusolverDnHandle_t handle, cusolverDnParams_t params, cublasFillMode_t uplo, int64_t n,
                       cudaDataType type, void* A, int64_t lda, cudaDataType compute, void* device,
                       size_t device_bytes, void* host, size_t host_bytes, int* info) {
  size_t want = 0, want_host = 0;
  if (const cusolverStatus_t s = PotrfBufferSize(handle, params, uplo, n, type, A, lda, compute, &want, &want_host);
      s != CUSOLVER_STATUS_SUCCESS) {
    return s;
  }
  if (!WorkspaceOk(device, device_bytes, want) || host_bytes < want_host || info == nullptr) {
    return CUSOLVER_STATUS_INVALID_VALUE;
  }
  (void)host;
  OnStream(handle, [=] {
    *info = type == CUDA_R_64F ? Potrf(Uplo(uplo), L(n), static_cast<double*>(A), L(lda))
                               : Potrf(Uplo(uplo), L(n), static_cast<float*>(A), L(lda));
  });
  return CUSOLVER_STATUS_SUCCESS;
}

template <typename T>
cusolverStatus_t PotrfBatched(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n, T* A[], int lda, int* info,
                              int batch) {
  if (handle == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  if (n < 0 || lda < std::max(1, n) || batch < 0 || (batch > 0 && (A == nullptr || info == nullptr))) {
    return CUSOLVER_STATUS_INVALID_VALUE;
  }
  OnStream(handle, [=] {
    for (int i = 0; i < batch; ++i) {
      info[i] = Potrf(Uplo(uplo), n, A[i], lda);
      // cuSOLVER documents the other triangle as its workspace: left as garbage.
      for (int c = 0; c < n; ++c) {
        for (int r = 0; r < n; ++r) {
          if (uplo == CUBLAS_FILL_MODE_LOWER ? r < c : r > c) A[i][r + c * lda] = std::numeric_limits<T>::quiet_NaN();
        }
      }
    }
  });
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t SpotrfBatched(cusolverDnHandle_t h, cublasFillMode_t uplo, int n, float* A[], int lda, int* info,
                               int batch) {
  return PotrfBatched(h, uplo, n, A, lda, info, batch);
}
cusolverStatus_t DpotrfBatched(cusolverDnHandle_t h, cublasFillMode_t uplo, int n, double* A[], int lda, int* info,
                               int batch) {
  return PotrfBatched(h, uplo, n, A, lda, info, batch);
}

cusolverStatus_t GetrfBufferSize(cusolverDnHandle_t handle, cusolverDnParams_t params, int64_t m, int64_t n,
                                 cudaDataType type, const void*, int64_t lda, cudaDataType compute, size_t* device,
                                 size_t* host) {
  if (handle == nullptr || params == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  const size_t e = SolverElement(type, compute);
  if (e == 0) return CUSOLVER_STATUS_NOT_SUPPORTED;
  if (m < 0 || n < 0 || lda < std::max<int64_t>(1, m)) return CUSOLVER_STATUS_INVALID_VALUE;
  *device = DeviceWorkspace(n, e);
  *host = 0;
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t Getrf(cusolverDnHandle_t handle, cusolverDnParams_t params, int64_t m, int64_t n, cudaDataType type,
                       void* A, int64_t lda, int64_t* ipiv, cudaDataType compute, void* device, size_t device_bytes,
                       void*, size_t host_bytes, int* info) {
  size_t want = 0, want_host = 0;
  if (const cusolverStatus_t s = GetrfBufferSize(handle, params, m, n, type, A, lda, compute, &want, &want_host);
      s != CUSOLVER_STATUS_SUCCESS) {
    return s;
  }
  if (!WorkspaceOk(device, device_bytes, want) || host_bytes < want_host || info == nullptr || ipiv == nullptr) {
    return CUSOLVER_STATUS_INVALID_VALUE;
  }
  OnStream(handle, [=] {
    std::vector<lapack_int> p(static_cast<size_t>(std::min(m, n)));
    *info = type == CUDA_R_64F ? Getrf(L(m), L(n), static_cast<double*>(A), L(lda), p.data())
                               : Getrf(L(m), L(n), static_cast<float*>(A), L(lda), p.data());
    std::copy(p.begin(), p.end(), ipiv);  // 1-based, as LAPACK's
  });
  return CUSOLVER_STATUS_SUCCESS;
}

// cuBLAS's batched LU of n x n matrices, 32-bit pivots n per matrix.
template <typename T>
cublasStatus_t GetrfBatched(cublasHandle_t handle, int n, T* const A[], int lda, int* P, int* info, int batch) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (n < 0 || lda < std::max(1, n) || batch < 0 || (batch > 0 && (A == nullptr || info == nullptr))) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (P == nullptr) return CUBLAS_STATUS_NOT_SUPPORTED;  // Kiln always pivots
  OnStream(handle, [=] {
    std::vector<lapack_int> p(static_cast<size_t>(n));
    for (int i = 0; i < batch; ++i) {
      info[i] = Getrf(n, n, A[i], lda, p.data());
      std::copy(p.begin(), p.end(), P + static_cast<int64_t>(i) * n);
    }
  });
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t SgetrfBatched(cublasHandle_t h, int n, float* const A[], int lda, int* P, int* info, int batch) {
  return GetrfBatched(h, n, A, lda, P, info, batch);
}
cublasStatus_t DgetrfBatched(cublasHandle_t h, int n, double* const A[], int lda, int* P, int* info, int batch) {
  return GetrfBatched(h, n, A, lda, P, info, batch);
}

cusolverStatus_t GeqrfBufferSize(cusolverDnHandle_t handle, cusolverDnParams_t params, int64_t m, int64_t n,
                                 cudaDataType type, const void*, int64_t lda, cudaDataType tau_type, const void*,
                                 cudaDataType compute, size_t* device, size_t* host) {
  if (handle == nullptr || params == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  const size_t e = SolverElement(type, compute);
  if (e == 0 || tau_type != type) return CUSOLVER_STATUS_NOT_SUPPORTED;
  if (m < 0 || n < 0 || lda < std::max<int64_t>(1, m)) return CUSOLVER_STATUS_INVALID_VALUE;
  *device = DeviceWorkspace(n, e);
  *host = 0;
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t Geqrf(cusolverDnHandle_t handle, cusolverDnParams_t params, int64_t m, int64_t n, cudaDataType type,
                       void* A, int64_t lda, cudaDataType tau_type, void* tau, cudaDataType compute, void* device,
                       size_t device_bytes, void*, size_t host_bytes, int* info) {
  size_t want = 0, want_host = 0;
  if (const cusolverStatus_t s =
          GeqrfBufferSize(handle, params, m, n, type, A, lda, tau_type, tau, compute, &want, &want_host);
      s != CUSOLVER_STATUS_SUCCESS) {
    return s;
  }
  if (!WorkspaceOk(device, device_bytes, want) || host_bytes < want_host || info == nullptr || tau == nullptr) {
    return CUSOLVER_STATUS_INVALID_VALUE;
  }
  OnStream(handle, [=] {
    *info = type == CUDA_R_64F ? Geqrf(L(m), L(n), static_cast<double*>(A), L(lda), static_cast<double*>(tau))
                               : Geqrf(L(m), L(n), static_cast<float*>(A), L(lda), static_cast<float*>(tau));
  });
  return CUSOLVER_STATUS_SUCCESS;
}

// orgqr's workspace is counted in elements.
template <typename T>
cusolverStatus_t OrgqrBufferSize(cusolverDnHandle_t handle, int m, int n, int k, const T*, int lda, const T*,
                                 int* lwork) {
  if (handle == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  if (m < 0 || n < 0 || n > m || k < 0 || k > n || lda < std::max(1, m)) return CUSOLVER_STATUS_INVALID_VALUE;
  *lwork = std::max(n, 1) * 4;
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t SorgqrBufferSize(cusolverDnHandle_t h, int m, int n, int k, const float* A, int lda,
                                  const float* tau, int* lwork) {
  return OrgqrBufferSize(h, m, n, k, A, lda, tau, lwork);
}
cusolverStatus_t DorgqrBufferSize(cusolverDnHandle_t h, int m, int n, int k, const double* A, int lda,
                                  const double* tau, int* lwork) {
  return OrgqrBufferSize(h, m, n, k, A, lda, tau, lwork);
}

template <typename T>
cusolverStatus_t Orgqr(cusolverDnHandle_t handle, int m, int n, int k, T* A, int lda, const T* tau, T* work,
                       int lwork, int* info) {
  int want = 0;
  if (const cusolverStatus_t s = OrgqrBufferSize(handle, m, n, k, A, lda, tau, &want); s != CUSOLVER_STATUS_SUCCESS) {
    return s;
  }
  if (lwork < want || work == nullptr || info == nullptr || (k > 0 && tau == nullptr)) {
    return CUSOLVER_STATUS_INVALID_VALUE;
  }
  OnStream(handle, [=] { *info = Orgqr(m, n, k, A, lda, tau); });
  return CUSOLVER_STATUS_SUCCESS;
}
cusolverStatus_t Sorgqr(cusolverDnHandle_t h, int m, int n, int k, float* A, int lda, const float* tau, float* work,
                        int lwork, int* info) {
  return Orgqr(h, m, n, k, A, lda, tau, work, lwork, info);
}
cusolverStatus_t Dorgqr(cusolverDnHandle_t h, int m, int n, int k, double* A, int lda, const double* tau,
                        double* work, int lwork, int* info) {
  return Orgqr(h, m, n, k, A, lda, tau, work, lwork, info);
}

cusolverStatus_t SyevdBufferSize(cusolverDnHandle_t handle, cusolverDnParams_t params, cusolverEigMode_t,
                                 cublasFillMode_t, int64_t n, cudaDataType type, const void*, int64_t lda,
                                 cudaDataType w_type, const void*, cudaDataType compute, size_t* device,
                                 size_t* host) {
  if (handle == nullptr || params == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  const size_t e = SolverElement(type, compute);
  if (e == 0 || w_type != type) return CUSOLVER_STATUS_NOT_SUPPORTED;
  if (n < 0 || lda < std::max<int64_t>(1, n)) return CUSOLVER_STATUS_INVALID_VALUE;
  *device = DeviceWorkspace(n, e);
  *host = kHostWorkspace;  // cuSOLVER may want host memory here: the caller's must be there
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t Syevd(cusolverDnHandle_t handle, cusolverDnParams_t params, cusolverEigMode_t jobz,
                       cublasFillMode_t uplo, int64_t n, cudaDataType type, void* A, int64_t lda, cudaDataType w_type,
                       void* W, cudaDataType compute, void* device, size_t device_bytes, void* host, size_t host_bytes,
                       int* info) {
  size_t want = 0, want_host = 0;
  if (const cusolverStatus_t s =
          SyevdBufferSize(handle, params, jobz, uplo, n, type, A, lda, w_type, W, compute, &want, &want_host);
      s != CUSOLVER_STATUS_SUCCESS) {
    return s;
  }
  if (!WorkspaceOk(device, device_bytes, want) || !WorkspaceOk(host, host_bytes, want_host) || info == nullptr ||
      W == nullptr) {
    return CUSOLVER_STATUS_INVALID_VALUE;
  }
  const char job = jobz == CUSOLVER_EIG_MODE_VECTOR ? 'V' : 'N';
  OnStream(handle, [=] {
    *info = type == CUDA_R_64F ? Syevd(job, Uplo(uplo), L(n), static_cast<double*>(A), L(lda), static_cast<double*>(W))
                               : Syevd(job, Uplo(uplo), L(n), static_cast<float*>(A), L(lda), static_cast<float*>(W));
  });
  return CUSOLVER_STATUS_SUCCESS;
}

bool SvdJob(signed char j) { return j == 'A' || j == 'S' || j == 'N'; }

cusolverStatus_t GesvdBufferSize(cusolverDnHandle_t handle, cusolverDnParams_t params, signed char jobu,
                                 signed char jobvt, int64_t m, int64_t n, cudaDataType type, const void*, int64_t lda,
                                 cudaDataType s_type, const void*, cudaDataType u_type, const void*, int64_t ldu,
                                 cudaDataType vt_type, const void*, int64_t ldvt, cudaDataType compute, size_t* device,
                                 size_t* host) {
  if (handle == nullptr || params == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  const size_t e = SolverElement(type, compute);
  if (e == 0 || s_type != type || u_type != type || vt_type != type) return CUSOLVER_STATUS_NOT_SUPPORTED;
  // cuSOLVER's gesvd takes tall matrices only, and checks ldu and ldvt
  // whatever the jobs.
  if (!SvdJob(jobu) || !SvdJob(jobvt) || m < n || n < 0 || lda < std::max<int64_t>(1, m) ||
      ldu < std::max<int64_t>(1, m) || ldvt < std::max<int64_t>(1, n)) {
    return CUSOLVER_STATUS_INVALID_VALUE;
  }
  *device = DeviceWorkspace(m, e);
  *host = kHostWorkspace;
  return CUSOLVER_STATUS_SUCCESS;
}

cusolverStatus_t Gesvd(cusolverDnHandle_t handle, cusolverDnParams_t params, signed char jobu, signed char jobvt,
                       int64_t m, int64_t n, cudaDataType type, void* A, int64_t lda, cudaDataType s_type, void* S,
                       cudaDataType u_type, void* U, int64_t ldu, cudaDataType vt_type, void* VT, int64_t ldvt,
                       cudaDataType compute, void* device, size_t device_bytes, void* host, size_t host_bytes,
                       int* info) {
  size_t want = 0, want_host = 0;
  if (const cusolverStatus_t s = GesvdBufferSize(handle, params, jobu, jobvt, m, n, type, A, lda, s_type, S, u_type, U,
                                                 ldu, vt_type, VT, ldvt, compute, &want, &want_host);
      s != CUSOLVER_STATUS_SUCCESS) {
    return s;
  }
  if (!WorkspaceOk(device, device_bytes, want) || !WorkspaceOk(host, host_bytes, want_host) || info == nullptr ||
      S == nullptr ||
      (jobu != 'N' && U == nullptr) || (jobvt != 'N' && VT == nullptr)) {
    return CUSOLVER_STATUS_INVALID_VALUE;
  }
  OnStream(handle, [=] {
    const auto run = [&](auto* a) {
      using T = std::remove_pointer_t<decltype(a)>;
      T dummy[1];
      *info = Gesvd(static_cast<char>(jobu), static_cast<char>(jobvt), L(m), L(n), a, L(lda), static_cast<T*>(S),
                    U != nullptr ? static_cast<T*>(U) : dummy, L(ldu), VT != nullptr ? static_cast<T*>(VT) : dummy,
                    L(ldvt));
    };
    if (type == CUDA_R_64F) {
      run(static_cast<double*>(A));
    } else {
      run(static_cast<float*>(A));
    }
  });
  return CUSOLVER_STATUS_SUCCESS;
}

}  // namespace

void FillEmulatedSolver(LibraryApi* api) {
  api->cublasStrsm_v2_64 = Strsm;
  api->cublasDtrsm_v2_64 = Dtrsm;
  api->cublasStrsmBatched_64 = StrsmBatched;
  api->cublasDtrsmBatched_64 = DtrsmBatched;
  api->cublasSgetrfBatched = SgetrfBatched;
  api->cublasDgetrfBatched = DgetrfBatched;
  api->cusolverDnSpotrfBatched = SpotrfBatched;
  api->cusolverDnDpotrfBatched = DpotrfBatched;
  api->cusolverDnXpotrf_bufferSize = PotrfBufferSize;
  api->cusolverDnXpotrf = Potrf;
  api->cusolverDnXgetrf_bufferSize = GetrfBufferSize;
  api->cusolverDnXgetrf = Getrf;
  api->cusolverDnXgeqrf_bufferSize = GeqrfBufferSize;
  api->cusolverDnXgeqrf = Geqrf;
  api->cusolverDnSorgqr_bufferSize = SorgqrBufferSize;
  api->cusolverDnDorgqr_bufferSize = DorgqrBufferSize;
  api->cusolverDnSorgqr = Sorgqr;
  api->cusolverDnDorgqr = Dorgqr;
  api->cusolverDnXsyevd_bufferSize = SyevdBufferSize;
  api->cusolverDnXsyevd = Syevd;
  api->cusolverDnXgesvd_bufferSize = GesvdBufferSize;
  api->cusolverDnXgesvd = Gesvd;
}

}  // namespace kiln::backends::cuda
