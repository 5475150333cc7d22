// Copyright 2026 The Kiln Authors.
// Metrics: accuracies on known inputs (with weights and masks), the metric
// wrappers, the host-side accumulators' math, and the error messages.
#include "kiln/ml/train/metrics.h"

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "tests/testing/testing.h"

namespace kiln {
namespace {

using graph::Node;
using ml::train::Aggregation;
using ml::train::Metric;
using ml::train::MetricAccumulator;
using tensors::Tensor;

Tensor T(dtypes::DType dtype, std::vector<int64_t> dims, std::vector<double> values) {
  return testing::FromDoubles(shapes::Make(dtype, std::move(dims)), values);
}

// Runs the metric on the tensors (labels = all but the last, predictions =
// the last); checks the result is a Float32 scalar.
double RunMetric(const std::shared_ptr<backends::Backend>& backend, const Metric& metric,
                 const std::vector<Tensor>& args) {
  auto fn = [&](const std::vector<Node>& nodes) {
    std::vector<Node> labels(nodes.begin(), nodes.end() - 1);
    return metric.fn(labels, {nodes.back()});
  };
  Tensor out = testing::Run1(backend, fn, args);
  EXPECT_EQ(out.Shape(), shapes::Make(dtypes::Float32));
  return testing::ToDoubles(out)[0];
}

class MetricsTest : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<backends::Backend> backend_ = backends::NewWithName(GetParam());
};

// Logits with argmax 1, 0, 2 and 0 (a tie between classes 0 and 1 picks the first).
Tensor Logits(dtypes::DType dtype) { return T(dtype, {4, 3}, {1, 3, 2, 5, 0, 1, 0, 0, 1, 2, 2, 0}); }

TEST_P(MetricsTest, SparseCategoricalAccuracy) {
  const Metric accuracy = ml::train::SparseCategoricalAccuracy();
  EXPECT_EQ(accuracy.name, "accuracy");
  EXPECT_EQ(accuracy.aggregation, Aggregation::kMean);
  for (dtypes::DType dtype : {dtypes::Float32, dtypes::Float64, dtypes::BFloat16}) {
    for (dtypes::DType label_dtype : {dtypes::Int32, dtypes::Int64, dtypes::Uint8}) {
      SCOPED_TRACE(std::string(dtypes::Name(dtype)) + " " + dtypes::Name(label_dtype));
      // Correct: yes, yes, no, no.
      EXPECT_EQ(RunMetric(backend_, accuracy, {T(label_dtype, {4}, {1, 0, 0, 1}), Logits(dtype)}), 0.5);
      EXPECT_EQ(RunMetric(backend_, accuracy, {T(label_dtype, {4, 1}, {1, 0, 2, 0}), Logits(dtype)}), 1.0);
      // Out-of-range labels are never right.
      EXPECT_EQ(RunMetric(backend_, accuracy, {T(label_dtype, {4}, {1, 7, 9, 0}), Logits(dtype)}), 0.5);
    }
  }
  const Tensor labels = T(dtypes::Int32, {4}, {1, 0, 0, 1});
  // Weighted (3 + 1) / 6, masked 1 / 3, both (3 + 0) / 4.
  EXPECT_NEAR(RunMetric(backend_, accuracy, {labels, T(dtypes::Float32, {4}, {3, 1, 1, 1}), Logits(dtypes::Float32)}),
              4.0 / 6, 1e-7);
  EXPECT_NEAR(RunMetric(backend_, accuracy, {labels, T(dtypes::Bool, {4}, {1, 0, 1, 1}), Logits(dtypes::Float32)}),
              1.0 / 3, 1e-7);
  EXPECT_EQ(RunMetric(backend_, accuracy,
                      {labels, T(dtypes::Float64, {4}, {3, 1, 1, 1}), T(dtypes::Bool, {4}, {1, 0, 0, 1}),
                       Logits(dtypes::Float32)}),
            0.75);
  EXPECT_EQ(RunMetric(backend_, accuracy, {labels, T(dtypes::Bool, {4}, {0, 0, 0, 0}), Logits(dtypes::Float32)}), 0.0);
  // Sequence batch axes: [2, 2, 3] logits against [2, 2] labels.
  EXPECT_EQ(RunMetric(backend_, accuracy,
                      {T(dtypes::Int32, {2, 2}, {1, 0, 2, 2}),
                       T(dtypes::Float32, {2, 2, 3}, {1, 3, 2, 5, 0, 1, 0, 0, 1, 2, 2, 0})}),
            0.75);
}

TEST_P(MetricsTest, BinaryAccuracy) {
  const Metric logits = ml::train::BinaryAccuracy();
  const Metric probabilities = ml::train::BinaryAccuracy("binary_accuracy", false);
  EXPECT_EQ(probabilities.name, "binary_accuracy");
  for (dtypes::DType dtype : {dtypes::Float32, dtypes::Float64}) {
    SCOPED_TRACE(dtypes::Name(dtype));
    // Predicted positive: yes, no, no (0 is not > 0), yes; labels 1, 0, 1, 0.
    const Tensor x = T(dtype, {4}, {2, -1, 0, 0.3});
    EXPECT_EQ(RunMetric(backend_, logits, {T(dtype, {4}, {1, 0, 1, 0}), x}), 0.5);
    EXPECT_EQ(RunMetric(backend_, logits, {T(dtypes::Bool, {4}, {1, 0, 1, 0}), x}), 0.5);
    EXPECT_EQ(RunMetric(backend_, logits, {T(dtypes::Int32, {4}, {1, 0, 0, 1}), x}), 1.0);
    // Probabilities: threshold 0.5 (0.5 itself is negative).
    const Tensor p = T(dtype, {2, 2}, {0.9, 0.2, 0.5, 0.6});
    EXPECT_EQ(RunMetric(backend_, probabilities, {T(dtype, {2, 2}, {1, 0, 0, 1}), p}), 1.0);
    EXPECT_EQ(RunMetric(backend_, probabilities, {T(dtype, {2, 2}, {1, 1, 1, 1}), p}), 0.5);
    // Per-example weights over a [2, 2] batch: example 0 right twice, example 1 once.
    EXPECT_NEAR(RunMetric(backend_, probabilities, {T(dtype, {2, 2}, {1, 0, 1, 1}), T(dtype, {2}, {1, 3}), p}),
                (2 * 1 + 1 * 3) / 8.0, 1e-7);
  }
}

TEST_P(MetricsTest, MovingAverageWrapsTheMetric) {
  Metric m = ml::train::MovingAverage(ml::train::SparseCategoricalAccuracy("acc"), 0.9);
  EXPECT_EQ(m.name, "acc");
  EXPECT_EQ(m.aggregation, Aggregation::kMovingAverage);
  EXPECT_EQ(m.decay, 0.9);
  EXPECT_EQ(RunMetric(backend_, m, {T(dtypes::Int32, {4}, {1, 0, 0, 1}), Logits(dtypes::Float32)}), 0.5);
}

INSTANTIATE_TEST_SUITE_P(Backends, MetricsTest, ::testing::ValuesIn(testing::BackendNames()));

TEST(MetricAccumulator, WeightedMean) {
  MetricAccumulator acc(Aggregation::kMean);
  EXPECT_TRUE(std::isnan(acc.Value()));
  acc.Add(1, 2);
  EXPECT_EQ(acc.Value(), 1.0);
  acc.Add(4, 1);
  EXPECT_EQ(acc.Value(), 2.0);  // (1 * 2 + 4 * 1) / 3
  acc.Add(100, 0);              // weight 0: no effect
  EXPECT_EQ(acc.Value(), 2.0);
  acc.Add(0.5);  // default weight 1: (6 + 0.5) / 4
  EXPECT_EQ(acc.Value(), 1.625);
  acc.Reset();
  EXPECT_TRUE(std::isnan(acc.Value()));
  acc.Add(7, 3);
  EXPECT_EQ(acc.Value(), 7.0);
}

TEST(MetricAccumulator, ExponentialMovingAverage) {
  MetricAccumulator acc(Aggregation::kMovingAverage, 0.9);
  EXPECT_TRUE(std::isnan(acc.Value()));
  acc.Add(10, 5);  // starts at the first value; the weight does not matter
  EXPECT_EQ(acc.Value(), 10.0);
  acc.Add(0);
  EXPECT_NEAR(acc.Value(), 9.0, 1e-12);  // 0.9 * 10 + 0.1 * 0
  acc.Add(20);
  EXPECT_NEAR(acc.Value(), 10.1, 1e-12);  // 0.9 * 9 + 0.1 * 20
  acc.Reset();
  EXPECT_TRUE(std::isnan(acc.Value()));
  acc.Add(-3);
  EXPECT_EQ(acc.Value(), -3.0);
  MetricAccumulator frozen(Aggregation::kMovingAverage, 1.0);
  frozen.Add(2);
  frozen.Add(50);
  EXPECT_EQ(frozen.Value(), 2.0);
}

TEST(MetricErrors, Messages) {
  KILN_EXPECT_ERROR(ml::train::MovingAverage(ml::train::BinaryAccuracy(), 1.5),
                    "MovingAverage: decay must be in [0, 1], got 1.5 (metric \"accuracy\")");
  KILN_EXPECT_ERROR(ml::train::MovingAverage(ml::train::BinaryAccuracy(), -0.1), "got -0.1");
  MetricAccumulator acc(Aggregation::kMean);
  KILN_EXPECT_ERROR(acc.Add(1, -1), "MetricAccumulator::Add: weight must be finite and >= 0, got -1");
  KILN_EXPECT_ERROR(acc.Add(1, std::numeric_limits<double>::infinity()), "got inf");
  KILN_EXPECT_ERROR(acc.Add(1, std::numeric_limits<double>::quiet_NaN()), "got nan");
  EXPECT_TRUE(std::isnan(acc.Value()));  // the rejected values were not added
}

class MetricGraphErrorsTest : public testing::GraphErrorTest {};

TEST_F(MetricGraphErrorsTest, Messages) {
  Node logits = Param(shapes::Make(dtypes::Float32, 4, 3));
  Metric sparse = ml::train::SparseCategoricalAccuracy();
  KILN_EXPECT_ERROR(sparse.fn({Param(shapes::Make(dtypes::Float32, 4))}, {logits}),
                    "SparseCategoricalAccuracy: labels must be integer class indices, got Float32[4]");
  KILN_EXPECT_ERROR(
      sparse.fn({Param(shapes::Make(dtypes::Int32, 3))}, {logits}),
      "SparseCategoricalAccuracy: labels Int32[3] do not match predictions Float32[4, 3]: expected labels "
      "of shape [4] or [4, 1]");
  KILN_EXPECT_ERROR(sparse.fn({Param(shapes::Make(dtypes::Int32, 4))}, {Param(shapes::Make(dtypes::Float32))}),
                    "SparseCategoricalAccuracy: predictions must have rank >= 1");
  KILN_EXPECT_ERROR(sparse.fn({Param(shapes::Make(dtypes::Int32, 4))}, {Param(shapes::Make(dtypes::Float32, 4, 0))}),
                    "SparseCategoricalAccuracy: predictions Float32[4, 0] have no classes");
  KILN_EXPECT_ERROR(sparse.fn({}, {logits}), "SparseCategoricalAccuracy: expected 1 to 3 labels");
  Metric binary = ml::train::BinaryAccuracy();
  KILN_EXPECT_ERROR(binary.fn({Param(shapes::Make(dtypes::Float32, 4))}, {Param(shapes::Make(dtypes::Float32, 4, 1))}),
                    "BinaryAccuracy: labels Float32[4] and predictions Float32[4, 1] must have the same shape");
  KILN_EXPECT_ERROR(binary.fn({Param(shapes::Make(dtypes::Float32, 4))}, {Param(shapes::Make(dtypes::Int32, 4))}),
                    "BinaryAccuracy: predictions must be a float tensor, got Int32[4]");
  KILN_EXPECT_ERROR(binary.fn({Param(shapes::Make(dtypes::Float32, 4)), Param(shapes::Make(dtypes::Float32, 5))},
                              {Param(shapes::Make(dtypes::Float32, 4))}),
                    "BinaryAccuracy: weights Float32[5] do not fit the batch shape [4]");
}

}  // namespace
}  // namespace kiln
