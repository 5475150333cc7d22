// Copyright 2026 The Kiln Authors.
// Loss functions. Each one validates its arguments (kiln::Error naming the
// loss and the shapes), computes a per-element (elementwise losses) or
// per-example (cross-entropies over the class axis) loss in the compute dtype
// (Float32 for half-precision predictions), and reduces it with the optional
// weights and mask to the weighted mean over the kept examples.
//
// Batch axis convention: axis 0 of labels[0] is the batch. Weights and masks
// align with the leading axes of the per-element loss (labels[0]'s shape for
// the elementwise losses, the predictions' shape without the class axis for
// the cross-entropies), so a [batch] weight weighs each example and a
// [batch, time] weight each step of a sequence. For the elementwise losses the
// per-example loss is the mean over the non-batch axes; with equal element
// counts per example this is the same as the weighted mean over all elements.
#include "kiln/ml/losses/losses.h"

#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "kiln/core/error.h"
#include "kiln/graph/ops.h"
#include "src/ml/losses/loss_args.h"

namespace kiln::ml::losses {

namespace {

using internal::LossArgs;
using internal::LossError;

// Probabilities are clipped to [kEpsilon, 1 - kEpsilon] before the log.
constexpr double kEpsilon = 1e-7;

// The parsed arguments of a loss, targets and predictions converted to the
// compute dtype.
struct Prepared {
  LossArgs args;
  Node targets, predictions;
};

// Checks labels[0] has the predictions' exact shape (any dtype: integer and
// Bool targets are converted to the predictions' dtype). No broadcasting: a
// [batch] label against [batch, 1] predictions would silently give a
// [batch, batch] loss.
void CheckSameShape(std::string_view name, const LossArgs& args) {
  const shapes::Shape& y = args.targets.Shape();
  const shapes::Shape& p = args.predictions.Shape();
  if (y.Dims() != p.Dims()) {
    LossError(name, "labels " + y.ToString() + " and predictions " + p.ToString() + " must have the same shape");
  }
}

Prepared PrepareElementwise(std::string_view name, const std::vector<Node>& labels,
                               const std::vector<Node>& predictions) {
  LossArgs args = internal::ParseArgs(name, labels, predictions);
  internal::RequireFloatPredictions(name, args);
  CheckSameShape(name, args);
  const dtypes::DType dtype = internal::ComputeDType(args.predictions.DType());
  return {args, internal::ConvertTo(args.targets, dtype), internal::ConvertTo(args.predictions, dtype)};
}

// The weighted mean of `values`, in the predictions' dtype.
Node Finish(std::string_view name, Node values, const LossArgs& args) {
  return internal::ConvertTo(internal::WeightedMean(name, values, args), args.predictions.DType());
}

// Probabilities clipped to [eps, 1 - eps], both bounds rounded to p's dtype.
Node ClipProbabilities(Node p) {
  return graph::Clamp(graph::ScalarLike(p, kEpsilon), p, graph::ScalarLike(p, 1 - kEpsilon));
}

// Checks the class axis of a categorical loss: labels[0] is a float
// distribution of the predictions' shape [batch..., classes].
Prepared PrepareCategorical(std::string_view name, const std::vector<Node>& labels,
                               const std::vector<Node>& predictions) {
  LossArgs args = internal::ParseArgs(name, labels, predictions);
  internal::RequireFloatPredictions(name, args, 1);
  if (!dtypes::IsFloat(args.targets.DType())) {
    LossError(name, "labels must be float class distributions (one-hot or soft), got " +
                        args.targets.Shape().ToString() +
                        "; use SparseCategoricalCrossEntropyLogits for class indices");
  }
  CheckSameShape(name, args);
  const dtypes::DType dtype = internal::ComputeDType(args.predictions.DType());
  return {args, internal::ConvertTo(args.targets, dtype), internal::ConvertTo(args.predictions, dtype)};
}

// -sum over the class axis of labels * log_probabilities. A log-probability
// of -Inf (a logit of -Inf) where the label is 0 counts as 0, not 0 * -Inf =
// NaN. The guard sits on the log-probability, not on the product, so the
// gradient with respect to the labels stays the log-probability.
Node CrossEntropyTerms(Node targets, Node log_probabilities) {
  Node zero = graph::ZerosLike(targets);
  Node minus_inf = graph::ScalarLike(log_probabilities, -std::numeric_limits<double>::infinity());
  Node absent = graph::LogicalAnd(graph::Equal(targets, zero), graph::Equal(log_probabilities, minus_inf));
  Node safe = graph::Where(absent, zero, log_probabilities);
  return graph::Neg(graph::ReduceSum(graph::Mul(targets, safe), -1));
}

// Rejects constant labels outside [0, classes): a bug visible while tracing.
// Labels only known at run time cannot be checked; see the loss's comment.
void CheckConstantLabels(std::string_view name, Node labels, int64_t classes) {
  if (labels.Op() != ir::OpType::kConstant) return;
  const ir::Instruction& instr = labels.Graph()->Function().instructions[static_cast<size_t>(labels.Id())];
  const auto& data = ir::Attr<ir::ConstantAttrs>(instr).data;
  if (data == nullptr) return;
  DispatchDType(labels.DType(), [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      const T* values = reinterpret_cast<const T*>(data->data());
      const size_t n = data->size() / sizeof(T);
      for (size_t i = 0; i < n; ++i) {
        const auto value = static_cast<int64_t>(values[i]);  // huge unsigned values wrap negative
        if (value < 0 || value >= classes) {
          LossError(name, "constant label " + std::to_string(values[i]) + " at flat index " + std::to_string(i) +
                              " is out of range [0, " + std::to_string(classes) + ")");
        }
      }
    }
  });
}

}  // namespace

Node MeanSquaredError(const std::vector<Node>& labels, const std::vector<Node>& predictions) {
  constexpr std::string_view kName = "MeanSquaredError";
  Prepared e = PrepareElementwise(kName, labels, predictions);
  return Finish(kName, graph::Square(graph::Sub(e.targets, e.predictions)), e.args);
}

Node MeanAbsoluteError(const std::vector<Node>& labels, const std::vector<Node>& predictions) {
  constexpr std::string_view kName = "MeanAbsoluteError";
  Prepared e = PrepareElementwise(kName, labels, predictions);
  return Finish(kName, graph::Abs(graph::Sub(e.targets, e.predictions)), e.args);
}

LossFn Huber(double delta) {
  if (!(delta > 0) || !std::isfinite(delta)) {
    LossError("Huber", "delta must be positive and finite, got " + internal::FormatNumber(delta));
  }
  return [delta](const std::vector<Node>& labels, const std::vector<Node>& predictions) {
    constexpr std::string_view kName = "Huber";
    Prepared e = PrepareElementwise(kName, labels, predictions);
    // With d = |y - p| and q = min(d, delta): 0.5 q^2 + delta (d - q) is
    // 0.5 d^2 below delta and delta (d - delta / 2) above, with no branch, and
    // its derivative is continuous at d = delta.
    Node d = graph::Abs(graph::Sub(e.targets, e.predictions));
    Node q = graph::Min(d, graph::ScalarLike(d, delta));
    Node loss = graph::Add(graph::Mul(graph::ScalarLike(q, 0.5), graph::Square(q)),
                           graph::Mul(graph::ScalarLike(d, delta), graph::Sub(d, q)));
    return Finish(kName, loss, e.args);
  };
}

Node BinaryCrossEntropy(const std::vector<Node>& labels, const std::vector<Node>& predictions) {
  constexpr std::string_view kName = "BinaryCrossEntropy";
  Prepared e = PrepareElementwise(kName, labels, predictions);
  Node p = ClipProbabilities(e.predictions);
  Node y = e.targets;
  // -(y log p + (1 - y) log(1 - p)); log1p(-p) is accurate for small p.
  Node positive = graph::Mul(y, graph::Log(p));
  Node negative = graph::Mul(graph::Sub(graph::ScalarLike(y, 1), y), graph::Log1p(graph::Neg(p)));
  return Finish(kName, graph::Neg(graph::Add(positive, negative)), e.args);
}

Node BinaryCrossEntropyLogits(const std::vector<Node>& labels, const std::vector<Node>& predictions) {
  constexpr std::string_view kName = "BinaryCrossEntropyLogits";
  Prepared e = PrepareElementwise(kName, labels, predictions);
  // softplus(x) - x y, written as y softplus(-x) + (1 - y) softplus(x): the
  // same for finite logits, and exact at x = +-Inf, where the first form is
  // Inf - Inf = NaN although the loss of a confident right answer is 0
  // (TensorFlow and optax return NaN there too). A weight of exactly 0 takes
  // nothing from an infinite softplus, in the value and in the gradient with
  // respect to x, which is sigmoid(x) - y everywhere; for finite values the
  // terms are plain products (so the gradient with respect to y is -x).
  Node x = e.predictions;
  Node y = e.targets;
  auto x_mul_y = [](Node weight, Node value) {
    Node zero = graph::ZerosLike(weight);
    Node infinite = graph::LogicalAnd(graph::LogicalNot(graph::IsFinite(value)), graph::LogicalNot(graph::IsNaN(value)));
    return graph::Mul(weight, graph::Where(graph::LogicalAnd(graph::Equal(weight, zero), infinite), zero, value));
  };
  Node one = graph::ScalarLike(y, 1.0);
  Node loss = graph::Add(x_mul_y(y, graph::Softplus(graph::Neg(x))), x_mul_y(graph::Sub(one, y), graph::Softplus(x)));
  return Finish(kName, loss, e.args);
}

Node CategoricalCrossEntropy(const std::vector<Node>& labels, const std::vector<Node>& predictions) {
  constexpr std::string_view kName = "CategoricalCrossEntropy";
  // The probabilities are not renormalized: they are taken as given (e.g. a
  // softmax output), only clipped so that log(0) cannot occur.
  Prepared e = PrepareCategorical(kName, labels, predictions);
  return Finish(kName, CrossEntropyTerms(e.targets, graph::Log(ClipProbabilities(e.predictions))), e.args);
}

Node CategoricalCrossEntropyLogits(const std::vector<Node>& labels, const std::vector<Node>& predictions) {
  constexpr std::string_view kName = "CategoricalCrossEntropyLogits";
  Prepared e = PrepareCategorical(kName, labels, predictions);
  return Finish(kName, CrossEntropyTerms(e.targets, graph::LogSoftmax(e.predictions, -1)), e.args);
}

// loss = logsumexp(x) - x[label]. The label's logit is picked with a one-hot
// Bool mask (graph::OneHot), so a label outside [0, classes) known only at run
// time picks nothing and contributes logsumexp(x): as if its class's logit
// were absent (there is no cheap way to raise an error from inside the graph).
Node SparseCategoricalCrossEntropyLogits(const std::vector<Node>& labels, const std::vector<Node>& predictions) {
  constexpr std::string_view kName = "SparseCategoricalCrossEntropyLogits";
  LossArgs args = internal::ParseArgs(kName, labels, predictions);
  internal::RequireFloatPredictions(kName, args, 1);
  Node targets = internal::SparseLabels(kName, args);
  const int64_t classes = args.predictions.Shape().Dims().back();
  if (classes == 0) LossError(kName, "predictions " + args.predictions.Shape().ToString() + " have no classes");
  CheckConstantLabels(kName, args.targets, classes);
  Node x = internal::ConvertTo(args.predictions, internal::ComputeDType(args.predictions.DType()));
  // Int64 indices: an Uint8 iota could not count past 255 classes, and huge
  // unsigned labels wrap to negative values, which stay out of range.
  Node hot = graph::OneHot(internal::ConvertTo(targets, dtypes::Int64), classes, dtypes::Bool);
  Node picked = graph::ReduceSum(graph::Where(hot, x, graph::ZerosLike(x)), -1);
  return Finish(kName, graph::Sub(graph::LogSumExp(x, {-1}), picked), args);
}

}  // namespace kiln::ml::losses
