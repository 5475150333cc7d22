// Copyright 2026 The Kiln Authors.
// Stateless random values from a Philox state (see graph::RNGBitGenerator):
// each function returns {new state, values}; the same state gives the same
// values, and the new state continues the stream.
#pragma once

#include <utility>

#include "kiln/graph/graph.h"

namespace kiln::graph {

/// A Uint64[3] Philox state constant for `seed` (key = seed, counter 0).
Node RandomStateFromSeed(Graph* g, uint64_t seed, Loc loc = Loc::current());

/// Uniform values in [0, 1) of a float `shape` (every representable step of
/// the mantissa equally likely).
std::pair<Node, Node> RandomUniform(Node state, const shapes::Shape& shape, Loc loc = Loc::current());

/// Standard normal values (Box-Muller) of a float `shape`.
std::pair<Node, Node> RandomNormal(Node state, const shapes::Shape& shape, Loc loc = Loc::current());

/// Standard normal values truncated to [-2, 2]: each value is the first of
/// four independent draws inside the interval (the chance that all four fall
/// outside, 4e-6, is clamped to the interval).
std::pair<Node, Node> RandomTruncatedNormal(Node state, const shapes::Shape& shape, Loc loc = Loc::current());

}  // namespace kiln::graph
