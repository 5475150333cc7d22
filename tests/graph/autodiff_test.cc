// Copyright 2026 The Kiln Authors.
// The autodiff API: Gradient, VJP, Jacobian, StopGradient, custom gradients,
// higher order (second derivatives, Hessian-vector products) and errors.
#include <cmath>

#include "tests/testing/gradcheck.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;
using testing::AllClose;
using testing::ToDoubles;

class Autodiff : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> backend_ = backends::NewWithName(GetParam());
  std::vector<Tensor> Run(const std::function<std::vector<Node>(const std::vector<Node>&)>& fn,
                          const std::vector<Tensor>& args) {
    return testing::Run(backend_, fn, args);
  }
};

TEST_P(Autodiff, GradientOfKnownFunction) {
  // f(x, y) = sum(x^2 * y) -> df/dx = 2xy, df/dy = x^2.
  Tensor x = tensors::FromValue(std::vector<double>{1, 2, 3});
  Tensor y = tensors::FromValue(std::vector<double>{4, 5, 6});
  auto grads = Run(
      [](const std::vector<Node>& p) {
        Node f = graph::ReduceAllSum(p[0] * p[0] * p[1]);
        return graph::Gradient(f, {p[0], p[1]});
      },
      {x, y});
  EXPECT_TRUE(AllClose(grads[0], x.Shape(), {8, 20, 36}, 0, 1e-12));
  EXPECT_TRUE(AllClose(grads[1], y.Shape(), {1, 4, 9}, 0, 1e-12));
}

TEST_P(Autodiff, UnusedAndRepeatedInputs) {
  // x is used twice (cotangents add); z is not used (zeros).
  Tensor x = tensors::FromValue(std::vector<double>{1, -2});
  auto grads = Run(
      [](const std::vector<Node>& p) {
        Node f = graph::ReduceAllSum(graph::Sin(p[0]) + p[0] * 3.0);
        return graph::Gradient(f, {p[0], p[1]});
      },
      {x, tensors::FromValue(std::vector<double>{7, 7, 7})});
  EXPECT_TRUE(AllClose(grads[0], x.Shape(), {std::cos(1.0) + 3, std::cos(-2.0) + 3}, 0, 1e-12));
  EXPECT_TRUE(AllClose(grads[1], shapes::Make(dtypes::Float64, 3), {0, 0, 0}, 0, 0));
}

TEST_P(Autodiff, GradientWithRespectToIntermediateAndChainedNodes) {
  // h = 2x; f = sum(h^2). df/dh = 2h = 4x; df/dx = 8x, through h even though h is also asked for.
  Tensor x = tensors::FromValue(std::vector<double>{1, 3});
  auto grads = Run(
      [](const std::vector<Node>& p) {
        Node h = p[0] * 2.0;
        Node f = graph::ReduceAllSum(h * h);
        return graph::Gradient(f, {h, p[0]});
      },
      {x});
  EXPECT_TRUE(AllClose(grads[0], x.Shape(), {4, 12}, 0, 1e-12));
  EXPECT_TRUE(AllClose(grads[1], x.Shape(), {8, 24}, 0, 1e-12));
}

TEST_P(Autodiff, StopGradientBlocksOneUse) {
  // f = sum(x * stop(x)) -> df/dx = stop(x) = x (only the first use counts).
  Tensor x = tensors::FromValue(std::vector<double>{2, 5});
  auto grads = Run(
      [](const std::vector<Node>& p) {
        Node f = graph::ReduceAllSum(p[0] * graph::StopGradient(p[0]));
        return graph::Gradient(f, {p[0]});
      },
      {x});
  EXPECT_TRUE(AllClose(grads[0], x.Shape(), {2, 5}, 0, 0));
}

TEST_P(Autodiff, CustomGradient) {
  // Gradient clipping as a custom gradient: the forward is identity, the backward clamps.
  Tensor x = tensors::FromValue(std::vector<double>{1, 2});
  auto outs = Run(
      [](const std::vector<Node>& p) {
        Node y = graph::IdentityWithCustomGradient(p[0], [](Node, Node ct) {
          return graph::Clamp(graph::ScalarLike(ct, -1), ct, graph::ScalarLike(ct, 1));
        });
        Node f = graph::ReduceAllSum(y * 10.0);
        return std::vector<Node>{y, graph::Gradient(f, {p[0]})[0]};
      },
      {x});
  EXPECT_TRUE(AllClose(outs[0], x.Shape(), {1, 2}, 0, 0));
  EXPECT_TRUE(AllClose(outs[1], x.Shape(), {1, 1}, 0, 0));
}

TEST_P(Autodiff, VJPAndJacobian) {
  // y = [x0 * x1, sin(x0)]: J = [[x1, x0], [cos x0, 0]].
  Tensor x = tensors::FromValue(std::vector<double>{0.5, 3});
  auto outs = Run(
      [](const std::vector<Node>& p) {
        Node x0 = graph::SliceAxis(p[0], 0, 0, 1), x1 = graph::SliceAxis(p[0], 0, 1, 2);
        Node y = graph::Concatenate({x0 * x1, graph::Sin(x0)}, 0);
        Node ct = graph::Const(p[0].Graph(), std::vector<double>{1, 10});
        return std::vector<Node>{graph::Jacobian(y, p[0]), graph::VJP({y}, {ct}, {p[0]})[0]};
      },
      {x});
  EXPECT_TRUE(AllClose(outs[0], shapes::Make(dtypes::Float64, 2, 2), {3, 0.5, std::cos(0.5), 0}, 0, 1e-12));
  EXPECT_TRUE(AllClose(outs[1], x.Shape(), {3 + 10 * std::cos(0.5), 0.5}, 0, 1e-12));
}

TEST_P(Autodiff, SecondDerivativesOfElementwiseFunctions) {
  struct Case {
    const char* name;
    Node (*f)(Node, graph::Loc);
    double (*second)(double);
  };
  const Case cases[] = {
      {"Sin", graph::Sin, [](double v) { return -std::sin(v); }},
      {"Exp", graph::Exp, [](double v) { return std::exp(v); }},
      {"Tanh", graph::Tanh, [](double v) { double t = std::tanh(v); return -2 * t * (1 - t * t); }},
      {"Logistic", graph::Logistic,
       [](double v) { double s = 1 / (1 + std::exp(-v)); return s * (1 - s) * (1 - 2 * s); }},
      {"Log", graph::Log, [](double v) { return -1 / (v * v); }},
      {"Sqrt", graph::Sqrt, [](double v) { return -0.25 * std::pow(v, -1.5); }},
      {"Erf", graph::Erf, [](double v) { return -4 * v / std::sqrt(M_PI) * std::exp(-v * v); }},
  };
  Tensor x = tensors::FromValue(std::vector<double>{0.3, 0.9, 1.7});
  for (const Case& c : cases) {
    auto d2 = Run(
        [&](const std::vector<Node>& p) {
          Node dy = graph::Gradient(graph::ReduceAllSum(c.f(p[0], graph::Loc::current())), {p[0]})[0];
          return graph::Gradient(graph::ReduceAllSum(dy), {p[0]});
        },
        {x});
    std::vector<double> want;
    for (double v : ToDoubles(x)) want.push_back(c.second(v));
    EXPECT_TRUE(AllClose(d2[0], x.Shape(), want, 1e-10, 1e-12)) << c.name;
  }
}

// A small MLP loss: mean((tanh(x W1 + b1) W2 - t)^2) as a function of the flattened weights.
Node MlpLoss(Node w, Node x, Node t) {
  Node w1 = graph::Reshape(graph::SliceAxis(w, 0, 0, 6), {3, 2});
  Node b1 = graph::SliceAxis(w, 0, 6, 8);
  Node w2 = graph::Reshape(graph::SliceAxis(w, 0, 8, 10), {2, 1});
  Node h = graph::Tanh(graph::MatMul(x, w1) + b1);
  Node err = graph::MatMul(h, w2) - t;
  return graph::ReduceAllMean(err * err);
}

TEST_P(Autodiff, HessianVectorProductOfAnMlpLoss) {
  testing::Rng rng(3);
  Tensor w = testing::Random(shapes::Make(dtypes::Float64, 10), rng, -1, 1);
  Tensor v = testing::Random(shapes::Make(dtypes::Float64, 10), rng, -1, 1);
  Tensor x = testing::Random(shapes::Make(dtypes::Float64, 4, 3), rng, -1, 1);
  Tensor t = testing::Random(shapes::Make(dtypes::Float64, 4, 1), rng, -1, 1);
  auto grad = graph::NewExec(backend_, [](Node w, Node x, Node t) { return graph::Gradient(MlpLoss(w, x, t), {w})[0]; });
  auto hvp = graph::NewExec(backend_, [](Node w, Node v, Node x, Node t) {
    Node g = graph::Gradient(MlpLoss(w, x, t), {w})[0];
    return graph::Gradient(graph::ReduceAllSum(g * v), {w})[0];
  });
  // Central difference of the gradient along v.
  const double eps = 1e-5;
  auto shifted = [&](double s) {
    std::vector<double> ws = ToDoubles(w), vs = ToDoubles(v);
    for (size_t i = 0; i < ws.size(); ++i) ws[i] += s * vs[i];
    return ToDoubles(grad.Call(testing::FromDoubles(w.Shape(), ws), x, t));
  };
  auto plus = shifted(eps), minus = shifted(-eps);
  std::vector<double> want(plus.size());
  for (size_t i = 0; i < want.size(); ++i) want[i] = (plus[i] - minus[i]) / (2 * eps);
  EXPECT_TRUE(AllClose(hvp.Call(w, v, x, t), w.Shape(), want, 1e-6, 1e-8));
}

TEST_P(Autodiff, Errors) {
  auto g = graph::NewGraph();
  Node x = graph::Parameter(g.get(), "x", shapes::Make(dtypes::Float32, 3));
  Node i = graph::Parameter(g.get(), "i", shapes::Make(dtypes::Int32, 3));
  KILN_EXPECT_ERROR(graph::Gradient(x, {x}), "Gradient: output must be a float scalar, got Float32[3]");
  KILN_EXPECT_ERROR(graph::Gradient(graph::ReduceAllSum(x), {i}),
                    "Gradient: cannot differentiate with respect to Int32[3]: only float and complex values have gradients");
  KILN_EXPECT_ERROR(graph::VJP({x}, {graph::ReduceAllSum(x)}, {x}),
                    "VJP: cotangent Float32 does not match output #0 Float32[3]");
  // A float path through a non-differentiable op.
  Node bits = graph::Bitcast(graph::Bitcast(x, dtypes::Int32), dtypes::Float32);
  KILN_EXPECT_ERROR(graph::Gradient(graph::ReduceAllSum(bits), {x}), "Gradient: op Bitcast (created at autodiff_test.cc:");
  Node y = graph::IdentityWithCustomGradient(x, [](Node, Node ct) { return graph::ReduceAllSum(ct); });
  KILN_EXPECT_ERROR(graph::Gradient(graph::ReduceAllSum(y), {x}),
                    "IdentityWithCustomGradient: the custom gradient must return Float32[3], got Float32");
}

INSTANTIATE_TEST_SUITE_P(Backends, Autodiff, ::testing::ValuesIn(testing::BackendNames()));

}  // namespace
}  // namespace kiln
