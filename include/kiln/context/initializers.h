// Copyright 2026 The Kiln Authors.
// Variable initializers: functions that build a variable's initial value as a
// graph, so initialization runs on the backend and is deterministic from the
// context's seed.
#pragma once

#include <cstdint>
#include <functional>

#include "kiln/graph/graph.h"

namespace kiln::context::initializers {

/// Builds the initial value of a variable of `shape` inside `g`. `rng_state`
/// is a Uint64[3] Philox state (see graph::RNGBitGenerator) unique to the
/// variable and derived from the context's seed and the variable's full
/// name, so values do not depend on creation order.
using Initializer = std::function<graph::Node(graph::Graph* g, const shapes::Shape& shape, graph::Node rng_state)>;

/// All zeros (the default for non-float dtypes).
Initializer Zeros();
/// All ones.
Initializer Ones();
/// Every element `value`.
Initializer Constant(double value);
/// Uniform in [min, max).
Initializer RandomUniform(double min = -0.05, double max = 0.05);
/// Normal with mean and standard deviation.
Initializer RandomNormal(double mean = 0, double stddev = 0.05);
/// Normal truncated to [mean - 2 stddev, mean + 2 stddev] (resampled, as TF/Keras).
Initializer TruncatedNormal(double mean = 0, double stddev = 0.05);
/// Xavier/Glorot uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out)).
Initializer GlorotUniform();
/// Xavier/Glorot normal: truncated normal with stddev sqrt(2 / (fan_in + fan_out)).
Initializer GlorotNormal();
/// He (Kaiming) uniform: U(-l, l), l = sqrt(6 / fan_in).
Initializer HeUniform();
/// He (Kaiming) normal: truncated normal with stddev sqrt(2 / fan_in).
Initializer HeNormal();

/// Fan-in and fan-out of a weight shape, as Keras computes them: for rank 2
/// [in, out]; for convolution kernels [spatial..., in, out] the spatial size
/// multiplies both; rank 0/1 use the size for both.
std::pair<int64_t, int64_t> ComputeFans(const shapes::Shape& shape);

}  // namespace kiln::context::initializers
