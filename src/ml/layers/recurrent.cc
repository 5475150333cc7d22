// Copyright 2026 The Kiln Authors.
// LSTM and GRU (see kiln/ml/layers/recurrent.h): each direction of each
// layer is a graph::Scan over the time-major input projection.
#include "kiln/ml/layers/recurrent.h"

#include <cmath>
#include <string>
#include <vector>

#include "kiln/context/initializers.h"
#include "kiln/graph/control_flow.h"
#include "kiln/graph/ops.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

using internal::LayerError;

namespace {

struct SequenceDims {
  int64_t batch, time, features, units;
};

// A padding mask, if given, is Bool [batch, time].
void CheckMask(std::string_view layer, const Node& mask, int64_t batch, int64_t time) {
  if (mask.Ok() && mask.Shape() != shapes::Shape(dtypes::Bool, {batch, time})) {
    LayerError(layer, "mask must be Bool[" + std::to_string(batch) + ", " + std::to_string(time) +
                          "] ([batch, time]), got " + mask.Shape().ToString());
  }
}

// Checks x [batch, time, in], the weights' shapes (gates = 4 or 3 groups),
// the mask and the initial states; returns the dimensions.
SequenceDims CheckSequence(std::string_view layer, const Node& x, const Node& kernel, const Node& recurrent,
                           const std::vector<Node>& biases, int gates, const Node& mask,
                           const std::vector<Node>& initial) {
  internal::CheckFloat(layer, x);
  if (x.Rank() != 3) LayerError(layer, "x must be [batch, time, features], got " + x.Shape().ToString());
  const auto& d = x.Shape().Dims();
  SequenceDims s{d[0], d[1], d[2], 0};
  internal::CheckFloat(layer, recurrent, "recurrent_kernel");
  if (recurrent.Rank() != 2 || recurrent.Shape().Dims()[1] != gates * recurrent.Shape().Dims()[0]) {
    LayerError(layer, "recurrent_kernel must be [units, " + std::to_string(gates) + " units], got " +
                          recurrent.Shape().ToString());
  }
  s.units = recurrent.Shape().Dims()[0];
  const int64_t width = gates * s.units;
  internal::CheckFloat(layer, kernel, "kernel");
  if (kernel.Shape() != shapes::Shape(x.DType(), {s.features, width})) {
    LayerError(layer, "kernel must be " + shapes::Shape(x.DType(), {s.features, width}).ToString() + " for x " +
                          x.Shape().ToString() + ", got " + kernel.Shape().ToString());
  }
  if (recurrent.DType() != x.DType()) {
    LayerError(layer, "recurrent_kernel " + recurrent.Shape().ToString() + " must have x's dtype " +
                          dtypes::Name(x.DType()));
  }
  for (const Node& b : biases) {
    if (!b.Ok() || b.Shape() != shapes::Shape(x.DType(), {width})) {
      LayerError(layer, "biases must be " + shapes::Shape(x.DType(), {width}).ToString() + ", got " +
                            (b.Ok() ? b.Shape().ToString() : std::string("an empty Node")));
    }
  }
  CheckMask(layer, mask, s.batch, s.time);
  for (const Node& h : initial) {
    if (h.Ok() && h.Shape() != shapes::Shape(x.DType(), {s.batch, s.units})) {
      LayerError(layer, "initial states must be " + shapes::Shape(x.DType(), {s.batch, s.units}).ToString() +
                            ", got " + h.Shape().ToString());
    }
  }
  return s;
}

// x W + b for every step, time-major: [time, batch, width].
Node InputProjection(const Node& x, const Node& kernel, const Node& bias) {
  Node xw = graph::DotGeneral(x, {2}, {}, kernel, {0}, {}) + bias;
  return graph::Transpose(xw, {1, 0, 2});
}

// Gate group k of `gates` [batch, groups * units].
Node Group(const Node& gates, int k, int64_t units) { return graph::SliceAxis(gates, 1, k * units, (k + 1) * units); }

Node ZerosState(const Node& x, const SequenceDims& s) {
  return graph::Zeros(x.Graph(), shapes::Shape(x.DType(), {s.batch, s.units}));
}

// The scan's per-step inputs: the projection and, with a mask, its
// time-major transpose.
std::vector<Node> StepInputs(const Node& projection, const Node& mask) {
  if (!mask.Ok()) return {projection};
  return {projection, graph::Transpose(mask, {1, 0})};
}

// Keeps `old` where the step is padded; the step's output is zero there.
struct Masked {
  std::vector<Node> state;
  Node output;
};
Masked ApplyMask(const std::vector<Node>& next, const std::vector<Node>& old, const std::vector<Node>& step) {
  if (step.size() < 2) return {next, next[0]};
  Node keep = graph::ExpandAxes(step[1], {1});  // [batch, 1]
  Masked m;
  for (size_t k = 0; k < next.size(); ++k) m.state.push_back(graph::Where(keep, next[k], old[k]));
  m.output = graph::Where(keep, next[0], graph::ZerosLike(next[0]));
  return m;
}

}  // namespace

RecurrentResult LstmSequence(Node x, const LstmWeights& w, Node mask, bool reverse, Node h0, Node c0) {
  const SequenceDims s =
      CheckSequence("LSTM", x, w.kernel, w.recurrent_kernel, {w.bias}, 4, mask, {h0, c0});
  const Node recurrent = w.recurrent_kernel;
  const int64_t u = s.units;
  graph::ScanResult r = graph::Scan(
      [&](const std::vector<Node>& carry, const std::vector<Node>& step) {
        const Node& h = carry[0];
        const Node& c = carry[1];
        Node gates = step[0] + graph::MatMul(h, recurrent);
        Node i = graph::Sigmoid(Group(gates, 0, u)), f = graph::Sigmoid(Group(gates, 1, u));
        Node g = graph::Tanh(Group(gates, 2, u)), o = graph::Sigmoid(Group(gates, 3, u));
        Node c2 = f * c + i * g;
        Node h2 = o * graph::Tanh(c2);
        const Masked m = ApplyMask({h2, c2}, {h, c}, step);
        return std::vector<Node>{m.state[0], m.state[1], m.output};
      },
      {h0.Ok() ? h0 : ZerosState(x, s), c0.Ok() ? c0 : ZerosState(x, s)},
      StepInputs(InputProjection(x, w.kernel, w.bias), mask), s.time, graph::ScanOptions{.reverse = reverse});
  return {graph::Transpose(r.stacked[0], {1, 0, 2}), {r.carry[0]}, {r.carry[1]}};
}

RecurrentResult GruSequence(Node x, const GruWeights& w, Node mask, bool reverse, Node h0) {
  const SequenceDims s =
      CheckSequence("GRU", x, w.kernel, w.recurrent_kernel, {w.bias, w.recurrent_bias}, 3, mask, {h0});
  const Node recurrent = w.recurrent_kernel, recurrent_bias = w.recurrent_bias;
  const int64_t u = s.units;
  graph::ScanResult r = graph::Scan(
      [&](const std::vector<Node>& carry, const std::vector<Node>& step) {
        const Node& h = carry[0];
        Node hu = graph::MatMul(h, recurrent) + recurrent_bias;
        Node rg = graph::Sigmoid(Group(step[0], 0, u) + Group(hu, 0, u));
        Node z = graph::Sigmoid(Group(step[0], 1, u) + Group(hu, 1, u));
        Node n = graph::Tanh(Group(step[0], 2, u) + rg * Group(hu, 2, u));
        Node h2 = (graph::OnesLike(z) - z) * n + z * h;
        const Masked m = ApplyMask({h2}, {h}, step);
        return std::vector<Node>{m.state[0], m.output};
      },
      {h0.Ok() ? h0 : ZerosState(x, s)}, StepInputs(InputProjection(x, w.kernel, w.bias), mask), s.time,
      graph::ScanOptions{.reverse = reverse});
  return {graph::Transpose(r.stacked[0], {1, 0, 2}), {r.carry[0]}, {}};
}

namespace {

enum class Cell { kLstm, kGru };

// A weight of one direction, uniform in ±1/sqrt(units) (PyTorch's
// initialization); kernels take the context's initializer instead if it sets
// one, biases never do.
Node Weight(const Context& scope, const std::string& name, const shapes::Shape& shape, int64_t units,
            graph::Graph* g, bool is_kernel) {
  const double k = 1 / std::sqrt(static_cast<double>(units));
  Context c = is_kernel && scope.HasInitializer() ? scope
                                                  : scope.WithInitializer(context::initializers::RandomUniform(-k, k));
  Node w = internal::GetOrCreate(c, name, shape)->ValueGraph(g);
  if (is_kernel) internal::AddL2Regularization(scope, w);
  return w;
}

RecurrentResult Recurrent(Cell cell, Context ctx, Node x, int64_t units, const RecurrentOptions& o) {
  const char* layer = cell == Cell::kLstm ? "LSTM" : "GRU";
  internal::CheckFloat(layer, x);
  if (x.Rank() != 3) LayerError(layer, "x must be [batch, time, features], got " + x.Shape().ToString());
  if (units < 1) LayerError(layer, "units must be >= 1, got " + std::to_string(units));
  if (o.num_layers < 1) LayerError(layer, "num_layers must be >= 1, got " + std::to_string(o.num_layers));
  if (!(o.dropout >= 0 && o.dropout < 1)) {
    LayerError(layer, "dropout must be in [0, 1), got " + internal::FormatNumber(o.dropout));
  }
  // Checked before any variable is created, so a bad call leaves none.
  CheckMask(layer, o.mask, x.Shape().Dims()[0], x.Shape().Dims()[1]);
  const int gates = cell == Cell::kLstm ? 4 : 3;
  const dtypes::DType dt = x.DType();
  RecurrentResult result;
  Node input = x;
  for (int l = 0; l < o.num_layers; ++l) {
    const Context layer_ctx = ctx.In("layer_" + std::to_string(l));
    const int64_t in = input.Shape().Dims()[2];
    std::vector<Node> outputs;
    for (int d = 0; d < (o.bidirectional ? 2 : 1); ++d) {
      const Context dir = layer_ctx.In(d == 0 ? "forward" : "backward");
      graph::Graph* g = x.Graph();
      Node kernel = Weight(dir, "kernel", shapes::Shape(dt, {in, gates * units}), units, g, true);
      Node recurrent = Weight(dir, "recurrent_kernel", shapes::Shape(dt, {units, gates * units}), units, g, true);
      Node bias = Weight(dir, "bias", shapes::Shape(dt, {gates * units}), units, g, false);
      RecurrentResult r;
      if (cell == Cell::kLstm) {
        r = LstmSequence(input, {kernel, recurrent, bias}, o.mask, d == 1);
        result.c.push_back(r.c[0]);
      } else {
        Node recurrent_bias = Weight(dir, "recurrent_bias", shapes::Shape(dt, {gates * units}), units, g, false);
        r = GruSequence(input, {kernel, recurrent, bias, recurrent_bias}, o.mask, d == 1);
      }
      result.h.push_back(r.h[0]);
      outputs.push_back(r.outputs);
    }
    input = outputs.size() == 1 ? outputs[0] : graph::Concatenate(outputs, 2);
    if (l + 1 < o.num_layers && o.dropout > 0) input = Dropout(layer_ctx, input, o.dropout);
  }
  result.outputs = input;
  return result;
}

}  // namespace

RecurrentResult LSTM(Context ctx, Node x, int64_t units, const RecurrentOptions& options) {
  return Recurrent(Cell::kLstm, ctx, x, units, options);
}

RecurrentResult GRU(Context ctx, Node x, int64_t units, const RecurrentOptions& options) {
  return Recurrent(Cell::kGru, ctx, x, units, options);
}

}  // namespace kiln::ml::layers
