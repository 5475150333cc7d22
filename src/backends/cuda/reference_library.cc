// Copyright 2026 The Kiln Authors.
// The CUDA emulator's library calls (see reference_library.h): the
// factorizations through LAPACK, column-major, with the arguments cuSOLVER
// gets; trsm as the textbook substitution with cuBLAS's side, triangle,
// transpose and diagonal flags.
#include "src/backends/cuda/reference_library.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <lapacke.h>

#include "kiln/core/error.h"
#include "src/backends/cpu/fftw.h"

namespace kiln::backends::cuda {

namespace {

lapack_int Potrf(char uplo, lapack_int n, float* a) { return LAPACKE_spotrf_work(LAPACK_COL_MAJOR, uplo, n, a, n); }
lapack_int Potrf(char uplo, lapack_int n, double* a) { return LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, uplo, n, a, n); }

lapack_int Getrf(lapack_int m, lapack_int n, float* a, lapack_int* ipiv) {
  return LAPACKE_sgetrf_work(LAPACK_COL_MAJOR, m, n, a, std::max<lapack_int>(m, 1), ipiv);
}
lapack_int Getrf(lapack_int m, lapack_int n, double* a, lapack_int* ipiv) {
  return LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, m, n, a, std::max<lapack_int>(m, 1), ipiv);
}

// Matrix i of a batch `size` elements apart at x; for a batched call, where
// the pointer array (the spec's input `array`) says, as the library reads it.
template <typename T>
T* MatrixOf(const LibraryCall& s, T* x, void* const* inputs, size_t array, int64_t i, int64_t size) {
  if (!s.batched) return x + i * size;
  T* m = reinterpret_cast<T*>(static_cast<const uint64_t*>(inputs[array])[i]);
  if (m != x + i * size) Throw("cuda-emu: pointer " + std::to_string(i) + " of a batched solver call is wrong");
  return m;
}

// getrf per matrix; the pivots stored as the library's entry point would:
// 32-bit for the batched one, 64-bit for cusolverDnXgetrf.
template <typename T>
void ReferenceGetrf(const LibraryCall& s, T* x, void* const* inputs, void* pivots, int32_t* info) {
  const int64_t k = std::min(s.rows, s.cols);
  std::vector<lapack_int> ipiv(static_cast<size_t>(k));
  for (int64_t i = 0; i < s.batch; ++i) {
    info[i] = static_cast<int32_t>(Getrf(static_cast<lapack_int>(s.rows), static_cast<lapack_int>(s.cols),
                                         MatrixOf(s, x, inputs, 0, i, s.rows * s.cols), ipiv.data()));
    for (int64_t r = 0; r < k; ++r) {
      if (s.batched) static_cast<int32_t*>(pivots)[i * k + r] = static_cast<int32_t>(ipiv[static_cast<size_t>(r)]);
      else static_cast<int64_t*>(pivots)[i * k + r] = ipiv[static_cast<size_t>(r)];
    }
  }
}

lapack_int Geqrf(lapack_int m, lapack_int n, float* a, float* tau) {
  return LAPACKE_sgeqrf(LAPACK_COL_MAJOR, m, n, a, m, tau);
}
lapack_int Geqrf(lapack_int m, lapack_int n, double* a, double* tau) {
  return LAPACKE_dgeqrf(LAPACK_COL_MAJOR, m, n, a, m, tau);
}
lapack_int Orgqr(lapack_int m, lapack_int n, lapack_int k, float* a, const float* tau) {
  return LAPACKE_sorgqr(LAPACK_COL_MAJOR, m, n, k, a, m, tau);
}
lapack_int Orgqr(lapack_int m, lapack_int n, lapack_int k, double* a, const double* tau) {
  return LAPACKE_dorgqr(LAPACK_COL_MAJOR, m, n, k, a, m, tau);
}
lapack_int Syevd(char uplo, lapack_int n, float* a, float* w) {
  return LAPACKE_ssyevd(LAPACK_COL_MAJOR, 'V', uplo, n, a, n, w);
}
lapack_int Syevd(char uplo, lapack_int n, double* a, double* w) {
  return LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'V', uplo, n, a, n, w);
}
lapack_int Gesvd(char job, lapack_int m, lapack_int n, float* a, float* s, float* u, lapack_int ldu, float* vt,
                 lapack_int ldvt, float* superb) {
  return LAPACKE_sgesvd(LAPACK_COL_MAJOR, job, job, m, n, a, m, s, u, ldu, vt, ldvt, superb);
}
lapack_int Gesvd(char job, lapack_int m, lapack_int n, double* a, double* s, double* u, lapack_int ldu, double* vt,
                 lapack_int ldvt, double* superb) {
  return LAPACKE_dgesvd(LAPACK_COL_MAJOR, job, job, m, n, a, m, s, u, ldu, vt, ldvt, superb);
}

lapack_int Int(int64_t v) { return static_cast<lapack_int>(v); }

template <typename T>
void ReferenceGeqrf(const LibraryCall& s, T* x, T* tau, int32_t* info) {
  const int64_t k = std::min(s.rows, s.cols);
  for (int64_t i = 0; i < s.batch; ++i) info[i] = Geqrf(Int(s.rows), Int(s.cols), x + i * s.rows * s.cols, tau + i * k);
}

template <typename T>
void ReferenceOrgqr(const LibraryCall& s, T* x, const T* tau, int32_t* info) {
  for (int64_t i = 0; i < s.batch; ++i) {
    info[i] = Orgqr(Int(s.rows), Int(s.cols), Int(s.reflectors), x + i * s.rows * s.cols, tau + i * s.reflectors);
  }
}

template <typename T>
void ReferenceSyevd(const LibraryCall& s, T* x, T* w, int32_t* info) {
  for (int64_t i = 0; i < s.batch; ++i) info[i] = Syevd(s.lower ? 'L' : 'U', Int(s.rows), x + i * s.rows * s.rows, w + i * s.rows);
}

// cuSOLVER's gesvd computes tall matrices only (rows >= cols): the
// generator must have arranged that.
template <typename T>
void ReferenceGesvd(const LibraryCall& s, T* x, void* const* outputs) {
  if (s.rows < s.cols) Throw("cuda-emu: gesvd of a " + std::to_string(s.rows) + " x " + std::to_string(s.cols) +
                             " matrix (cuSOLVER needs rows >= cols)");
  const int64_t k = s.cols, ucols = s.full_matrices ? s.rows : k;
  T* sv = static_cast<T*>(outputs[0]);
  T* u = s.compute_uv ? static_cast<T*>(outputs[1]) : nullptr;
  T* vt = s.compute_uv ? static_cast<T*>(outputs[2]) : nullptr;
  auto* info = static_cast<int32_t*>(outputs[s.compute_uv ? 3 : 1]);
  const char job = !s.compute_uv ? 'N' : s.full_matrices ? 'A' : 'S';
  std::vector<T> superb(static_cast<size_t>(std::max<int64_t>(k, 1)));
  T dummy[1];
  for (int64_t i = 0; i < s.batch; ++i) {
    info[i] = Gesvd(job, Int(s.rows), Int(s.cols), x + i * s.rows * s.cols, sv + i * k,
                    u != nullptr ? u + i * s.rows * ucols : dummy, Int(s.rows), vt != nullptr ? vt + i * k * k : dummy,
                    Int(k), superb.data());
  }
}

template <typename T>
void ReferencePotrf(const LibraryCall& s, T* x, void* const* inputs, int32_t* info) {
  const int64_t size = s.rows * s.rows;
  for (int64_t i = 0; i < s.batch; ++i) {
    info[i] = static_cast<int32_t>(
        Potrf(s.lower ? 'L' : 'U', static_cast<lapack_int>(s.rows), MatrixOf(s, x, inputs, 0, i, size)));
  }
}

// cuBLAS's trsm on each matrix of the batch: op(A) X = B (left side, A
// rows x rows) or X op(A) = B (A cols x cols), B rows x cols with leading
// dimension rows, overwritten by X. Column-major throughout.
template <typename T>
void ReferenceTrsm(const LibraryCall& s, T* x, void* const* inputs) {
  const int64_t k = s.left_side ? s.rows : s.cols;
  T* a_all = static_cast<T*>(inputs[0]);
  for (int64_t bi = 0; bi < s.batch; ++bi) {
    const T* a = MatrixOf(s, a_all, inputs, 1, bi, k * k);
    T* b = MatrixOf(s, x, inputs, 2, bi, s.rows * s.cols);
    // op(A)(i, j), and whether op(A) is lower triangular.
    auto op = [&](int64_t i, int64_t j) { return s.transpose ? a[i * k + j] : a[j * k + i]; };
    const bool op_lower = s.lower != s.transpose;
    auto diag = [&](int64_t i) { return s.unit_diagonal ? T(1) : op(i, i); };
    if (s.left_side) {
      // Each column of B: op(A) x = b, by forward or backward substitution.
      for (int64_t c = 0; c < s.cols; ++c) {
        T* col = b + c * s.rows;
        for (int64_t t = 0; t < k; ++t) {
          const int64_t i = op_lower ? t : k - 1 - t;
          T sum = col[i];
          for (int64_t j = 0; j < k; ++j) {
            if (j != i && (op_lower ? j < i : j > i)) sum -= op(i, j) * col[j];
          }
          col[i] = sum / diag(i);
        }
      }
    } else {
      // Each row of B: x op(A) = b, i.e. op(A)ᵀ xᵀ = bᵀ, whose triangle is
      // the opposite of op(A)'s.
      for (int64_t r = 0; r < s.rows; ++r) {
        auto at = [&](int64_t j) -> T& { return b[j * s.rows + r]; };
        for (int64_t t = 0; t < k; ++t) {
          const int64_t i = op_lower ? k - 1 - t : t;
          T sum = at(i);
          for (int64_t j = 0; j < k; ++j) {
            if (j != i && (op_lower ? j > i : j < i)) sum -= at(j) * op(j, i);
          }
          at(i) = sum / diag(i);
        }
      }
    }
  }
}

// cuFFT's transforms through FFTW (unnormalized, the same layouts).
// FFTW's planner is not thread-safe (the CPU backend's kernels_fft.cc plans
// under its own lock, at compile time; the emulator plans here, per call,
// while a test runs one backend at a time).
template <typename R>
void ReferenceFft(const LibraryCall& s, void* x, void* const* inputs) {
  using F = cpu::Fftw<R>;
  std::vector<int> n;
  int64_t points = 1;
  for (int64_t l : s.lengths) n.push_back(static_cast<int>(l)), points *= l;
  const int rank = static_cast<int>(n.size()), batch = static_cast<int>(s.batch);
  constexpr unsigned kFlags = FFTW_ESTIMATE | FFTW_UNALIGNED;
  auto* cx = static_cast<typename F::Cx*>(x);
  typename F::Plan plan = nullptr;
  switch (s.kind) {
    case LibraryCall::Kind::kFft:
      plan = F::kManyDft(rank, n.data(), batch, cx, nullptr, 1, static_cast<int>(points), cx, nullptr, 1,
                         static_cast<int>(points), s.inverse ? FFTW_BACKWARD : FFTW_FORWARD, kFlags);
      break;
    case LibraryCall::Kind::kRfft: {
      const int half = static_cast<int>(points / n.back() * (n.back() / 2 + 1));
      plan = F::kManyR2c(rank, n.data(), batch, static_cast<R*>(inputs[0]), nullptr, 1, static_cast<int>(points), cx,
                         nullptr, 1, half, kFlags);
      break;
    }
    case LibraryCall::Kind::kIrfft: {
      const int half = n.back() / 2 + 1;
      plan = F::kManyC2r(rank, n.data(), batch, static_cast<typename F::Cx*>(inputs[0]), nullptr, 1, half,
                         static_cast<R*>(x), nullptr, 1, static_cast<int>(points), kFlags);
      break;
    }
    case LibraryCall::Kind::kIrfftLead: {
      const int cols = static_cast<int>(s.cols);
      for (int64_t b = 0; b < s.batch; ++b) {
        typename F::Cx* item = cx + b * points * s.cols;
        auto p = F::kManyDft(rank, n.data(), cols, item, n.data(), cols, 1, item, n.data(), cols, 1, FFTW_BACKWARD,
                             kFlags);
        if (p == nullptr) Throw("cuda-emu: FFTW could not plan an IRFFT stage");
        F::kExecute(p);
        F::kDestroy(p);
      }
      return;
    }
    default: Throw("cuda-emu: not a Fourier transform");
  }
  if (plan == nullptr) Throw("cuda-emu: FFTW could not plan a transform");
  F::kExecute(plan);
  F::kDestroy(plan);
}

template <typename T>
void Run(const LibraryCall& s, void* x, void* const* inputs, void* const* outputs) {
  switch (s.kind) {
    case LibraryCall::Kind::kPotrf:
      ReferencePotrf(s, static_cast<T*>(x), inputs, static_cast<int32_t*>(outputs[0]));
      return;
    case LibraryCall::Kind::kTrsm: ReferenceTrsm(s, static_cast<T*>(x), inputs); return;
    case LibraryCall::Kind::kGetrf:
      ReferenceGetrf(s, static_cast<T*>(x), inputs, outputs[0], static_cast<int32_t*>(outputs[1]));
      return;
    case LibraryCall::Kind::kGeqrf:
      ReferenceGeqrf(s, static_cast<T*>(x), static_cast<T*>(outputs[0]), static_cast<int32_t*>(outputs[1]));
      return;
    case LibraryCall::Kind::kOrgqr:
      ReferenceOrgqr(s, static_cast<T*>(x), static_cast<const T*>(inputs[0]), static_cast<int32_t*>(outputs[0]));
      return;
    case LibraryCall::Kind::kSyevd:
      ReferenceSyevd(s, static_cast<T*>(x), static_cast<T*>(outputs[0]), static_cast<int32_t*>(outputs[1]));
      return;
    case LibraryCall::Kind::kGesvd: ReferenceGesvd(s, static_cast<T*>(x), outputs); return;
    case LibraryCall::Kind::kFft:
    case LibraryCall::Kind::kRfft:
    case LibraryCall::Kind::kIrfftLead:
    case LibraryCall::Kind::kIrfft: ReferenceFft<T>(s, x, inputs); return;
    case LibraryCall::Kind::kCollective: break;  // the emulator calls the distributed engine itself
  }
  Throw("cuda-emu: a collective is not a reference library call");
}

}  // namespace

void RunReferenceLibraryCall(const LibraryCall& s, void* x, void* const* inputs, void* const* outputs) {
  if (s.dtype == dtypes::Float32) return Run<float>(s, x, inputs, outputs);
  if (s.dtype == dtypes::Float64) return Run<double>(s, x, inputs, outputs);
  Throw("cuda-emu: no library call for " + std::string(dtypes::Name(s.dtype)));
}

}  // namespace kiln::backends::cuda
