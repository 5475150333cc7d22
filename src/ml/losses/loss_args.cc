// Copyright 2026 The Kiln Authors.
// Parsing and weighted reduction shared by losses and metrics.
#include "src/ml/losses/loss_args.h"

#include <numeric>
#include <sstream>

#include "kiln/core/error.h"
#include "kiln/graph/ops.h"

namespace kiln::ml::losses::internal {

void LossError(std::string_view name, const std::string& message) { Throw(std::string(name) + ": " + message); }

std::string DimsToString(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

std::string FormatNumber(double value) {
  std::ostringstream os;
  os << value;
  return os.str();
}

namespace {

// Checks one node of the argument vectors: valid and in `g` (once known).
void CheckArgNode(std::string_view name, const Node& n, const std::string& what, graph::Graph*& g) {
  if (!n.Ok()) LossError(name, what + " is an invalid (default-constructed) Node");
  if (g == nullptr) g = n.Graph();
  if (!n.Graph()->IsWithin(g) && !g->IsWithin(n.Graph())) {
    LossError(name, what + " belongs to a different graph than labels[0]");
  }
}

// Sorts labels[i], i >= 1, into the weights or mask slot by dtype.
void AssignExtraLabel(std::string_view name, const Node& n, size_t i, LossArgs& args) {
  const std::string what = "labels[" + std::to_string(i) + "]";
  if (dtypes::IsFloat(n.DType())) {
    if (args.weights.Ok()) LossError(name, what + " " + n.Shape().ToString() + ": more than one float weights tensor");
    args.weights = n;
  } else if (n.DType() == dtypes::Bool) {
    if (args.mask.Ok()) LossError(name, what + " " + n.Shape().ToString() + ": more than one Bool mask");
    args.mask = n;
  } else {
    LossError(name, what + " must be float per-example weights or a Bool mask, got " + n.Shape().ToString());
  }
}

// `x` (weights or mask) broadcast to `dims`, aligned with its leading axes.
Node AlignLeading(std::string_view name, std::string_view what, Node x, const std::vector<int64_t>& dims) {
  std::vector<int64_t> x_dims = x.Shape().Dims();
  while (x_dims.size() > dims.size() && x_dims.back() == 1) x_dims.pop_back();
  bool fits = x_dims.size() <= dims.size();
  for (size_t i = 0; fits && i < x_dims.size(); ++i) fits = x_dims[i] == dims[i] || x_dims[i] == 1;
  if (!fits) {
    LossError(name, std::string(what) + " " + x.Shape().ToString() + " do not fit the batch shape " +
                        DimsToString(dims) + " (they must match its leading axes, each dim equal or 1)");
  }
  if (x_dims.size() != x.Shape().Dims().size()) x = graph::Reshape(x, x_dims);
  if (x_dims == dims) return x;
  std::vector<int> axes(x_dims.size());
  std::iota(axes.begin(), axes.end(), 0);
  return graph::BroadcastInDim(x, dims, axes);
}

}  // namespace

LossArgs ParseArgs(std::string_view name, const std::vector<Node>& labels, const std::vector<Node>& predictions) {
  if (labels.empty() || labels.size() > 3) {
    LossError(name, "expected 1 to 3 labels (targets, then optional float weights and/or a Bool mask), got " +
                        std::to_string(labels.size()));
  }
  if (predictions.size() != 1) {
    LossError(name, "expected 1 prediction, got " + std::to_string(predictions.size()));
  }
  graph::Graph* g = nullptr;
  for (size_t i = 0; i < labels.size(); ++i) CheckArgNode(name, labels[i], "labels[" + std::to_string(i) + "]", g);
  CheckArgNode(name, predictions[0], "predictions[0]", g);
  LossArgs args;
  args.targets = labels[0];
  args.predictions = predictions[0];
  for (size_t i = 1; i < labels.size(); ++i) AssignExtraLabel(name, labels[i], i, args);
  return args;
}

void RequireFloatPredictions(std::string_view name, const LossArgs& args, int min_rank) {
  const shapes::Shape& shape = args.predictions.Shape();
  if (!dtypes::IsFloat(shape.DType())) LossError(name, "predictions must be a float tensor, got " + shape.ToString());
  if (shape.Rank() < min_rank) {
    LossError(name, "predictions must have rank >= " + std::to_string(min_rank) +
                        " (the last axis holds the classes), got " + shape.ToString());
  }
}

dtypes::DType ComputeDType(dtypes::DType dtype) { return dtypes::IsHalf(dtype) ? dtypes::Float32 : dtype; }

Node ConvertTo(Node x, dtypes::DType dtype) { return x.DType() == dtype ? x : graph::ConvertDType(x, dtype); }

// The batch shape of a sparse loss's labels: [batch...] or [batch..., 1]
// against predictions [batch..., classes]; returns the labels reshaped to
// [batch...].
Node SparseLabels(std::string_view name, const LossArgs& args) {
  const shapes::Shape& y = args.targets.Shape();
  const shapes::Shape& p = args.predictions.Shape();
  if (!dtypes::IsInteger(y.DType())) {
    LossError(name, "labels must be integer class indices, got " + y.ToString());
  }
  std::vector<int64_t> batch(p.Dims().begin(), p.Dims().end() - 1);
  std::vector<int64_t> with_one = batch;
  with_one.push_back(1);
  if (y.Dims() == batch) return args.targets;
  if (y.Dims() == with_one) return graph::Reshape(args.targets, batch);
  LossError(name, "labels " + y.ToString() + " do not match predictions " + p.ToString() +
                      ": expected labels of shape " + DimsToString(batch) + " or " + DimsToString(with_one));
}

Node WeightedMean(std::string_view name, Node values, const LossArgs& args) {
  const std::vector<int64_t>& dims = values.Shape().Dims();
  Node zero = graph::ScalarLike(values, 0);
  // Aligned first, so that bad shapes are reported even for an empty batch.
  Node weights = args.weights.Ok() ? AlignLeading(name, "weights", args.weights, dims) : Node();
  Node mask = args.mask.Ok() ? AlignLeading(name, "mask", args.mask, dims) : Node();
  if (values.Shape().Size() == 0) return zero;
  if (!weights.Ok() && !mask.Ok()) return graph::ReduceAllMean(values);
  Node w = weights.Ok() ? ConvertTo(weights, values.DType()) : graph::Ones(values.Graph(), values.Shape());
  if (mask.Ok()) {
    // Select rather than multiply: a masked-out NaN (e.g. padding) stays out.
    values = graph::Where(mask, values, zero);
    w = graph::Where(mask, w, zero);
  }
  Node numerator = graph::ReduceAllSum(graph::Mul(w, values));
  Node denominator = graph::ReduceAllSum(w);
  Node empty = graph::Equal(denominator, zero);
  // The divisor is replaced where it is 0 so neither value nor gradient is NaN.
  Node safe = graph::Where(empty, graph::ScalarLike(values, 1), denominator);
  return graph::Where(empty, zero, graph::Div(numerator, safe));
}

}  // namespace kiln::ml::losses::internal
