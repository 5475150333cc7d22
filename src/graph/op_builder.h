// Copyright 2026 The Kiln Authors.
// Internal helpers shared by the op definitions (src/graph/ops_*.cc): error
// messages in one format, operand checks, and instruction creation.
#pragma once

#include <string>
#include <vector>

#include "kiln/core/error.h"
#include "kiln/graph/ops.h"

namespace kiln::graph::internal {

/// Throws "Op: message (file.cc:42)".
[[noreturn]] void OpError(const Loc& loc, std::string_view op, const std::string& message);

/// "[1, 2, 3]".
std::string ListToString(const std::vector<int64_t>& v);
std::string ListToString(const std::vector<int>& v);

/// Checks `n` is a valid node; returns its graph.
Graph* CheckNode(const Node& n, std::string_view op, const Loc& loc);
/// Checks all nodes are valid and share one graph; returns it.
Graph* CheckSameGraph(const std::vector<Node>& nodes, std::string_view op, const Loc& loc);

/// Normalizes an axis (negative counts from the end) against `rank`.
int NormalizeAxis(int axis, int rank, std::string_view op, const Loc& loc);
/// Normalizes a list of distinct axes; throws on out-of-range or duplicates.
std::vector<int64_t> NormalizeAxes(const std::vector<int>& axes, int rank, std::string_view op, const Loc& loc);

/// The numpy broadcast of two dims lists; throws "op: shapes A and B cannot be broadcast".
std::vector<int64_t> BroadcastDims(const shapes::Shape& a, const shapes::Shape& b, std::string_view op,
                                   const Loc& loc);
/// x broadcast (numpy-style, trailing axes aligned) to `dims`; x itself if equal.
Node BroadcastToDims(Node x, const std::vector<int64_t>& dims, const Loc& loc);

/// The shape dtype[dims] of an op's result: a negative dimension, or an
/// element or byte count beyond int64, is an error naming `op` and the caller.
shapes::Shape OpShape(dtypes::DType dtype, std::vector<int64_t> dims, std::string_view op, const Loc& loc);
/// a + b and a * b in shape rules; an int64 overflow is an error naming `op`.
int64_t CheckedAdd(int64_t a, int64_t b, std::string_view op, const Loc& loc);
int64_t CheckedMul(int64_t a, int64_t b, std::string_view op, const Loc& loc);

/// Throws "Op: is not defined on complex numbers, got ..." if an operand or
/// the result is complex and `op` does not take complex values (Emit and
/// EmitTuple check it; the allow-list is TakesComplex in op_builder.cc).
void CheckComplexSupport(ir::OpType op, const std::vector<Node>& operands, const shapes::Shape& shape,
                         const Loc& loc);

/// Adds the instruction to `g`, or to the innermost sub-graph of `g` that
/// an operand belongs to (an op mixing a While body's values with captured
/// outer ones belongs in the body).
Node Emit(Graph* g, ir::OpType op, const std::vector<Node>& operands, shapes::Shape shape, ir::Attributes attrs,
          const Loc& loc);

}  // namespace kiln::graph::internal
