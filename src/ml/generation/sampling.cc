// Copyright 2026 The Kiln Authors.
// Token sampling (see kiln/ml/generation/sampling.h).
#include "kiln/ml/generation/sampling.h"

#include <cmath>
#include <limits>
#include <string>

#include "kiln/core/error.h"
#include "kiln/graph/cumulative.h"
#include "kiln/graph/ops.h"
#include "kiln/graph/sort.h"

namespace kiln::ml::generation {

namespace {

[[noreturn]] void SamplingError(const std::string& message) { Throw("generation::SampleTokens: " + message); }

void Check(const Node& logits, const SamplingOptions& o, const Node& previous) {
  if (!logits.Ok() || logits.Rank() != 2 || !dtypes::IsFloat(logits.DType())) {
    SamplingError("logits must be a float [batch, vocab], got " +
                  (logits.Ok() ? logits.Shape().ToString() : std::string("an empty Node")));
  }
  if (!(o.temperature >= 0) || std::isinf(o.temperature)) {
    SamplingError("temperature must be finite and >= 0, got " + std::to_string(o.temperature));
  }
  if (o.top_k < 0) SamplingError("top_k must be >= 0 (0: off), got " + std::to_string(o.top_k));
  if (!(o.top_p > 0 && o.top_p <= 1)) SamplingError("top_p must be in (0, 1], got " + std::to_string(o.top_p));
  if (!(o.repetition_penalty > 0) || std::isinf(o.repetition_penalty)) {
    SamplingError("repetition_penalty must be finite and > 0, got " + std::to_string(o.repetition_penalty));
  }
  if (previous.Ok() && (previous.Rank() != 2 || !dtypes::IsInteger(previous.DType()) ||
                        previous.Shape().Dims()[0] != logits.Shape().Dims()[0])) {
    SamplingError("previous must be integer token ids [" + std::to_string(logits.Shape().Dims()[0]) +
                  ", n], got " + previous.Shape().ToString());
  }
}

Node NegInf(const Node& like) { return graph::ScalarLike(like, -std::numeric_limits<double>::infinity()); }

// -Inf where x < threshold (per row, threshold [batch, 1]).
Node MaskBelow(const Node& x, const Node& threshold) {
  return graph::Where(graph::LessThan(x, threshold), NegInf(x), x);
}

}  // namespace

Node ProcessLogits(Node logits, const SamplingOptions& o, Node previous) {
  Check(logits, o, previous);
  const int64_t batch = logits.Shape().Dims()[0], vocab = logits.Shape().Dims()[1];
  // 16-bit logits are processed in Float32: a small temperature would
  // overflow them, and top-p's running sum would stall on their rounding.
  Node x = dtypes::IsHalf(logits.DType()) ? graph::ConvertDType(logits, dtypes::Float32) : logits;
  if (previous.Ok() && o.repetition_penalty != 1 && previous.Shape().Dims()[1] > 0) {
    // Marks the tokens seen in each row: a scatter of ones into [batch,
    // vocab] (out-of-range ids are skipped), not a [batch, n, vocab] one-hot.
    const int64_t n = previous.Shape().Dims()[1];
    Node tokens = graph::ConvertDType(previous, dtypes::Int64);
    Node rows = graph::Iota(x.Graph(), shapes::Make(dtypes::Int64, batch, n), 0);
    Node indices = graph::Stack({rows, tokens}, 2);  // [batch, n, 2]
    ir::ScatterAttrs a;
    a.inserted_window_dims = {0, 1};
    a.scatter_dims_to_operand_dims = {0, 1};
    a.index_vector_dim = 2;
    Node seen = graph::GreaterThan(
        graph::ScatterMax(graph::Zeros(x.Graph(), shapes::Make(dtypes::Int32, batch, vocab)), indices,
                          graph::Ones(x.Graph(), shapes::Make(dtypes::Int32, batch, n)), a),
        graph::Const(x.Graph(), int32_t{0}));
    Node penalized = graph::Where(graph::GreaterThan(x, graph::ScalarLike(x, 0)), x / o.repetition_penalty,
                                  x * o.repetition_penalty);
    x = graph::Where(seen, penalized, x);
  }
  if (o.temperature > 0 && o.temperature != 1) x = x / o.temperature;
  if (o.top_k > 0 && o.top_k < vocab) {
    Node kth = graph::SliceAxis(graph::TopK(x, o.top_k, 1).values, 1, o.top_k - 1, o.top_k);  // [batch, 1]
    x = MaskBelow(x, kth);
  }
  if (o.top_p < 1) {
    // Descending probabilities; a token is dropped when the ones before it
    // already reach top_p. The least likely kept logit is the threshold.
    Node sorted = graph::Sort(x, 1, {.descending = true});
    Node probs = graph::Softmax(sorted, 1);
    Node before = graph::CumSum(probs, 1, {.exclusive = true});
    Node keep = graph::LessThan(before, graph::ScalarLike(before, o.top_p));
    Node inf = graph::ScalarLike(sorted, std::numeric_limits<double>::infinity());
    Node threshold = graph::ReduceMin(graph::Where(keep, sorted, inf), {1});
    x = MaskBelow(x, graph::ExpandAxes(threshold, {1}));
  }
  return x;
}

Node SampleTokens(context::Context ctx, Node logits, const SamplingOptions& o, Node previous) {
  Node x = ProcessLogits(logits, o, previous);
  if (o.temperature == 0) return graph::ArgMax(x, 1);
  // Gumbel-max: argmax(x + g), g = -log(-log(u)), is a draw from softmax(x).
  // Float32 noise (the draw's precision does not need more).
  // u in [FLT_MIN, 1): a draw of exactly 0 would give -Inf noise, and a row
  // with a single candidate token would lose it.
  Node u = graph::Max(ctx.RandomUniform(x.Graph(), shapes::Shape(dtypes::Float32, x.Shape().Dims())),
                      graph::Const(x.Graph(), std::numeric_limits<float>::min()));
  Node gumbel = -graph::Log(-graph::Log(u));
  return graph::ArgMax(graph::ConvertDType(x, dtypes::Float32) + gumbel, 1);
}

}  // namespace kiln::ml::generation
