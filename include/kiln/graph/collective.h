// Copyright 2026 The Kiln Authors.
// Collectives as graph ops: communication among the processes of a
// distributed job (kiln/distributed/distributed.h), compiled into a step
// like any op. Every process must run the same graph; the world size is
// fixed when the graph is traced (1 without distributed::Init, where each
// collective is the identity). Each has a gradient, so autodiff goes
// through them (AllReduce-sum's VJP is an AllReduce-sum of the cotangent).
#pragma once

#include "kiln/graph/graph.h"
#include "kiln/ir/function.h"

namespace kiln::graph {

/// The elementwise reduction (kSum, kMean, kMax, kMin) of every process's
/// `x`, on every process. Any real or complex dtype but Bool; kMean needs a
/// floating-point dtype, kMax/kMin a real one.
Node AllReduce(Node x, ir::ReduceOp op = ir::ReduceOp::kSum, Loc loc = Loc::current());
/// Every process's `x` concatenated along axis 0 in rank order: dim 0 grows
/// by the world size. Any dtype; rank >= 1.
Node AllGather(Node x, Loc loc = Loc::current());
/// The reduction of every process's `x`, of which process r keeps the r-th
/// of world-size equal slices along axis 0 (dim 0 must divide).
Node ReduceScatter(Node x, ir::ReduceOp op = ir::ReduceOp::kSum, Loc loc = Loc::current());
/// Process `root`'s `x`, on every process. Any dtype.
Node Broadcast(Node x, int root = 0, Loc loc = Loc::current());

}  // namespace kiln::graph
