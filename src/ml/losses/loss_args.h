// Copyright 2026 The Kiln Authors.
// Internal helpers shared by the losses (losses.cc) and the metrics
// (src/ml/train/metrics.cc): parsing of the (labels, predictions) vectors,
// the optional per-example weights and mask, and the weighted mean over the
// kept examples.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kiln/graph/graph.h"

namespace kiln::ml::losses::internal {

using graph::Node;

/// The parsed arguments of a loss or metric.
struct LossArgs {
  Node targets;      // labels[0]
  Node predictions;  // predictions[0]
  Node weights;      // optional float per-example weights (!Ok() when absent)
  Node mask;         // optional Bool mask (!Ok() when absent)
};

/// Throws kiln::Error "`name`: `message`".
[[noreturn]] void LossError(std::string_view name, const std::string& message);

/// "[2, 3]".
std::string DimsToString(const std::vector<int64_t>& dims);

/// A number as people write it: "0.5", "-1", "1e-07", "nan".
std::string FormatNumber(double value);

/// Checks the counts, validity, graph and dtypes of the optional labels:
/// labels = {targets[, weights][, mask]} in any order after the targets
/// (a float tensor is the weights, a Bool one the mask, at most one each);
/// predictions = {predictions}. Throws kiln::Error naming `name`.
LossArgs ParseArgs(std::string_view name, const std::vector<Node>& labels, const std::vector<Node>& predictions);

/// Checks that `args.predictions` is a float tensor of rank >= `min_rank`.
void RequireFloatPredictions(std::string_view name, const LossArgs& args, int min_rank = 0);

/// The dtype the computation runs in for predictions of `dtype`: Float32 for
/// the half types (their sums and logs lose too much precision), else itself.
dtypes::DType ComputeDType(dtypes::DType dtype);

/// `x` converted to `dtype` (x itself if it already has it).
Node ConvertTo(Node x, dtypes::DType dtype);

/// The class-index labels of a sparse loss or metric, reshaped to [batch...]:
/// labels[0] must be an integer tensor of shape [batch...] or [batch..., 1]
/// for predictions [batch..., classes] (rank >= 1, checked by the caller).
Node SparseLabels(std::string_view name, const LossArgs& args);

/// The weighted mean sum(w * m * values) / sum(w * m) of the float values
/// `values` (0 when the denominator is 0, also for no elements at all).
/// Weights and mask align with the leading axes of `values` (the batch axes:
/// axis 0 first) and are broadcast over the rest; each of their dims must be
/// equal to the values' or 1, and trailing size-1 axes beyond the values'
/// rank are ignored (so weights [batch, 1] fit a per-example loss [batch]).
/// Averaging over the trailing (non-batch) axes first and then taking the
/// weighted mean over the examples gives the same number, since every
/// example has the same count of elements. Masked-out elements are selected
/// away (not multiplied by 0), so a NaN there does not leak into the result.
Node WeightedMean(std::string_view name, Node values, const LossArgs& args);

}  // namespace kiln::ml::losses::internal
