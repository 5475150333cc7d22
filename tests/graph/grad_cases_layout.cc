// Copyright 2026 The Kiln Authors.
// Gradient cases of the data-movement (layout) ops.
#include "kiln/graph/autodiff.h"
#include "tests/graph/grad_cases.h"

namespace kiln::testing {

namespace {

using graph::Node;
using ir::OpType;

tensors::Tensor Uniform(std::vector<int64_t> dims, uint64_t seed) {
  Rng rng(seed);
  return Random(shapes::Shape(dtypes::Float64, std::move(dims)), rng, -3, 3);
}

// Int32 scalar constants built inside the graph (start indices).
std::vector<Node> Starts(graph::Graph* g, const std::vector<int>& values) {
  std::vector<Node> starts;
  for (int v : values) starts.push_back(graph::Scalar(g, dtypes::Int32, v));
  return starts;
}

GradCase DynamicSliceCase(const std::string& name, std::vector<int> starts) {
  return {OpType::kDynamicSlice, name,
          [starts](const std::vector<Node>& p) {
            return graph::DynamicSlice(p[0], Starts(p[0].Graph(), starts), {2, 3});
          },
          {Uniform({4, 5}, 81)}};
}

GradCase DynamicUpdateSliceCase(const std::string& name, std::vector<int> starts) {
  return {OpType::kDynamicUpdateSlice, name,
          [starts](const std::vector<Node>& p) {
            return graph::DynamicUpdateSlice(p[0], p[1], Starts(p[0].Graph(), starts));
          },
          {Uniform({4, 5}, 91), Uniform({2, 3}, 92)}};
}

}  // namespace

std::vector<GradCase> LayoutGradCases() {
  std::vector<GradCase> cases;
  cases.push_back({OpType::kReshape, "Reshape [2,3,2] -> [3,4]",
                   [](const std::vector<Node>& p) { return graph::Reshape(p[0], {3, 4}); }, {Uniform({2, 3, 2}, 1)}});
  cases.push_back({OpType::kTranspose, "Transpose [2,3,4] by [2,0,1]",
                   [](const std::vector<Node>& p) { return graph::Transpose(p[0], {2, 0, 1}); },
                   {Uniform({2, 3, 4}, 11)}});
  cases.push_back({OpType::kBroadcastInDim, "BroadcastInDim [3] -> [2,3]",
                   [](const std::vector<Node>& p) { return graph::BroadcastInDim(p[0], {2, 3}, {1}); },
                   {Uniform({3}, 21)}});
  cases.push_back({OpType::kBroadcastInDim, "BroadcastInDim [2,1] -> [2,4] (stretched size-1 axis)",
                   [](const std::vector<Node>& p) { return graph::BroadcastInDim(p[0], {2, 4}, {0, 1}); },
                   {Uniform({2, 1}, 22)}});
  cases.push_back({OpType::kBroadcastInDim, "BroadcastInDim scalar -> [2,2]",
                   [](const std::vector<Node>& p) { return graph::BroadcastInDim(p[0], {2, 2}, {}); },
                   {tensors::FromValue(1.5)}});
  cases.push_back({OpType::kConcatenate, "Concatenate 3 operands along the middle axis",
                   [](const std::vector<Node>& p) { return graph::Concatenate({p[0], p[1], p[2]}, 1); },
                   {Uniform({2, 1, 3}, 31), Uniform({2, 2, 3}, 32), Uniform({2, 3, 3}, 33)}});
  // Takes rows 1, 3 and columns 2, 5 of a [5,7].
  cases.push_back({OpType::kSlice, "Slice with starts [1,2] and strides [2,3]",
                   [](const std::vector<Node>& p) { return graph::Slice(p[0], {1, 2}, {5, 7}, {2, 3}); },
                   {Uniform({5, 7}, 41)}});
  // Axis 0 crops the first element and pads 2 at the end; axis 1 pads 2 in
  // front and crops the last (padding) column; interior padding on both.
  cases.push_back({OpType::kPad, "Pad with negative low, positive high and interior padding (operand and value)",
                   [](const std::vector<Node>& p) { return graph::Pad(p[0], p[1], {-1, 2}, {2, -1}, {1, 2}); },
                   {Uniform({3, 4}, 51), tensors::FromValue(0.7)}});
  // Negative high cropping real operand elements, not only padding.
  cases.push_back({OpType::kPad, "Pad cropping operand elements with negative high",
                   [](const std::vector<Node>& p) { return graph::Pad(p[0], p[1], {1, 0}, {-2, -3}, {0, 1}); },
                   {Uniform({3, 4}, 52), tensors::FromValue(-0.4)}});
  // Second order: the gradient of a Pad is a Slice (and its gradient a Pad).
  cases.push_back({OpType::kPad, "Pad second order",
                   [](const std::vector<Node>& p) {
                     Node y = graph::Pad(p[0], p[1], {-1, 1}, {1, -1}, {1, 0});
                     return graph::Gradient(graph::ReduceAllSum(graph::Mul(y, graph::Mul(y, y))), {p[0], p[1]})[0];
                   },
                   {Uniform({3, 3}, 53), tensors::FromValue(0.3)},
                   {.rtol = 1e-5, .atol = 1e-7}});
  cases.push_back({OpType::kReverse, "Reverse [2,3,4] over axes 0 and 2",
                   [](const std::vector<Node>& p) { return graph::Reverse(p[0], {0, 2}); }, {Uniform({2, 3, 4}, 61)}});
  cases.push_back(DynamicSliceCase("DynamicSlice in range", {1, 2}));
  // Starts 3 and -1 clamp to 2 and 0 for a [2,3] slice of a [4,5].
  cases.push_back(DynamicSliceCase("DynamicSlice with clamped starts", {3, -1}));
  cases.push_back(DynamicUpdateSliceCase("DynamicUpdateSlice in range", {1, 1}));
  // Starts -2 and 4 clamp to 0 and 2.
  cases.push_back(DynamicUpdateSliceCase("DynamicUpdateSlice with clamped starts", {-2, 4}));
  return cases;
}

}  // namespace kiln::testing
