// Copyright 2026 The Kiln Authors.
// Control flow inside a compiled graph: While, If, ForLoop and Scan (as
// jax.lax.while_loop, cond, fori_loop and scan).
//
// The bodies are C++ functions traced once into sub-functions of the IR, so a
// loop of 10,000 iterations is one instruction that the backend runs without
// leaving the executable. They may use any node of the enclosing graphs
// (closures: the values are captured and passed in), nest, and carry several
// values of any shapes and dtypes. A carry's shape and dtype cannot change
// between iterations, and both branches of an If return the same shapes: a
// mismatch is a kiln::Error naming both shapes and the caller's line.
//
// Context variables may be read inside a body (layers work there: their
// values are captured), but not set: return the new value from the body and
// set it outside. Random values drawn from the context's generator inside a
// body are drawn once, outside the loop, so every iteration sees the same
// ones; carry an RNG state (graph::RNGBitGenerator) for fresh values per
// iteration.
//
// Gradients: If differentiates through both branches; ForLoop and Scan
// through their iterations (the backward pass replays the loop once to record
// each iteration's carry, then runs the body's VJP in reverse); While needs
// WhileOptions::max_trip_count to be differentiable, and an unbounded While on
// a gradient path is an error saying so.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "kiln/graph/graph.h"

namespace kiln::graph {

/// A traced body: the loop carry (or an If's operands) in, values out.
using BodyFn = std::function<std::vector<Node>(const std::vector<Node>& values)>;
/// A While condition: the carry in, a Bool scalar out.
using CondFn = std::function<Node(const std::vector<Node>& carry)>;

/// Options of While.
struct WhileOptions {
  /// At most this many body runs; more is a run-time kiln::Error (the loop
  /// never stops silently). Required to differentiate the loop (the backward
  /// pass records up to this many carries); -1: unbounded.
  int64_t max_trip_count = -1;
};

/// Runs `body` while `cond` holds, starting from `init`; returns the final
/// carry. `cond` returns a Bool scalar; `body` returns values of the carry's
/// shapes and dtypes. Zero iterations return `init`.
std::vector<Node> While(const CondFn& cond, const BodyFn& body, const std::vector<Node>& init,
                        WhileOptions options = {}, Loc loc = Loc::current());

/// `then_fn(operands)` if the Bool scalar `pred` is true, else
/// `else_fn(operands)`; only the chosen branch runs. Both return values of
/// the same shapes and dtypes (at least one value).
std::vector<Node> If(Node pred, const BodyFn& then_fn, const BodyFn& else_fn, const std::vector<Node>& operands = {},
                     Loc loc = Loc::current());

/// A loop with a fixed trip count: carry = body(i, carry) for i = 0 ..
/// trip_count - 1 (i an Int32 scalar); returns the final carry.
/// Differentiable.
std::vector<Node> ForLoop(int64_t trip_count, const std::function<std::vector<Node>(Node i, const std::vector<Node>& carry)>& body,
                          const std::vector<Node>& init, Loc loc = Loc::current());

/// fn(inputs), with fn's intermediate values not kept for the backward pass
/// (rematerialization, as jax.checkpoint): they live only while fn runs, and
/// the gradient computes them again. Trades one more forward pass of fn per
/// training step for the memory of its activations. fn is traced twice (it
/// runs as both branches of an If whose predicate is true, so no graph pass
/// merges the recomputation with the forward pass).
std::vector<Node> Checkpoint(const BodyFn& fn, const std::vector<Node>& inputs, Loc loc = Loc::current());

/// Result of Scan: the final carry and the per-iteration outputs stacked
/// along a new leading axis.
struct ScanResult {
  std::vector<Node> carry;
  std::vector<Node> stacked;
};

/// Options of Scan.
struct ScanOptions {
  /// Iterate from the last slice to the first (the outputs keep the slices'
  /// order: stacked[t] is the output of the iteration that read xs[t]).
  bool reverse = false;
};

/// jax.lax.scan: for t in [0, length), (carry, y_t) = fn(carry, x_t) where
/// x_t are the slices xs[k][t] along axis 0. `fn` returns the new carry
/// (same shapes) followed by the outputs y_t, which are stacked into
/// [length, ...y_t.dims]. `length` is the leading dimension shared by every
/// xs (required, and used, when xs is empty). Differentiable.
ScanResult Scan(const std::function<std::vector<Node>(const std::vector<Node>& carry, const std::vector<Node>& x)>& fn,
                const std::vector<Node>& init, const std::vector<Node>& xs, int64_t length = -1,
                ScanOptions options = {}, Loc loc = Loc::current());

}  // namespace kiln::graph
