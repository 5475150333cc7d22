// Copyright 2026 The Kiln Authors.
// Gradient cases of the Gather ops. Indices are integer constants built
// inside each function, so only the Float64 operands and updates are
// differentiated.
#include <cstdint>
#include <vector>

#include "kiln/graph/autodiff.h"
#include "tests/graph/grad_cases.h"

namespace kiln::testing {

namespace {

using graph::Node;
using ir::OpType;
using Ints = std::vector<int32_t>;
using IntRows = std::vector<std::vector<int32_t>>;


tensors::Tensor Values(std::vector<double> values) { return tensors::FromValue(values); }

// Rows of a [rows, 3] table, looked up by indices [N] (index_vector_dim = 1,
// the implicit trailing axis) or [N, 1].
ir::GatherAttrs EmbeddingAttrs(int64_t index_vector_dim) {
  return {.offset_dims = {1}, .collapsed_slice_dims = {0}, .start_index_map = {0},
          .index_vector_dim = index_vector_dim, .slice_sizes = {1, 3}};
}

// Scatter of whole rows of a [rows, cols] operand at indices [N]: updates
// are [N, cols].
ir::ScatterAttrs RowScatterAttrs() {
  return {.update_window_dims = {1}, .inserted_window_dims = {0}, .scatter_dims_to_operand_dims = {0},
          .index_vector_dim = 1};
}

// Scatter of single elements of a 1-D operand at indices [N]: updates are [N].
ir::ScatterAttrs ElementScatterAttrs() {
  return {.update_window_dims = {}, .inserted_window_dims = {0}, .scatter_dims_to_operand_dims = {0},
          .index_vector_dim = 1};
}

std::vector<GradCase> GatherCases() {
  std::vector<GradCase> cases;
  // Duplicate rows: their gradients accumulate into the table.
  cases.push_back({OpType::kGather, "Gather embedding lookup, indices [N] with duplicates",
                   [](const std::vector<Node>& p) {
                     Node ids = graph::Const(p[0].Graph(), Ints{3, 0, 3, 1, 3});
                     return graph::Gather(p[0], ids, EmbeddingAttrs(1));
                   },
                   {Uniform({5, 3}, -3, 3, 101)}});
  cases.push_back({OpType::kGather, "Gather embedding lookup, indices [N,1] with duplicates",
                   [](const std::vector<Node>& p) {
                     Node ids = graph::Const(p[0].Graph(), std::vector<std::vector<int64_t>>{{2}, {4}, {2}});
                     return graph::Gather(p[0], ids, EmbeddingAttrs(1));
                   },
                   {Uniform({5, 3}, -3, 3, 102)}});
  // Indices [2, 2, 3]: 2 x 3 start vectors (row, col) along the middle axis;
  // overlapping 2 x 3 windows of a [4, 5] operand; output [2, 2, 3, 3].
  cases.push_back({OpType::kGather, "Gather 2-D windows, index_vector_dim in the middle",
                   [](const std::vector<Node>& p) {
                     Node starts = graph::Const(p[0].Graph(), std::vector<IntRows>{{{0, 2, 1}, {0, 2, 1}},
                                                                                 {{1, 1, 0}, {2, 0, 1}}});
                     return graph::Gather(p[0], starts,
                                          {.offset_dims = {1, 2}, .collapsed_slice_dims = {}, .start_index_map = {0, 1},
                                           .index_vector_dim = 1, .slice_sizes = {2, 3}});
                   },
                   {Uniform({4, 5}, -3, 3, 103)}});
  // 2 x 2 windows of a [6, 2] operand: starts -2 and 9 are clamped to 0 and
  // 4; start 5 (window partly outside) is clamped to 4 as well.
  cases.push_back({OpType::kGather, "Gather with out-of-range indices (clamped)",
                   [](const std::vector<Node>& p) {
                     Node starts = graph::Const(p[0].Graph(), Ints{-2, 5, 9, 1});
                     return graph::Gather(p[0], starts,
                                          {.offset_dims = {1, 2}, .collapsed_slice_dims = {}, .start_index_map = {0},
                                           .index_vector_dim = 1, .slice_sizes = {2, 2}});
                   },
                   {Uniform({6, 2}, -3, 3, 104)}});
  // Second order: the Gather rule's ScatterSum differentiated in turn.
  cases.push_back({OpType::kGather, "Gather gradient of the gradient",
                   [](const std::vector<Node>& p) {
                     Node ids = graph::Const(p[0].Graph(), Ints{1, 1, 0});
                     Node rows = graph::Gather(p[0], ids, EmbeddingAttrs(1));
                     Node loss = graph::ReduceAllSum(graph::Mul(graph::Square(rows), rows));
                     return graph::Gradient(loss, {p[0]})[0];
                   },
                   {Uniform({3, 3}, -3, 3, 105)}});
  return cases;
}

std::vector<GradCase> ScatterSumCases() {
  std::vector<GradCase> cases;
  // 2 x 2 windows of a [5, 4] operand at (row, col) starts; the first and
  // third overlap exactly, so the operand position gets both.
  cases.push_back({OpType::kScatterSum, "ScatterSum 2-D windows with duplicate starts",
                   [](const std::vector<Node>& p) {
                     Node starts = graph::Const(p[0].Graph(), IntRows{{1, 0}, {3, 2}, {1, 0}});
                     return graph::ScatterSum(p[0], starts, p[1],
                                              {.update_window_dims = {1, 2}, .inserted_window_dims = {},
                                               .scatter_dims_to_operand_dims = {0, 1}, .index_vector_dim = 1});
                   },
                   {Uniform({5, 4}, -3, 3, 111), Uniform({3, 2, 2}, -3, 3, 112)}});
  cases.push_back({OpType::kScatterSum, "ScatterSum rows with duplicate indices",
                   [](const std::vector<Node>& p) {
                     Node ids = graph::Const(p[0].Graph(), Ints{2, 0, 2});
                     return graph::ScatterSum(p[0], ids, p[1], RowScatterAttrs());
                   },
                   {Uniform({4, 3}, -3, 3, 113), Uniform({3, 3}, -3, 3, 114)}});
  // Windows of 2 in a [6] operand: start -1 keeps only its element 0, start
  // 5 only its element 5, start 7 loses both; skipped elements get zero
  // gradient.
  cases.push_back({OpType::kScatterSum, "ScatterSum with out-of-bounds indices",
                   [](const std::vector<Node>& p) {
                     Node starts = graph::Const(p[0].Graph(), Ints{-1, 5, 7, 2});
                     return graph::ScatterSum(p[0], starts, p[1],
                                              {.update_window_dims = {1}, .inserted_window_dims = {},
                                               .scatter_dims_to_operand_dims = {0}, .index_vector_dim = 1});
                   },
                   {Uniform({6}, -3, 3, 115), Uniform({4, 2}, -3, 3, 116)}});
  cases.push_back({OpType::kScatterSum, "ScatterSum rows with an out-of-bounds row index",
                   [](const std::vector<Node>& p) {
                     Node ids = graph::Const(p[0].Graph(), Ints{1, -3, 4});
                     return graph::ScatterSum(p[0], ids, p[1], RowScatterAttrs());
                   },
                   {Uniform({4, 3}, -3, 3, 117), Uniform({3, 3}, -3, 3, 118)}});
  return cases;
}

std::vector<GradCase> ScatterUpdateCases() {
  std::vector<GradCase> cases;
  cases.push_back({OpType::kScatterUpdate, "ScatterUpdate rows with unique indices",
                   [](const std::vector<Node>& p) {
                     Node ids = graph::Const(p[0].Graph(), Ints{3, 0});
                     return graph::ScatterUpdate(p[0], ids, p[1], RowScatterAttrs());
                   },
                   {Uniform({5, 3}, -3, 3, 121), Uniform({2, 3}, -3, 3, 122)}});
  // Only the last writer of a row reaches the output: the earlier duplicate
  // gets zero gradient, as does the out-of-bounds row.
  cases.push_back({OpType::kScatterUpdate, "ScatterUpdate rows with duplicate and out-of-bounds indices",
                   [](const std::vector<Node>& p) {
                     Node ids = graph::Const(p[0].Graph(), Ints{1, 3, 1, 5});
                     return graph::ScatterUpdate(p[0], ids, p[1], RowScatterAttrs());
                   },
                   {Uniform({4, 3}, -3, 3, 123), Uniform({4, 3}, -3, 3, 124)}});
  return cases;
}

// Extremum cases on a [6] operand: position 1 gets two updates (the larger,
// 1.4, wins a max; the operand, -1.0, wins a min), 3 one update that loses a
// max and wins a min, 4 one that wins a max and loses a min; index 7 is out
// of bounds (skipped). All values are distinct and at least 0.1 apart.
GradCase Extremum(OpType op, const std::string& name, Node (*scatter)(Node, Node, Node, ir::ScatterAttrs, graph::Loc)) {
  return {op, name,
          [scatter](const std::vector<Node>& p) {
            Node ids = graph::Const(p[0].Graph(), Ints{1, 3, 1, 4, 7});
            return scatter(p[0], ids, p[1], ElementScatterAttrs(), graph::Loc::current());
          },
          {Values({0.5, -1.0, 2.0, 0.3, -0.7, 1.1}), Values({0.9, -0.2, 1.4, 0.1, 0.6})}};
}

// A two-way tie between the operand and an update at position 0 (and, for a
// min, between the two updates at position 2): each gets half, matching the
// central difference.
GradCase ExtremumTie(OpType op, const std::string& name,
                     Node (*scatter)(Node, Node, Node, ir::ScatterAttrs, graph::Loc)) {
  return {op, name,
          [scatter](const std::vector<Node>& p) {
            Node ids = graph::Const(p[0].Graph(), Ints{0, 2, 2});
            return scatter(p[0], ids, p[1], ElementScatterAttrs(), graph::Loc::current());
          },
          {Values({1.5, 0.2, 0.0}), Values({1.5, -4.0, -4.0})}};
}

}  // namespace

std::vector<GradCase> GatherGradCases() {
  std::vector<GradCase> cases;
  for (auto group : {GatherCases(), ScatterSumCases(), ScatterUpdateCases()}) {
    cases.insert(cases.end(), group.begin(), group.end());
  }
  cases.push_back(Extremum(OpType::kScatterMax, "ScatterMax with distinct values", graph::ScatterMax));
  cases.push_back(Extremum(OpType::kScatterMin, "ScatterMin with distinct values", graph::ScatterMin));
  cases.push_back(ExtremumTie(OpType::kScatterMax, "ScatterMax two-way ties split evenly", graph::ScatterMax));
  cases.push_back(ExtremumTie(OpType::kScatterMin, "ScatterMin two-way ties split evenly", graph::ScatterMin));
  return cases;
}

}  // namespace kiln::testing
