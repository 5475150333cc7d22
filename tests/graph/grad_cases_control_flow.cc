// Copyright 2026 The Kiln Authors.
// Gradient cases of the tuple-producing ops: If (both branches), While
// through a loop whose trip count depends on the data, Sort (values and a
// payload sorted by them), and GetTupleElement (each result of a
// multi-result If gets its own cotangent).
#include "kiln/graph/control_flow.h"
#include "kiln/graph/sort.h"
#include "tests/graph/grad_cases.h"

namespace kiln::testing {

namespace {

using graph::Node;
using ir::OpType;

// If(sum(x) > 0): x * w + sin(x) or x / (1 + w * w), w captured.
Node Branches(const std::vector<Node>& p) {
  Node x = p[0], w = p[1];
  Node pred = graph::GreaterThan(graph::ReduceSum(x, {}), graph::ScalarLike(x, 0));
  return graph::If(
      pred, [&](const std::vector<Node>&) { return std::vector<Node>{x * w + graph::Sin(x)}; },
      [&](const std::vector<Node>&) { return std::vector<Node>{x / (graph::OnesLike(w) + w * w)}; })[0];
}

}  // namespace

std::vector<GradCase> ControlFlowGradCases() {
  return {
      {OpType::kIf, "If taking the then branch", Branches, {Uniform({2, 3}, 0.5, 2, 601), Uniform({3}, -1, 1, 602)}},
      {OpType::kIf, "If taking the else branch", Branches, {Uniform({2, 3}, -2, -0.5, 603), Uniform({3}, -1, 1, 604)}},
      {OpType::kIf, "If with two results of different uses",
       [](const std::vector<Node>& p) {
         auto r = graph::If(
             graph::Const(p[0].Graph(), true),
             [](const std::vector<Node>& v) { return std::vector<Node>{v[0] * v[0], graph::Exp(v[0])}; },
             [](const std::vector<Node>& v) { return std::vector<Node>{v[0], v[0]}; }, {p[0]});
         return r[0] * 3.0 + r[1];
       },
       {Uniform({4}, -1, 1, 605)}},
      // x * 1.5 + w until sum(x) >= 10: the trip count (4 to 6 here) depends
      // on the inputs, but is constant near them.
      {OpType::kWhile, "While with a data-dependent trip count",
       [](const std::vector<Node>& p) {
         Node w = p[1];
         return graph::While(
             [](const std::vector<Node>& c) {
               return graph::LessThan(graph::ReduceSum(c[0], {}), graph::ScalarLike(c[0], 10));
             },
             [&](const std::vector<Node>& c) { return std::vector<Node>{c[0] * 1.5 + graph::Tanh(w)}; }, {p[0]},
             graph::WhileOptions{.max_trip_count = 50})[0];
       },
       {Uniform({3}, 0.3, 0.6, 606), Uniform({3}, 0.1, 0.3, 607)}},
      {OpType::kGetTupleElement, "Sort's two results of different uses",
       [](const std::vector<Node>& p) {
         auto r = graph::SortTogether({p[0], p[1]}, 1, 1, {.descending = true});
         return r[0] * 3.0 + graph::Exp(r[1]);
       },
       {Uniform({2, 5}, -2, 2, 610), Uniform({2, 5}, -1, 1, 611)}},
      {OpType::kSort, "Sort of keys with a float payload",
       [](const std::vector<Node>& p) {
         auto r = graph::SortTogether({p[0], p[1]}, 0);
         return r[0] * 2.0 + r[1];
       },
       {Uniform({5, 2}, -2, 2, 608), Uniform({5, 2}, -2, 2, 609)}},
  };
}

}  // namespace kiln::testing
