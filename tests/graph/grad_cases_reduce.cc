// Copyright 2026 The Kiln Authors.
// Gradient cases of the float reductions.
#include "kiln/graph/autodiff.h"
#include "tests/graph/grad_cases.h"

namespace kiln::testing {

namespace {

using graph::Node;
using ir::OpType;



using ReduceFn = Node (*)(Node, std::vector<int>, graph::Loc);

GradCase Reduction(OpType op, const std::string& name, ReduceFn f, std::vector<int> axes, tensors::Tensor x) {
  return {op, name, [f, axes](const std::vector<Node>& p) { return f(p[0], axes, graph::Loc::current()); },
          {std::move(x)}};
}

}  // namespace

std::vector<GradCase> ReduceGradCases() {
  std::vector<GradCase> cases = {
      Reduction(OpType::kReduceSum, "ReduceSum over axes 0 and 2", graph::ReduceSum, {0, 2},
                Uniform({2, 3, 4}, -3, 3, 101)),
      Reduction(OpType::kReduceSum, "ReduceSum over all axes", graph::ReduceSum, {}, Uniform({2, 3}, -3, 3, 102)),
      Reduction(OpType::kReduceSum, "ReduceSum over negative axes -1 and -3", graph::ReduceSum, {-1, -3},
                Uniform({2, 3, 4}, -3, 3, 103)),
      // Reducing a size-1 axis keeps every value (a no-op on the data).
      Reduction(OpType::kReduceSum, "ReduceSum over a size-1 axis (-2)", graph::ReduceSum, {-2},
                Uniform({2, 1, 3}, -3, 3, 104)),
      // Groups of 10 (a multi-step scan) over non-adjacent axes.
      Reduction(OpType::kReduceProduct, "ReduceProduct over axes 0 and 2 without zeros", graph::ReduceProduct,
                {0, 2}, Uniform({2, 3, 5}, 0.5, 1.5, 111)),
      Reduction(OpType::kReduceProduct, "ReduceProduct over all axes", graph::ReduceProduct, {},
                Uniform({2, 3}, -1.5, 1.5, 112)),
      // Row 0 has one zero, row 1 none, row 2 a zero in the last place.
      Reduction(OpType::kReduceProduct, "ReduceProduct with one zero in a group", graph::ReduceProduct, {1},
                Values({3, 5}, {0.5, 0, 1.2, -0.7, 1.1, 0.9, -1.3, 0.8, 1.4, 0.6, 1.1, -0.6, 0.9, 1.4, 0})),
      // Row 0 has two zeros, row 1 three, row 2 one (at the front).
      Reduction(OpType::kReduceProduct, "ReduceProduct with two zeros in a group", graph::ReduceProduct, {-1},
                Values({3, 5}, {0, 0.9, 0, -1.3, 0.8, 0, 1.2, 0, 0, -0.7, 0, 1.3, -0.9, 0.6, 1.1})),
      Reduction(OpType::kReduceMax, "ReduceMax over one axis", graph::ReduceMax, {1}, Uniform({3, 4}, -3, 3, 121)),
      Reduction(OpType::kReduceMax, "ReduceMax over axes 0 and 2", graph::ReduceMax, {0, 2},
                Uniform({2, 3, 4}, -3, 3, 122)),
      Reduction(OpType::kReduceMin, "ReduceMin over one axis", graph::ReduceMin, {0}, Uniform({3, 4}, -3, 3, 131)),
      Reduction(OpType::kReduceMin, "ReduceMin over axes -1 and -3", graph::ReduceMin, {-1, -3},
                Uniform({2, 3, 4}, -3, 3, 132)),
      // Two-way ties split the cotangent evenly, which is also what central
      // differences see (one side moves the result, the other does not).
      Reduction(OpType::kReduceMax, "ReduceMax ties", graph::ReduceMax, {1},
                Values({3, 4}, {1, 3, 3, 2, -1, 0.5, -1, 0.5, 2, 0, 1, -2})),
      Reduction(OpType::kReduceMin, "ReduceMin ties", graph::ReduceMin, {1},
                Values({3, 4}, {1, 3, 1, 2, -1, 0.5, -1, 0.5, 2, 0, 1, -2})),
  };
  // Second order through zeros: d^2 prod / dx_i dx_j is the product of the
  // remaining elements, nonzero even where x_i or x_j is zero.
  cases.push_back({OpType::kReduceProduct, "ReduceProduct second order with zeros",
                   [](const std::vector<Node>& p) {
                     Node y = graph::ReduceProduct(p[0], {1});
                     return graph::Gradient(graph::ReduceAllSum(graph::Mul(y, y)), {p[0]})[0];
                   },
                   {Values({3, 4}, {0.5, 0, 1.2, -0.7, 0, 0.9, 0, -1.3, 1.1, -0.6, 0.9, 1.4})},
                   {.rtol = 1e-5, .atol = 1e-7}});
  return cases;
}

}  // namespace kiln::testing
