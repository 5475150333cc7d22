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

#include <unordered_map>

#include "kiln/ir/function.h"

namespace kiln::graph::internal {

/// Rewrites `fn` so that for each entry original -> replay of `replays`
/// (While instruction ids of `fn`), every reader of the original's result i
/// reads the replay's result i + 1, and removes the original and its
/// GetTupleElements. Chains (a replay that is itself replayed, as in
/// higher-order gradients) resolve to the last replay. Instructions are
/// renumbered in a topological order (a replay is created after the
/// original's readers, which now depend on it); parameters keep their order.
/// An entry whose instructions do not have this shape (not two Whiles, the
/// replay's results not extending the original's, a reader other than a
/// GetTupleElement) is left alone.
void MergeLoopReplays(ir::Function& fn, const std::unordered_map<int, int>& replays);

}  // namespace kiln::graph::internal
