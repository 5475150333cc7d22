// Copyright 2026 The Kiln Authors.
// Running a differentiated While once, not twice.
//
// The reverse-mode rule of While (WhileVJP) needs every iteration's carry. It
// cannot change the While it differentiates, whose results are already in
// use, so it builds a replay: a second While with the same condition, body,
// initial carry, captures and max_trip_count, which also counts its trips and
// records each iteration's carry. The replay's results 1..n are exactly the
// original's n results. Left alone, the program would run the loop twice
// (once for the value, once for the tape); when the graph is finished, the
// original's users read the replay's results instead and the original is
// dropped.
#pragma once

#include <utility>
#include <vector>

#include "kiln/ir/function.h"

namespace kiln::graph::internal {

/// Rewrites `fn` so that, for each original of the (original, replay) pairs
/// of `replays` (While instruction ids of `fn`), every reader of the
/// original's result i reads result i + 1 of its first replay that the
/// outputs need, and removes the original and its GetTupleElements. A
/// replay the outputs do not need (the gradient is not computed) is not
/// used: it would run with its tape where the original runs without. Chains
/// (a replay that is itself replayed, as in higher-order gradients) resolve
/// to the last replay (the same loop differentiated twice has one replay:
/// WhileVJP reuses it). Instructions are
/// renumbered in a topological order (a replay is created after the
/// original's readers, which now depend on it); parameters keep their
/// order. A pair whose instructions do not have this shape (not two Whiles,
/// the replay's results not extending the original's, the replay depending
/// on the original, a reader other than a GetTupleElement) is left alone.
void MergeLoopReplays(ir::Function& fn, const std::vector<std::pair<int, int>>& replays);

}  // namespace kiln::graph::internal
