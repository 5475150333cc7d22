// Copyright 2026 The Kiln Authors.
// Cumulative reductions along one axis (jax.lax.cumsum, torch.cumsum...):
// CumSum, CumProd, CumMax, CumMin and CumLogSumExp, inclusive or exclusive,
// forward or reversed, with gradients of any order.
//
// Each is one ReduceWindow whose window spans the whole axis (padded with the
// reduction's identity), so it runs on every backend and differentiates
// through ReduceWindow's rules. The cost is O(n) per element along the axis:
// meant for axes up to a few thousand elements.
#pragma once

#include "kiln/graph/graph.h"

namespace kiln::graph {

/// Variants of the cumulative ops.
struct CumulativeOptions {
  /// Element i combines the elements before i only (the first gets the
  /// identity: 0, 1, the lowest or highest value, -Inf for CumLogSumExp).
  bool exclusive = false;
  /// Combine from the end of the axis instead of the start.
  bool reverse = false;
};

/// Running sums along `axis` (negative counts from the end). Numeric and
/// complex dtypes (a complex sum runs on each part); integers wrap as
/// ReduceSum does.
Node CumSum(Node x, int axis, CumulativeOptions options = {}, Loc loc = Loc::current());
/// Running products along `axis` (not complex).
Node CumProd(Node x, int axis, CumulativeOptions options = {}, Loc loc = Loc::current());
/// Running maxima along `axis` (a NaN propagates to the elements after it).
Node CumMax(Node x, int axis, CumulativeOptions options = {}, Loc loc = Loc::current());
/// Running minima along `axis`.
Node CumMin(Node x, int axis, CumulativeOptions options = {}, Loc loc = Loc::current());
/// log(CumSum(exp(x))) along `axis`, computed stably (shifted by the axis'
/// maximum). Float dtypes.
Node CumLogSumExp(Node x, int axis, CumulativeOptions options = {}, Loc loc = Loc::current());

}  // namespace kiln::graph
