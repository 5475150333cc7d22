// Copyright 2026 The Kiln Authors.
// Linear algebra: factorizations (Cholesky, LU, QR, symmetric eigen
// decomposition, SVD), triangular and general solves, inverse and
// determinants, all batched over leading axes and differentiable.
//
// Matrices are the last two axes of an operand; any leading axes are a batch
// (solves broadcast them, as NumPy). Float32 and Float64 only; other dtypes
// are errors. On the CPU the factorizations run on LAPACK (Debian's
// LAPACKE over OpenBLAS).
//
// What a failed factorization gives: a matrix that is not positive definite
// (Cholesky), a matrix holding NaN or infinity (Cholesky, Lu, Qr, Eigh, Svd),
// an exact zero on a triangular solve's diagonal (so Solve and Inverse of an
// exactly singular matrix), or an eigen/SVD iteration that does not converge,
// all give NaN for that matrix of the batch, never an exception in the middle
// of a step (as JAX). The solves otherwise let NaN and infinity propagate
// through the arithmetic, and a nearly singular matrix gives large values, as
// LAPACK does. Check with IsFinite where it matters.
//
// Gradients are exact where the decomposition is differentiable: for Eigh
// the eigenvalues must be distinct, for Svd the singular values distinct and
// nonzero when u or vt are used (as in PyTorch and JAX; otherwise the
// gradient holds infinities). The gradient of Lu needs square matrices, of
// Qr reduced factors or m <= n.
#pragma once

#include "kiln/graph/graph.h"

namespace kiln::graph {

/// The Cholesky factor of symmetric positive-definite matrices: lower L with
/// a = L Lᵀ, or with `upper` the upper U = Lᵀ (a = Uᵀ U). The input is
/// symmetrized first, (a + aᵀ) / 2, as JAX does, so its gradient is
/// symmetric. Not positive definite: NaN.
Node Cholesky(Node a, bool upper = false, Loc loc = Loc::current());

/// Options of TriangularSolve.
struct TriangularSolveOptions {
  bool left_side = true;       ///< solve op(a) x = b; false: x op(a) = b
  bool lower = true;           ///< read a's lower triangle; false: its upper one
  bool transpose_a = false;    ///< op(a) = aᵀ; false: op(a) = a
  bool unit_diagonal = false;  ///< take a's diagonal as ones (it is not read)
};

/// x solving op(a) x = b (or x op(a) = b) for a triangular a [..., n, n] and
/// b [..., n, k] (or [..., k, n]); only a's chosen triangle is read. A zero on
/// a's diagonal gives NaN.
Node TriangularSolve(Node a, Node b, TriangularSolveOptions options = {}, Loc loc = Loc::current());

/// x solving a x = b given the lower Cholesky factor `l` of a (from
/// Cholesky); b as in Solve.
Node CholeskySolve(Node l, Node b, Loc loc = Loc::current());

/// An LU factorization with partial pivoting of a [..., m, n].
struct LuResult {
  Node lu;           ///< [..., m, n]: U on and above the diagonal, L (unit diagonal) below
  Node pivots;       ///< Int32 [..., min(m, n)]: row i was swapped with row pivots[i] (0-based)
  Node permutation;  ///< Int32 [..., m]: a[permutation] = L U
};
/// The LU factorization of a (any m, n; its gradient needs m = n).
LuResult Lu(Node a, Loc loc = Loc::current());

/// A QR factorization.
struct QrResult {
  Node q;  ///< orthonormal columns: [..., m, k], or [..., m, m] with full_matrices
  Node r;  ///< upper triangular: [..., k, n], or [..., m, n] with full_matrices
};
/// a = q r, k = min(m, n) (Householder, LAPACK geqrf/orgqr).
QrResult Qr(Node a, bool full_matrices = false, Loc loc = Loc::current());

/// The eigen decomposition of a symmetric matrix.
struct EighResult {
  Node eigenvalues;   ///< [..., n], ascending
  Node eigenvectors;  ///< [..., n, n], orthonormal, eigenvector i in column i
};
/// a = v diag(w) vᵀ for symmetric a [..., n, n]; a is symmetrized first,
/// (a + aᵀ) / 2, so its gradient is symmetric.
EighResult Eigh(Node a, Loc loc = Loc::current());

/// A singular value decomposition.
struct SvdResult {
  Node u;   ///< [..., m, k], or [..., m, m] with full_matrices
  Node s;   ///< [..., k], descending, >= 0
  Node vt;  ///< [..., k, n], or [..., n, n] with full_matrices
};
/// a = u diag(s) vt, k = min(m, n) (LAPACK gesdd).
SvdResult Svd(Node a, bool full_matrices = false, Loc loc = Loc::current());
/// The singular values of a [..., m, n]: [..., min(m, n)], descending; no
/// vectors are computed (the gradient computes them).
Node SingularValues(Node a, Loc loc = Loc::current());

/// x solving a x = b for square a [..., n, n] and b [..., n, k]; batch axes
/// broadcast. As in torch.linalg.solve, b is a vector right-hand side (and x
/// one) when it is [n] or has a's dims without the last. Through Lu, so its
/// gradient is defined for nonsingular a.
Node Solve(Node a, Node b, Loc loc = Loc::current());
/// The inverse of square matrices [..., n, n] (NaN where exactly singular).
Node Inverse(Node a, Loc loc = Loc::current());
/// The determinant of square matrices [..., n, n]: [...] (1 for 0 x 0), the
/// product of the LU pivots. Its gradient is the cofactor matrix (adjugateᵀ)
/// at every matrix: det(a) a⁻ᵀ through Lu where a is invertible, and through
/// the SVD where det(a) is 0 or subnormal or a⁻¹ overflows (as PyTorch's
/// singular case). Second derivatives are exact at invertible matrices (at
/// singular ones of rank <= n - 2 they are NaN). The backward pass computes
/// both for every matrix: an SVD beside the LU.
Node Determinant(Node a, Loc loc = Loc::current());

/// The sign and log of the absolute value of a determinant.
struct LogDeterminantResult {
  Node sign;          ///< -1, 0 or 1
  Node log_abs_det;   ///< log |det a|, -Inf where singular
};
/// sign and log |det| of square matrices [..., n, n], without the overflow of
/// Determinant for large n.
LogDeterminantResult LogDeterminant(Node a, Loc loc = Loc::current());

/// Swaps the last two axes.
Node MatrixTranspose(Node a, Loc loc = Loc::current());
/// The diagonal of the matrices [..., m, n]: [..., min(m, n)].
Node MatrixDiagonal(Node a, Loc loc = Loc::current());
/// x with the elements above diagonal k set to zero (k = 0 the main
/// diagonal, k > 0 above it, k < 0 below it), as numpy.tril.
Node Tril(Node x, int k = 0, Loc loc = Loc::current());
/// x with the elements below diagonal k set to zero, as numpy.triu.
Node Triu(Node x, int k = 0, Loc loc = Loc::current());
/// The n x n identity matrix of `dtype`.
Node Eye(Graph* g, int64_t n, dtypes::DType dtype = dtypes::Float32, Loc loc = Loc::current());

}  // namespace kiln::graph
