// Copyright 2026 The Kiln Authors.
// Linear algebra on LAPACK (through LAPACKE; Debian's OpenBLAS provides the
// LAPACK and BLAS it loads): Cholesky and TriangularSolve as ordinary
// kernels, Lu, Qr, Eigh and Svd as factorization kernels with several
// outputs. Matrices of a batch run in parallel on the OpenMP pool (OpenBLAS
// then runs single-threaded inside each); a single matrix gets OpenBLAS's own
// threads.
//
// Kiln stores matrices row-major, LAPACK column-major; the bytes of a
// row-major matrix read as column-major are its transpose. Cholesky and the
// triangular solves use that reading directly (the triangle, or the side and
// transpose flag, flipped: no copy of the matrix); Lu transposes into a
// column-major scratch and back with a tiled transpose; Qr, Eigh and Svd use
// LAPACKE's high-level row-major interface, which transposes and allocates
// its workspace itself. Cholesky, Lu, Qr, Eigh and Svd check their input is
// finite first (NaN results otherwise; LAPACK's behaviour on NaN varies by
// implementation); the solves let NaN and Inf propagate through the
// arithmetic, calling the *_work entry points, which skip LAPACKE's NaN scan.
//
// Threads: batches run one matrix per OpenMP thread. With Debian's OpenMP
// build of OpenBLAS (libopenblas0-openmp, which tools/setup.sh installs) the
// LAPACK calls inside then stay on their thread; a pthreads OpenBLAS would
// start its own threads in each (correct, but oversubscribed).
#include <algorithm>
#include <cmath>
#include <complex>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <numeric>
#include <vector>

#define lapack_complex_float std::complex<float>
#define lapack_complex_double std::complex<double>
#include <lapacke.h>

#include "kiln/backends/backend.h"
#include "src/backends/cpu/kernels.h"

namespace kiln::backends::cpu {

namespace {

// The leading (batch) count and the matrix dimensions of a shape [..., m, n].
struct Batch {
  int64_t count = 1;
  lapack_int m = 0, n = 0;
};

Batch BatchOf(const shapes::Shape& shape) {
  const auto& d = shape.Dims();
  Batch b;
  for (size_t i = 0; i + 2 < d.size(); ++i) b.count *= d[i];
  b.m = static_cast<lapack_int>(d[d.size() - 2]);
  b.n = static_cast<lapack_int>(d[d.size() - 1]);
  return b;
}

// Runs body(i) for each matrix of the batch: in parallel when there are
// several and enough work (`flops` per matrix, roughly), serially otherwise
// so that OpenBLAS may use the threads for one large matrix.
// An exception (out of memory for a scratch buffer) must not leave an
// OpenMP region: the first one is kept and rethrown after it.
template <typename F>
void ForEachMatrix(int64_t count, double flops, F&& body) {
  if (count <= 1 || static_cast<double>(count) * flops < 1e5) {
    // Outside any parallel construct (even an inactive one, whose nesting
    // level makes OpenBLAS run on one thread).
    for (int64_t i = 0; i < count; ++i) body(i);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel for schedule(dynamic)
  for (int64_t i = 0; i < count; ++i) {
    try {
      body(i);
    } catch (...) {
#pragma omp critical(kiln_linalg_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

template <typename T>
void FillNaN(T* p, int64_t n) {
  std::fill(p, p + n, std::numeric_limits<T>::quiet_NaN());
}

template <typename T>
bool AllFinite(const T* p, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(p[i])) return false;
  }
  return true;
}

// Whether the lower (or upper) triangle of a row-major n x n matrix is finite.
template <typename T>
bool TriangleFinite(const T* a, lapack_int n, bool lower) {
  for (lapack_int row = 0; row < n; ++row) {
    const T* p = a + static_cast<int64_t>(row) * n;
    if (!(lower ? AllFinite(p, row + 1) : AllFinite(p + row, n - row))) return false;
  }
  return true;
}

// Zeroes the strict upper (keep_lower) or strict lower triangle of a
// row-major n x n matrix.
template <typename T>
void ZeroOtherTriangle(T* a, lapack_int n, bool keep_lower) {
  for (lapack_int i = 0; i < n; ++i) {
    T* row = a + static_cast<int64_t>(i) * n;
    if (keep_lower) std::fill(row + i + 1, row + n, T(0));
    else std::fill(row, row + i, T(0));
  }
}

// dst (cols x rows, row-major) = the transpose of src (rows x cols,
// row-major), in cache-sized tiles: a row-major matrix to and from
// column-major order. LAPACKE's row-major interface does this with a plain
// double loop, several times slower on large matrices.
template <typename T>
void TransposeInto(const T* src, int64_t rows, int64_t cols, T* dst) {
  // Writes run along dst's rows; 16 x 16 tiles measured fastest for
  // power-of-two sizes (whose strides alias in the caches).
  constexpr int64_t kTile = 16;
  for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
    for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
      const int64_t i1 = std::min(rows, i0 + kTile), j1 = std::min(cols, j0 + kTile);
      for (int64_t j = j0; j < j1; ++j) {
        for (int64_t i = i0; i < i1; ++i) dst[j * rows + i] = src[i * cols + j];
      }
    }
  }
}

// A scratch array from the host block cache (a fresh multi-megabyte vector
// costs a page fault per 4 KiB page on every call).
template <typename T>
class Scratch {
 public:
  explicit Scratch(int64_t n) : storage_(HostStorage::Allocate(static_cast<size_t>(n) * sizeof(T))) {}
  T* data() { return static_cast<T*>(storage_->Data()); }

 private:
  std::shared_ptr<HostStorage> storage_;
};

template <typename T>
void SetIdentity(T* a, lapack_int n) {
  std::fill(a, a + static_cast<int64_t>(n) * n, T(0));
  for (lapack_int i = 0; i < n; ++i) a[static_cast<int64_t>(i) * n + i] = T(1);
}

// One overload set per LAPACK routine, so the kernels are written once for
// float and double.
lapack_int Potrf(int layout, char uplo, lapack_int n, float* a, lapack_int lda) {
  return LAPACKE_spotrf_work(layout, uplo, n, a, lda);
}
lapack_int Potrf(int layout, char uplo, lapack_int n, double* a, lapack_int lda) {
  return LAPACKE_dpotrf_work(layout, uplo, n, a, lda);
}
lapack_int Trtrs(int layout, char uplo, char trans, char diag, lapack_int n, lapack_int nrhs, const float* a,
                 lapack_int lda, float* b, lapack_int ldb) {
  return LAPACKE_strtrs_work(layout, uplo, trans, diag, n, nrhs, a, lda, b, ldb);
}
lapack_int Trtrs(int layout, char uplo, char trans, char diag, lapack_int n, lapack_int nrhs, const double* a,
                 lapack_int lda, double* b, lapack_int ldb) {
  return LAPACKE_dtrtrs_work(layout, uplo, trans, diag, n, nrhs, a, lda, b, ldb);
}
lapack_int Getrf(lapack_int m, lapack_int n, float* a, lapack_int* ipiv) {  // column-major
  return LAPACKE_sgetrf_work(LAPACK_COL_MAJOR, m, n, a, std::max(m, 1), ipiv);
}
lapack_int Getrf(lapack_int m, lapack_int n, double* a, lapack_int* ipiv) {
  return LAPACKE_dgetrf_work(LAPACK_COL_MAJOR, m, n, a, std::max(m, 1), ipiv);
}
lapack_int Geqrf(lapack_int m, lapack_int n, float* a, float* tau) {
  return LAPACKE_sgeqrf(LAPACK_ROW_MAJOR, m, n, a, std::max(n, 1), tau);
}
lapack_int Geqrf(lapack_int m, lapack_int n, double* a, double* tau) {
  return LAPACKE_dgeqrf(LAPACK_ROW_MAJOR, m, n, a, std::max(n, 1), tau);
}
lapack_int Orgqr(lapack_int m, lapack_int n, lapack_int k, float* a, const float* tau) {
  return LAPACKE_sorgqr(LAPACK_ROW_MAJOR, m, n, k, a, std::max(n, 1), tau);
}
lapack_int Orgqr(lapack_int m, lapack_int n, lapack_int k, double* a, const double* tau) {
  return LAPACKE_dorgqr(LAPACK_ROW_MAJOR, m, n, k, a, std::max(n, 1), tau);
}
lapack_int Syevd(char uplo, lapack_int n, float* a, float* w) {
  return LAPACKE_ssyevd(LAPACK_ROW_MAJOR, 'V', uplo, n, a, std::max(n, 1), w);
}
lapack_int Syevd(char uplo, lapack_int n, double* a, double* w) {
  return LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', uplo, n, a, std::max(n, 1), w);
}
lapack_int Gesdd(char jobz, lapack_int m, lapack_int n, float* a, float* s, float* u, lapack_int ldu, float* vt,
                 lapack_int ldvt) {
  return LAPACKE_sgesdd(LAPACK_ROW_MAJOR, jobz, m, n, a, std::max(n, 1), s, u, ldu, vt, ldvt);
}
lapack_int Gesdd(char jobz, lapack_int m, lapack_int n, double* a, double* s, double* u, lapack_int ldu, double* vt,
                 lapack_int ldvt) {
  return LAPACKE_dgesdd(LAPACK_ROW_MAJOR, jobz, m, n, a, std::max(n, 1), s, u, ldu, vt, ldvt);
}
lapack_int Gesvd(char job, lapack_int m, lapack_int n, float* a, float* s, float* u, lapack_int ldu, float* vt,
                 lapack_int ldvt, float* superb) {
  return LAPACKE_sgesvd(LAPACK_ROW_MAJOR, job, job, m, n, a, std::max(n, 1), s, u, ldu, vt, ldvt, superb);
}
lapack_int Gesvd(char job, lapack_int m, lapack_int n, double* a, double* s, double* u, lapack_int ldu, double* vt,
                 lapack_int ldvt, double* superb) {
  return LAPACKE_dgesvd(LAPACK_ROW_MAJOR, job, job, m, n, a, std::max(n, 1), s, u, ldu, vt, ldvt, superb);
}

double Cube(const Batch& b) {
  const double k = std::max<double>(std::max(b.m, b.n), 1);
  return k * k * k;
}

// ---------------------------------------------------------------- Cholesky.

// A row-major lower triangle is a column-major upper one: LAPACK factors the
// bytes in place with the opposite uplo.
template <typename T>
Kernel CholeskyKernel(const Batch& b, bool lower) {
  return [b, lower](const void* const* in, void* out) {
    const T* a = static_cast<const T*>(in[0]);
    T* l = static_cast<T*>(out);
    const int64_t size = static_cast<int64_t>(b.n) * b.n;
    ForEachMatrix(b.count, Cube(b) / 3, [&](int64_t i) {
      T* li = l + i * size;
      if (li != a + i * size) std::memcpy(li, a + i * size, static_cast<size_t>(size) * sizeof(T));
      if (b.n == 0) return;
      // OpenBLAS's potrf does not catch NaN itself.
      if (!TriangleFinite(li, b.n, lower) || Potrf(LAPACK_COL_MAJOR, lower ? 'U' : 'L', b.n, li, b.n) != 0) {
        FillNaN(li, size);  // not positive definite, or not finite
      } else {
        ZeroOtherTriangle(li, b.n, lower);
      }
    });
  };
}

Kernel MakeCholesky(const ir::Function& fn, const ir::Instruction& in) {
  const auto& d = in.shape.Dims();
  if (d.size() < 2 || in.shape != OperandShape(fn, in, 0) || d.back() != d[d.size() - 2]) {
    Throw("cpu: Cholesky of " + OperandShape(fn, in, 0).ToString() + " -> " + in.shape.ToString() +
          ": inconsistent shapes");
  }
  const Batch b = BatchOf(in.shape);
  const bool lower = ir::Attr<ir::LinalgAttrs>(in).lower;
  if (in.shape.DType() == dtypes::Float32) return CholeskyKernel<float>(b, lower);
  if (in.shape.DType() == dtypes::Float64) return CholeskyKernel<double>(b, lower);
  Throw("cpu: Cholesky of " + in.shape.ToString() + " is not supported (Float32 and Float64 only)");
}

// --------------------------------------------------------- TriangularSolve.

// LAPACK reads the row-major bytes of a as column-major aᵀ, so the triangle
// flips and, on the left, so does the transpose flag; a is never copied.
// On the right, x op(a) = b is op(a)ᵀ xᵀ = bᵀ: LAPACK's left-side solve on
// the column-major reading of b's bytes. On the left, op(a) x = b needs b in
// column-major order: a transposed copy of b (none for one column).
template <typename T>
Kernel TriangularSolveKernel(const Batch& a, const Batch& b, const ir::LinalgAttrs& attrs) {
  return [a, b, attrs](const void* const* in, void* out) {
    const T* av = static_cast<const T*>(in[0]);
    const T* bv = static_cast<const T*>(in[1]);
    T* x = static_cast<T*>(out);
    const int64_t asize = static_cast<int64_t>(a.n) * a.n, bsize = static_cast<int64_t>(b.m) * b.n;
    const char diag = attrs.unit_diagonal ? 'U' : 'N';
    const char uplo = attrs.lower ? 'U' : 'L';
    ForEachMatrix(b.count, static_cast<double>(a.n) * a.n * (attrs.left_side ? b.n : b.m), [&](int64_t i) {
      T* xi = x + i * bsize;
      const T* bi = bv + i * bsize;
      // LAPACK solves in place in x, except on the left with several columns,
      // where a column-major copy of b is solved and transposed into x.
      const bool via_copy = attrs.left_side && b.n > 1 && a.n > 0 && bsize > 0;
      if (!via_copy && xi != bi) std::memcpy(xi, bi, static_cast<size_t>(bsize) * sizeof(T));
      if (a.n == 0 || bsize == 0) return;
      lapack_int info;
      if (!attrs.left_side) {
        info = Trtrs(LAPACK_COL_MAJOR, uplo, attrs.transpose_a ? 'T' : 'N', diag, a.n, b.m, av + i * asize, a.n, xi,
                     a.n);
      } else if (!via_copy) {
        info = Trtrs(LAPACK_COL_MAJOR, uplo, attrs.transpose_a ? 'N' : 'T', diag, a.n, 1, av + i * asize, a.n, xi, a.n);
      } else {
        Scratch<T> col(bsize);
        TransposeInto(bi, b.m, b.n, col.data());
        info = Trtrs(LAPACK_COL_MAJOR, uplo, attrs.transpose_a ? 'N' : 'T', diag, a.n, b.n, av + i * asize, a.n,
                     col.data(), a.n);
        TransposeInto(col.data(), b.n, b.m, xi);
      }
      if (info != 0) FillNaN(xi, bsize);  // a zero on the diagonal
    });
  };
}

Kernel MakeTriangularSolve(const ir::Function& fn, const ir::Instruction& in) {
  const shapes::Shape& as = OperandShape(fn, in, 0);
  const shapes::Shape& bs = OperandShape(fn, in, 1);
  const auto& attrs = ir::Attr<ir::LinalgAttrs>(in);
  // The graph layer guarantees these; hand-built IR must not read out of bounds.
  if (as.Rank() < 2 || as.Rank() != bs.Rank() || in.shape != bs || as.DType() != bs.DType() ||
      !std::equal(as.Dims().begin(), as.Dims().end() - 2, bs.Dims().begin()) ||
      as.Dims()[as.Rank() - 2] != as.Dims().back() ||
      as.Dims().back() != bs.Dims()[static_cast<size_t>(attrs.left_side ? bs.Rank() - 2 : bs.Rank() - 1)]) {
    Throw("cpu: TriangularSolve of " + as.ToString() + " and " + bs.ToString() + " -> " + in.shape.ToString() +
          ": inconsistent shapes");
  }
  const Batch a = BatchOf(as), b = BatchOf(in.shape);
  if (in.shape.DType() == dtypes::Float32) return TriangularSolveKernel<float>(a, b, attrs);
  if (in.shape.DType() == dtypes::Float64) return TriangularSolveKernel<double>(a, b, attrs);
  Throw("cpu: TriangularSolve of " + in.shape.ToString() + " is not supported (Float32 and Float64 only)");
}

// ------------------------------------------------------------------- Lu.

template <typename T>
MultiOutputKernel LuKernel(const Batch& b) {
  return [b](const void* const* in, void* const* out) {
    const T* a = static_cast<const T*>(in[0]);
    T* lu = static_cast<T*>(out[0]);
    auto* pivots = static_cast<int32_t*>(out[1]);
    auto* perm = static_cast<int32_t*>(out[2]);
    const int64_t size = static_cast<int64_t>(b.m) * b.n;
    const lapack_int k = std::min(b.m, b.n);
    ForEachMatrix(b.count, Cube(b) * 2 / 3, [&](int64_t i) {
      T* lui = lu + i * size;
      int32_t* piv = pivots + i * k;
      int32_t* p = perm + i * b.m;
      std::iota(p, p + b.m, 0);
      if (k == 0) {
        std::memcpy(lui, a + i * size, static_cast<size_t>(size) * sizeof(T));
        return;
      }
      std::iota(piv, piv + k, 0);
      // Not finite: NaN with the identity permutation (OpenBLAS's getrf has
      // returned pivots out of range for NaN input).
      if (!AllFinite(a + i * size, size)) {
        FillNaN(lui, size);
        return;
      }
      std::vector<lapack_int> ipiv(static_cast<size_t>(k));
      Scratch<T> col(size);
      TransposeInto(a + i * size, b.m, b.n, col.data());
      // info > 0: an exact zero pivot; the factorization is still complete.
      Getrf(b.m, b.n, col.data(), ipiv.data());
      TransposeInto(col.data(), b.n, b.m, lui);
      for (lapack_int r = 0; r < k; ++r) {
        const lapack_int row = ipiv[static_cast<size_t>(r)] - 1;
        if (row < r || row >= b.m) Throw("cpu: LAPACK getrf returned pivot " + std::to_string(row + 1) + " of " +
                                         std::to_string(b.m) + " rows");
        piv[r] = static_cast<int32_t>(row);
        std::swap(p[r], p[row]);
      }
    });
  };
}

// ------------------------------------------------------------------- Qr.

template <typename T>
MultiOutputKernel QrKernel(const Batch& b, bool full) {
  return [b, full](const void* const* in, void* const* out) {
    const T* a = static_cast<const T*>(in[0]);
    const lapack_int m = b.m, n = b.n, k = std::min(m, n);
    const lapack_int qcols = full ? m : k, rrows = full ? m : k;
    T* q = static_cast<T*>(out[0]);
    T* r = static_cast<T*>(out[1]);
    const int64_t size = static_cast<int64_t>(m) * n, qsize = static_cast<int64_t>(m) * qcols,
                  rsize = static_cast<int64_t>(rrows) * n;
    ForEachMatrix(b.count, Cube(b) * 4 / 3, [&](int64_t i) {
      const T* ai = a + i * size;
      T* qi = q + i * qsize;
      T* ri = r + i * rsize;
      if (!AllFinite(ai, size)) {
        FillNaN(qi, qsize);
        FillNaN(ri, rsize);
        return;
      }
      std::fill(ri, ri + rsize, T(0));
      if (k == 0) {
        if (qsize > 0) SetIdentity(qi, m);  // full_matrices: Q is m x m; reduced: empty
        return;
      }
      std::vector<T> work(ai, ai + size), tau(static_cast<size_t>(k));
      Geqrf(m, n, work.data(), tau.data());
      for (lapack_int row = 0; row < std::min(rrows, k); ++row) {
        for (lapack_int col = row; col < n; ++col) ri[static_cast<int64_t>(row) * n + col] = work[row * n + col];
      }
      // Q's first k columns hold the reflectors; orgqr expands them in place.
      std::fill(qi, qi + qsize, T(0));
      for (lapack_int row = 0; row < m; ++row) {
        for (lapack_int col = 0; col < k; ++col) qi[static_cast<int64_t>(row) * qcols + col] = work[row * n + col];
      }
      if (Orgqr(m, qcols, k, qi, tau.data()) != 0) FillNaN(qi, qsize);
    });
  };
}

// ----------------------------------------------------------------- Eigh.

template <typename T>
MultiOutputKernel EighKernel(const Batch& b, bool lower) {
  return [b, lower](const void* const* in, void* const* out) {
    const T* a = static_cast<const T*>(in[0]);
    T* w = static_cast<T*>(out[0]);
    T* v = static_cast<T*>(out[1]);
    const lapack_int n = b.n;
    const int64_t size = static_cast<int64_t>(n) * n;
    ForEachMatrix(b.count, Cube(b) * 9, [&](int64_t i) {
      T* vi = v + i * size;
      T* wi = w + i * n;
      std::memcpy(vi, a + i * size, static_cast<size_t>(size) * sizeof(T));
      if (n == 0) return;
      // Only the triangle read must be finite.
      if (!TriangleFinite(vi, n, lower) || Syevd(lower ? 'L' : 'U', n, vi, wi) != 0) {
        FillNaN(vi, size);
        FillNaN(wi, n);
      }
    });
  };
}

// ------------------------------------------------------------------ Svd.

// gesdd (divide and conquer), falling back on gesvd (QR iteration) in the
// rare case gesdd does not converge.
template <typename T>
MultiOutputKernel SvdKernel(const Batch& b, bool full, bool compute_uv) {
  return [b, full, compute_uv](const void* const* in, void* const* out) {
    const T* a = static_cast<const T*>(in[0]);
    const lapack_int m = b.m, n = b.n, k = std::min(m, n);
    const lapack_int ucols = full ? m : k, vtrows = full ? n : k;
    T* u = compute_uv ? static_cast<T*>(out[0]) : nullptr;
    T* s = static_cast<T*>(out[compute_uv ? 1 : 0]);
    T* vt = compute_uv ? static_cast<T*>(out[2]) : nullptr;
    const int64_t size = static_cast<int64_t>(m) * n, usize = compute_uv ? static_cast<int64_t>(m) * ucols : 0,
                  vtsize = compute_uv ? static_cast<int64_t>(vtrows) * n : 0;
    ForEachMatrix(b.count, Cube(b) * 8, [&](int64_t i) {
      const T* ai = a + i * size;
      T* ui = compute_uv ? u + i * usize : nullptr;
      T* si = s + i * k;
      T* vti = compute_uv ? vt + i * vtsize : nullptr;
      if (!AllFinite(ai, size)) {
        FillNaN(si, k);
        if (compute_uv) FillNaN(ui, usize), FillNaN(vti, vtsize);
        return;
      }
      if (k == 0) {  // full_matrices: identities; reduced: empty
        if (usize > 0) SetIdentity(ui, m);
        if (vtsize > 0) SetIdentity(vti, n);
        return;
      }
      T dummy[1];
      const char jobz = !compute_uv ? 'N' : full ? 'A' : 'S';
      std::vector<T> work(ai, ai + size);
      // LAPACKE's row-major checks want ldvt >= n even when vt is not computed.
      lapack_int info = Gesdd(jobz, m, n, work.data(), si, compute_uv ? ui : dummy, compute_uv ? ucols : 1,
                              compute_uv ? vti : dummy, n);
      if (info > 0) {
        work.assign(ai, ai + size);
        std::vector<T> superb(static_cast<size_t>(k));
        info = Gesvd(jobz, m, n, work.data(), si, compute_uv ? ui : dummy, compute_uv ? ucols : 1,
                     compute_uv ? vti : dummy, n, superb.data());
      }
      if (info != 0) {
        FillNaN(si, k);
        if (compute_uv) FillNaN(ui, usize), FillNaN(vti, vtsize);
      }
    });
  };
}

}  // namespace

MultiOutputKernel MakeFactorizationKernel(const ir::Function& fn, const ir::Instruction& in) {
  const shapes::Shape& a = OperandShape(fn, in, 0);
  const Batch b = BatchOf(a);
  const auto& attrs = ir::Attr<ir::LinalgAttrs>(in);
  const bool f32 = a.DType() == dtypes::Float32;
  if (!f32 && a.DType() != dtypes::Float64) {
    Throw("cpu: " + std::string(ir::OpName(in.op)) + " of " + a.ToString() +
          " is not supported (Float32 and Float64 only)");
  }
  switch (in.op) {
    case ir::OpType::kLu: return f32 ? LuKernel<float>(b) : LuKernel<double>(b);
    case ir::OpType::kQr: return f32 ? QrKernel<float>(b, attrs.full_matrices) : QrKernel<double>(b, attrs.full_matrices);
    case ir::OpType::kEigh: return f32 ? EighKernel<float>(b, attrs.lower) : EighKernel<double>(b, attrs.lower);
    case ir::OpType::kSvd:
      return f32 ? SvdKernel<float>(b, attrs.full_matrices, attrs.compute_uv)
                 : SvdKernel<double>(b, attrs.full_matrices, attrs.compute_uv);
    default: Throw("cpu: " + std::string(ir::OpName(in.op)) + " is not a factorization");
  }
}

void RegisterLinalgKernels(KernelTable& table) {
  table[static_cast<size_t>(ir::OpType::kCholesky)] = MakeCholesky;
  table[static_cast<size_t>(ir::OpType::kTriangularSolve)] = MakeTriangularSolve;
}

}  // namespace kiln::backends::cpu
