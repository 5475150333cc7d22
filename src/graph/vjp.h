// Copyright 2026 The Kiln Authors.
// The table of VJP (vector-Jacobian product) rules used by autodiff. Each
// op family registers its rules from the file that defines the ops
// (src/graph/ops_*.cc), so an op's definition and gradient sit together.
#pragma once

#include <array>
#include <vector>

#include "kiln/graph/ops.h"

namespace kiln::graph::internal {

/// What a rule sees: the instruction, its output and operand nodes, and the
/// cotangent of the output (same shape as the output). For a tuple-producing
/// op (While, If), `cotangent` is empty and `cotangents` holds one per tuple
/// element (an empty Node where no gradient flows into that element).
struct VJPArgs {
  Graph* g;
  const ir::Instruction& instr;
  Node output;
  std::vector<Node> operands;
  Node cotangent;
  Loc loc;
  std::vector<Node> cotangents = {};
};

/// Returns one gradient per operand (an empty Node: no gradient for it, e.g.
/// integer indices). Gradients must have the operand's shape and dtype.
using VJPRule = std::vector<Node> (*)(const VJPArgs& args);

/// One rule per op; nullptr means the op is not differentiable.
using VJPTable = std::array<VJPRule, ir::kNumOpTypes>;

/// The table, filled on first use by the Register*VJPs functions.
const VJPTable& VJPRules();

void RegisterElementwiseVJPs(VJPTable& table);
void RegisterLayoutVJPs(VJPTable& table);
void RegisterReduceVJPs(VJPTable& table);
void RegisterDotConvVJPs(VJPTable& table);
void RegisterGatherVJPs(VJPTable& table);
void RegisterControlFlowVJPs(VJPTable& table);
void RegisterSortVJPs(VJPTable& table);
void RegisterLinalgVJPs(VJPTable& table);
void RegisterAttentionVJPs(VJPTable& table);
void RegisterComplexVJPs(VJPTable& table);
void RegisterCollectiveVJPs(VJPTable& table);

/// The gradient of a cumulative ReduceWindow (CumSum, CumProd: see
/// ir::AsCumulativeWindow) in O(n) along the axis, or an empty Node for
/// other windows and reductions. x is the operand, cotangent the output's.
Node CumulativeWindowGrad(const ir::WindowAttrs& attrs, Node x, Node cotangent, const Loc& loc);

/// An identity instruction distinct from x (a same-shape Reshape, which the
/// backends alias): gradient metadata attaches to this use of x only, and a
/// VJP taken with respect to it stops there (a leaf).
Node Identity(Node x, const Loc& loc);

/// Sums `grad` (of a broadcast result's shape) back down to `dims`, the
/// numpy-broadcast operand's dimensions.
Node SumToDims(Node grad, const std::vector<int64_t>& dims, const Loc& loc);

}  // namespace kiln::graph::internal
