// Copyright 2026 The Kiln Authors.
// Linear algebra on every backend that implements it, in Float32 and
// Float64, batched and unbatched, with empty matrices: Cholesky, LU,
// triangular solves, Solve, Inverse and determinants against references
// written here (textbook algorithms in double); QR, Eigh and SVD by their
// defining properties (reconstruction, orthonormality, triangularity,
// ordering) and known cases. Failures (not positive definite, singular,
// NaN) and the error messages. Gradients are in grad_cases_linalg.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <vector>

#include "kiln/graph/autodiff.h"
#include "kiln/graph/linalg.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;
using testing::FromDoubles;
using testing::ToDoubles;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

class LinalgTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> Backend() const { return backends::NewWithName(GetParam()); }
};

INSTANTIATE_TEST_SUITE_P(Backends, LinalgTest,
                         ::testing::ValuesIn(testing::BackendsSupporting(ir::OpType::kCholesky)));
// Empty where no backend tested has the op (KILN_TEST_BACKENDS=cuda).
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(LinalgTest);

// A row-major matrix in double, the references' working type.
struct Mat {
  int64_t m = 0, n = 0;
  std::vector<double> v;
  double& operator()(int64_t i, int64_t j) { return v[static_cast<size_t>(i * n + j)]; }
  double operator()(int64_t i, int64_t j) const { return v[static_cast<size_t>(i * n + j)]; }
};

Mat Zero(int64_t m, int64_t n) { return {m, n, std::vector<double>(static_cast<size_t>(m * n), 0.0)}; }

Mat Mul(const Mat& a, const Mat& b) {
  Mat c = Zero(a.m, b.n);
  for (int64_t i = 0; i < a.m; ++i) {
    for (int64_t j = 0; j < b.n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < a.n; ++k) s += a(i, k) * b(k, j);
      c(i, j) = s;
    }
  }
  return c;
}

Mat Transposed(const Mat& a) {
  Mat t = Zero(a.n, a.m);
  for (int64_t i = 0; i < a.m; ++i) {
    for (int64_t j = 0; j < a.n; ++j) t(j, i) = a(i, j);
  }
  return t;
}

// Matrix b of a batch stored in `values` with matrices m x n.
Mat Matrix(const std::vector<double>& values, int64_t b, int64_t m, int64_t n) {
  const auto begin = values.begin() + b * m * n;
  return {m, n, std::vector<double>(begin, begin + m * n)};
}

int64_t BatchCount(const std::vector<int64_t>& dims) {
  int64_t count = 1;
  for (size_t i = 0; i + 2 < dims.size(); ++i) count *= dims[i];
  return count;
}

// The dims with the last two replaced.
std::vector<int64_t> WithMatrix(std::vector<int64_t> dims, int64_t m, int64_t n) {
  dims[dims.size() - 2] = m;
  dims[dims.size() - 1] = n;
  return dims;
}

// Random matrices, made well conditioned by adding `diagonal` to the diagonal.
Tensor RandomMatrices(dtypes::DType dtype, const std::vector<int64_t>& dims, uint64_t seed, double diagonal = 0) {
  testing::Rng rng(seed);
  std::vector<double> v = ToDoubles(testing::Random(shapes::Shape(dtypes::Float64, dims), rng, -1, 1));
  const int64_t m = dims[dims.size() - 2], n = dims.back();
  for (int64_t b = 0; b < BatchCount(dims); ++b) {
    for (int64_t i = 0; i < std::min(m, n); ++i) v[static_cast<size_t>((b * m + i) * n + i)] += diagonal;
  }
  return FromDoubles(shapes::Shape(dtype, dims), v);
}

// Symmetric positive definite: X Xᵀ + n I, rounded to dtype.
Tensor RandomSpd(dtypes::DType dtype, const std::vector<int64_t>& dims, uint64_t seed) {
  const int64_t n = dims.back();
  std::vector<double> x = ToDoubles(RandomMatrices(dtypes::Float64, dims, seed));
  std::vector<double> out;
  for (int64_t b = 0; b < BatchCount(dims); ++b) {
    Mat xb = Matrix(x, b, n, n);
    Mat s = Mul(xb, Transposed(xb));
    for (int64_t i = 0; i < n; ++i) s(i, i) += static_cast<double>(n);
    out.insert(out.end(), s.v.begin(), s.v.end());
  }
  return FromDoubles(shapes::Shape(dtype, dims), out);
}

double Tol(dtypes::DType dtype) { return dtype == dtypes::Float32 ? 2e-4 : 1e-10; }

// Checks every matrix of `got` against `want` (same layout) within tol * (1 +
// |want|).
::testing::AssertionResult Near(const std::vector<double>& got, const std::vector<double>& want, double tol) {
  if (got.size() != want.size()) {
    return ::testing::AssertionFailure() << "sizes " << got.size() << " and " << want.size();
  }
  for (size_t i = 0; i < got.size(); ++i) {
    const bool both_nan = std::isnan(got[i]) && std::isnan(want[i]);
    if (!both_nan && !(std::abs(got[i] - want[i]) <= tol * (1 + std::abs(want[i])))) {
      return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", want " << want[i];
    }
  }
  return ::testing::AssertionSuccess();
}

// ------------------------------------------------------------ References.

Mat RefCholesky(const Mat& a) {
  Mat l = Zero(a.n, a.n);
  for (int64_t j = 0; j < a.n; ++j) {
    double d = a(j, j);
    for (int64_t k = 0; k < j; ++k) d -= l(j, k) * l(j, k);
    l(j, j) = std::sqrt(d);
    for (int64_t i = j + 1; i < a.n; ++i) {
      double s = a(i, j);
      for (int64_t k = 0; k < j; ++k) s -= l(i, k) * l(j, k);
      l(i, j) = s / l(j, j);
    }
  }
  return l;
}

// op(a) x = b or x op(a) = b by substitution, reading only a's triangle.
Mat RefTriangularSolve(const Mat& a_in, const Mat& b, const graph::TriangularSolveOptions& o) {
  const int64_t n = a_in.n;
  Mat a = Zero(n, n);  // the triangle read, with the diagonal as the kernel sees it
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      if (i == j) a(i, j) = o.unit_diagonal ? 1.0 : a_in(i, j);
      else if (o.lower ? i > j : i < j) a(i, j) = a_in(i, j);
    }
  }
  // x op = b is opᵀ xᵀ = bᵀ: one left solve lhs y = rhs, by substitution in
  // the order lhs's triangle needs.
  const Mat op = o.transpose_a ? Transposed(a) : a;
  const Mat lhs = o.left_side ? op : Transposed(op);
  const Mat rhs = o.left_side ? b : Transposed(b);
  bool is_lower = true;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) {
      if (lhs(i, j) != 0) is_lower = false;
    }
  }
  Mat x = rhs;
  for (int64_t c = 0; c < rhs.n; ++c) {
    for (int64_t step = 0; step < n; ++step) {
      const int64_t i = is_lower ? step : n - 1 - step;
      double s = rhs(i, c);
      for (int64_t j = 0; j < n; ++j) {
        if (j != i && (is_lower ? j < i : j > i)) s -= lhs(i, j) * x(j, c);
      }
      x(i, c) = s / lhs(i, i);
    }
  }
  return o.left_side ? x : Transposed(x);
}

// Partial pivoting as LAPACK's getrf: the first row with the largest |value|.
struct RefLuResult {
  Mat lu;
  std::vector<double> pivots, perm;
};
RefLuResult RefLu(Mat a) {
  const int64_t m = a.m, n = a.n, k = std::min(m, n);
  RefLuResult r;
  std::vector<int64_t> perm(static_cast<size_t>(m));
  std::iota(perm.begin(), perm.end(), 0);
  for (int64_t j = 0; j < k; ++j) {
    int64_t p = j;
    for (int64_t i = j + 1; i < m; ++i) {
      if (std::abs(a(i, j)) > std::abs(a(p, j))) p = i;
    }
    r.pivots.push_back(static_cast<double>(p));
    for (int64_t c = 0; c < n; ++c) std::swap(a(j, c), a(p, c));
    std::swap(perm[static_cast<size_t>(j)], perm[static_cast<size_t>(p)]);
    for (int64_t i = j + 1; i < m; ++i) {
      a(i, j) /= a(j, j);
      for (int64_t c = j + 1; c < n; ++c) a(i, c) -= a(i, j) * a(j, c);
    }
  }
  for (int64_t v : perm) r.perm.push_back(static_cast<double>(v));
  r.lu = a;
  return r;
}

// The Leibniz formula: independent of any elimination.
double RefDeterminant(const Mat& a) {
  std::vector<int64_t> p(static_cast<size_t>(a.n));
  std::iota(p.begin(), p.end(), 0);
  double det = 0;
  do {
    double term = 1;
    int inversions = 0;
    for (int64_t i = 0; i < a.n; ++i) {
      term *= a(i, p[static_cast<size_t>(i)]);
      for (int64_t j = i + 1; j < a.n; ++j) inversions += p[static_cast<size_t>(i)] > p[static_cast<size_t>(j)];
    }
    det += inversions % 2 ? -term : term;
  } while (std::next_permutation(p.begin(), p.end()));
  return det;
}

// Gaussian elimination with partial pivoting on [a | b].
Mat RefSolve(Mat a, Mat b) {
  const int64_t n = a.n;
  for (int64_t j = 0; j < n; ++j) {
    int64_t p = j;
    for (int64_t i = j + 1; i < n; ++i) {
      if (std::abs(a(i, j)) > std::abs(a(p, j))) p = i;
    }
    for (int64_t c = 0; c < n; ++c) std::swap(a(j, c), a(p, c));
    for (int64_t c = 0; c < b.n; ++c) std::swap(b(j, c), b(p, c));
    for (int64_t i = j + 1; i < n; ++i) {
      const double f = a(i, j) / a(j, j);
      for (int64_t c = j; c < n; ++c) a(i, c) -= f * a(j, c);
      for (int64_t c = 0; c < b.n; ++c) b(i, c) -= f * b(j, c);
    }
  }
  for (int64_t j = n - 1; j >= 0; --j) {
    for (int64_t c = 0; c < b.n; ++c) {
      double s = b(j, c);
      for (int64_t k = j + 1; k < n; ++k) s -= a(j, k) * b(k, c);
      b(j, c) = s / a(j, j);
    }
  }
  return b;
}

// The batch shapes the tests run: one matrix, a batch of two axes, 1 x 1,
// and empty batches and matrices.
std::vector<std::vector<int64_t>> SquareShapes() {
  return {{4, 4}, {2, 3, 5, 5}, {1, 1}, {0, 3, 3}, {2, 0, 0}, {40, 40}};
}

// --------------------------------------------------------------- Cholesky.

TEST_P(LinalgTest, CholeskyMatchesTheReference) {
  auto backend = Backend();
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64}) {
    for (const auto& dims : SquareShapes()) {
      SCOPED_TRACE(shapes::Shape(dt, dims).ToString());
      const Tensor a = RandomSpd(dt, dims, 11);
      const auto out = testing::Run(backend, [](const std::vector<Node>& p) {
        return std::vector<Node>{graph::Cholesky(p[0]), graph::Cholesky(p[0], /*upper=*/true)};
      }, {a});
      const std::vector<double> av = ToDoubles(a);
      const int64_t n = dims.back();
      std::vector<double> want, want_upper;
      for (int64_t b = 0; b < BatchCount(dims); ++b) {
        const Mat l = RefCholesky(Matrix(av, b, n, n));
        want.insert(want.end(), l.v.begin(), l.v.end());
        const Mat u = Transposed(l);
        want_upper.insert(want_upper.end(), u.v.begin(), u.v.end());
      }
      EXPECT_EQ(out[0].Shape(), shapes::Shape(dt, dims));
      EXPECT_TRUE(Near(ToDoubles(out[0]), want, Tol(dt)));
      EXPECT_TRUE(Near(ToDoubles(out[1]), want_upper, Tol(dt)));
    }
  }
}

TEST_P(LinalgTest, CholeskyOfANonPositiveDefiniteMatrixIsNaN) {
  // Batch: an SPD matrix, one with a negative eigenvalue, one holding NaN.
  const Tensor a = FromDoubles(shapes::Shape(dtypes::Float64, {3, 2, 2}), {4, 2, 2, 3, 1, 2, 2, 1, 1, kNaN, kNaN, 1});
  const std::vector<double> l = ToDoubles(testing::Run1(Backend(), [](const std::vector<Node>& p) {
    return graph::Cholesky(p[0]);
  }, {a}));
  EXPECT_TRUE(Near({l.begin(), l.begin() + 4}, {2, 0, 1, std::sqrt(2.0)}, 1e-12));
  for (size_t i = 4; i < 12; ++i) EXPECT_TRUE(std::isnan(l[i])) << i;
}

// ------------------------------------------------------- TriangularSolve.

TEST_P(LinalgTest, TriangularSolveMatchesSubstitutionForEveryFlag) {
  auto backend = Backend();
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64}) {
    for (int flags = 0; flags < 16; ++flags) {
      const graph::TriangularSolveOptions o{.left_side = (flags & 1) != 0,
                                            .lower = (flags & 2) != 0,
                                            .transpose_a = (flags & 4) != 0,
                                            .unit_diagonal = (flags & 8) != 0};
      SCOPED_TRACE(::testing::Message() << dtypes::Name(dt) << " flags " << flags);
      const int64_t n = 5, k = 3;
      // The triangle not read holds large values: reading it would show.
      Tensor a = RandomMatrices(dt, {2, n, n}, 21, 3.0);
      std::vector<double> av = ToDoubles(a);
      for (int64_t b = 0; b < 2; ++b) {
        for (int64_t i = 0; i < n; ++i) {
          for (int64_t j = 0; j < n; ++j) {
            if (o.lower ? j > i : j < i) av[static_cast<size_t>((b * n + i) * n + j)] = 1e3;
          }
        }
      }
      a = FromDoubles(a.Shape(), av);
      const std::vector<int64_t> bdims = o.left_side ? std::vector<int64_t>{2, n, k} : std::vector<int64_t>{2, k, n};
      const Tensor rhs = RandomMatrices(dt, bdims, 22);
      const Tensor x = testing::Run1(backend, [&](const std::vector<Node>& p) {
        return graph::TriangularSolve(p[0], p[1], o);
      }, {a, rhs});
      std::vector<double> want;
      const std::vector<double> bv = ToDoubles(rhs);
      for (int64_t b = 0; b < 2; ++b) {
        const Mat r = RefTriangularSolve(Matrix(ToDoubles(a), b, n, n), Matrix(bv, b, bdims[1], bdims[2]), o);
        want.insert(want.end(), r.v.begin(), r.v.end());
      }
      EXPECT_TRUE(Near(ToDoubles(x), want, Tol(dt)));
    }
  }
}

TEST_P(LinalgTest, TriangularSolveBroadcastsBatchesAndGivesNaNForAZeroDiagonal) {
  const Tensor a = FromDoubles(shapes::Shape(dtypes::Float64, {2, 2}), {2, 0, 1, 4});
  const Tensor b = FromDoubles(shapes::Shape(dtypes::Float64, {3, 2, 1}), {2, 4, 4, 2, 0, 8});
  const Tensor x = testing::Run1(Backend(), [](const std::vector<Node>& p) {
    return graph::TriangularSolve(p[0], p[1]);
  }, {a, b});
  EXPECT_TRUE(testing::AllClose(x, shapes::Shape(dtypes::Float64, {3, 2, 1}), {1, 0.75, 2, 0, 0, 2}, 1e-12, 0));
  const Tensor singular = FromDoubles(shapes::Shape(dtypes::Float64, {2, 2}), {2, 0, 1, 0});
  const std::vector<double> y = ToDoubles(testing::Run1(Backend(), [](const std::vector<Node>& p) {
    return graph::TriangularSolve(p[0], p[1]);
  }, {singular, b}));
  for (double v : y) EXPECT_TRUE(std::isnan(v));
}

// -------------------------------------------------------------------- LU.

TEST_P(LinalgTest, LuMatchesPartialPivoting) {
  auto backend = Backend();
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64}) {
    for (std::vector<int64_t> dims : {std::vector<int64_t>{4, 4}, {2, 5, 3}, {3, 5}, {2, 3, 6, 6}, {0, 2, 2},
                                      {3, 0}, {1, 1}}) {
      SCOPED_TRACE(shapes::Shape(dt, dims).ToString());
      const Tensor a = RandomMatrices(dt, dims, 31);
      const auto out = testing::Run(backend, [](const std::vector<Node>& p) {
        const graph::LuResult f = graph::Lu(p[0]);
        return std::vector<Node>{f.lu, f.pivots, f.permutation};
      }, {a});
      const int64_t m = dims[dims.size() - 2], n = dims.back();
      std::vector<double> lu, pivots, perm;
      const std::vector<double> av = ToDoubles(a);
      for (int64_t b = 0; b < BatchCount(dims); ++b) {
        const RefLuResult r = RefLu(Matrix(av, b, m, n));
        lu.insert(lu.end(), r.lu.v.begin(), r.lu.v.end());
        pivots.insert(pivots.end(), r.pivots.begin(), r.pivots.end());
        perm.insert(perm.end(), r.perm.begin(), r.perm.end());
      }
      EXPECT_EQ(out[1].DType(), dtypes::Int32);
      EXPECT_EQ(out[2].Shape().Dims().back(), m);
      EXPECT_TRUE(Near(ToDoubles(out[0]), lu, Tol(dt)));
      EXPECT_EQ(ToDoubles(out[1]), pivots);
      EXPECT_EQ(ToDoubles(out[2]), perm);
    }
  }
}

// ------------------------------------------- Solve, Inverse, determinants.

TEST_P(LinalgTest, SolveInverseAndDeterminantsMatchTheReferences) {
  auto backend = Backend();
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64}) {
    for (const auto& dims : SquareShapes()) {
      SCOPED_TRACE(shapes::Shape(dt, dims).ToString());
      const int64_t n = dims.back();
      const Tensor a = RandomMatrices(dt, dims, 41, 1.5);
      const Tensor b = RandomMatrices(dt, WithMatrix(dims, n, 2), 42);
      const auto out = testing::Run(backend, [](const std::vector<Node>& p) {
        const graph::LogDeterminantResult ld = graph::LogDeterminant(p[0]);
        return std::vector<Node>{graph::Solve(p[0], p[1]), graph::Inverse(p[0]), graph::Determinant(p[0]), ld.sign,
                                 ld.log_abs_det};
      }, {a, b});
      std::vector<double> x, inv, det, sign, logdet;
      const std::vector<double> av = ToDoubles(a), bv = ToDoubles(b);
      for (int64_t k = 0; k < BatchCount(dims); ++k) {
        const Mat ak = Matrix(av, k, n, n);
        const Mat xk = RefSolve(ak, Matrix(bv, k, n, 2));
        x.insert(x.end(), xk.v.begin(), xk.v.end());
        Mat eye = Zero(n, n);
        for (int64_t i = 0; i < n; ++i) eye(i, i) = 1;
        const Mat ik = RefSolve(ak, eye);
        inv.insert(inv.end(), ik.v.begin(), ik.v.end());
        // The Leibniz formula (n! terms) for small n, else the reference LU.
        double d = 1;
        if (n <= 6) {
          d = RefDeterminant(ak);
        } else {
          const RefLuResult lu = RefLu(ak);
          for (int64_t i = 0; i < n; ++i) d *= lu.lu(i, i) * (lu.pivots[static_cast<size_t>(i)] != i ? -1 : 1);
        }
        det.push_back(d);
        sign.push_back(d > 0 ? 1 : d < 0 ? -1 : 0);
        logdet.push_back(std::log(std::abs(d)));
      }
      const double tol = Tol(dt) * 10;
      EXPECT_TRUE(Near(ToDoubles(out[0]), x, tol));
      EXPECT_TRUE(Near(ToDoubles(out[1]), inv, tol));
      EXPECT_TRUE(Near(ToDoubles(out[2]), det, tol));
      EXPECT_EQ(ToDoubles(out[3]), sign);
      EXPECT_TRUE(Near(ToDoubles(out[4]), logdet, tol));
    }
  }
}

TEST_P(LinalgTest, SolveTakesVectorsAndBroadcastsBatches) {
  // a, 2 a and -a, where a needs a row swap; one vector b for all three.
  const Tensor a = FromDoubles(shapes::Shape(dtypes::Float64, {3, 2, 2}), {0, 2, 4, 0, 0, 4, 8, 0, 0, -2, -4, 0});
  const Tensor b = FromDoubles(shapes::Shape(dtypes::Float64, {2}), {2, 4});
  const Tensor x = testing::Run1(Backend(), [](const std::vector<Node>& p) { return graph::Solve(p[0], p[1]); },
                                 {a, b});
  EXPECT_TRUE(testing::AllClose(x, shapes::Shape(dtypes::Float64, {3, 2}), {1, 1, 0.5, 0.5, -1, -1}, 1e-12, 0));
  // A batch of vectors [..., n] matching a's batch.
  const Tensor bs = FromDoubles(shapes::Shape(dtypes::Float64, {3, 2}), {2, 4, 2, 4, 2, 4});
  const Tensor xs = testing::Run1(Backend(), [](const std::vector<Node>& p) { return graph::Solve(p[0], p[1]); },
                                  {a, bs});
  EXPECT_TRUE(testing::AllClose(xs, x, 1e-12, 0));
  // [[4, 2], [2, 3]] x = b through its Cholesky factor.
  const Tensor chol = testing::Run1(Backend(), [](const std::vector<Node>& p) {
    return graph::CholeskySolve(graph::Cholesky(p[0]), p[1]);
  }, {FromDoubles(shapes::Shape(dtypes::Float64, {2, 2}), {4, 2, 2, 3}), b});
  EXPECT_TRUE(testing::AllClose(chol, shapes::Shape(dtypes::Float64, {2}), {-0.25, 1.5}, 1e-12, 1e-15));
}

TEST_P(LinalgTest, SingularMatricesGiveZeroDeterminantAndNaNSolutions) {
  const Tensor a = FromDoubles(shapes::Shape(dtypes::Float64, {2, 2}), {1, 2, 2, 4});
  const auto out = testing::Run(Backend(), [](const std::vector<Node>& p) {
    const graph::LogDeterminantResult ld = graph::LogDeterminant(p[0]);
    return std::vector<Node>{graph::Determinant(p[0]), ld.sign, ld.log_abs_det, graph::Inverse(p[0])};
  }, {a});
  EXPECT_EQ(ToDoubles(out[0]), std::vector<double>{0});
  EXPECT_EQ(ToDoubles(out[1]), std::vector<double>{0});
  EXPECT_EQ(ToDoubles(out[2]), std::vector<double>{-std::numeric_limits<double>::infinity()});
  for (double v : ToDoubles(out[3])) EXPECT_TRUE(std::isnan(v));
}

// The adjugate's transpose, the gradient of det: C(i, j) = (-1)^(i+j) times
// the Leibniz determinant of a without row i and column j.
Mat RefCofactors(const Mat& a) {
  Mat c = Zero(a.n, a.n);
  for (int64_t i = 0; i < a.n; ++i) {
    for (int64_t j = 0; j < a.n; ++j) {
      Mat minor = Zero(a.n - 1, a.n - 1);
      for (int64_t r = 0, mr = 0; r < a.n; ++r) {
        if (r == i) continue;
        for (int64_t k = 0, mk = 0; k < a.n; ++k) {
          if (k != j) minor(mr, mk++) = a(r, k);
        }
        ++mr;
      }
      c(i, j) = ((i + j) % 2 ? -1 : 1) * RefDeterminant(minor);
    }
  }
  return c;
}

// det's gradient is the cofactor matrix at every matrix, singular ones
// included, where going through the LU factors would divide by a zero
// pivot: rank n-1 with the zero pivot first or in the middle, rank n-2 (all
// cofactors 0), the zero matrix; batched with invertible ones (and one whose
// LU pivot is tiny but not 0). Then 1 x 1 matrices, a determinant that is
// subnormal in Float32, and batches of rank 4.
TEST_P(LinalgTest, DeterminantGradientIsTheCofactorMatrixEvenWhereSingular) {
  auto backend = Backend();
  const std::vector<std::vector<double>> singular3 = {
      {1, 2, 3, 4, 5, 6, 7, 8, 9},         // rank 2, but rounding leaves a tiny nonzero pivot
      {0, 0, 0, 0, 1, 2, 0, 3, 5},         // rank 2, first column zero: the zero pivot comes first
      {2, 0, 1, 1, 0, 3, -1, 0, 2},        // rank 2, middle column zero
      {1, 2, 3, 2, 4, 6, -1, -2, -3},      // rank 1: every cofactor is 0
      {0, 0, 0, 0, 0, 0, 0, 0, 0},         // rank 0
      {2, -1, 0.5, 1, 3, -2, 0.25, 1, 4},  // invertible
  };
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64}) {
    SCOPED_TRACE(dtypes::Name(dt));
    std::vector<double> flat;
    for (const auto& m : singular3) flat.insert(flat.end(), m.begin(), m.end());
    const auto n = static_cast<int64_t>(singular3.size());
    const auto out = testing::Run(backend, [](const std::vector<Node>& p) {
      Node det = graph::Determinant(p[0]);
      return std::vector<Node>{det, graph::Gradient(graph::ReduceAllSum(det), {p[0]})[0]};
    }, {FromDoubles(shapes::Shape(dt, {n, 3, 3}), flat)});
    const std::vector<double> det = ToDoubles(out[0]), grad = ToDoubles(out[1]);
    const double tol = dt == dtypes::Float32 ? 1e-4 : 1e-11;
    for (int64_t b = 0; b < n; ++b) {
      SCOPED_TRACE(b);
      const Mat a{3, 3, singular3[static_cast<size_t>(b)]};
      EXPECT_NEAR(det[static_cast<size_t>(b)], RefDeterminant(a), tol);
      const Mat want = RefCofactors(a);
      for (size_t k = 0; k < 9; ++k) EXPECT_NEAR(grad[static_cast<size_t>(b) * 9 + k], want.v[k], tol * 10) << k;
    }
    auto grad_of_det = [&](const Tensor& a) {
      return ToDoubles(testing::Run1(backend, [](const std::vector<Node>& p) {
        return graph::Gradient(graph::ReduceAllSum(graph::Determinant(p[0])), {p[0]})[0];
      }, {a}));
    };
    // 1 x 1: d a / d a is exactly 1, at 0 and at 49 (where a * (1 / a) is not).
    EXPECT_EQ(grad_of_det(FromDoubles(shapes::Shape(dt, {2, 1, 1}), {0, 49})), (std::vector<double>{1, 1}));
    // diag(1e-20, 1e-20, 1): det 1e-40 (subnormal in Float32, where the
    // inverse would overflow); the cofactors are diag(1e-20, 1e-20, 1e-40).
    const std::vector<double> tiny = grad_of_det(
        FromDoubles(shapes::Shape(dt, {3, 3}), {1e-20, 0, 0, 0, 1e-20, 0, 0, 0, 1}));
    // (1e-40 is itself subnormal in Float32, which the CPU flushes to 0;
    // CUDA kernels keep subnormals.)
    const double corner = dt == dtypes::Float32 && GetParam() == "cpu" ? 0 : 1e-40;
    const std::vector<double> tiny_want = {1e-20, 0, 0, 0, 1e-20, 0, 0, 0, corner};
    for (size_t k = 0; k < 9; ++k) EXPECT_NEAR(tiny[k], tiny_want[k], 1e-3 * std::abs(tiny_want[k])) << k;
    // A [2, 2, 3, 3] batch: each matrix its own cofactors.
    std::vector<double> four;
    for (size_t b : {0, 5, 3, 1}) four.insert(four.end(), singular3[b].begin(), singular3[b].end());
    const std::vector<double> batched = grad_of_det(FromDoubles(shapes::Shape(dt, {2, 2, 3, 3}), four));
    for (size_t m = 0; m < 4; ++m) {
      const Mat want = RefCofactors(Mat{3, 3, std::vector<double>(four.begin() + 9 * m, four.begin() + 9 * m + 9)});
      for (size_t k = 0; k < 9; ++k) EXPECT_NEAR(batched[9 * m + k], want.v[k], tol * 10) << m << " " << k;
    }
  }
  // Empty matrices: det 1, an empty gradient.
  const Tensor empty = FromDoubles(shapes::Shape(dtypes::Float64, {2, 0, 0}), {});
  const auto out = testing::Run(backend, [](const std::vector<Node>& p) {
    Node det = graph::Determinant(p[0]);
    return std::vector<Node>{det, graph::Gradient(graph::ReduceAllSum(det), {p[0]})[0]};
  }, {empty});
  EXPECT_EQ(ToDoubles(out[0]), (std::vector<double>{1, 1}));
  EXPECT_EQ(out[1].Shape(), empty.Shape());
}

// The determinant keeps the sign of a zero from LU's pivots: the term that
// carries its gradient adds nothing to it. [[1, 2], [2, 4]] swaps its rows,
// then eliminates to pivots 2 and +0: det = -(2 * 0) = -0.
TEST_P(LinalgTest, DeterminantValueKeepsTheSignOfZero) {
  const Tensor det = testing::Run1(Backend(), [](const std::vector<Node>& p) { return graph::Determinant(p[0]); },
                                   {FromDoubles(shapes::Shape(dtypes::Float64, {2, 2}), {1, 2, 2, 4})});
  EXPECT_EQ(ToDoubles(det)[0], 0.0);
  EXPECT_TRUE(std::signbit(ToDoubles(det)[0]));
}

// -------------------------------------------- QR, Eigh, SVD by properties.

// ||m - want||_max within tol, for each matrix of a batch.
void ExpectProduct(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what) {
  EXPECT_TRUE(Near(got, want, tol)) << what;
}

TEST_P(LinalgTest, QrReconstructsWithOrthonormalQAndTriangularR) {
  auto backend = Backend();
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64}) {
    for (bool full : {false, true}) {
      for (std::vector<int64_t> dims : {std::vector<int64_t>{5, 3}, {3, 5}, {2, 4, 4}, {0, 2, 3}, {3, 0}, {0, 2}}) {
        SCOPED_TRACE(::testing::Message() << shapes::Shape(dt, dims) << (full ? " full" : " reduced"));
        const Tensor a = RandomMatrices(dt, dims, 51);
        const auto out = testing::Run(backend, [&](const std::vector<Node>& p) {
          const graph::QrResult f = graph::Qr(p[0], full);
          return std::vector<Node>{f.q, f.r};
        }, {a});
        const int64_t m = dims[dims.size() - 2], n = dims.back(), k = std::min(m, n);
        const int64_t qc = full ? m : k, rr = full ? m : k;
        EXPECT_EQ(out[0].Shape(), shapes::Shape(dt, WithMatrix(dims, m, qc)));
        EXPECT_EQ(out[1].Shape(), shapes::Shape(dt, WithMatrix(dims, rr, n)));
        const std::vector<double> qv = ToDoubles(out[0]), rv = ToDoubles(out[1]), av = ToDoubles(a);
        for (int64_t b = 0; b < BatchCount(dims); ++b) {
          const Mat q = Matrix(qv, b, m, qc), r = Matrix(rv, b, rr, n);
          ExpectProduct(Mul(q, r).v, Matrix(av, b, m, n).v, Tol(dt) * 10, "q r = a");
          Mat eye = Zero(qc, qc);
          for (int64_t i = 0; i < qc; ++i) eye(i, i) = 1;
          ExpectProduct(Mul(Transposed(q), q).v, eye.v, Tol(dt) * 10, "qᵀ q = I");
          for (int64_t i = 0; i < rr; ++i) {
            for (int64_t j = 0; j < std::min(i, n); ++j) EXPECT_EQ(r(i, j), 0.0) << "r below the diagonal";
          }
        }
      }
    }
  }
}

TEST_P(LinalgTest, EighDecomposesSymmetricMatrices) {
  auto backend = Backend();
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64}) {
    for (const auto& dims : SquareShapes()) {
      SCOPED_TRACE(shapes::Shape(dt, dims).ToString());
      const Tensor a = RandomMatrices(dt, dims, 61);  // not symmetric: Eigh symmetrizes it
      const auto out = testing::Run(backend, [](const std::vector<Node>& p) {
        const graph::EighResult f = graph::Eigh(p[0]);
        return std::vector<Node>{f.eigenvalues, f.eigenvectors};
      }, {a});
      const int64_t n = dims.back();
      const std::vector<double> wv = ToDoubles(out[0]), vv = ToDoubles(out[1]), av = ToDoubles(a);
      for (int64_t b = 0; b < BatchCount(dims); ++b) {
        const Mat v = Matrix(vv, b, n, n);
        const Mat ab = Matrix(av, b, n, n);
        Mat sym = Zero(n, n), vw = v, eye = Zero(n, n);
        for (int64_t i = 0; i < n; ++i) {
          eye(i, i) = 1;
          for (int64_t j = 0; j < n; ++j) {
            sym(i, j) = (ab(i, j) + ab(j, i)) / 2;
            vw(i, j) *= wv[static_cast<size_t>(b * n + j)];
          }
          if (i > 0) {
            EXPECT_LE(wv[static_cast<size_t>(b * n + i - 1)], wv[static_cast<size_t>(b * n + i)]);
          }
        }
        ExpectProduct(Mul(vw, Transposed(v)).v, sym.v, Tol(dt) * 20, "v diag(w) vᵀ = (a + aᵀ) / 2");
        ExpectProduct(Mul(Transposed(v), v).v, eye.v, Tol(dt) * 20, "vᵀ v = I");
      }
    }
  }
  const Tensor known = FromDoubles(shapes::Shape(dtypes::Float64, {2, 2}), {2, 1, 1, 2});
  const Tensor w = testing::Run1(backend, [](const std::vector<Node>& p) { return graph::Eigh(p[0]).eigenvalues; },
                                 {known});
  EXPECT_TRUE(testing::AllClose(w, shapes::Shape(dtypes::Float64, {2}), {1, 3}, 1e-12, 0));
}

// Eigh reads one triangle: graph::Eigh symmetrizes first, so this builds the
// IR by hand with a matrix whose triangles disagree (and NaN in the one not
// read, which must not make the result NaN).
TEST_P(LinalgTest, EighReadsOnlyItsTriangle) {
  auto backend = Backend();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (bool lower : {true, false}) {
    SCOPED_TRACE(lower ? "lower" : "upper");
    auto fn = std::make_shared<ir::Function>();
    fn->name = "eigh";
    const shapes::Shape shape = shapes::Make(dtypes::Float64, 2, 2);
    fn->instructions.push_back({ir::OpType::kParameter, {}, shape, ir::ParameterAttrs{0, "a"}, ""});
    fn->parameters = {0};
    fn->instructions.push_back({ir::OpType::kEigh, {0}, ir::TupleShape(), ir::LinalgAttrs{.lower = lower}, "t.cc:1"});
    fn->instructions.push_back({ir::OpType::kGetTupleElement, {1}, shapes::Make(dtypes::Float64, 2),
                                ir::TupleIndexAttrs{0}, "t.cc:1"});
    fn->outputs = {2};
    // Lower [[2, .], [1, 3]]: eigenvalues (5 -+ sqrt(5)) / 2; upper
    // [[2, 4], [., 3]]: (5 -+ sqrt(65)) / 2.
    const std::vector<double> a = lower ? std::vector<double>{2, nan, 1, 3} : std::vector<double>{2, 4, nan, 3};
    auto exe = backend->Compile(fn);
    const auto out = exe->Execute({backend->BufferFromHost(shape, a.data())}, {false});
    std::vector<double> w(2);
    out[0]->CopyToHost(w.data());
    const double root = std::sqrt(lower ? 5.0 : 65.0);
    EXPECT_NEAR(w[0], (5 - root) / 2, 1e-12);
    EXPECT_NEAR(w[1], (5 + root) / 2, 1e-12);
  }
}

TEST_P(LinalgTest, SvdReconstructsWithOrderedValues) {
  auto backend = Backend();
  for (dtypes::DType dt : {dtypes::Float32, dtypes::Float64}) {
    for (bool full : {false, true}) {
      for (std::vector<int64_t> dims : {std::vector<int64_t>{5, 3}, {3, 5}, {2, 4, 4}, {0, 2, 3}, {3, 0}, {30, 20}}) {
        SCOPED_TRACE(::testing::Message() << shapes::Shape(dt, dims) << (full ? " full" : " reduced"));
        const Tensor a = RandomMatrices(dt, dims, 71);
        const auto out = testing::Run(backend, [&](const std::vector<Node>& p) {
          const graph::SvdResult f = graph::Svd(p[0], full);
          return std::vector<Node>{f.u, f.s, f.vt, graph::SingularValues(p[0])};
        }, {a});
        const int64_t m = dims[dims.size() - 2], n = dims.back(), k = std::min(m, n);
        const int64_t uc = full ? m : k, vr = full ? n : k;
        EXPECT_EQ(out[0].Shape(), shapes::Shape(dt, WithMatrix(dims, m, uc)));
        EXPECT_EQ(out[2].Shape(), shapes::Shape(dt, WithMatrix(dims, vr, n)));
        const std::vector<double> uv = ToDoubles(out[0]), sv = ToDoubles(out[1]), vtv = ToDoubles(out[2]),
                                  av = ToDoubles(a);
        EXPECT_TRUE(Near(ToDoubles(out[3]), sv, Tol(dt) * 10)) << "SingularValues = Svd's s";
        for (int64_t b = 0; b < BatchCount(dims); ++b) {
          const Mat u = Matrix(uv, b, m, uc), vt = Matrix(vtv, b, vr, n);
          Mat us = Zero(m, n);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < k; ++j) us(i, j) = u(i, j) * sv[static_cast<size_t>(b * k + j)];
          }
          const Mat vt_k{k, n, std::vector<double>(vt.v.begin(), vt.v.begin() + k * n)};
          Mat us_k = Zero(m, k);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < k; ++j) us_k(i, j) = us(i, j);
          }
          ExpectProduct(Mul(us_k, vt_k).v, Matrix(av, b, m, n).v, Tol(dt) * 10, "u diag(s) vt = a");
          Mat eu = Zero(uc, uc), ev = Zero(vr, vr);
          for (int64_t i = 0; i < uc; ++i) eu(i, i) = 1;
          for (int64_t i = 0; i < vr; ++i) ev(i, i) = 1;
          ExpectProduct(Mul(Transposed(u), u).v, eu.v, Tol(dt) * 10, "uᵀ u = I");
          ExpectProduct(Mul(vt, Transposed(vt)).v, ev.v, Tol(dt) * 10, "vt vtᵀ = I");
          for (int64_t j = 0; j < k; ++j) {
            EXPECT_GE(sv[static_cast<size_t>(b * k + j)], 0);
            if (j > 0) {
              EXPECT_GE(sv[static_cast<size_t>(b * k + j - 1)], sv[static_cast<size_t>(b * k + j)]);
            }
          }
        }
      }
    }
  }
}

TEST_P(LinalgTest, FactorizationsOfNonFiniteMatricesAreNaN) {
  const Tensor a = FromDoubles(shapes::Shape(dtypes::Float64, {2, 2, 2}),
                               {1, 2, 3, 4, 1, std::numeric_limits<double>::infinity(), 0, 1});
  const auto out = testing::Run(Backend(), [](const std::vector<Node>& p) {
    const graph::SvdResult svd = graph::Svd(p[0]);
    const graph::QrResult qr = graph::Qr(p[0]);
    return std::vector<Node>{svd.s, svd.u, qr.q, qr.r, graph::Eigh(p[0]).eigenvalues};
  }, {a});
  for (const Tensor& t : out) {
    const std::vector<double> v = ToDoubles(t);
    const size_t half = v.size() / 2;
    for (size_t i = 0; i < half; ++i) EXPECT_FALSE(std::isnan(v[i])) << "the finite matrix";
    for (size_t i = half; i < v.size(); ++i) EXPECT_TRUE(std::isnan(v[i])) << "the matrix holding Inf";
  }
}

// Each result of a batch of `count` matrices of order `n` matches the same
// matrix factored alone (to rounding: alone, OpenBLAS may split its work
// across threads, which changes the order of operations).
void ExpectBatchMatchesMatricesAlone(const std::shared_ptr<backends::Backend>& backend, int64_t count, int64_t n) {
  const Tensor spd = RandomSpd(dtypes::Float64, {count, n, n}, 81);
  const Tensor general = RandomMatrices(dtypes::Float64, {count, n, n}, 82, 2.0);
  const Tensor rhs = RandomMatrices(dtypes::Float64, {count, n, 3}, 83);
  auto all = [](const std::vector<Node>& p) {
    const graph::QrResult qr = graph::Qr(p[1]);
    const graph::SvdResult svd = graph::Svd(p[1]);
    const graph::EighResult eigh = graph::Eigh(p[0]);
    return std::vector<Node>{graph::Cholesky(p[0]), graph::Lu(p[1]).lu, graph::Solve(p[1], p[2]),
                             graph::TriangularSolve(p[1], p[2], {.lower = false}), qr.q, qr.r, svd.u, svd.s, svd.vt,
                             eigh.eigenvalues, eigh.eigenvectors, graph::Determinant(p[1])};
  };
  const auto batched = testing::Run(backend, all, {spd, general, rhs});
  const std::vector<double> sv = ToDoubles(spd), gv = ToDoubles(general), rv = ToDoubles(rhs);
  for (int64_t k : {int64_t{0}, count / 2 + 1, count - 1}) {
    SCOPED_TRACE(::testing::Message() << "matrix " << k << " of " << count << ", order " << n);
    auto one = [&](const std::vector<double>& v, int64_t cols) {
      return FromDoubles(shapes::Shape(dtypes::Float64, {n, cols}), Matrix(v, k, n, cols).v);
    };
    const auto alone = testing::Run(backend, all, {one(sv, n), one(gv, n), one(rv, 3)});
    for (size_t o = 0; o < alone.size(); ++o) {
      const std::vector<double> b = ToDoubles(batched[o]), a = ToDoubles(alone[o]);
      const auto per = static_cast<int64_t>(a.size());
      EXPECT_TRUE(Near(std::vector<double>(b.begin() + k * per, b.begin() + (k + 1) * per), a, 1e-12))
          << "output " << o;
    }
  }
}

// Batches large enough to run one matrix per OpenMP thread (and, on CUDA,
// the batched library calls for matrices of order up to 64).
TEST_P(LinalgTest, LargeBatchesMatchTheirMatricesFactoredAlone) { ExpectBatchMatchesMatricesAlone(Backend(), 64, 12); }

// Matrices of order above 64: on CUDA, one library call per matrix, each
// at its own offset in the batch.
TEST_P(LinalgTest, BatchesOfLargeMatricesMatchTheirMatricesFactoredAlone) {
  ExpectBatchMatchesMatricesAlone(Backend(), 3, 70);
}

TEST_P(LinalgTest, InfinityInTheMatrixGivesNaN) {
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor a = FromDoubles(shapes::Shape(dtypes::Float64, {2, 2, 2}), {4, 2, 2, 3, 4, inf, inf, 3});
  const auto out = testing::Run(Backend(), [](const std::vector<Node>& p) {
    const graph::LuResult lu = graph::Lu(p[0]);
    return std::vector<Node>{graph::Cholesky(p[0]), lu.lu, lu.permutation};
  }, {a});
  for (int o = 0; o < 2; ++o) {
    const std::vector<double> v = ToDoubles(out[static_cast<size_t>(o)]);
    for (size_t i = 0; i < 4; ++i) EXPECT_FALSE(std::isnan(v[i])) << o;
    for (size_t i = 4; i < 8; ++i) EXPECT_TRUE(std::isnan(v[i])) << o;
  }
  EXPECT_EQ(ToDoubles(out[2]), (std::vector<double>{0, 1, 0, 1}));  // the identity where not finite
}

// --------------------------------------------------------------- Helpers.

TEST_P(LinalgTest, TriangleDiagonalEyeAndTranspose) {
  const Tensor x = FromDoubles(shapes::Shape(dtypes::Float32, {2, 3}), {1, 2, 3, 4, 5, 6});
  const auto out = testing::Run(Backend(), [](const std::vector<Node>& p) {
    return std::vector<Node>{graph::Tril(p[0]), graph::Triu(p[0], 1), graph::Tril(p[0], -1), graph::MatrixDiagonal(p[0]),
                             graph::MatrixTranspose(p[0]), graph::Eye(p[0].Graph(), 2, dtypes::Float32)};
  }, {x});
  EXPECT_EQ(ToDoubles(out[0]), (std::vector<double>{1, 0, 0, 4, 5, 0}));
  EXPECT_EQ(ToDoubles(out[1]), (std::vector<double>{0, 2, 3, 0, 0, 6}));
  EXPECT_EQ(ToDoubles(out[2]), (std::vector<double>{0, 0, 0, 4, 0, 0}));
  EXPECT_EQ(ToDoubles(out[3]), (std::vector<double>{1, 5}));
  EXPECT_EQ(ToDoubles(out[4]), (std::vector<double>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(ToDoubles(out[5]), (std::vector<double>{1, 0, 0, 1}));
}

// --------------------------------------------------------------- Errors.

TEST(LinalgErrors, BadOperandsNameTheOpAndTheShapes) {
  auto g = graph::NewGraph("errors");
  Node vec = graph::Parameter(g.get(), "v", shapes::Make(dtypes::Float32, 3));
  Node ints = graph::Parameter(g.get(), "i", shapes::Make(dtypes::Int32, 3, 3));
  Node wide = graph::Parameter(g.get(), "w", shapes::Make(dtypes::Float32, 2, 3));
  Node sq = graph::Parameter(g.get(), "s", shapes::Make(dtypes::Float32, 3, 3));
  Node sq64 = graph::Parameter(g.get(), "d", shapes::Make(dtypes::Float64, 3, 3));
  KILN_EXPECT_ERROR(graph::Cholesky(vec), "Cholesky: a must be a matrix or a batch of matrices (rank >= 2), got Float32[3]");
  KILN_EXPECT_ERROR(graph::Lu(ints), "Lu: a must be Float32 or Float64, got Int32[3, 3]");
  KILN_EXPECT_ERROR(graph::Eigh(wide), "Eigh: a must be square matrices, got Float32[2, 3]");
  KILN_EXPECT_ERROR(graph::Determinant(wide), "Determinant: a must be square matrices");
  KILN_EXPECT_ERROR(graph::TriangularSolve(sq, wide), "TriangularSolve: b Float32[2, 3] must have 3 rows to match a");
  KILN_EXPECT_ERROR(graph::TriangularSolve(sq, sq64), "must have the same dtype");
  KILN_EXPECT_ERROR(graph::Solve(sq, wide), "Solve: b Float32[2, 3] must be Float32 with 3 rows");
  KILN_EXPECT_ERROR(graph::Solve(sq, sq64), "Solve: b Float64[3, 3] must be Float32");
  KILN_EXPECT_ERROR(graph::Eye(g.get(), -1), "Eye: needs n >= 0, got -1");
  KILN_EXPECT_ERROR(graph::Tril(vec), "Tril: needs rank >= 2, got Float32[3]");
  Node batch_a = graph::Parameter(g.get(), "ba", shapes::Make(dtypes::Float32, 2, 3, 3));
  Node batch_b = graph::Parameter(g.get(), "bb", shapes::Make(dtypes::Float32, 3, 3, 1));
  KILN_EXPECT_ERROR(graph::Solve(batch_a, batch_b), "cannot be broadcast");
  Node huge = graph::Parameter(g.get(), "h", shapes::Make(dtypes::Float32, 50000, 50000));
  KILN_EXPECT_ERROR(graph::Qr(huge), "Qr: a Float32[50000, 50000] has matrices of more than 2^31 - 1 elements");
  KILN_EXPECT_ERROR(graph::MatrixTranspose(vec), "MatrixTranspose: needs rank >= 2, got Float32[3]");
  KILN_EXPECT_ERROR(graph::MatrixDiagonal(vec), "MatrixDiagonal: needs rank >= 2, got Float32[3]");
  KILN_EXPECT_ERROR(graph::Triu(vec), "Triu: needs rank >= 2, got Float32[3]");
}

// The CPU kernels re-check what the graph layer guarantees, for IR built by hand.
TEST(LinalgErrors, KernelsRejectInconsistentHandBuiltIr) {
  auto fn = std::make_shared<ir::Function>();
  fn->name = "hand";
  auto param = [&](int index, shapes::Shape shape) {
    fn->instructions.push_back({ir::OpType::kParameter, {}, shape, ir::ParameterAttrs{index, "p"}, ""});
    fn->parameters.push_back(static_cast<int>(fn->instructions.size()) - 1);
  };
  param(0, shapes::Make(dtypes::Float32, 3, 3));
  param(1, shapes::Make(dtypes::Float32, 2, 3, 1));  // a batch a does not have
  fn->instructions.push_back({ir::OpType::kTriangularSolve, {0, 1}, shapes::Make(dtypes::Float32, 2, 3, 1),
                              ir::LinalgAttrs{}, "hand.cc:1"});
  fn->instructions.push_back({ir::OpType::kCholesky, {0}, shapes::Make(dtypes::Float32, 3, 2), ir::LinalgAttrs{},
                              "hand.cc:2"});
  fn->outputs = {2};
  KILN_EXPECT_ERROR(backends::NewWithName("cpu")->Compile(fn), "cpu: TriangularSolve of Float32[3, 3] and Float32[2, 3, 1]");
  fn->outputs = {3};
  KILN_EXPECT_ERROR(backends::NewWithName("cpu")->Compile(fn), "cpu: Cholesky of Float32[3, 3] -> Float32[3, 2]");
}

TEST(LinalgErrors, UndefinedGradientsSaySo) {
  auto g = graph::NewGraph("errors");
  Node wide = graph::Parameter(g.get(), "w", shapes::Make(dtypes::Float64, 2, 3));
  Node tall = graph::Parameter(g.get(), "t", shapes::Make(dtypes::Float64, 3, 2));
  KILN_EXPECT_ERROR(graph::Gradient(graph::ReduceAllSum(graph::Lu(wide).lu), {wide}),
                    "the gradient of Lu (created at");
  KILN_EXPECT_ERROR(graph::Gradient(graph::ReduceAllSum(graph::Qr(tall, true).q), {tall}),
                    "with full_matrices is defined only when rows <= columns, got Float64[3, 2]");
  KILN_EXPECT_ERROR(graph::Gradient(graph::ReduceAllSum(graph::Svd(tall, true).u), {tall}),
                    "through u or vt with full_matrices needs square matrices, got Float64[3, 2]");
  // The values alone have a gradient with full matrices.
  EXPECT_NO_THROW(graph::Gradient(graph::ReduceAllSum(graph::Svd(tall, true).s), {tall}));
}

}  // namespace
}  // namespace kiln
