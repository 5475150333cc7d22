// Copyright 2026 The Kiln Authors.
// The emulator's stand-ins for cuBLAS, cuBLASLt, cuSOLVER and cuFFT (see
// library_api.h). Each reads its arguments as the library's documentation
// defines them (column-major matrices, leading dimensions, side, triangle,
// transpose and diagonal flags, batch counts and strides, pointer arrays,
// the bias epilogue's vector along the rows of D) and rejects what the
// library rejects (leading dimensions too small, a workspace smaller than
// its query said, mismatched extents or types), with the library's status.
// The arithmetic is LAPACK's for the factorizations, FFTW's for the
// transforms (with cuFFT's layouts), and textbook substitution and dot
// products (in double) for trsm and the products.
// Host pointers stand where the libraries take device pointers.
#include <lapacke.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <mutex>
#include <type_traits>
#include <vector>

#include "kiln/core/float16.h"
#include "src/backends/cpu/fftw.h"
#include "src/backends/cuda/library_api.h"

namespace kiln::backends::cuda {

namespace {

// ------------------------------------------------------------ cuBLAS: trsm.

// B := alpha op(A)⁻¹ B (left) or alpha B op(A)⁻¹ (right); B is m x n with
// leading dimension ldb, A k x k (k = m or n) with lda, of which only the
// `uplo` triangle is read (and its diagonal unless `diag` is unit).
template <typename T>
cublasStatus_t Trsm(cublasHandle_t handle, cublasSideMode_t side, cublasFillMode_t uplo, cublasOperation_t trans,
                    cublasDiagType_t diag, int64_t m, int64_t n, const T* alpha, const T* A, int64_t lda, T* B,
                    int64_t ldb) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  const bool left = side == CUBLAS_SIDE_LEFT;
  const int64_t k = left ? m : n;
  if (m < 0 || n < 0 || lda < std::max<int64_t>(1, k) || ldb < std::max<int64_t>(1, m) || alpha == nullptr) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
  if (A == nullptr || B == nullptr) return CUBLAS_STATUS_INVALID_VALUE;
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
      v[static_cast<size_t>(t)] = static_cast<double>(*alpha) * static_cast<double>(at(t));
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
  if (batch < 0) return CUBLAS_STATUS_INVALID_VALUE;
  if (batch > 0 && (A == nullptr || B == nullptr)) return CUBLAS_STATUS_INVALID_VALUE;
  for (int64_t i = 0; i < batch; ++i) {
    if (const cublasStatus_t s = Trsm(h, side, uplo, trans, diag, m, n, alpha, A[i], lda, B[i], ldb);
        s != CUBLAS_STATUS_SUCCESS) {
      return s;
    }
  }
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
  *info = type == CUDA_R_64F ? Potrf(Uplo(uplo), L(n), static_cast<double*>(A), L(lda))
                             : Potrf(Uplo(uplo), L(n), static_cast<float*>(A), L(lda));
  return CUSOLVER_STATUS_SUCCESS;
}

template <typename T>
cusolverStatus_t PotrfBatched(cusolverDnHandle_t handle, cublasFillMode_t uplo, int n, T* A[], int lda, int* info,
                              int batch) {
  if (handle == nullptr) return CUSOLVER_STATUS_NOT_INITIALIZED;
  if (n < 0 || lda < std::max(1, n) || batch < 0 || (batch > 0 && (A == nullptr || info == nullptr))) {
    return CUSOLVER_STATUS_INVALID_VALUE;
  }
  for (int i = 0; i < batch; ++i) {
    info[i] = Potrf(Uplo(uplo), n, A[i], lda);
    // cuSOLVER documents the other triangle as its workspace: left as garbage.
    for (int c = 0; c < n; ++c) {
      for (int r = 0; r < n; ++r) {
        if (uplo == CUBLAS_FILL_MODE_LOWER ? r < c : r > c) A[i][r + c * lda] = std::numeric_limits<T>::quiet_NaN();
      }
    }
  }
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
  std::vector<lapack_int> p(static_cast<size_t>(std::min(m, n)));
  *info = type == CUDA_R_64F ? Getrf(L(m), L(n), static_cast<double*>(A), L(lda), p.data())
                             : Getrf(L(m), L(n), static_cast<float*>(A), L(lda), p.data());
  std::copy(p.begin(), p.end(), ipiv);  // 1-based, as LAPACK's
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
  std::vector<lapack_int> p(static_cast<size_t>(n));
  for (int i = 0; i < batch; ++i) {
    info[i] = Getrf(n, n, A[i], lda, p.data());
    std::copy(p.begin(), p.end(), P + static_cast<int64_t>(i) * n);
  }
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
  *info = type == CUDA_R_64F ? Geqrf(L(m), L(n), static_cast<double*>(A), L(lda), static_cast<double*>(tau))
                             : Geqrf(L(m), L(n), static_cast<float*>(A), L(lda), static_cast<float*>(tau));
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
  *info = Orgqr(m, n, k, A, lda, tau);
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
  *info = type == CUDA_R_64F ? Syevd(job, Uplo(uplo), L(n), static_cast<double*>(A), L(lda), static_cast<double*>(W))
                             : Syevd(job, Uplo(uplo), L(n), static_cast<float*>(A), L(lda), static_cast<float*>(W));
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
  return CUSOLVER_STATUS_SUCCESS;
}

// ---------------------------------------------------------------- cuBLASLt.

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
      return (d.compute == CUBLAS_COMPUTE_32F || d.compute == CUBLAS_COMPUTE_32F_FAST_TF32) && d.scale == CUDA_R_32F;
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
// once to D's type.
cublasStatus_t Matmul(cublasLtHandle_t handle, cublasLtMatmulDesc_t desc, const void* alpha, const void* A,
                      cublasLtMatrixLayout_t a_layout, const void* B, cublasLtMatrixLayout_t b_layout, const void* beta,
                      const void* C, cublasLtMatrixLayout_t c_layout, void* D, cublasLtMatrixLayout_t d_layout,
                      const cublasLtMatmulAlgo_t* algo, void* workspace, size_t workspace_size, cudaStream_t) {
  if (handle == nullptr) return CUBLAS_STATUS_NOT_INITIALIZED;
  if (desc == nullptr || a_layout == nullptr || b_layout == nullptr || c_layout == nullptr || d_layout == nullptr ||
      alpha == nullptr || beta == nullptr || algo == nullptr || (workspace_size > 0 && workspace == nullptr)) {
    return CUBLAS_STATUS_INVALID_VALUE;
  }
  const FakeDesc& d = *Of(desc);
  const FakeLayout &la = *Of(a_layout), &lb = *Of(b_layout), &lc = *Of(c_layout), &ld = *Of(d_layout);
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
  for (int64_t item = 0; item < ld.batch; ++item) {
    const int64_t ia = item * la.stride, ib = item * lb.stride, ic = item * lc.stride, id = item * ld.stride;
    for (int64_t j = 0; j < cols; ++j) {
      for (int64_t i = 0; i < rows; ++i) {
        double acc = 0;
        for (int64_t k = 0; k < inner; ++k) {
          acc += Load(A, la.type, ia + at(la, d.transa != CUBLAS_OP_N, i, k)) *
                 Load(B, lb.type, ib + at(lb, d.transb != CUBLAS_OP_N, k, j));
        }
        double v = al * acc;
        if (be != 0) v += be * Load(C, lc.type, ic + i + j * lc.ld);
        if (bias) v += Load(d.bias, ld.type, i);
        Store(D, ld.type, id + i + j * ld.ld, v);
      }
    }
  }
  return CUBLAS_STATUS_SUCCESS;
}

// ------------------------------------------------------------------ cuFFT.

// A plan: cufftPlanMany's arguments.
struct FakeFftPlan {
  std::vector<int> n, inembed, onembed;  // the embeddings empty: the basic layout
  int istride = 1, idist = 0, ostride = 1, odist = 0;
  cufftType type = CUFFT_C2C;
  int batch = 1;
};

struct FftPlans {
  std::mutex mu;
  std::map<cufftHandle, FakeFftPlan> plans;
  cufftHandle next = 1;
};
FftPlans& Plans() {
  static FftPlans p;
  return p;
}

bool RealInput(cufftType t) { return t == CUFFT_R2C || t == CUFFT_D2Z; }
bool RealOutput(cufftType t) { return t == CUFFT_C2R || t == CUFFT_Z2D; }

cufftResult PlanMany(cufftHandle* plan, int rank, int* n, int* inembed, int istride, int idist, int* onembed,
                     int ostride, int odist, cufftType type, int batch) {
  if (plan == nullptr || n == nullptr) return CUFFT_INVALID_VALUE;
  if (rank < 1 || rank > 3 || batch < 1) return CUFFT_INVALID_SIZE;
  if (type != CUFFT_C2C && type != CUFFT_Z2Z && type != CUFFT_R2C && type != CUFFT_D2Z && type != CUFFT_C2R &&
      type != CUFFT_Z2D) {
    return CUFFT_INVALID_TYPE;
  }
  FakeFftPlan p;
  p.n.assign(n, n + rank);
  p.type = type;
  p.batch = batch;
  for (int v : p.n) {
    if (v < 1) return CUFFT_INVALID_SIZE;
  }
  // Either embedding null: the basic layout, whatever the strides and
  // distances say (cuFFT ignores them then).
  if (inembed != nullptr && onembed != nullptr) {
    if (istride < 1 || ostride < 1 || idist < 1 || odist < 1) return CUFFT_INVALID_VALUE;
    p.inembed.assign(inembed, inembed + rank);
    p.onembed.assign(onembed, onembed + rank);
    // Each embedding holds its transform (the complex side of a real
    // transform has n / 2 + 1 elements on its last axis).
    for (int i = 1; i < rank; ++i) {
      const bool last = i == rank - 1;
      const int in = last && RealOutput(type) ? p.n[static_cast<size_t>(i)] / 2 + 1 : p.n[static_cast<size_t>(i)];
      const int out = last && RealInput(type) ? p.n[static_cast<size_t>(i)] / 2 + 1 : p.n[static_cast<size_t>(i)];
      if (p.inembed[static_cast<size_t>(i)] < in || p.onembed[static_cast<size_t>(i)] < out) return CUFFT_INVALID_VALUE;
    }
    p.istride = istride, p.idist = idist, p.ostride = ostride, p.odist = odist;
  }
  FftPlans& all = Plans();
  std::lock_guard lock(all.mu);
  *plan = all.next++;
  all.plans.emplace(*plan, std::move(p));
  return CUFFT_SUCCESS;
}

cufftResult FftSetStream(cufftHandle plan, cudaStream_t) {
  FftPlans& all = Plans();
  std::lock_guard lock(all.mu);
  return all.plans.count(plan) != 0 ? CUFFT_SUCCESS : CUFFT_INVALID_PLAN;
}

cufftResult FftDestroy(cufftHandle plan) {
  FftPlans& all = Plans();
  std::lock_guard lock(all.mu);
  return all.plans.erase(plan) != 0 ? CUFFT_SUCCESS : CUFFT_INVALID_PLAN;
}

// Runs `plan`, which must be of type `type`, through FFTW with the plan's
// layout: in the basic layout, items packed one after the other.
template <typename R>
cufftResult Exec(cufftHandle plan, cufftType type, void* in, void* out, int direction) {
  FakeFftPlan p;
  {
    FftPlans& all = Plans();
    std::lock_guard lock(all.mu);
    const auto it = all.plans.find(plan);
    if (it == all.plans.end()) return CUFFT_INVALID_PLAN;
    p = it->second;
  }
  if (p.type != type) return CUFFT_INVALID_TYPE;
  if (in == nullptr || out == nullptr) return CUFFT_INVALID_VALUE;
  const bool complex = type == CUFFT_C2C || type == CUFFT_Z2Z;
  if (complex && direction != CUFFT_FORWARD && direction != CUFFT_INVERSE) return CUFFT_INVALID_VALUE;
  using F = cpu::Fftw<R>;
  const int rank = static_cast<int>(p.n.size());
  int64_t points64 = 1;
  for (int v : p.n) points64 *= v;
  if (points64 > std::numeric_limits<int>::max()) return CUFFT_INVALID_SIZE;  // FFTW's distances are ints
  const int points = static_cast<int>(points64);
  const int half = points / p.n.back() * (p.n.back() / 2 + 1);
  const bool basic = p.inembed.empty();
  const int idist = basic ? (RealOutput(type) ? half : points) : p.idist;
  const int odist = basic ? (RealInput(type) ? half : points) : p.odist;
  int* inembed = basic ? nullptr : p.inembed.data();
  int* onembed = basic ? nullptr : p.onembed.data();
  constexpr unsigned kFlags = FFTW_ESTIMATE | FFTW_UNALIGNED;
  typename F::Plan f = nullptr;
  std::lock_guard lock(cpu::FftwPlannerLock());
  if (complex) {
    // cuFFT's CUFFT_FORWARD (-1) and CUFFT_INVERSE (+1) are FFTW's signs.
    f = F::kManyDft(rank, p.n.data(), p.batch, static_cast<typename F::Cx*>(in), inembed, p.istride, idist,
                    static_cast<typename F::Cx*>(out), onembed, p.ostride, odist, direction, kFlags);
  } else if (RealInput(type)) {
    f = F::kManyR2c(rank, p.n.data(), p.batch, static_cast<R*>(in), inembed, p.istride, idist,
                    static_cast<typename F::Cx*>(out), onembed, p.ostride, odist, kFlags);
  } else {
    f = F::kManyC2r(rank, p.n.data(), p.batch, static_cast<typename F::Cx*>(in), inembed, p.istride, idist,
                    static_cast<R*>(out), onembed, p.ostride, odist, kFlags);
  }
  if (f == nullptr) return CUFFT_EXEC_FAILED;
  F::kExecute(f);
  F::kDestroy(f);
  return CUFFT_SUCCESS;
}

cufftResult ExecC2C(cufftHandle plan, cufftComplex* in, cufftComplex* out, int direction) {
  return Exec<float>(plan, CUFFT_C2C, in, out, direction);
}
cufftResult ExecZ2Z(cufftHandle plan, cufftDoubleComplex* in, cufftDoubleComplex* out, int direction) {
  return Exec<double>(plan, CUFFT_Z2Z, in, out, direction);
}
cufftResult ExecR2C(cufftHandle plan, cufftReal* in, cufftComplex* out) {
  return Exec<float>(plan, CUFFT_R2C, in, out, 0);
}
cufftResult ExecD2Z(cufftHandle plan, cufftDoubleReal* in, cufftDoubleComplex* out) {
  return Exec<double>(plan, CUFFT_D2Z, in, out, 0);
}
cufftResult ExecC2R(cufftHandle plan, cufftComplex* in, cufftReal* out) {
  return Exec<float>(plan, CUFFT_C2R, in, out, 0);
}
cufftResult ExecZ2D(cufftHandle plan, cufftDoubleComplex* in, cufftDoubleReal* out) {
  return Exec<double>(plan, CUFFT_Z2D, in, out, 0);
}

}  // namespace

const LibraryApi& EmulatedLibraryApi() {
  static const LibraryApi api = [] {
    LibraryApi a;
    a.cublasStrsm_v2_64 = Strsm;
    a.cublasDtrsm_v2_64 = Dtrsm;
    a.cublasStrsmBatched_64 = StrsmBatched;
    a.cublasDtrsmBatched_64 = DtrsmBatched;
    a.cublasSgetrfBatched = SgetrfBatched;
    a.cublasDgetrfBatched = DgetrfBatched;
    a.cusolverDnSpotrfBatched = SpotrfBatched;
    a.cusolverDnDpotrfBatched = DpotrfBatched;
    a.cusolverDnXpotrf_bufferSize = PotrfBufferSize;
    a.cusolverDnXpotrf = Potrf;
    a.cusolverDnXgetrf_bufferSize = GetrfBufferSize;
    a.cusolverDnXgetrf = Getrf;
    a.cusolverDnXgeqrf_bufferSize = GeqrfBufferSize;
    a.cusolverDnXgeqrf = Geqrf;
    a.cusolverDnSorgqr_bufferSize = SorgqrBufferSize;
    a.cusolverDnDorgqr_bufferSize = DorgqrBufferSize;
    a.cusolverDnSorgqr = Sorgqr;
    a.cusolverDnDorgqr = Dorgqr;
    a.cusolverDnXsyevd_bufferSize = SyevdBufferSize;
    a.cusolverDnXsyevd = Syevd;
    a.cusolverDnXgesvd_bufferSize = GesvdBufferSize;
    a.cusolverDnXgesvd = Gesvd;
    a.cublasLtMatmulDescCreate = DescCreate;
    a.cublasLtMatmulDescDestroy = DescDestroy;
    a.cublasLtMatmulDescSetAttribute = DescSetAttribute;
    a.cublasLtMatrixLayoutCreate = LayoutCreate;
    a.cublasLtMatrixLayoutDestroy = LayoutDestroy;
    a.cublasLtMatrixLayoutSetAttribute = LayoutSetAttribute;
    a.cublasLtMatmulPreferenceCreate = PreferenceCreate;
    a.cublasLtMatmulPreferenceDestroy = PreferenceDestroy;
    a.cublasLtMatmulPreferenceSetAttribute = PreferenceSetAttribute;
    a.cublasLtMatmulAlgoGetHeuristic = AlgoGetHeuristic;
    a.cublasLtMatmul = Matmul;
    a.cufftPlanMany = PlanMany;
    a.cufftSetStream = FftSetStream;
    a.cufftExecC2C = ExecC2C;
    a.cufftExecZ2Z = ExecZ2Z;
    a.cufftExecR2C = ExecR2C;
    a.cufftExecD2Z = ExecD2Z;
    a.cufftExecC2R = ExecC2R;
    a.cufftExecZ2D = ExecZ2D;
    a.cufftDestroy = FftDestroy;
    return a;
  }();
  return api;
}

}  // namespace kiln::backends::cuda
