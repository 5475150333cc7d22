// Copyright 2026 The Kiln Authors.
// Gradient cases of the linear-algebra ops, on well-conditioned Float64
// inputs: Cholesky of X Xᵀ + 3 I (and the upper factor), TriangularSolve
// with each flag, Lu directly and through Solve, Inverse, Determinant (also
// its second derivative, and at singular matrices) and LogDeterminant, Qr of
// tall, square and wide matrices, Eigh and Svd through sign-invariant functions of
// their vectors (v diag(c) vᵀ, u diag(c) vt) and through their values alone.
#include "kiln/graph/autodiff.h"
#include "kiln/graph/linalg.h"
#include "tests/graph/grad_cases.h"

namespace kiln::testing {

namespace {

using graph::Node;
using ir::OpType;

// x xᵀ + n I: symmetric positive definite, smooth in x.
Node Spd(const Node& x) {
  const int64_t n = x.Shape().Dims().back();
  return graph::MatMul(x, graph::MatrixTranspose(x)) + graph::Eye(x.Graph(), n, x.DType()) * static_cast<double>(n);
}

// Fixed, distinct weights 1, 2, ..., k along the last axis of x's shape.
Node Ramp(const Node& like, int64_t k) {
  return graph::ConvertDType(graph::Iota(like.Graph(), shapes::Shape(dtypes::Int32, {k}), 0), like.DType()) + 1.0;
}

// v diag(c) vᵀ: unchanged when a column of v flips sign.
Node SignFree(const Node& u, const Node& vt, int64_t k) {
  return graph::MatMul(u * Ramp(u, k), vt);
}

GradCase TriangularSolveCase(const std::string& name, graph::TriangularSolveOptions o, std::vector<int64_t> bdims,
                             uint64_t seed) {
  return {OpType::kTriangularSolve, name,
          [o](const std::vector<Node>& p) {
            // A strong diagonal keeps op(a) well conditioned.
            Node a = p[0] + graph::Eye(p[0].Graph(), 3, p[0].DType()) * 3.0;
            return graph::TriangularSolve(a, p[1], o);
          },
          {Uniform({2, 3, 3}, -1, 1, seed), Uniform(std::move(bdims), -1, 1, seed + 1)}};
}

// Random [..., n, 3] matrices with a zero middle column: exactly singular
// (det is linear in each entry, so central differences stay exact there).
tensors::Tensor ZeroMiddleColumn(const tensors::Tensor& t) {
  std::vector<double> v = ToDoubles(t);
  for (size_t i = 1; i < v.size(); i += 3) v[i] = 0;
  return FromDoubles(t.Shape(), v);
}

}  // namespace

std::vector<GradCase> LinalgGradCases() {
  std::vector<GradCase> cases = {
      {OpType::kCholesky, "Cholesky of x xᵀ + 3 I",
       [](const std::vector<Node>& p) { return graph::Cholesky(Spd(p[0])); }, {Uniform({2, 3, 3}, -1, 1, 701)}},
      {OpType::kCholesky, "Cholesky upper factor of a symmetrized input",
       [](const std::vector<Node>& p) { return graph::Cholesky(p[0] + graph::Eye(p[0].Graph(), 3, p[0].DType()) * 4.0, true); },
       {Uniform({3, 3}, -1, 1, 702)}},
      {OpType::kTriangularSolve, "CholeskySolve with a vector right-hand side",
       [](const std::vector<Node>& p) { return graph::CholeskySolve(graph::Cholesky(Spd(p[0])), p[1]); },
       {Uniform({3, 3}, -1, 1, 711), Uniform({3}, -1, 1, 712)}},
      {OpType::kLu, "Lu factors",
       [](const std::vector<Node>& p) { return graph::Lu(p[0]).lu; }, {Uniform({2, 4, 4}, -1, 1, 713)}},
      {OpType::kLu, "Solve with a broadcast batch",
       [](const std::vector<Node>& p) { return graph::Solve(p[0], p[1]); },
       {Uniform({3, 3}, -1, 1, 714), Uniform({2, 3, 2}, -1, 1, 715)}},
      {OpType::kLu, "Inverse", [](const std::vector<Node>& p) { return graph::Inverse(p[0]); },
       {Uniform({2, 3, 3}, -1, 1, 716)}},
      {OpType::kLu, "Determinant", [](const std::vector<Node>& p) { return graph::Determinant(p[0]); },
       {Uniform({2, 4, 4}, -1, 1, 717)}},
      {OpType::kLu, "Determinant of singular matrices (zero middle column: LU's pivot is exactly 0)",
       [](const std::vector<Node>& p) { return graph::Determinant(p[0]); },
       {ZeroMiddleColumn(Uniform({2, 3, 3}, -1, 1, 727))}},
      {OpType::kLu, "LogDeterminant", [](const std::vector<Node>& p) { return graph::LogDeterminant(p[0]).log_abs_det; },
       {Uniform({2, 3, 3}, -1, 1, 718)}},
      {OpType::kLu, "second derivative of Determinant",
       [](const std::vector<Node>& p) {
         return graph::Gradient(graph::ReduceAllSum(graph::Determinant(p[0])), {p[0]})[0];
       },
       {Uniform({3, 3}, -1, 1, 719)}},
      {OpType::kQr, "Qr of a tall matrix",
       [](const std::vector<Node>& p) {
         const graph::QrResult f = graph::Qr(p[0]);
         return graph::Concatenate({graph::Reshape(f.q, {2, 8}), graph::Reshape(f.r, {2, 4})}, 1);
       },
       {Uniform({2, 4, 2}, -1, 1, 720)}},
      {OpType::kQr, "Qr of a wide matrix",
       [](const std::vector<Node>& p) {
         const graph::QrResult f = graph::Qr(p[0]);
         return graph::Concatenate({graph::Reshape(f.q, {4}), graph::Reshape(f.r, {8})}, 0);
       },
       {Uniform({2, 4}, -1, 1, 721)}},
      {OpType::kQr, "Qr r only, square, full_matrices",
       [](const std::vector<Node>& p) { return graph::Qr(p[0], true).r; }, {Uniform({3, 3}, -1, 1, 722)}},
      {OpType::kEigh, "Eigh eigenvalues", [](const std::vector<Node>& p) { return graph::Eigh(p[0]).eigenvalues; },
       {Uniform({2, 4, 4}, -1, 1, 723)}},
      {OpType::kEigh, "Eigh eigenvectors through v diag(c) vᵀ",
       [](const std::vector<Node>& p) {
         const graph::EighResult f = graph::Eigh(p[0]);
         return SignFree(f.eigenvectors, graph::MatrixTranspose(f.eigenvectors), 4);
       },
       {Uniform({4, 4}, -1, 1, 724)}},
      {OpType::kSvd, "Svd of a tall matrix through u diag(c) vt and s",
       [](const std::vector<Node>& p) {
         const graph::SvdResult f = graph::Svd(p[0]);
         return graph::Concatenate({graph::Reshape(SignFree(f.u, f.vt, 3), {15}), f.s}, 0);
       },
       {Uniform({5, 3}, -1, 1, 725)}},
      {OpType::kSvd, "Svd of a wide batch through u diag(c) vt",
       [](const std::vector<Node>& p) {
         const graph::SvdResult f = graph::Svd(p[0]);
         return SignFree(f.u, f.vt, 2);
       },
       {Uniform({2, 2, 4}, -1, 1, 726)}},
      {OpType::kSvd, "Svd u alone, square", [](const std::vector<Node>& p) {
         const graph::SvdResult f = graph::Svd(p[0], true);
         return graph::MatMul(f.u * Ramp(f.u, 3), graph::MatrixTranspose(f.u));
       },
       {Uniform({3, 3}, -1, 1, 727)}},
      {OpType::kSvd, "SingularValues", [](const std::vector<Node>& p) { return graph::SingularValues(p[0]); },
       {Uniform({2, 3, 4}, -1, 1, 728)}},
      {OpType::kQr, "Qr of a wide matrix, full_matrices",
       [](const std::vector<Node>& p) {
         const graph::QrResult f = graph::Qr(p[0], true);
         return graph::Concatenate({graph::Reshape(f.q, {4}), graph::Reshape(f.r, {6})}, 0);
       },
       {Uniform({2, 3}, -1, 1, 729)}},
  };
  // Every combination of TriangularSolve's flags.
  for (int flags = 0; flags < 16; ++flags) {
    const graph::TriangularSolveOptions o{.left_side = (flags & 1) != 0,
                                          .lower = (flags & 2) != 0,
                                          .transpose_a = (flags & 4) != 0,
                                          .unit_diagonal = (flags & 8) != 0};
    const std::string name = std::string("TriangularSolve ") + (o.left_side ? "left" : "right") +
                             (o.lower ? " lower" : " upper") + (o.transpose_a ? " transposed" : "") +
                             (o.unit_diagonal ? " unit diagonal" : "");
    cases.push_back(TriangularSolveCase(name, o, o.left_side ? std::vector<int64_t>{2, 3, 2} : std::vector<int64_t>{2, 4, 3},
                                        static_cast<uint64_t>(740 + 2 * flags)));
  }
  return cases;
}

}  // namespace kiln::testing
