// Copyright 2026 The Kiln Authors.
// Metrics: a per-batch value computed in the graph, aggregated on the host.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kiln/graph/graph.h"

namespace kiln::ml::train {

/// How batch values of a metric combine over steps.
enum class Aggregation {
  kMean,           // mean over the batches seen since the last reset (weighted by batch size)
  kMovingAverage,  // exponential moving average (see Metric::decay)
};

/// A metric: `fn(labels, predictions)` gives a float scalar for one batch.
struct Metric {
  std::string name;  // "loss", "accuracy"
  std::function<graph::Node(const std::vector<graph::Node>& labels, const std::vector<graph::Node>& predictions)> fn;
  Aggregation aggregation = Aggregation::kMean;
  double decay = 0.99;  // kMovingAverage: new = decay * old + (1 - decay) * batch
};

/// Accuracy of logits or probabilities [batch..., classes] against integer
/// labels [batch...] (or [batch..., 1]): the fraction whose argmax is the label.
Metric SparseCategoricalAccuracy(const std::string& name = "accuracy");
/// Accuracy of binary predictions: logits (threshold 0) or probabilities
/// (threshold 0.5) against labels in {0, 1}.
Metric BinaryAccuracy(const std::string& name = "accuracy", bool logits = true);
/// The same metric as an exponential moving average.
Metric MovingAverage(Metric metric, double decay = 0.99);

/// Host-side aggregation of one metric.
class MetricAccumulator {
 public:
  /// An empty accumulator of the given kind.
  explicit MetricAccumulator(Aggregation aggregation, double decay = 0.99) : aggregation_(aggregation), decay_(decay) {}
  /// Adds a batch value, weighted by the batch size for kMean.
  void Add(double value, double weight = 1);
  /// The aggregated value (NaN before any Add).
  double Value() const;
  /// Forgets every value added.
  void Reset();

 private:
  Aggregation aggregation_;
  double decay_;
  double sum_ = 0, weight_ = 0, average_ = 0;
  bool started_ = false;
};

}  // namespace kiln::ml::train
