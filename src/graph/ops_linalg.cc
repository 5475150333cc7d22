// Copyright 2026 The Kiln Authors.
// Linear algebra (see kiln/graph/linalg.h): the six primitives of the op set
// (Cholesky, TriangularSolve, and the factorizations Lu, Qr, Eigh, Svd, which
// produce tuples), the functions composed from them (Solve, Inverse,
// Determinant, ...), and the primitives' VJP rules, written with graph ops so
// that higher derivatives work.
#include "kiln/graph/linalg.h"

#include <algorithm>
#include <limits>
#include <string>
#include <vector>

#include "kiln/graph/autodiff.h"
#include "kiln/graph/cumulative.h"
#include "kiln/graph/ops.h"
#include "kiln/graph/sort.h"
#include "src/graph/op_builder.h"
#include "src/graph/tracing.h"
#include "src/graph/vjp.h"

namespace kiln::graph {

using internal::OpError;

namespace {

struct MatrixDims {
  int64_t m = 0, n = 0;
};

// Checks that `a` is a batch of Float32/Float64 matrices LAPACK can index
// (32-bit dimensions), square if asked; returns its matrix dimensions.
MatrixDims CheckMatrix(const Node& a, std::string_view op, const Loc& loc, bool square, const char* what = "a") {
  internal::CheckNode(a, op, loc);
  if (a.Rank() < 2) {
    OpError(loc, op, std::string(what) + " must be a matrix or a batch of matrices (rank >= 2), got " +
                         a.Shape().ToString());
  }
  if (a.DType() != dtypes::Float32 && a.DType() != dtypes::Float64) {
    OpError(loc, op, std::string(what) + " must be Float32 or Float64, got " + a.Shape().ToString());
  }
  const auto& d = a.Shape().Dims();
  const MatrixDims md{d[d.size() - 2], d[d.size() - 1]};
  if (square && md.m != md.n) {
    OpError(loc, op, std::string(what) + " must be square matrices, got " + a.Shape().ToString());
  }
  // LAPACK indexes with 32-bit integers, LAPACKE's row-major wrappers even
  // the element count of a matrix.
  if (md.m > 0 && md.n > std::numeric_limits<int32_t>::max() / md.m) {
    OpError(loc, op, std::string(what) + " " + a.Shape().ToString() +
                         " has matrices of more than 2^31 - 1 elements, beyond LAPACK's 32-bit indexing");
  }
  return md;
}

std::vector<int64_t> BatchDims(const Node& x) {
  const auto& d = x.Shape().Dims();
  return {d.begin(), d.end() - 2};
}

std::vector<int64_t> Concat(std::vector<int64_t> a, std::initializer_list<int64_t> tail) {
  a.insert(a.end(), tail);
  return a;
}

// --------------------------------------------------------- Primitives.

Node EmitCholesky(const Node& a, bool lower, const Loc& loc) {
  ir::LinalgAttrs attrs;
  attrs.lower = lower;
  return internal::Emit(a.Graph(), ir::OpType::kCholesky, {a}, a.Shape(), attrs, loc);
}

// The TriangularSolve instruction; a and b have the same batch dims.
Node EmitTriangularSolve(const Node& a, const Node& b, const TriangularSolveOptions& o, const Loc& loc) {
  ir::LinalgAttrs attrs;
  attrs.left_side = o.left_side;
  attrs.lower = o.lower;
  attrs.transpose_a = o.transpose_a;
  attrs.unit_diagonal = o.unit_diagonal;
  Graph* g = internal::CheckSameGraph({a, b}, "TriangularSolve", loc);
  return internal::Emit(g, ir::OpType::kTriangularSolve, {a, b}, b.Shape(), attrs, loc);
}

std::vector<Node> EmitFactorization(ir::OpType op, const Node& a, const ir::LinalgAttrs& attrs, const Loc& loc) {
  Graph* g = internal::TargetGraph({a}, ir::OpName(op), loc);
  return internal::EmitTuple(g, op, {a}, attrs, ir::FactorizationResults(op, a.Shape(), attrs), loc);
}

// Element i of a factorization's tuple instruction `tuple` (in a VJP rule).
Node TupleElement(const internal::VJPArgs& a, size_t i) {
  const std::vector<shapes::Shape> shapes = ir::TupleElementShapes(a.g->Function(), a.instr);
  return a.g->AddInstruction(ir::OpType::kGetTupleElement, {a.output}, shapes.at(i),
                             ir::TupleIndexAttrs{static_cast<int64_t>(i)}, a.loc);
}

Node Symmetrize(const Node& a, const Loc& loc) { return (a + MatrixTranspose(a, loc)) * 0.5; }

// A mask of the matrices' shape [m, n] (broadcast over the batch): whether
// column - row >= k (above) or <= k (below).
Node TriangleMask(const Node& x, int k, bool upper, const Loc& loc) {
  const auto& d = x.Shape().Dims();
  const int64_t m = d[d.size() - 2], n = d[d.size() - 1];
  Graph* g = x.Graph();
  const shapes::Shape s(dtypes::Int64, {m, n});
  Node diff = Sub(Iota(g, s, 1, loc), Iota(g, s, 0, loc), loc);  // column - row
  Node kk = Const(g, static_cast<int64_t>(k), loc);
  return upper ? GreaterOrEqual(diff, kk, loc) : LessOrEqual(diff, kk, loc);
}

Node MaskTriangle(const Node& x, int k, bool upper, const Loc& loc) {
  Node mask = BroadcastTo(TriangleMask(x, k, upper, loc), x.Shape().Dims(), loc);
  return Where(mask, x, ZerosLike(x, loc), loc);
}

// b with its batch axes broadcast against a's (both batches of matrices);
// returns both broadcast.
std::pair<Node, Node> BroadcastBatches(const Node& a, const Node& b, std::string_view op, const Loc& loc) {
  const std::vector<int64_t> ab = BatchDims(a), bb = BatchDims(b);
  if (ab == bb) return {a, b};
  const std::vector<int64_t> batch = internal::BroadcastDims(shapes::Shape(a.DType(), ab),
                                                             shapes::Shape(b.DType(), bb), op, loc);
  const auto& ad = a.Shape().Dims();
  const auto& bd = b.Shape().Dims();
  return {BroadcastTo(a, Concat(batch, {ad[ad.size() - 2], ad.back()}), loc),
          BroadcastTo(b, Concat(batch, {bd[bd.size() - 2], bd.back()}), loc)};
}

// x's rows permuted: result[..., i, :] = x[..., perm[..., i], :].
Node PermuteRows(const Node& x, const Node& perm, const Loc& loc) {
  Node index = BroadcastTo(ExpandAxes(perm, {perm.Rank()}, loc), x.Shape().Dims(), loc);
  return TakeAlongAxis(x, index, x.Rank() - 2, loc);
}

}  // namespace

// ------------------------------------------------------------ Helpers.

Node MatrixTranspose(Node a, Loc loc) {
  internal::CheckNode(a, "MatrixTranspose", loc);
  if (a.Rank() < 2) OpError(loc, "MatrixTranspose", "needs rank >= 2, got " + a.Shape().ToString());
  return TransposeAxes(a, a.Rank() - 2, a.Rank() - 1, loc);
}

Node MatrixDiagonal(Node a, Loc loc) {
  internal::CheckNode(a, "MatrixDiagonal", loc);
  if (a.Rank() < 2) OpError(loc, "MatrixDiagonal", "needs rank >= 2, got " + a.Shape().ToString());
  const auto& d = a.Shape().Dims();
  const int64_t k = std::min(d[d.size() - 2], d[d.size() - 1]);
  Node square = SliceAxis(SliceAxis(a, a.Rank() - 2, 0, k, 1, loc), a.Rank() - 1, 0, k, 1, loc);
  // Where, not a product with the identity: an Inf off the diagonal must not
  // turn into NaN.
  Node on = BroadcastTo(Equal(Iota(a.Graph(), shapes::Shape(dtypes::Int64, {k, k}), 0, loc),
                              Iota(a.Graph(), shapes::Shape(dtypes::Int64, {k, k}), 1, loc), loc),
                        square.Shape().Dims(), loc);
  return ReduceSum(Where(on, square, ZerosLike(square, loc), loc), {a.Rank() - 1}, loc);
}

Node Tril(Node x, int k, Loc loc) {
  internal::CheckNode(x, "Tril", loc);
  if (x.Rank() < 2) OpError(loc, "Tril", "needs rank >= 2, got " + x.Shape().ToString());
  return MaskTriangle(x, k, false, loc);
}

Node Triu(Node x, int k, Loc loc) {
  internal::CheckNode(x, "Triu", loc);
  if (x.Rank() < 2) OpError(loc, "Triu", "needs rank >= 2, got " + x.Shape().ToString());
  return MaskTriangle(x, k, true, loc);
}

Node Eye(Graph* g, int64_t n, dtypes::DType dtype, Loc loc) {
  if (g == nullptr) OpError(loc, "Eye", "needs a graph");
  if (n < 0) OpError(loc, "Eye", "needs n >= 0, got " + std::to_string(n));
  const shapes::Shape s(dtypes::Int64, {n, n});
  return ConvertDType(Equal(Iota(g, s, 0, loc), Iota(g, s, 1, loc), loc), dtype, loc);
}

// ------------------------------------------------- Public functions.

Node Cholesky(Node a, bool upper, Loc loc) {
  CheckMatrix(a, "Cholesky", loc, true);
  return EmitCholesky(Symmetrize(a, loc), !upper, loc);
}

Node TriangularSolve(Node a, Node b, TriangularSolveOptions options, Loc loc) {
  const MatrixDims ad = CheckMatrix(a, "TriangularSolve", loc, true);
  const MatrixDims bd = CheckMatrix(b, "TriangularSolve", loc, false, "b");
  internal::CheckSameGraph({a, b}, "TriangularSolve", loc);
  if (a.DType() != b.DType()) {
    OpError(loc, "TriangularSolve", "a " + a.Shape().ToString() + " and b " + b.Shape().ToString() +
                                        " must have the same dtype");
  }
  const int64_t shared = options.left_side ? bd.m : bd.n;
  if (shared != ad.n) {
    OpError(loc, "TriangularSolve", std::string("b ") + b.Shape().ToString() + " must have " + std::to_string(ad.n) +
                                        (options.left_side ? " rows" : " columns") + " to match a " +
                                        a.Shape().ToString());
  }
  auto [ab, bb] = BroadcastBatches(a, b, "TriangularSolve", loc);
  return EmitTriangularSolve(ab, bb, options, loc);
}

LuResult Lu(Node a, Loc loc) {
  CheckMatrix(a, "Lu", loc, false);
  std::vector<Node> r = EmitFactorization(ir::OpType::kLu, a, {}, loc);
  return {r[0], r[1], r[2]};
}

QrResult Qr(Node a, bool full_matrices, Loc loc) {
  CheckMatrix(a, "Qr", loc, false);
  ir::LinalgAttrs attrs;
  attrs.full_matrices = full_matrices;
  std::vector<Node> r = EmitFactorization(ir::OpType::kQr, a, attrs, loc);
  return {r[0], r[1]};
}

EighResult Eigh(Node a, Loc loc) {
  CheckMatrix(a, "Eigh", loc, true);
  std::vector<Node> r = EmitFactorization(ir::OpType::kEigh, Symmetrize(a, loc), {}, loc);
  return {r[0], r[1]};
}

SvdResult Svd(Node a, bool full_matrices, Loc loc) {
  CheckMatrix(a, "Svd", loc, false);
  ir::LinalgAttrs attrs;
  attrs.full_matrices = full_matrices;
  std::vector<Node> r = EmitFactorization(ir::OpType::kSvd, a, attrs, loc);
  return {r[0], r[1], r[2]};
}

Node SingularValues(Node a, Loc loc) {
  CheckMatrix(a, "SingularValues", loc, false);
  ir::LinalgAttrs attrs;
  attrs.compute_uv = false;
  return EmitFactorization(ir::OpType::kSvd, a, attrs, loc)[0];
}

namespace {

// b as a batch of matrices for a solve with a [..., n, n]: a vector
// right-hand side becomes [..., n, 1]. As torch.linalg.solve, b is a vector
// (or a batch of them) when it has rank 1, or a's dims without the last.
std::pair<Node, bool> RightHandSide(const Node& a, const Node& b, std::string_view op, const Loc& loc) {
  internal::CheckNode(b, op, loc);
  const auto& ad = a.Shape().Dims();
  const bool vector = b.Rank() == 1 || (b.Rank() == a.Rank() - 1 &&
                                        b.Shape().Dims() == std::vector<int64_t>(ad.begin(), ad.end() - 1));
  Node bm = vector ? ExpandAxes(b, {b.Rank()}, loc) : b;
  const MatrixDims bd = CheckMatrix(bm, op, loc, false, "b");
  const int64_t n = a.Shape().Dims().back();
  if (bd.m != n || a.DType() != b.DType()) {
    OpError(loc, op, "b " + b.Shape().ToString() + " must be " + dtypes::Name(a.DType()) + " with " +
                         std::to_string(n) + " rows ([..., " + std::to_string(n) + ", k] or [..., " +
                         std::to_string(n) + "]) to match a " + a.Shape().ToString());
  }
  return {bm, vector};
}

}  // namespace

Node Solve(Node a, Node b, Loc loc) {
  CheckMatrix(a, "Solve", loc, true);
  auto [bm, vector] = RightHandSide(a, b, "Solve", loc);
  auto [ab, bb] = BroadcastBatches(a, bm, "Solve", loc);
  const LuResult f = Lu(ab, loc);
  Node y = EmitTriangularSolve(f.lu, PermuteRows(bb, f.permutation, loc),
                               {.left_side = true, .lower = true, .unit_diagonal = true}, loc);
  Node x = EmitTriangularSolve(f.lu, y, {.left_side = true, .lower = false}, loc);
  return vector ? Squeeze(x, {x.Rank() - 1}, loc) : x;
}

Node CholeskySolve(Node l, Node b, Loc loc) {
  CheckMatrix(l, "CholeskySolve", loc, true, "l");
  auto [bm, vector] = RightHandSide(l, b, "CholeskySolve", loc);
  auto [lb, bb] = BroadcastBatches(l, bm, "CholeskySolve", loc);
  Node y = EmitTriangularSolve(lb, bb, {.left_side = true, .lower = true}, loc);
  Node x = EmitTriangularSolve(lb, y, {.left_side = true, .lower = true, .transpose_a = true}, loc);
  return vector ? Squeeze(x, {x.Rank() - 1}, loc) : x;
}

Node Inverse(Node a, Loc loc) {
  const MatrixDims d = CheckMatrix(a, "Inverse", loc, true);
  return Solve(a, BroadcastTo(Eye(a.Graph(), d.n, a.DType(), loc), a.Shape().Dims(), loc), loc);
}

namespace {

// The sign of the permutation of each LU factorization: (-1)^(row swaps).
Node PivotSign(const LuResult& f, dtypes::DType dtype, const Loc& loc) {
  Graph* g = f.pivots.Graph();
  Node swapped = NotEqual(f.pivots, Iota(g, f.pivots.Shape(), f.pivots.Rank() - 1, loc), loc);
  Node flips = Where(swapped, ConvertDType(Const(g, -1.0, loc), dtype, loc), ConvertDType(Const(g, 1.0, loc), dtype, loc),
                     loc);
  return ReduceProduct(flips, {f.pivots.Rank() - 1}, loc);
}

// det(a) as the product of a's LU pivots. Differentiating it goes through
// Lu's rule, whose U⁻¹ makes it NaN at exactly singular matrices.
Node DeterminantFromLu(Node a, const Loc& loc) {
  const LuResult f = Lu(a, loc);
  return PivotSign(f, a.DType(), loc) * ReduceProduct(MatrixDiagonal(f.lu, loc), {a.Rank() - 2}, loc);
}

// x's last axis as a new last-but-one axis of size 1 ([..., n] -> [..., 1, n]).
Node RowVector(const Node& x, const Loc& loc) {
  std::vector<int64_t> dims = x.Shape().Dims();
  dims.insert(dims.end() - 1, 1);
  return Reshape(x, dims, loc);
}

// Appends two axes of size 1 ([...] -> [..., 1, 1]).
Node AsMatrixScalars(const Node& x, const Loc& loc) {
  std::vector<int64_t> dims = x.Shape().Dims();
  dims.insert(dims.end(), {1, 1});
  return Reshape(x, dims, loc);
}

// The cofactor matrices of square a [..., n, n] (n >= 1), the gradient of
// det: C = det(a) a⁻ᵀ where a is invertible (through Lu, so C's own gradient,
// det's second derivative, is exact there), and where |det(a)| is 0 or
// subnormal, or a⁻¹ overflows, C = det(U) det(Vᵀ) U
// diag(prod_{j != i} s_j) Vᵀ from a = U diag(s) Vᵀ, the adjugate at every
// rank (as PyTorch's singular case). Both branches run for every matrix;
// each on a stand-in (the identity, diag(1..n)) where the other is chosen,
// so that neither its value nor its gradient can be NaN there.
Node Cofactors(const Node& a, const Loc& loc) {
  Graph* g = a.Graph();
  const int64_t n = a.Shape().Dims().back();
  if (n == 1) return OnesLike(a, loc);  // d a / d a: exactly 1, not a * (1 / a)
  const int r = a.Rank();
  Node det = DeterminantFromLu(a, loc);
  const double tiny = a.DType() == dtypes::Float32 ? std::numeric_limits<float>::min()
                                                    : std::numeric_limits<double>::min();
  Node tiny_det = AsMatrixScalars(LessThan(Abs(det, loc), ScalarLike(det, tiny, loc), loc), loc);
  Node eye = Eye(g, n, a.DType(), loc);
  Node invertible = Where(tiny_det, eye, a, loc);
  Node regular =
      AsMatrixScalars(DeterminantFromLu(invertible, loc), loc) * MatrixTranspose(Inverse(invertible, loc), loc);
  // A normal determinant can still have an inverse that overflows (Float32
  // diag(1e-40, 1e3, 1e3)): those matrices take the SVD too (their second
  // derivative is then not defined).
  Node overflow = ReduceLogicalOr(LogicalNot(IsFinite(regular, loc), loc), {r - 2, r - 1}, loc);
  Node singular = LogicalOr(tiny_det, AsMatrixScalars(overflow, loc), loc);
  // diag(1, ..., n): distinct singular values, so Svd's gradient is finite.
  Node distinct = eye * RowVector(Iota(g, shapes::Shape(a.DType(), {n}), 0, loc) + 1.0, loc);
  const SvdResult svd = Svd(Where(singular, a, distinct, loc), false, loc);
  // prod_{j != i} s_j without dividing by a zero s_i: the products before i
  // times those after it.
  Node others = CumProd(svd.s, r - 2, {.exclusive = true}, loc) *
                CumProd(svd.s, r - 2, {.exclusive = true, .reverse = true}, loc);
  // det(U) det(Vᵀ) is ±1: its sign, exactly (and with a zero derivative).
  Node sign = AsMatrixScalars(Sign(DeterminantFromLu(svd.u, loc) * DeterminantFromLu(svd.vt, loc), loc), loc);
  Node adjugate = sign * MatMul(svd.u * RowVector(others, loc), svd.vt, loc);
  return Where(singular, adjugate, regular, loc);
}

}  // namespace

Node Determinant(Node a, Loc loc) {
  const MatrixDims d = CheckMatrix(a, "Determinant", loc, true);
  if (d.n == 0) return DeterminantFromLu(a, loc);
  // The value from the LU pivots; the gradient, the cofactors, attached by an
  // identity with a custom gradient on a term that is exactly zero: the sum
  // of sg(x) - x, whose cotangent with respect to x is det's cotangent
  // broadcast over each matrix. Subtracting it keeps a zero determinant's
  // sign; non-finite entries are left out of it (inf - inf is NaN).
  Node value = DeterminantFromLu(StopGradient(a, loc), loc);
  Node bridge = IdentityWithCustomGradient(
      a, [loc](Node x, Node cotangent) { return cotangent * Cofactors(x, loc); }, loc);
  Node fixed = StopGradient(bridge, loc);
  Node zero = Where(IsFinite(fixed, loc), fixed - bridge, ZerosLike(fixed, loc), loc);
  return value - ReduceSum(zero, {a.Rank() - 2, a.Rank() - 1}, loc);
}

LogDeterminantResult LogDeterminant(Node a, Loc loc) {
  CheckMatrix(a, "LogDeterminant", loc, true);
  const LuResult f = Lu(a, loc);
  Node diag = MatrixDiagonal(f.lu, loc);
  Node sign = PivotSign(f, a.DType(), loc) * ReduceProduct(Sign(diag, loc), {a.Rank() - 2}, loc);
  return {sign, ReduceSum(Log(Abs(diag, loc), loc), {a.Rank() - 2}, loc)};
}

// ------------------------------------------------------------ VJP rules.

namespace {

Node T(const Node& x, const Loc& loc) { return MatrixTranspose(x, loc); }

Node TriSolve(const Node& a, const Node& b, TriangularSolveOptions o, const Loc& loc) {
  return EmitTriangularSolve(a, b, o, loc);
}

// x with everything off the diagonal set to zero.
Node KeepDiagonal(const Node& x, const Loc& loc) {
  return MaskTriangle(MaskTriangle(x, 0, true, loc), 0, false, loc);
}

// The gradient with respect to the triangle of `a` that a symmetric
// factorization reads, from S with <S, dA> exact for symmetric dA: the
// entries (i, j) and (j, i) share one input entry.
Node ReadTriangleGradient(const Node& s, bool lower, const Loc& loc) {
  Node both = s + T(s, loc);
  return MaskTriangle(both, lower ? -1 : 1, !lower, loc) + KeepDiagonal(s, loc);
}

// Cholesky, a = L Lᵀ: S = L⁻ᵀ Φ(Lᵀ gL) L⁻¹ with Φ the lower triangle with a
// halved diagonal (Murray 2016); the upper factor is Lᵀ.
std::vector<Node> CholeskyVJP(const internal::VJPArgs& a) {
  const bool lower = ir::Attr<ir::LinalgAttrs>(a.instr).lower;
  const Loc& loc = a.loc;
  Node l = lower ? a.output : T(a.output, loc);
  Node gl = lower ? a.cotangent : T(a.cotangent, loc);
  Node p = MaskTriangle(MatMul(T(l, loc), gl, loc), 0, false, loc);
  p = p - KeepDiagonal(p, loc) * 0.5;
  Node y = TriSolve(l, p, {.left_side = true, .lower = true, .transpose_a = true}, loc);
  Node s = TriSolve(l, y, {.left_side = false, .lower = true}, loc);
  return {ReadTriangleGradient(s, lower, loc)};
}

// op(a) x = b: gb = op(a)⁻ᵀ gx and g_op(a) = -gb xᵀ; x op(a) = b: gb = gx
// op(a)⁻ᵀ and g_op(a) = -xᵀ gb. Only the triangle a is read gets a gradient.
std::vector<Node> TriangularSolveVJP(const internal::VJPArgs& a) {
  const auto& attrs = ir::Attr<ir::LinalgAttrs>(a.instr);
  const Loc& loc = a.loc;
  const Node& x = a.output;
  TriangularSolveOptions flipped{.left_side = attrs.left_side,
                                 .lower = attrs.lower,
                                 .transpose_a = !attrs.transpose_a,
                                 .unit_diagonal = attrs.unit_diagonal};
  Node gb = TriSolve(a.operands[0], a.cotangent, flipped, loc);
  Node g_op = attrs.left_side ? -MatMul(gb, T(x, loc), loc) : -MatMul(T(x, loc), gb, loc);
  Node ga = attrs.transpose_a ? T(g_op, loc) : g_op;
  const int diagonal = attrs.unit_diagonal ? 1 : 0;
  ga = attrs.lower ? MaskTriangle(ga, -diagonal, false, loc) : MaskTriangle(ga, diagonal, true, loc);
  return {ga, gb};
}

// Square LU, a[perm] = L U: with gL, gU the cotangent's strict lower and upper
// parts, g(L U) = L⁻ᵀ (tril(Lᵀ gL, -1) + triu(gU Uᵀ)) U⁻ᵀ, and each row of it
// goes back to the row of a it came from.
std::vector<Node> LuVJP(const internal::VJPArgs& a) {
  const Loc& loc = a.loc;
  if (!a.cotangents[0].Ok()) return {Node()};
  const Node& x = a.operands[0];
  const auto& d = x.Shape().Dims();
  if (d[d.size() - 2] != d.back()) {
    OpError(loc, "Gradient", "the gradient of Lu (created at " + a.instr.location +
                                 ") is implemented for square matrices only, got " + x.Shape().ToString());
  }
  Node lu = TupleElement(a, 0), perm = TupleElement(a, 2);
  const Node& g = a.cotangents[0];
  Node l = MaskTriangle(lu, -1, false, loc) + BroadcastTo(Eye(a.g, d.back(), x.DType(), loc), d, loc);
  Node u = MaskTriangle(lu, 0, true, loc);
  Node m = MaskTriangle(MatMul(T(l, loc), MaskTriangle(g, -1, false, loc), loc), -1, false, loc) +
           MaskTriangle(MatMul(MaskTriangle(g, 0, true, loc), T(u, loc), loc), 0, true, loc);
  Node y = TriSolve(lu, m, {.left_side = true, .lower = true, .transpose_a = true, .unit_diagonal = true}, loc);
  Node gb = TriSolve(lu, y, {.left_side = false, .lower = false, .transpose_a = true}, loc);
  return {PermuteRows(gb, ArgSort(perm, -1, {}, dtypes::Int32, loc), loc)};
}

// Reduced QR with m >= n (Walter and Lehmann; PyTorch's linalg_qr_backward):
// M = gR Rᵀ - Qᵀ gQ, ga = (gQ + Q copy_upper_to_lower(M)) R⁻ᵀ.
Node QrTallVJP(const Node& q, const Node& r, const Node& gq, const Node& gr, const Loc& loc) {
  Node m = MatMul(gr, T(r, loc), loc) - MatMul(T(q, loc), gq, loc);
  Node upper = MaskTriangle(m, 0, true, loc);
  Node n = upper + T(MaskTriangle(m, 1, true, loc), loc);
  return TriSolve(r, gq + MatMul(q, n, loc), {.left_side = false, .lower = false, .transpose_a = true}, loc);
}

// a = [x | y] with x square when m < n: x = Q U, y = Q V, R = [U | V].
std::vector<Node> QrVJP(const internal::VJPArgs& a) {
  const Loc& loc = a.loc;
  const Node& x = a.operands[0];
  const auto& d = x.Shape().Dims();
  const int64_t m = d[d.size() - 2], n = d.back();
  if (ir::Attr<ir::LinalgAttrs>(a.instr).full_matrices && m > n) {
    OpError(loc, "Gradient", "the gradient of Qr (created at " + a.instr.location +
                                 ") with full_matrices is defined only when rows <= columns, got " +
                                 x.Shape().ToString());
  }
  Node q = TupleElement(a, 0), r = TupleElement(a, 1);
  Node gq = a.cotangents[0].Ok() ? a.cotangents[0] : ZerosLike(q, loc);
  Node gr = a.cotangents[1].Ok() ? a.cotangents[1] : ZerosLike(r, loc);
  if (m >= n) return {QrTallVJP(q, r, gq, gr, loc)};
  const int last = x.Rank() - 1;
  Node y = SliceAxis(x, last, m, n, 1, loc);
  Node u = SliceAxis(r, last, 0, m, 1, loc);
  Node gu = SliceAxis(gr, last, 0, m, 1, loc), gv = SliceAxis(gr, last, m, n, 1, loc);
  Node gx = QrTallVJP(q, u, gq + MatMul(y, T(gv, loc), loc), gu, loc);
  return {Concatenate({gx, MatMul(q, gv, loc)}, last, loc)};
}

// 1 / (w_j - w_i) off the diagonal (the eigenvalue or squared singular value
// gaps), 0 on it.
Node InverseGaps(const Node& w, const Loc& loc) {
  const int r = w.Rank();
  Node diff = ExpandAxes(w, {r - 1}, loc) - ExpandAxes(w, {r}, loc);  // [i, j] = w_j - w_i
  Node off = MaskTriangle(diff, 1, true, loc) + MaskTriangle(diff, -1, false, loc);
  Node ones = OnesLike(diff, loc);
  return (ones - KeepDiagonal(ones, loc)) / (off + KeepDiagonal(ones, loc));
}

// a = V diag(w) Vᵀ: S = V (diag(gw) + F ∘ (Vᵀ gV)) Vᵀ, F = InverseGaps(w);
// the kernel reads one triangle of a.
std::vector<Node> EighVJP(const internal::VJPArgs& a) {
  const Loc& loc = a.loc;
  Node w = TupleElement(a, 0), v = TupleElement(a, 1);
  Node inner = ZerosLike(v, loc);
  if (a.cotangents[0].Ok()) inner = KeepDiagonal(ExpandAxes(a.cotangents[0], {w.Rank()}, loc) * OnesLike(v, loc), loc);
  if (a.cotangents[1].Ok()) inner = inner + InverseGaps(w, loc) * MatMul(T(v, loc), a.cotangents[1], loc);
  Node s = MatMul(MatMul(v, inner, loc), T(v, loc), loc);
  return {ReadTriangleGradient(s, ir::Attr<ir::LinalgAttrs>(a.instr).lower, loc)};
}

// a = U diag(s) Vᵀ (Townsend 2016), F = InverseGaps(s²):
//   ga = U [F ∘ (Uᵀ gU - gUᵀ U) S + diag(gs) + S F ∘ (Vᵀ gV - gVᵀ V)] Vᵀ
//        + (I - U Uᵀ) gU S⁻¹ Vᵀ + U S⁻¹ gVᵀ (I - V Vᵀ).
std::vector<Node> SvdVJP(const internal::VJPArgs& a) {
  const Loc& loc = a.loc;
  const auto& attrs = ir::Attr<ir::LinalgAttrs>(a.instr);
  const Node& x = a.operands[0];
  const auto& d = x.Shape().Dims();
  const int64_t m = d[d.size() - 2], n = d.back();
  Node u, s, vt, gu, gs, gvt;
  const int64_t k = std::min(m, n);
  if (!attrs.compute_uv) {
    const SvdResult f = Svd(x, false, loc);  // the vectors, which the values' gradient needs
    u = f.u, s = f.s, vt = f.vt;
    gs = a.cotangents[0];
  } else {
    if (attrs.full_matrices && m != n && (a.cotangents[0].Ok() || a.cotangents[2].Ok())) {
      OpError(loc, "Gradient", "the gradient of Svd (created at " + a.instr.location +
                                   ") through u or vt with full_matrices needs square matrices, got " +
                                   x.Shape().ToString());
    }
    u = TupleElement(a, 0), s = TupleElement(a, 1), vt = TupleElement(a, 2);
    gu = a.cotangents[0], gs = a.cotangents[1], gvt = a.cotangents[2];
    if (attrs.full_matrices && m != n) {  // only gs flows: the reduced factors suffice
      u = SliceAxis(u, u.Rank() - 1, 0, k, 1, loc);
      vt = SliceAxis(vt, vt.Rank() - 2, 0, k, 1, loc);
    }
  }
  const int r = s.Rank();
  Node s_row = ExpandAxes(s, {r - 1}, loc);  // [..., 1, k]: scales columns
  Node s_col = ExpandAxes(s, {r}, loc);      // [..., k, 1]: scales rows
  Node v = T(vt, loc);
  Node inner = Zeros(a.g, shapes::Shape(x.DType(), Concat(BatchDims(x), {k, k})), loc);
  if (gs.Ok()) inner = KeepDiagonal(ExpandAxes(gs, {r}, loc) * OnesLike(inner, loc), loc);
  Node f = (gu.Ok() || gvt.Ok()) ? InverseGaps(s * s, loc) : Node();
  Node ga;
  if (gu.Ok()) {
    Node ut_gu = MatMul(T(u, loc), gu, loc);
    inner = inner + (f * (ut_gu - T(ut_gu, loc))) * s_row;
    if (m > k) ga = MatMul((gu - MatMul(u, ut_gu, loc)) / s_row, vt, loc);
  }
  if (gvt.Ok()) {
    Node gv = T(gvt, loc);
    Node vt_gv = MatMul(vt, gv, loc);
    inner = inner + s_col * (f * (vt_gv - T(vt_gv, loc)));
    if (n > k) {
      Node term = MatMul(u / s_row, T(gv - MatMul(v, vt_gv, loc), loc), loc);
      ga = ga.Ok() ? ga + term : term;
    }
  }
  Node core = MatMul(MatMul(u, inner, loc), vt, loc);
  return {ga.Ok() ? core + ga : core};
}

}  // namespace

namespace internal {
void RegisterLinalgVJPs(VJPTable& table) {
  table[static_cast<size_t>(ir::OpType::kCholesky)] = CholeskyVJP;
  table[static_cast<size_t>(ir::OpType::kTriangularSolve)] = TriangularSolveVJP;
  table[static_cast<size_t>(ir::OpType::kLu)] = LuVJP;
  table[static_cast<size_t>(ir::OpType::kQr)] = QrVJP;
  table[static_cast<size_t>(ir::OpType::kEigh)] = EighVJP;
  table[static_cast<size_t>(ir::OpType::kSvd)] = SvdVJP;
}
}  // namespace internal

}  // namespace kiln::graph
