// Copyright 2026 The Kiln Authors.
// Reductions over the elements a mask selects (jnp.sum(x, where=mask),
// padding masks of sequence batches). Differentiable in x; run on every
// backend.
#pragma once

#include <vector>

#include "kiln/graph/graph.h"

namespace kiln::graph {

/// The sum over `axes` of the elements of `x` where `mask` (Bool, of x's
/// shape or numpy-broadcastable to it) is true; 0 where none is.
Node MaskedReduceSum(Node x, Node mask, std::vector<int> axes, Loc loc = Loc::current());
/// The mean of the selected elements (float x); NaN where none is selected,
/// as jnp.mean(x, where=mask).
Node MaskedReduceMean(Node x, Node mask, std::vector<int> axes, Loc loc = Loc::current());
/// The maximum of the selected elements; where none is, the lowest value of
/// the dtype (-Inf for floats).
Node MaskedReduceMax(Node x, Node mask, std::vector<int> axes, Loc loc = Loc::current());
/// The minimum of the selected elements; where none is, the highest value
/// (+Inf for floats).
Node MaskedReduceMin(Node x, Node mask, std::vector<int> axes, Loc loc = Loc::current());

}  // namespace kiln::graph
