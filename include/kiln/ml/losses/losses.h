// Copyright 2026 The Kiln Authors.
// Loss functions: (labels, predictions) -> scalar mean loss.
//
// Every loss takes the labels and the model's predictions as vectors of
// Nodes (as GoMLX does) so any of them can be handed to the trainer:
//   labels[0]      the targets;
//   labels[1..]    optional: a float tensor of per-example weights and/or a
//                  Bool mask (false drops the example), each of the batch
//                  shape (the leading axes of labels[0]) or broadcastable to it;
//   predictions[0] the model's output.
// The result is the weighted mean over the kept examples (0 if none).
// Computations are numerically stable (log-sum-exp, log1p/softplus forms).
#pragma once

#include <functional>
#include <vector>

#include "kiln/graph/graph.h"

namespace kiln::ml::losses {

using graph::Node;

/// The type of a loss function.
using LossFn = std::function<Node(const std::vector<Node>& labels, const std::vector<Node>& predictions)>;

/// mean((labels - predictions)^2), averaged over all but the batch axis first.
Node MeanSquaredError(const std::vector<Node>& labels, const std::vector<Node>& predictions);
/// mean(|labels - predictions|).
Node MeanAbsoluteError(const std::vector<Node>& labels, const std::vector<Node>& predictions);
/// Huber loss with threshold `delta`: quadratic below delta, linear above.
LossFn Huber(double delta = 1.0);
/// Binary cross-entropy of probabilities in (0, 1) (clipped to [eps, 1-eps]).
Node BinaryCrossEntropy(const std::vector<Node>& labels, const std::vector<Node>& predictions);
/// Binary cross-entropy of logits: max(x, 0) - x*y + log1p(exp(-|x|)).
Node BinaryCrossEntropyLogits(const std::vector<Node>& labels, const std::vector<Node>& predictions);
/// Categorical cross-entropy of probabilities (last axis = classes); labels are
/// one-hot (or soft) distributions.
Node CategoricalCrossEntropy(const std::vector<Node>& labels, const std::vector<Node>& predictions);
/// Categorical cross-entropy of logits (log-softmax based).
Node CategoricalCrossEntropyLogits(const std::vector<Node>& labels, const std::vector<Node>& predictions);
/// Cross-entropy of logits [batch..., classes] with integer class labels of
/// shape [batch...] or [batch..., 1]. Labels out of [0, classes) are an error
/// at graph level when constant, else give a loss of log-sum-exp (no class).
Node SparseCategoricalCrossEntropyLogits(const std::vector<Node>& labels, const std::vector<Node>& predictions);

}  // namespace kiln::ml::losses
