// Copyright 2026 The Kiln Authors.
// Initializers build a variable's initial value as a graph from a Philox state.
#include "kiln/context/initializers.h"

#include <cmath>

#include "kiln/graph/ops.h"
#include "kiln/graph/random.h"

namespace kiln::context::initializers {

namespace {

using graph::Node;

// x * scale + shift in x's dtype.
Node Affine(Node x, double scale, double shift) {
  return graph::Add(graph::Mul(x, graph::ScalarLike(x, scale)), graph::ScalarLike(x, shift));
}

void RequireFloat(const shapes::Shape& shape, const char* name) {
  if (!dtypes::IsFloat(shape.DType())) {
    Throw(std::string("initializer ") + name + ": requires a float variable, got " + shape.ToString());
  }
}

}  // namespace

std::pair<int64_t, int64_t> ComputeFans(const shapes::Shape& shape) {
  const auto& d = shape.Dims();
  if (d.size() < 2) {
    const int64_t n = std::max<int64_t>(shape.Size(), 1);
    return {n, n};
  }
  int64_t receptive = 1;
  for (size_t i = 0; i + 2 < d.size(); ++i) receptive *= d[i];
  return {d[d.size() - 2] * receptive, d[d.size() - 1] * receptive};
}

Initializer Zeros() { return Constant(0); }
Initializer Ones() { return Constant(1); }

Initializer Constant(double value) {
  return [value](graph::Graph* g, const shapes::Shape& shape, Node) {
    return graph::BroadcastTo(graph::Scalar(g, shape.DType(), value), shape.Dims());
  };
}

Initializer RandomUniform(double min, double max) {
  if (!(min < max)) Throw("initializer RandomUniform: min must be < max");
  return [min, max](graph::Graph*, const shapes::Shape& shape, Node state) {
    RequireFloat(shape, "RandomUniform");
    return Affine(graph::RandomUniform(state, shape).second, max - min, min);
  };
}

Initializer RandomNormal(double mean, double stddev) {
  return [mean, stddev](graph::Graph*, const shapes::Shape& shape, Node state) {
    RequireFloat(shape, "RandomNormal");
    return Affine(graph::RandomNormal(state, shape).second, stddev, mean);
  };
}

Initializer TruncatedNormal(double mean, double stddev) {
  return [mean, stddev](graph::Graph*, const shapes::Shape& shape, Node state) {
    RequireFloat(shape, "TruncatedNormal");
    return Affine(graph::RandomTruncatedNormal(state, shape).second, stddev, mean);
  };
}

namespace {
// A standard normal truncated at 2 sigma has stddev 0.87962566: divide by it
// so the result has the requested stddev (as Keras' variance scaling does).
constexpr double kTruncatedStddev = 0.87962566103423978;

Initializer ScaledUniform(double numerator, bool fan_in_only, const char* name) {
  return [=](graph::Graph*, const shapes::Shape& shape, Node state) {
    RequireFloat(shape, name);
    auto [fan_in, fan_out] = ComputeFans(shape);
    const double limit = std::sqrt(numerator / static_cast<double>(fan_in_only ? fan_in : fan_in + fan_out));
    return Affine(graph::RandomUniform(state, shape).second, 2 * limit, -limit);
  };
}

Initializer ScaledNormal(double numerator, bool fan_in_only, const char* name) {
  return [=](graph::Graph*, const shapes::Shape& shape, Node state) {
    RequireFloat(shape, name);
    auto [fan_in, fan_out] = ComputeFans(shape);
    const double stddev = std::sqrt(numerator / static_cast<double>(fan_in_only ? fan_in : fan_in + fan_out));
    return Affine(graph::RandomTruncatedNormal(state, shape).second, stddev / kTruncatedStddev, 0);
  };
}
}  // namespace

Initializer GlorotUniform() { return ScaledUniform(6, false, "GlorotUniform"); }
Initializer GlorotNormal() { return ScaledNormal(2, false, "GlorotNormal"); }
Initializer HeUniform() { return ScaledUniform(6, true, "HeUniform"); }
Initializer HeNormal() { return ScaledNormal(2, true, "HeNormal"); }

}  // namespace kiln::context::initializers
