// Copyright 2026 The Kiln Authors.
// Reverse-mode automatic differentiation over graph::Node values.
//
// Gradients are built with graph ops (each op's VJP rule sits beside its
// definition in src/graph/ops_*.cc), so they compile like any other graph,
// and gradients of gradients work.
#pragma once

#include <functional>
#include <vector>

#include "kiln/graph/graph.h"

namespace kiln::graph {

/// Gradients of the scalar float `output` with respect to each node of
/// `wrt` (parameters, constants, intermediate nodes). A node `output` does not
/// depend on gets zeros. Throws kiln::Error if `output` is not a float
/// scalar, if a `wrt` node is not a float, or if a path crosses an op without
/// a gradient rule.
std::vector<Node> Gradient(Node output, const std::vector<Node>& wrt, Loc loc = Loc::current());

/// Vector-Jacobian product: sum_i cotangents[i] . d outputs[i] / d wrt[j] for
/// each j. cotangents[i] has outputs[i]'s shape.
std::vector<Node> VJP(const std::vector<Node>& outputs, const std::vector<Node>& cotangents,
                      const std::vector<Node>& wrt, Loc loc = Loc::current());

/// The Jacobian of `output` with respect to `x`: shape output.dims ++ x.dims.
/// Built from one VJP per output element: meant for small outputs.
Node Jacobian(Node output, Node x, Loc loc = Loc::current());

/// x in the forward pass; blocks gradients flowing back through it.
Node StopGradient(Node x, Loc loc = Loc::current());

/// x in the forward pass; in the backward pass the cotangent of the result is
/// mapped by `gradient(x, cotangent)` (which must return x's shape) instead of
/// flowing through unchanged.
Node IdentityWithCustomGradient(Node x, std::function<Node(Node x, Node cotangent)> gradient,
                                Loc loc = Loc::current());

}  // namespace kiln::graph
