// Copyright 2026 The Kiln Authors.
// The numpy-style helpers (compositions of core ops) against naive references.
#include <cmath>
#include <numbers>

#include "tests/testing/gradcheck.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;
using testing::AllClose;
using testing::ToDoubles;

class Helpers : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> backend_ = backends::NewWithName(GetParam());
  testing::Rng rng_{42};
  Tensor Run(const std::function<Node(const std::vector<Node>&)>& fn, const std::vector<Tensor>& args) {
    return testing::Run1(backend_, fn, args);
  }
};

// Applies f elementwise to doubles.
std::vector<double> Map(const std::vector<double>& x, double (*f)(double)) {
  std::vector<double> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) y[i] = f(x[i]);
  return y;
}

TEST_P(Helpers, Activations) {
  auto shape = shapes::Make(dtypes::Float64, 3, 5);
  Tensor x = testing::Random(shape, rng_, -6, 6);
  auto xs = ToDoubles(x);
  struct Case {
    const char* name;
    Node (*op)(Node, graph::Loc);
    double (*ref)(double);
  };
  const Case cases[] = {
      {"Relu", graph::Relu, [](double v) { return std::max(v, 0.0); }},
      {"Sigmoid", graph::Sigmoid, [](double v) { return 1 / (1 + std::exp(-v)); }},
      {"Gelu", graph::Gelu, [](double v) { return 0.5 * v * (1 + std::erf(v / std::numbers::sqrt2)); }},
      {"GeluApprox", graph::GeluApprox,
       [](double v) {
         return 0.5 * v * (1 + std::tanh(std::sqrt(2 / std::numbers::pi) * (v + 0.044715 * v * v * v)));
       }},
      {"Silu", graph::Silu, [](double v) { return v / (1 + std::exp(-v)); }},
      {"Softplus", graph::Softplus, [](double v) { return std::log1p(std::exp(v)); }},
      {"Square", graph::Square, [](double v) { return v * v; }},
      {"Reciprocal", graph::Reciprocal, [](double v) { return 1 / v; }},
  };
  for (const Case& c : cases) {
    Tensor got = Run([&](const std::vector<Node>& p) { return c.op(p[0], graph::Loc::current()); }, {x});
    EXPECT_TRUE(AllClose(got, shape, Map(xs, c.ref), 1e-12, 1e-12)) << c.name;
  }
  Tensor leaky = Run([](const std::vector<Node>& p) { return graph::LeakyRelu(p[0], 0.1); }, {x});
  EXPECT_TRUE(AllClose(leaky, shape, Map(xs, [](double v) { return v >= 0 ? v : 0.1 * v; }), 0, 0));
}

// Relu's gradient is the cotangent where x > 0 and 0 elsewhere, x = 0
// included (PyTorch's and jax.nn.relu's convention), for Float32 and Float64;
// away from 0 it matches finite differences.
TEST_P(Helpers, ReluGradient) {
  for (dtypes::DType dtype : {dtypes::Float32, dtypes::Float64}) {
    Tensor x = tensors::FromValue(std::vector<double>{-2, -0.5, 0, 0.25, 3, -0.0});
    Tensor w = tensors::FromValue(std::vector<double>{1, 2, 3, 4, 5, 6});
    Tensor got = Run(
        [dtype](const std::vector<Node>& p) {
          Node xd = graph::ConvertDType(p[0], dtype);
          Node loss = graph::ReduceSum(graph::Mul(graph::Relu(xd), graph::ConvertDType(p[1], dtype)), {});
          return graph::ConvertDType(graph::Gradient(loss, {xd})[0], dtypes::Float64);
        },
        {x, w});
    EXPECT_TRUE(AllClose(got, x.Shape(), {0, 0, 0, 4, 5, 0}, 0, 0)) << dtypes::Name(dtype);
  }
  Tensor away_from_zero = tensors::FromValue(std::vector<double>{-2, -0.5, -0.1, 0.25, 3, 0.1});
  EXPECT_TRUE(testing::CheckGradients(
      backend_, [](const std::vector<Node>& p) { return graph::Relu(p[0]); }, {away_from_zero}));
}

TEST_P(Helpers, SoftplusIsStableForLargeInputs) {
  Tensor x = tensors::FromValue(std::vector<float>{-1000, 0, 1000});
  Tensor got = Run([](const std::vector<Node>& p) { return graph::Softplus(p[0]); }, {x});
  EXPECT_TRUE(AllClose(got, x.Shape(), {0, std::log(2.0), 1000}, 1e-6, 1e-6));
}

TEST_P(Helpers, SoftmaxLogSoftmaxLogSumExp) {
  auto shape = shapes::Make(dtypes::Float64, 4, 6);
  Tensor x = testing::Random(shape, rng_, -5, 5);
  auto xs = ToDoubles(x);
  std::vector<double> softmax(xs.size()), log_softmax(xs.size()), lse_rows(4);
  for (int r = 0; r < 4; ++r) {
    double sum = 0;
    for (int c = 0; c < 6; ++c) sum += std::exp(xs[r * 6 + c]);
    lse_rows[r] = std::log(sum);
    for (int c = 0; c < 6; ++c) {
      softmax[r * 6 + c] = std::exp(xs[r * 6 + c]) / sum;
      log_softmax[r * 6 + c] = xs[r * 6 + c] - std::log(sum);
    }
  }
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::Softmax(p[0]); }, {x}), shape, softmax,
                       1e-12, 1e-14));
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::LogSoftmax(p[0], -1); }, {x}), shape,
                       log_softmax, 1e-12, 1e-12));
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::LogSumExp(p[0], {1}); }, {x}),
                       shapes::Make(dtypes::Float64, 4), lse_rows, 1e-12, 1e-12));
  // Softmax over axis 0 sums to one per column.
  Tensor col = Run([](const std::vector<Node>& p) { return graph::ReduceSum(graph::Softmax(p[0], 0), 0); }, {x});
  EXPECT_TRUE(AllClose(col, shapes::Make(dtypes::Float64, 6), std::vector<double>(6, 1.0), 1e-12, 1e-12));
}

TEST_P(Helpers, SoftmaxIsStableForLargeAndInfiniteInputs) {
  Tensor x = tensors::FromValue(std::vector<std::vector<float>>{{1000, 1000}, {-INFINITY, 0}});
  Tensor got = Run([](const std::vector<Node>& p) { return graph::Softmax(p[0]); }, {x});
  EXPECT_TRUE(AllClose(got, x.Shape(), {0.5, 0.5, 0, 1}, 1e-6, 1e-6));
  Tensor lse = Run([](const std::vector<Node>& p) { return graph::LogSumExp(p[0], {1}); },
                   {tensors::FromValue(std::vector<std::vector<float>>{{-INFINITY, -INFINITY}, {1000, 1000}})});
  EXPECT_TRUE(AllClose(lse, shapes::Make(dtypes::Float32, 2), {-INFINITY, 1000 + std::log(2.0)}, 1e-6, 0));
}

TEST_P(Helpers, Means) {
  Tensor x = tensors::FromValue(std::vector<std::vector<double>>{{1, 2, 3}, {4, 5, 6}});
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::ReduceMean(p[0], 1); }, {x}),
                       shapes::Make(dtypes::Float64, 2), {2, 5}, 0, 1e-15));
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::ReduceAllMean(p[0]); }, {x}),
                       shapes::Make(dtypes::Float64), {3.5}, 0, 1e-15));
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::ReduceAllMax(p[0]); }, {x}),
                       shapes::Make(dtypes::Float64), {6}, 0, 0));
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::ReduceAllSum(p[0]); }, {x}),
                       shapes::Make(dtypes::Float64), {21}, 0, 0));
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::ArgMax(p[0], 1); }, {x}),
                       shapes::Make(dtypes::Int32, 2), {2, 2}, 0, 0));
}

// Naive batched matmul reference on doubles: a [B, M, K], b [B, K, N].
std::vector<double> NaiveMatMul(const std::vector<double>& a, const std::vector<double>& b, int B, int M, int K, int N,
                                bool broadcast_b) {
  std::vector<double> c(static_cast<size_t>(B * M * N), 0);
  for (int bi = 0; bi < B; ++bi)
    for (int i = 0; i < M; ++i)
      for (int j = 0; j < N; ++j) {
        double s = 0;
        for (int k = 0; k < K; ++k) s += a[(bi * M + i) * K + k] * b[((broadcast_b ? 0 : bi) * K + k) * N + j];
        c[(bi * M + i) * N + j] = s;
      }
  return c;
}

TEST_P(Helpers, MatMulNumpySemantics) {
  Tensor a = testing::Random(shapes::Make(dtypes::Float64, 3, 4, 5), rng_);
  Tensor b = testing::Random(shapes::Make(dtypes::Float64, 5, 2), rng_);
  auto want = NaiveMatMul(ToDoubles(a), ToDoubles(b), 3, 4, 5, 2, /*broadcast_b=*/true);
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::MatMul(p[0], p[1]); }, {a, b}),
                       shapes::Make(dtypes::Float64, 3, 4, 2), want, 1e-12, 1e-12));
  // Vector-matrix, matrix-vector and vector-vector.
  Tensor v = testing::Random(shapes::Make(dtypes::Float64, 5), rng_);
  Tensor m = testing::Random(shapes::Make(dtypes::Float64, 5, 3), rng_);
  auto vm = NaiveMatMul(ToDoubles(v), ToDoubles(m), 1, 1, 5, 3, false);
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::MatMul(p[0], p[1]); }, {v, m}),
                       shapes::Make(dtypes::Float64, 3), vm, 1e-12, 1e-12));
  Tensor mt = testing::Random(shapes::Make(dtypes::Float64, 3, 5), rng_);
  auto mv = NaiveMatMul(ToDoubles(mt), ToDoubles(v), 1, 3, 5, 1, false);
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::MatMul(p[0], p[1]); }, {mt, v}),
                       shapes::Make(dtypes::Float64, 3), mv, 1e-12, 1e-12));
  auto vv = NaiveMatMul(ToDoubles(v), ToDoubles(v), 1, 1, 5, 1, false);
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::MatMul(p[0], p[1]); }, {v, v}),
                       shapes::Make(dtypes::Float64), vv, 1e-12, 1e-12));
}

TEST_P(Helpers, MatMulErrors) {
  auto g = graph::NewGraph();
  Node a = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Float32, 2, 3));
  Node b = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Float32, 4, 2));
  KILN_EXPECT_ERROR(graph::MatMul(a, b), "MatMul: contracting dimensions differ: Float32[2, 3] and Float32[4, 2]");
  Node s = graph::Parameter(g.get(), "s", shapes::Make(dtypes::Float32));
  KILN_EXPECT_ERROR(graph::MatMul(a, s), "MatMul: operands must have rank >= 1");
}

TEST_P(Helpers, Einsum) {
  Tensor a = testing::Random(shapes::Make(dtypes::Float64, 2, 3, 4), rng_);
  Tensor b = testing::Random(shapes::Make(dtypes::Float64, 2, 4, 5), rng_);
  auto want = NaiveMatMul(ToDoubles(a), ToDoubles(b), 2, 3, 4, 5, false);
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::Einsum("bij,bjk->bik", p[0], p[1]); }, {a, b}),
                       shapes::Make(dtypes::Float64, 2, 3, 5), want, 1e-12, 1e-12));
  // Output permuted: "bij,bjk->kbi".
  Tensor perm = Run([](const std::vector<Node>& p) { return graph::Einsum("bij,bjk->kbi", p[0], p[1]); }, {a, b});
  ASSERT_EQ(perm.Shape(), shapes::Make(dtypes::Float64, 5, 2, 3));
  auto got = ToDoubles(perm);
  for (int bi = 0; bi < 2; ++bi)
    for (int i = 0; i < 3; ++i)
      for (int k = 0; k < 5; ++k) EXPECT_NEAR(got[(k * 2 + bi) * 3 + i], want[(bi * 3 + i) * 5 + k], 1e-12);
  // Outer product and a private axis summed out: "i,j->ij", "ij,j->i".
  Tensor u = tensors::FromValue(std::vector<double>{1, 2});
  Tensor w = tensors::FromValue(std::vector<double>{3, 4, 5});
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::Einsum("i,j->ij", p[0], p[1]); }, {u, w}),
                       shapes::Make(dtypes::Float64, 2, 3), {3, 4, 5, 6, 8, 10}, 0, 0));
  Tensor m = tensors::FromValue(std::vector<std::vector<double>>{{1, 2, 3}, {4, 5, 6}});
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::Einsum("ij,k->i", p[0], p[1]); }, {m, w}),
                       shapes::Make(dtypes::Float64, 2), {6 * 12, 15 * 12}, 0, 1e-12));
}

TEST_P(Helpers, EinsumErrors) {
  auto g = graph::NewGraph();
  Node a = graph::Parameter(g.get(), "a", shapes::Make(dtypes::Float32, 2, 3));
  Node b = graph::Parameter(g.get(), "b", shapes::Make(dtypes::Float32, 4, 2));
  KILN_EXPECT_ERROR(graph::Einsum("ij,jk->ik", a, b), "Einsum: axis 'j' has sizes 3 and 4");
  KILN_EXPECT_ERROR(graph::Einsum("ij->ik", a, b), "must look like \"ij,jk->ik\"");
  KILN_EXPECT_ERROR(graph::Einsum("ijk,ki->ij", a, b), "Einsum: the first operand \"ijk\" has 3 axes");
  KILN_EXPECT_ERROR(graph::Einsum("ij,ki->iz", a, b), "Einsum: output axis 'z' is in no operand");
}

TEST_P(Helpers, OneHot) {
  Tensor idx = tensors::FromValue(std::vector<int32_t>{0, 2, -1, 3});
  Tensor got = Run([](const std::vector<Node>& p) { return graph::OneHot(p[0], 3, dtypes::Float32); }, {idx});
  EXPECT_TRUE(AllClose(got, shapes::Make(dtypes::Float32, 4, 3), {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0}, 0, 0));
  auto g = graph::NewGraph();
  Node f = graph::Parameter(g.get(), "f", shapes::Make(dtypes::Float32, 2));
  KILN_EXPECT_ERROR(graph::OneHot(f, 3, dtypes::Float32), "OneHot: indices must be integers, got Float32[2]");
}

TEST_P(Helpers, AxisManipulation) {
  Tensor x = testing::Random(shapes::Make(dtypes::Int32, 2, 1, 3), rng_, -100, 100);
  auto xs = ToDoubles(x);
  EXPECT_EQ(Run([](const std::vector<Node>& p) { return graph::Squeeze(p[0]); }, {x}).Shape(),
            shapes::Make(dtypes::Int32, 2, 3));
  EXPECT_EQ(Run([](const std::vector<Node>& p) { return graph::ExpandAxes(p[0], {0, -1}); }, {x}).Shape(),
            shapes::Make(dtypes::Int32, 1, 2, 1, 3, 1));
  Tensor stacked = Run([](const std::vector<Node>& p) { return graph::Stack({p[0], p[0]}, 1); }, {x});
  EXPECT_EQ(stacked.Shape(), shapes::Make(dtypes::Int32, 2, 2, 1, 3));
  auto st = ToDoubles(stacked);
  for (int i = 0; i < 2; ++i)
    for (int s = 0; s < 2; ++s)
      for (int j = 0; j < 3; ++j) EXPECT_EQ(st[(i * 2 + s) * 3 + j], xs[i * 3 + j]);
  auto parts = testing::Run(backend_, [](const std::vector<Node>& p) { return graph::Split(p[0], -1, 3); }, {x});
  ASSERT_EQ(parts.size(), 3u);
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(AllClose(parts[k], shapes::Make(dtypes::Int32, 2, 1, 1), {xs[k], xs[3 + k]}, 0, 0));
  Tensor v = tensors::FromValue(std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6});
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::SliceAxis(p[0], 0, 1, -1, 2); }, {v}),
                       shapes::Make(dtypes::Int64, 3), {1, 3, 5}, 0, 0));
  auto g = graph::NewGraph();
  Node n = graph::Parameter(g.get(), "n", shapes::Make(dtypes::Float32, 2, 3));
  KILN_EXPECT_ERROR(graph::Squeeze(n, {0}), "Squeeze: axis 0 of Float32[2, 3] is not of size 1");
  KILN_EXPECT_ERROR(graph::Split(n, 1, 2), "Split: cannot split axis 1 of Float32[2, 3] into 2 equal parts");
  KILN_EXPECT_ERROR(graph::SliceAxis(n, 0, 0, 1, 0), "SliceAxis: stride must be >= 1, got 0");
  KILN_EXPECT_ERROR(graph::ReduceMean(graph::ConvertDType(n, dtypes::Int32), 0),
                    "ReduceMean: requires a float dtype, got Int32[2, 3]");
}

TEST_P(Helpers, ConstantsAndScalars) {
  Tensor x = tensors::FromValue(std::vector<float>{1, 2});
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return graph::ZerosLike(p[0]) + graph::OnesLike(p[0]); }, {x}),
                       x.Shape(), {1, 1}, 0, 0));
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return (p[0] * 2.0f + 1) / 2 - 0.5 * p[0]; }, {x}),
                       x.Shape(), {1.0, 1.5}, 1e-7, 0));
  EXPECT_TRUE(AllClose(Run([](const std::vector<Node>& p) { return -p[0] + graph::Ones(p[0].Graph(), p[0].Shape()); }, {x}),
                       x.Shape(), {0, -1}, 0, 0));
}

INSTANTIATE_TEST_SUITE_P(Backends, Helpers, ::testing::ValuesIn(testing::BackendNames()));

}  // namespace
}  // namespace kiln
