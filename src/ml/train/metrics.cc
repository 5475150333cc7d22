// Copyright 2026 The Kiln Authors.
// Metrics: in-graph batch values (accuracies) and their host-side aggregation.
//
// The accuracies take the same (labels, predictions) vectors as the losses,
// including the optional float weights and Bool mask in labels[1..] (see
// losses.h), and return the weighted fraction of correct predictions as a
// Float32 scalar (0 for an empty or fully masked batch).
#include "kiln/ml/train/metrics.h"

#include <cmath>
#include <limits>
#include <string>

#include "kiln/core/error.h"
#include "kiln/graph/ops.h"
#include "src/ml/losses/loss_args.h"

namespace kiln::ml::train {

namespace {

using graph::Node;
namespace internal = losses::internal;

// Fraction of examples whose argmax over the class axis equals the label.
Node SparseAccuracy(const std::vector<Node>& labels, const std::vector<Node>& predictions) {
  constexpr std::string_view kName = "SparseCategoricalAccuracy";
  internal::LossArgs args = internal::ParseArgs(kName, labels, predictions);
  internal::RequireFloatPredictions(kName, args, 1);
  Node targets = internal::ConvertTo(internal::SparseLabels(kName, args), dtypes::Int64);
  if (args.predictions.Shape().Dims().back() == 0) {
    internal::LossError(kName, "predictions " + args.predictions.Shape().ToString() + " have no classes");
  }
  // Labels out of range (also huge unsigned ones, which wrap negative) never
  // equal an argmax, so they count as wrong.
  Node predicted = graph::ArgMax(args.predictions, -1, dtypes::Int64);
  Node correct = graph::ConvertDType(graph::Equal(predicted, targets), dtypes::Float32);
  return internal::WeightedMean(kName, correct, args);
}

// Fraction of elements where (prediction > threshold) == (label > 0.5).
Node BinaryAccuracyFn(const std::vector<Node>& labels, const std::vector<Node>& predictions, bool logits) {
  constexpr std::string_view kName = "BinaryAccuracy";
  internal::LossArgs args = internal::ParseArgs(kName, labels, predictions);
  internal::RequireFloatPredictions(kName, args);
  const shapes::Shape& y = args.targets.Shape();
  const shapes::Shape& p = args.predictions.Shape();
  if (y.Dims() != p.Dims()) {
    internal::LossError(kName,
                        "labels " + y.ToString() + " and predictions " + p.ToString() + " must have the same shape");
  }
  Node positive = graph::GreaterThan(args.predictions, graph::ScalarLike(args.predictions, logits ? 0.0 : 0.5));
  // Bool, integer and float labels alike: a label is positive if above 0.5.
  Node y32 = internal::ConvertTo(args.targets, dtypes::Float32);
  Node label = graph::GreaterThan(y32, graph::ScalarLike(y32, 0.5));
  Node correct = graph::ConvertDType(graph::Equal(positive, label), dtypes::Float32);
  return internal::WeightedMean(kName, correct, args);
}

}  // namespace

Metric SparseCategoricalAccuracy(const std::string& name) { return Metric{name, SparseAccuracy}; }

Metric BinaryAccuracy(const std::string& name, bool logits) {
  return Metric{name, [logits](const std::vector<Node>& labels, const std::vector<Node>& predictions) {
                  return BinaryAccuracyFn(labels, predictions, logits);
                }};
}

Metric MovingAverage(Metric metric, double decay) {
  if (!(decay >= 0 && decay <= 1)) {
    Throw("MovingAverage: decay must be in [0, 1], got " + internal::FormatNumber(decay) + " (metric \"" + metric.name +
          "\")");
  }
  metric.aggregation = Aggregation::kMovingAverage;
  metric.decay = decay;
  return metric;
}

void MetricAccumulator::Add(double value, double weight) {
  if (!(weight >= 0) || std::isinf(weight)) {
    Throw("MetricAccumulator::Add: weight must be finite and >= 0, got " + internal::FormatNumber(weight));
  }
  if (aggregation_ == Aggregation::kMean) {
    sum_ += value * weight;
    weight_ += weight;
    return;
  }
  // The average starts at the first value rather than at 0, so early values
  // are not biased toward 0.
  average_ = started_ ? decay_ * average_ + (1 - decay_) * value : value;
  started_ = true;
}

double MetricAccumulator::Value() const {
  if (aggregation_ == Aggregation::kMean) {
    // NaN before any Add (and while every weight added was 0).
    return weight_ > 0 ? sum_ / weight_ : std::numeric_limits<double>::quiet_NaN();
  }
  return started_ ? average_ : std::numeric_limits<double>::quiet_NaN();
}

void MetricAccumulator::Reset() {
  sum_ = weight_ = average_ = 0;
  started_ = false;
}

}  // namespace kiln::ml::train
