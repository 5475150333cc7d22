// Copyright 2026 The Kiln Authors.
// Losses: values against hand computations (Float32 and Float64), weights
// and masks, numerical stability at extreme logits and probabilities,
// gradients against finite differences, and the error messages.
#include "kiln/ml/losses/losses.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "kiln/graph/ops.h"
#include "tests/testing/gradcheck.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;
namespace ml_losses = ml::losses;
using ml_losses::LossFn;

constexpr double kEps = 1e-7;  // the probability clipping of the losses

Tensor T(dtypes::DType dtype, std::vector<int64_t> dims, std::vector<double> values) {
  return testing::FromDoubles(shapes::Make(dtype, std::move(dims)), values);
}

// Runs `loss` on the tensors: labels = all but the last, predictions = the
// last. Checks the result is a scalar of the predictions' dtype.
double RunLoss(const std::shared_ptr<backends::Backend>& backend, const LossFn& loss, const std::vector<Tensor>& args) {
  auto fn = [&](const std::vector<Node>& nodes) {
    std::vector<Node> labels(nodes.begin(), nodes.end() - 1);
    return loss(labels, {nodes.back()});
  };
  Tensor out = testing::Run1(backend, fn, args);
  EXPECT_EQ(out.Shape(), shapes::Make(args.back().DType())) << "loss result must be a scalar of the predictions' dtype";
  return testing::ToDoubles(out)[0];
}

// Relative tolerance of a loss computed in `dtype` (a few roundings in logs
// and sums; the expectations are computed in double from the same inputs).
double Rtol(dtypes::DType dtype) { return dtype == dtypes::Float64 ? 1e-12 : 2e-6; }

const dtypes::DType kFloats[] = {dtypes::Float32, dtypes::Float64};

class LossesTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> backend_ = backends::NewWithName(GetParam());
};

// ---------------------------------------------------------------- Values.

// y = [[1, 2], [3, 4]], p = [[1.5, 2], [0, 5]]: differences 0.5, 0, 3, 1.
std::vector<Tensor> RegressionArgs(dtypes::DType dtype) {
  return {T(dtype, {2, 2}, {1, 2, 3, 4}), T(dtype, {2, 2}, {1.5, 2, 0, 5})};
}

TEST_P(LossesTest, RegressionLossesByHand) {
  for (dtypes::DType dtype : kFloats) {
    SCOPED_TRACE(dtypes::Name(dtype));
    const double rtol = Rtol(dtype);
    // (0.25 + 0 + 9 + 1) / 4.
    EXPECT_NEAR(RunLoss(backend_, ml_losses::MeanSquaredError, RegressionArgs(dtype)), 2.5625, 2.5625 * rtol);
    // (0.5 + 0 + 3 + 1) / 4.
    EXPECT_NEAR(RunLoss(backend_, ml_losses::MeanAbsoluteError, RegressionArgs(dtype)), 1.125, 1.125 * rtol);
    // delta 1: 0.5 * 0.25 + 0 + 1 * (3 - 0.5) + 1 * (1 - 0.5), over 4.
    EXPECT_NEAR(RunLoss(backend_, ml_losses::Huber(1.0), RegressionArgs(dtype)), 0.78125, 0.78125 * rtol);
    // delta 2: 0.125 + 0 + 2 * (3 - 1) + 0.5 * 1, over 4.
    EXPECT_NEAR(RunLoss(backend_, ml_losses::Huber(2.0), RegressionArgs(dtype)), 1.15625, 1.15625 * rtol);
    // Integer labels are converted to the predictions' dtype.
    EXPECT_NEAR(RunLoss(backend_, ml_losses::MeanSquaredError,
                        {T(dtypes::Int32, {2, 2}, {1, 2, 3, 4}), T(dtype, {2, 2}, {1.5, 2, 0, 5})}),
                2.5625, 2.5625 * rtol);
  }
}

TEST_P(LossesTest, BinaryCrossEntropyByHand) {
  for (dtypes::DType dtype : kFloats) {
    SCOPED_TRACE(dtypes::Name(dtype));
    const double rtol = Rtol(dtype);
    // -log(0.8), -log(1 - 0.4), -(0.25 log 0.5 + 0.75 log 0.5).
    double want = (-std::log(0.8) - std::log(0.6) - std::log(0.5)) / 3;
    EXPECT_NEAR(
        RunLoss(backend_, ml_losses::BinaryCrossEntropy, {T(dtype, {3}, {1, 0, 0.25}), T(dtype, {3}, {0.8, 0.4, 0.5})}),
        want, want * rtol);
    // softplus(x) - x y: log(1 + e^2) - 2, log(1 + e^-1), log(1 + e^0.5) - 0.125.
    want = (std::log1p(std::exp(2.0)) - 2 + std::log1p(std::exp(-1.0)) + std::log1p(std::exp(0.5)) - 0.125) / 3;
    EXPECT_NEAR(RunLoss(backend_, ml_losses::BinaryCrossEntropyLogits,
                        {T(dtype, {3}, {1, 0, 0.25}), T(dtype, {3}, {2, -1, 0.5})}),
                want, want * rtol);
    // Bool labels; a [2, 2] batch: the mean over all four elements.
    want = (std::log1p(std::exp(-1.0)) + std::log1p(std::exp(-2.0)) + std::log1p(std::exp(3.0)) + std::log(2.0)) / 4;
    EXPECT_NEAR(RunLoss(backend_, ml_losses::BinaryCrossEntropyLogits,
                        {T(dtypes::Bool, {2, 2}, {1, 0, 0, 1}), T(dtype, {2, 2}, {1, -2, 3, 0})}),
                want, want * rtol);
  }
}

TEST_P(LossesTest, CategoricalCrossEntropyByHand) {
  for (dtypes::DType dtype : kFloats) {
    SCOPED_TRACE(dtypes::Name(dtype));
    const double rtol = Rtol(dtype);
    // Example 0: -log 0.7; example 1 (soft label): -(0.5 log 0.25 + 0.5 log 0.25) = log 4.
    double want = (-std::log(0.7) + std::log(4.0)) / 2;
    EXPECT_NEAR(RunLoss(backend_, ml_losses::CategoricalCrossEntropy,
                        {T(dtype, {2, 3}, {0, 1, 0, 0.5, 0.5, 0}), T(dtype, {2, 3}, {0.2, 0.7, 0.1, 0.25, 0.25, 0.5})}),
                want, want * rtol);
    // Logits [1, 2, 3] with class 2: log(e + e^2 + e^3) - 3; logits 0 with a
    // soft label: log 3.
    const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
    want = (lse - 3 + std::log(3.0)) / 2;
    EXPECT_NEAR(RunLoss(backend_, ml_losses::CategoricalCrossEntropyLogits,
                        {T(dtype, {2, 3}, {0, 0, 1, 0.5, 0.5, 0}), T(dtype, {2, 3}, {1, 2, 3, 0, 0, 0})}),
                want, want * rtol);
  }
}

TEST_P(LossesTest, SparseCategoricalCrossEntropyByHand) {
  const double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const double lse1 = std::log(2 + std::exp(1.0));
  for (dtypes::DType dtype : kFloats) {
    const Tensor logits = T(dtype, {2, 3}, {1, 2, 3, 0, 1, 0});
    for (dtypes::DType label_dtype : {dtypes::Int32, dtypes::Int64, dtypes::Uint8, dtypes::Int8, dtypes::Uint64}) {
      for (std::vector<int64_t> dims : {std::vector<int64_t>{2}, std::vector<int64_t>{2, 1}}) {
        SCOPED_TRACE(std::string(dtypes::Name(dtype)) + " labels " + shapes::Make(label_dtype, dims).ToString());
        // Classes 2 and 1: lse0 - 3 and lse1 - 1.
        double want = (lse0 - 3 + lse1 - 1) / 2;
        EXPECT_NEAR(
            RunLoss(backend_, ml_losses::SparseCategoricalCrossEntropyLogits, {T(label_dtype, dims, {2, 1}), logits}),
            want, want * Rtol(dtype));
        // Class 0, and 7 out of range: the second example's loss is its
        // log-sum-exp (no logit picked).
        want = (lse0 - 1 + lse1) / 2;
        EXPECT_NEAR(
            RunLoss(backend_, ml_losses::SparseCategoricalCrossEntropyLogits, {T(label_dtype, dims, {0, 7}), logits}),
            want, want * Rtol(dtype));
      }
    }
    // Negative and huge unsigned labels are out of range too.
    const double want = (lse0 + lse1) / 2;
    EXPECT_NEAR(
        RunLoss(backend_, ml_losses::SparseCategoricalCrossEntropyLogits, {T(dtypes::Int8, {2}, {-1, -3}), logits}),
        want, want * Rtol(dtype));
    Tensor huge = tensors::FromValue(std::vector<uint64_t>{~uint64_t{0}, uint64_t{1} << 63});
    EXPECT_NEAR(RunLoss(backend_, ml_losses::SparseCategoricalCrossEntropyLogits, {huge, logits}), want,
                want * Rtol(dtype));
  }
}

TEST_P(LossesTest, SparseWithSequenceBatchAxes) {
  // Logits [2 examples, 2 steps, 3 classes], labels [2, 2], weights [2]
  // weighing both steps of an example.
  const Tensor logits = T(dtypes::Float64, {2, 2, 3}, {1, 2, 3, 0, 1, 0, 0, 0, 0, 3, 1, 1});
  const Tensor labels = T(dtypes::Int32, {2, 2}, {2, 1, 0, 0});
  const double lse0 = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  const double lse1 = std::log(2 + std::exp(1.0));
  const double lse3 = std::log(std::exp(3.0) + 2 * std::exp(1.0));
  const std::vector<double> l = {lse0 - 3, lse1 - 1, std::log(3.0), lse3 - 3};
  const double want = (1 * (l[0] + l[1]) + 3 * (l[2] + l[3])) / (2 * 1 + 2 * 3);
  EXPECT_NEAR(RunLoss(backend_, ml_losses::SparseCategoricalCrossEntropyLogits,
                      {labels, T(dtypes::Float64, {2}, {1, 3}), logits}),
              want, 1e-12);
}

TEST_P(LossesTest, HalfPrecisionPredictions) {
  // Computed in Float32, returned as Float16.
  const double want = (0.25 + 0 + 9 + 1) / 4;
  EXPECT_NEAR(RunLoss(backend_, ml_losses::MeanSquaredError, RegressionArgs(dtypes::Float16)), want, want * 1e-3);
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(RunLoss(backend_, ml_losses::SparseCategoricalCrossEntropyLogits,
                      {T(dtypes::Int32, {1}, {0}), T(dtypes::BFloat16, {1, 3}, {1, 2, 3})}),
              lse - 1, (lse - 1) * 1e-2);
}

// ------------------------------------------------------ Weights and masks.

// A loss on two examples whose per-example losses are known by hand.
struct WeightCase {
  std::string name;
  LossFn loss;
  std::vector<Tensor> (*args)(dtypes::DType);  // {labels, predictions}
  double example0, example1;                   // per-example losses
};

std::vector<Tensor> BinaryProbabilityArgs(dtypes::DType d) {
  return {T(d, {2, 2}, {1, 0, 0, 1}), T(d, {2, 2}, {0.8, 0.4, 0.5, 0.25})};
}
std::vector<Tensor> BinaryLogitArgs(dtypes::DType d) { return {T(d, {2, 1}, {1, 0}), T(d, {2, 1}, {2, -1})}; }
std::vector<Tensor> CategoricalProbabilityArgs(dtypes::DType d) {
  return {T(d, {2, 3}, {0, 1, 0, 0.5, 0.5, 0}), T(d, {2, 3}, {0.2, 0.7, 0.1, 0.25, 0.25, 0.5})};
}
std::vector<Tensor> CategoricalLogitArgs(dtypes::DType d) {
  return {T(d, {2, 3}, {0, 0, 1, 0.5, 0.5, 0}), T(d, {2, 3}, {1, 2, 3, 0, 0, 0})};
}
std::vector<Tensor> SparseArgs(dtypes::DType d) {
  return {T(dtypes::Int32, {2}, {2, 0}), T(d, {2, 3}, {1, 2, 3, 0, 0, 0})};
}

std::vector<WeightCase> WeightCases() {
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  return {
      // Per-example losses are means over the non-batch axis.
      {"MSE", ml_losses::MeanSquaredError, RegressionArgs, (0.25 + 0) / 2, (9 + 1) / 2.0},
      {"MAE", ml_losses::MeanAbsoluteError, RegressionArgs, 0.25, 2},
      {"Huber", ml_losses::Huber(1.0), RegressionArgs, 0.125 / 2, (2.5 + 0.5) / 2},
      {"BCE", ml_losses::BinaryCrossEntropy, BinaryProbabilityArgs, (-std::log(0.8) - std::log(0.6)) / 2,
       (-std::log(0.5) - std::log(0.25)) / 2},
      {"BCELogits", ml_losses::BinaryCrossEntropyLogits, BinaryLogitArgs, std::log1p(std::exp(-2.0)),
       std::log1p(std::exp(-1.0))},
      {"CCE", ml_losses::CategoricalCrossEntropy, CategoricalProbabilityArgs, -std::log(0.7), std::log(4.0)},
      {"CCELogits", ml_losses::CategoricalCrossEntropyLogits, CategoricalLogitArgs, lse - 3, std::log(3.0)},
      {"Sparse", ml_losses::SparseCategoricalCrossEntropyLogits, SparseArgs, lse - 3, std::log(3.0)},
  };
}

TEST_P(LossesTest, WeightsAndMasks) {
  for (const WeightCase& c : WeightCases()) {
    for (dtypes::DType dtype : kFloats) {
      SCOPED_TRACE(c.name + " " + dtypes::Name(dtype));
      const double rtol = Rtol(dtype), l0 = c.example0, l1 = c.example1;
      std::vector<Tensor> base = c.args(dtype);
      auto with = [&](std::vector<Tensor> extra) {
        std::vector<Tensor> args = {base[0]};
        args.insert(args.end(), extra.begin(), extra.end());
        args.push_back(base[1]);
        return RunLoss(backend_, c.loss, args);
      };
      EXPECT_NEAR(RunLoss(backend_, c.loss, base), (l0 + l1) / 2, (l0 + l1) * rtol);
      // Weights of another float dtype than the predictions are converted.
      EXPECT_NEAR(with({T(dtypes::Float32, {2}, {1, 3})}), (l0 + 3 * l1) / 4, (l0 + l1) * rtol);
      EXPECT_NEAR(with({T(dtypes::Float64, {2, 1}, {1, 3})}), (l0 + 3 * l1) / 4, (l0 + l1) * rtol);
      EXPECT_NEAR(with({T(dtypes::Bool, {2}, {1, 0})}), l0, l0 * rtol + 1e-12);
      EXPECT_NEAR(with({T(dtypes::Bool, {2}, {0, 1})}), l1, l1 * rtol);
      // Mask before weights works too: labels[1..] are sorted by dtype.
      EXPECT_NEAR(with({T(dtypes::Bool, {2}, {0, 1}), T(dtype, {2}, {2, 5})}), l1, l1 * rtol);
      EXPECT_NEAR(with({T(dtype, {2}, {0.5, 2}), T(dtypes::Bool, {2}, {1, 1})}), (0.5 * l0 + 2 * l1) / 2.5,
                  (l0 + l1) * rtol);
      // Nothing kept: 0, not NaN.
      EXPECT_EQ(with({T(dtypes::Bool, {2}, {0, 0})}), 0.0);
      EXPECT_EQ(with({T(dtype, {2}, {0, 0})}), 0.0);
      EXPECT_EQ(with({T(dtype, {2}, {4, 0}), T(dtypes::Bool, {2}, {0, 1})}), 0.0);
      // A scalar weight broadcasts to every example.
      EXPECT_NEAR(with({T(dtype, {}, {7})}), (l0 + l1) / 2, (l0 + l1) * rtol);
    }
  }
}

TEST_P(LossesTest, PerElementWeightsOfElementwiseLosses) {
  // Weights of the labels' full shape weigh each element.
  const double want = (1 * 0.25 + 2 * 0 + 3 * 9 + 4 * 1) / 10.0;
  EXPECT_NEAR(RunLoss(backend_, ml_losses::MeanSquaredError,
                      {T(dtypes::Float64, {2, 2}, {1, 2, 3, 4}), T(dtypes::Float64, {2, 2}, {1, 2, 3, 4}),
                       T(dtypes::Float64, {2, 2}, {1.5, 2, 0, 5})}),
              want, 1e-12);
}

TEST_P(LossesTest, MaskedOutNaNDoesNotLeak) {
  const double got = RunLoss(backend_, ml_losses::MeanSquaredError,
                             {T(dtypes::Float32, {2}, {1, 2}), T(dtypes::Bool, {2}, {1, 0}),
                              T(dtypes::Float32, {2}, {3, std::numeric_limits<double>::quiet_NaN()})});
  EXPECT_EQ(got, 4.0);
}

TEST_P(LossesTest, EmptyBatchIsZero) {
  EXPECT_EQ(
      RunLoss(backend_, ml_losses::MeanSquaredError, {T(dtypes::Float32, {0, 2}, {}), T(dtypes::Float32, {0, 2}, {})}),
      0.0);
  EXPECT_EQ(RunLoss(backend_, ml_losses::SparseCategoricalCrossEntropyLogits,
                    {T(dtypes::Int32, {0}, {}), T(dtypes::Float32, {0, 3}, {})}),
            0.0);
}

// -------------------------------------------------- Numerical stability.

TEST_P(LossesTest, ExtremeLogitsAreFinite) {
  for (dtypes::DType dtype : kFloats) {
    SCOPED_TRACE(dtypes::Name(dtype));
    // softplus(x) - x y: 0, 0, 1000, 1000.
    EXPECT_EQ(RunLoss(backend_, ml_losses::BinaryCrossEntropyLogits,
                      {T(dtype, {4}, {1, 0, 0, 1}), T(dtype, {4}, {1000, -1000, 1000, -1000})}),
              500.0);
    // Issue 10: infinite logits. A confident right answer costs exactly 0
    // (softplus(x) - x y used to give Inf - Inf = NaN), a confident wrong one
    // costs Inf, and a soft label costs Inf too.
    const double inf = std::numeric_limits<double>::infinity();
    EXPECT_EQ(RunLoss(backend_, ml_losses::BinaryCrossEntropyLogits,
                      {T(dtype, {2}, {1, 0}), T(dtype, {2}, {inf, -inf})}),
              0.0);
    EXPECT_EQ(RunLoss(backend_, ml_losses::BinaryCrossEntropyLogits, {T(dtype, {1}, {0}), T(dtype, {1}, {inf})}), inf);
    EXPECT_EQ(RunLoss(backend_, ml_losses::BinaryCrossEntropyLogits, {T(dtype, {1}, {0.5}), T(dtype, {1}, {-inf})}), inf);
    // Its gradient is sigmoid(x) - y there too (mean over 4): 0, 0, 1/4, -1/8.
    auto grad = [](const std::vector<Node>& nodes) {
      return graph::Gradient(ml_losses::BinaryCrossEntropyLogits({nodes[0]}, {nodes[1]}), {nodes[1]})[0];
    };
    EXPECT_EQ(testing::ToDoubles(testing::Run1(backend_, grad, {T(dtype, {4}, {1, 0, 0, 0.5}), T(dtype, {4}, {inf, -inf, inf, inf})})),
              (std::vector<double>{0, 0, 0.25, 0.125}));
    // log(e^1000 + e^-1000) - x[label]: 0 for the right class, 2000 for the wrong one.
    EXPECT_EQ(RunLoss(backend_, ml_losses::CategoricalCrossEntropyLogits,
                      {T(dtype, {2, 2}, {1, 0, 0, 1}), T(dtype, {2, 2}, {1000, -1000, 1000, -1000})}),
              1000.0);
    EXPECT_EQ(RunLoss(backend_, ml_losses::SparseCategoricalCrossEntropyLogits,
                      {T(dtypes::Int32, {2}, {0, 1}), T(dtype, {2, 2}, {1000, -1000, 1000, -1000})}),
              1000.0);
    // A logit of -Inf on a class with label 0 contributes nothing (no 0 * -Inf).
    EXPECT_NEAR(RunLoss(backend_, ml_losses::CategoricalCrossEntropyLogits,
                        {T(dtype, {1, 3}, {0, 1, 0}), T(dtype, {1, 3}, {-inf, 0, 0})}),
                std::log(2.0), 1e-6);
    EXPECT_NEAR(RunLoss(backend_, ml_losses::SparseCategoricalCrossEntropyLogits,
                        {T(dtypes::Int32, {1}, {1}), T(dtype, {1, 3}, {-inf, 0, 0})}),
                std::log(2.0), 1e-6);
  }
}

TEST_P(LossesTest, ProbabilitiesAreClipped) {
  for (dtypes::DType dtype : kFloats) {
    SCOPED_TRACE(dtypes::Name(dtype));
    // The clip bounds as the dtype stores them.
    const double lo = testing::ToDoubles(T(dtype, {}, {kEps}))[0];
    const double hi = testing::ToDoubles(T(dtype, {}, {1 - kEps}))[0];
    // (y, p) = (1, 0), (0, 1), (0, 0), (1, 1).
    const double want = (-std::log(lo) - std::log1p(-hi) - std::log1p(-lo) - std::log(hi)) / 4;
    const double got =
        RunLoss(backend_, ml_losses::BinaryCrossEntropy, {T(dtype, {4}, {1, 0, 0, 1}), T(dtype, {4}, {0, 1, 0, 1})});
    EXPECT_TRUE(std::isfinite(got));
    EXPECT_NEAR(got, want, want * 1e-5);
    EXPECT_GT(got, 7.9);  // about (16.1 + 15.9) / 4: the clipped logs are large but finite
    // One-hot label on a class predicted with probability 0: -log(eps).
    const double cce = RunLoss(backend_, ml_losses::CategoricalCrossEntropy,
                               {T(dtype, {1, 3}, {1, 0, 0}), T(dtype, {1, 3}, {0, 1, 0})});
    EXPECT_NEAR(cce, -std::log(lo), -std::log(lo) * 1e-6);
  }
}

// ------------------------------------------------------------ Gradients.

// Gradients of a loss with respect to the predictions (and float labels and
// weights) against central finite differences, in Float64.
void ExpectGradients(const std::shared_ptr<backends::Backend>& backend, const LossFn& loss,
                     const std::vector<Tensor>& args, testing::GradCheckOptions options = {}) {
  auto fn = [&](const std::vector<Node>& nodes) {
    std::vector<Node> labels(nodes.begin(), nodes.end() - 1);
    return loss(labels, {nodes.back()});
  };
  options.rtol = 1e-6;
  options.atol = 1e-8;
  EXPECT_TRUE(testing::CheckGradients(backend, fn, args, options));
}

TEST_P(LossesTest, GradientsMatchFiniteDifferences) {
  const dtypes::DType f = dtypes::Float64;
  const Tensor y = T(f, {2, 3}, {0.3, -1.2, 2.0, 0.5, 0.1, -0.7});
  const Tensor p = T(f, {2, 3}, {0.9, -0.4, 0.2, 0.45, 1.6, -0.1});  // |y - p| 0.6, 0.8, 1.8, 0.05, 1.5, 0.6
  const Tensor w = T(f, {2}, {0.5, 2.0});
  const Tensor mask = T(dtypes::Bool, {2}, {1, 1});
  for (const auto& [name, loss] : std::vector<std::pair<std::string, LossFn>>{{"MSE", ml_losses::MeanSquaredError},
                                                                              {"MAE", ml_losses::MeanAbsoluteError},
                                                                              {"Huber", ml_losses::Huber(1.0)}}) {
    SCOPED_TRACE(name);
    ExpectGradients(backend_, loss, {y, p});
    ExpectGradients(backend_, loss, {y, w, mask, p});
  }
  const Tensor targets = T(f, {2, 3}, {1, 0, 0.3, 0, 1, 0.8});
  const Tensor probabilities = T(f, {2, 3}, {0.7, 0.2, 0.45, 0.1, 0.85, 0.6});
  const Tensor logits = T(f, {2, 3}, {2.0, -1.0, 0.0, 0.3, 1.5, -2.5});  // includes a logit of exactly 0
  ExpectGradients(backend_, ml_losses::BinaryCrossEntropy, {targets, probabilities});
  ExpectGradients(backend_, ml_losses::BinaryCrossEntropyLogits, {targets, logits});
  ExpectGradients(backend_, ml_losses::BinaryCrossEntropyLogits, {targets, w, logits});
  const Tensor distributions = T(f, {2, 3}, {0, 1, 0, 0.2, 0.3, 0.5});
  const Tensor softmaxed = T(f, {2, 3}, {0.2, 0.7, 0.1, 0.3, 0.3, 0.4});
  ExpectGradients(backend_, ml_losses::CategoricalCrossEntropy, {distributions, softmaxed});
  ExpectGradients(backend_, ml_losses::CategoricalCrossEntropyLogits, {distributions, logits});
  ExpectGradients(backend_, ml_losses::CategoricalCrossEntropyLogits, {distributions, w, logits});
  ExpectGradients(backend_, ml_losses::SparseCategoricalCrossEntropyLogits, {T(dtypes::Int32, {2}, {1, 2}), logits});
  ExpectGradients(backend_, ml_losses::SparseCategoricalCrossEntropyLogits,
                  {T(dtypes::Int64, {2, 1}, {0, 5}), w, mask, logits});
}

TEST_P(LossesTest, LogitGradientsAreExactAtExtremes) {
  // d/dx of the mean BCE-with-logits is (sigmoid(x) - y) / n, also at x = 0
  // and at +-1000 (where it is exactly 0 or +-1 / n).
  auto fn = [](const std::vector<Node>& nodes) {
    Node loss = ml_losses::BinaryCrossEntropyLogits({nodes[0]}, {nodes[1]});
    return graph::Gradient(loss, {nodes[1]})[0];
  };
  Tensor grad = testing::Run1(backend_, fn,
                              {T(dtypes::Float64, {4}, {1, 0, 0, 1}), T(dtypes::Float64, {4}, {0, 0, 1000, -1000})});
  EXPECT_TRUE(testing::AllClose(grad, shapes::Make(dtypes::Float64, {4}), {-0.125, 0.125, 0.25, -0.25}, 1e-12, 0));
  auto sparse = [](const std::vector<Node>& nodes) {
    Node loss = ml_losses::SparseCategoricalCrossEntropyLogits({nodes[0]}, {nodes[1]});
    return graph::Gradient(loss, {nodes[1]})[0];
  };
  // softmax - one_hot: [1, 0] - [0, 1] for logits [1000, -1000] with label 1.
  grad = testing::Run1(backend_, sparse, {T(dtypes::Int32, {1}, {1}), T(dtypes::Float32, {1, 2}, {1000, -1000})});
  EXPECT_TRUE(testing::AllClose(grad, shapes::Make(dtypes::Float32, {1, 2}), {1, -1}, 1e-6, 0));
}

INSTANTIATE_TEST_SUITE_P(Backends, LossesTest, ::testing::ValuesIn(testing::BackendNames()));

// --------------------------------------------------------------- Errors.

class LossErrorsTest : public testing::GraphErrorTest {
 protected:
  Node F32(std::vector<int64_t> dims) { return Param(shapes::Make(dtypes::Float32, std::move(dims))); }
  Node I32(std::vector<int64_t> dims) { return Param(shapes::Make(dtypes::Int32, std::move(dims))); }
  Node Mask(std::vector<int64_t> dims) { return Param(shapes::Make(dtypes::Bool, std::move(dims))); }
};

TEST_F(LossErrorsTest, ArgumentCounts) {
  Node y = F32({2}), p = F32({2});
  KILN_EXPECT_ERROR(ml_losses::MeanSquaredError({}, {p}),
                    "MeanSquaredError: expected 1 to 3 labels (targets, then optional float weights and/or a Bool "
                    "mask), got 0");
  KILN_EXPECT_ERROR(ml_losses::MeanAbsoluteError({y, F32({2}), Mask({2}), Mask({2})}, {p}),
                    "MeanAbsoluteError: expected 1 to 3 labels");
  KILN_EXPECT_ERROR(ml_losses::BinaryCrossEntropy({y}, {}), "BinaryCrossEntropy: expected 1 prediction, got 0");
  KILN_EXPECT_ERROR(ml_losses::BinaryCrossEntropyLogits({y}, {p, p}),
                    "BinaryCrossEntropyLogits: expected 1 prediction, got 2");
  KILN_EXPECT_ERROR(ml_losses::MeanSquaredError({Node()}, {p}),
                    "MeanSquaredError: labels[0] is an invalid (default-constructed) Node");
  auto other = graph::NewGraph("other");
  Node foreign = graph::Parameter(other.get(), "x", shapes::Make(dtypes::Float32, 2));
  KILN_EXPECT_ERROR(ml_losses::MeanSquaredError({y}, {foreign}),
                    "MeanSquaredError: predictions[0] belongs to a different graph than labels[0]");
}

TEST_F(LossErrorsTest, WeightsAndMasks) {
  Node y = F32({2, 3}), p = F32({2, 3});
  KILN_EXPECT_ERROR(ml_losses::MeanSquaredError({y, I32({2})}, {p}),
                    "MeanSquaredError: labels[1] must be float per-example weights or a Bool mask, got Int32[2]");
  KILN_EXPECT_ERROR(ml_losses::MeanSquaredError({y, F32({2}), F32({2})}, {p}),
                    "MeanSquaredError: labels[2] Float32[2]: more than one float weights tensor");
  KILN_EXPECT_ERROR(ml_losses::MeanSquaredError({y, Mask({2}), Mask({2})}, {p}),
                    "MeanSquaredError: labels[2] Bool[2]: more than one Bool mask");
  KILN_EXPECT_ERROR(ml_losses::MeanSquaredError({y, F32({3})}, {p}),
                    "MeanSquaredError: weights Float32[3] do not fit the batch shape [2, 3] (they must match its "
                    "leading axes, each dim equal or 1)");
  KILN_EXPECT_ERROR(ml_losses::SparseCategoricalCrossEntropyLogits({I32({2}), Mask({2, 3})}, {p}),
                    "SparseCategoricalCrossEntropyLogits: mask Bool[2, 3] do not fit the batch shape [2]");
  KILN_EXPECT_ERROR(ml_losses::CategoricalCrossEntropy({y, F32({4})}, {p}),
                    "CategoricalCrossEntropy: weights Float32[4] do not fit the batch shape [2]");
}

TEST_F(LossErrorsTest, ShapesAndDTypes) {
  KILN_EXPECT_ERROR(ml_losses::MeanSquaredError({F32({2})}, {F32({2, 1})}),
                    "MeanSquaredError: labels Float32[2] and predictions Float32[2, 1] must have the same shape");
  KILN_EXPECT_ERROR(ml_losses::Huber(1)({F32({2, 3})}, {F32({3, 2})}),
                    "Huber: labels Float32[2, 3] and predictions Float32[3, 2] must have the same shape");
  KILN_EXPECT_ERROR(ml_losses::BinaryCrossEntropy({F32({2})}, {I32({2})}),
                    "BinaryCrossEntropy: predictions must be a float tensor, got Int32[2]");
  KILN_EXPECT_ERROR(ml_losses::CategoricalCrossEntropyLogits({I32({2, 3})}, {F32({2, 3})}),
                    "CategoricalCrossEntropyLogits: labels must be float class distributions (one-hot or soft), got "
                    "Int32[2, 3]; use SparseCategoricalCrossEntropyLogits for class indices");
  KILN_EXPECT_ERROR(ml_losses::CategoricalCrossEntropy({F32({})}, {F32({})}),
                    "CategoricalCrossEntropy: predictions must have rank >= 1 (the last axis holds the classes), got "
                    "Float32");
  KILN_EXPECT_ERROR(ml_losses::SparseCategoricalCrossEntropyLogits({F32({2})}, {F32({2, 4})}),
                    "SparseCategoricalCrossEntropyLogits: labels must be integer class indices, got Float32[2]");
  KILN_EXPECT_ERROR(ml_losses::SparseCategoricalCrossEntropyLogits({Mask({2})}, {F32({2, 4})}),
                    "SparseCategoricalCrossEntropyLogits: labels must be integer class indices, got Bool[2]");
  KILN_EXPECT_ERROR(ml_losses::SparseCategoricalCrossEntropyLogits({I32({3})}, {F32({2, 4})}),
                    "SparseCategoricalCrossEntropyLogits: labels Int32[3] do not match predictions Float32[2, 4]: "
                    "expected labels of shape [2] or [2, 1]");
  KILN_EXPECT_ERROR(ml_losses::SparseCategoricalCrossEntropyLogits({I32({2})}, {F32({2, 0})}),
                    "SparseCategoricalCrossEntropyLogits: predictions Float32[2, 0] have no classes");
  KILN_EXPECT_ERROR(ml_losses::SparseCategoricalCrossEntropyLogits({I32({2})}, {I32({2, 4})}),
                    "SparseCategoricalCrossEntropyLogits: predictions must be a float tensor, got Int32[2, 4]");
}

TEST_F(LossErrorsTest, ConstantLabelsOutOfRange) {
  Node logits = F32({2, 3});
  KILN_EXPECT_ERROR(
      ml_losses::SparseCategoricalCrossEntropyLogits({graph::Const(g_.get(), std::vector<int32_t>{0, 5})}, {logits}),
      "SparseCategoricalCrossEntropyLogits: constant label 5 at flat index 1 is out of range [0, 3)");
  KILN_EXPECT_ERROR(
      ml_losses::SparseCategoricalCrossEntropyLogits({graph::Const(g_.get(), std::vector<int64_t>{-1, 0})}, {logits}),
      "constant label -1 at flat index 0 is out of range [0, 3)");
  // In range: fine.
  EXPECT_TRUE(
      ml_losses::SparseCategoricalCrossEntropyLogits({graph::Const(g_.get(), std::vector<uint8_t>{2, 0})}, {logits})
          .Ok());
}

TEST(LossErrors, HuberDelta) {
  KILN_EXPECT_ERROR(ml_losses::Huber(-1), "Huber: delta must be positive and finite, got -1");
  KILN_EXPECT_ERROR(ml_losses::Huber(0), "Huber: delta must be positive and finite, got 0");
  KILN_EXPECT_ERROR(ml_losses::Huber(std::numeric_limits<double>::quiet_NaN()),
                    "Huber: delta must be positive and finite, got nan");
}

}  // namespace
}  // namespace kiln
