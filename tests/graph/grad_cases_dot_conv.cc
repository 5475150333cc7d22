// Copyright 2026 The Kiln Authors.
// Gradient cases of DotGeneral, ConvGeneral, ReduceWindow and
// SelectAndScatter, plus second-order cases (a case whose function is itself
// a gradient) proving that their VJP rules are differentiable again, and the
// fused Attention (plain, causal grouped-query, masked, second order).
#include <string>

#include "kiln/graph/attention.h"
#include "kiln/graph/autodiff.h"
#include "tests/graph/grad_cases.h"

namespace kiln::testing {

namespace {

using graph::Node;
using ir::OpType;
using ir::WindowReduction;


// ------------------------------------------------------------ DotGeneral.

GradCase Dot(const std::string& name, std::vector<int64_t> lhs_dims, std::vector<int> lhs_contracting,
             std::vector<int> lhs_batch, std::vector<int64_t> rhs_dims, std::vector<int> rhs_contracting,
             std::vector<int> rhs_batch) {
  return {OpType::kDotGeneral, "DotGeneral " + name,
          [=](const std::vector<Node>& p) {
            return graph::DotGeneral(p[0], lhs_contracting, lhs_batch, p[1], rhs_contracting, rhs_batch);
          },
          {Uniform(std::move(lhs_dims), -2, 2, 101), Uniform(std::move(rhs_dims), -2, 2, 102)}};
}

std::vector<GradCase> DotCases() {
  return {
      Dot("plain matmul [2,3] x [3,4]", {2, 3}, {1}, {}, {3, 4}, {0}, {}),
      Dot("batch axis in the middle", {2, 3, 4}, {2}, {1}, {4, 3, 2}, {0}, {1}),
      Dot("two batch axes paired out of order", {2, 3, 4}, {1}, {2, 0}, {4, 2, 3, 2}, {2}, {0, 1}),
      Dot("contracting axis first on lhs, last on rhs", {3, 2}, {0}, {}, {4, 3}, {1}, {}),
      Dot("two contracting axes paired out of order", {2, 3, 4}, {2, 0}, {}, {4, 2, 3}, {0, 1}, {}),
      Dot("vector . vector", {5}, {0}, {}, {5}, {0}, {}),
  };
}

// ----------------------------------------------------------- ConvGeneral.

// Axes from layout strings: input "N"/"C", kernel "I"/"O", output "N"/"C";
// every other letter is a spatial axis, matched across the three strings by
// order of appearance.
ir::ConvAttrs ConvLayout(const std::string& input, const std::string& kernel, const std::string& output) {
  ir::ConvAttrs a;
  auto parse = [](const std::string& s, char batch, char feature, int64_t& b, int64_t& f,
                  std::vector<int64_t>& spatial) {
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == batch) b = static_cast<int64_t>(i);
      else if (s[i] == feature) f = static_cast<int64_t>(i);
      else spatial.push_back(static_cast<int64_t>(i));
    }
  };
  parse(input, 'N', 'C', a.input_batch_axis, a.input_feature_axis, a.input_spatial_axes);
  parse(kernel, 'I', 'O', a.kernel_input_feature_axis, a.kernel_output_feature_axis, a.kernel_spatial_axes);
  parse(output, 'N', 'C', a.output_batch_axis, a.output_feature_axis, a.output_spatial_axes);
  return a;
}

ir::ConvAttrs Nchw(int spatial = 2) {
  const std::string s = std::string("DHW").substr(3 - spatial);
  return ConvLayout("NC" + s, "OI" + s, "NC" + s);
}

GradCase Conv(const std::string& name, std::vector<int64_t> input, std::vector<int64_t> kernel, ir::ConvAttrs attrs,
              GradCheckOptions options = {}) {
  return {OpType::kConvGeneral, "ConvGeneral " + name,
          [attrs](const std::vector<Node>& p) { return graph::ConvGeneral(p[0], p[1], attrs); },
          {Uniform(std::move(input), -1, 1, 201), Uniform(std::move(kernel), -1, 1, 202)},
          options};
}

std::vector<GradCase> ConvCases() {
  std::vector<GradCase> cases = {
      Conv("1-D NWC / WIO", {2, 5, 3}, {3, 3, 2}, ConvLayout("NWC", "WIO", "NWC")),
      Conv("2-D NHWC / HWIO", {1, 4, 4, 2}, {2, 2, 2, 3}, ConvLayout("NHWC", "HWIO", "NHWC")),
      Conv("2-D NCHW / OIHW", {2, 2, 4, 3}, {3, 2, 2, 2}, Nchw()),
      Conv("2-D mixed layouts CHWN / IHOW -> HNWC", {2, 4, 3, 2}, {2, 2, 3, 2}, ConvLayout("CHWN", "IHOW", "HNWC")),
      Conv("3-D NCDHW", {1, 2, 3, 3, 3}, {2, 2, 2, 2, 2}, Nchw(3)),
  };
  ir::ConvAttrs a = Nchw();
  a.strides = {2, 2};
  cases.push_back(Conv("strides 2 (input 5x6, kernel 3x3)", {1, 2, 5, 6}, {2, 2, 3, 3}, a));
  a = Nchw();
  a.padding_low = {1, 0};
  a.padding_high = {2, 1};
  cases.push_back(Conv("padding low != high", {1, 2, 4, 3}, {2, 2, 2, 2}, a));
  a = Nchw();
  a.padding_low = {-1, 1};
  a.padding_high = {0, -1};
  cases.push_back(Conv("negative padding", {1, 2, 5, 4}, {2, 2, 2, 2}, a));
  a = Nchw();
  a.kernel_dilation = {2, 1};
  cases.push_back(Conv("kernel dilation", {1, 2, 5, 4}, {2, 2, 2, 2}, a));
  a = Nchw();
  a.input_dilation = {2, 3};
  a.padding_low = {1, 0};
  a.padding_high = {0, 1};
  cases.push_back(Conv("input dilation", {1, 2, 3, 3}, {2, 2, 2, 2}, a));
  a = ConvLayout("NWC", "WIO", "NWC");
  a.strides = {3};
  a.input_dilation = {2};
  a.kernel_dilation = {2};
  a.padding_low = {-1};
  a.padding_high = {2};
  cases.push_back(Conv("1-D strides, input and kernel dilation, negative padding", {2, 6, 2}, {3, 2, 2}, a));
  a = Nchw();
  a.feature_group_count = 2;
  cases.push_back(Conv("feature_group_count 2", {2, 4, 3, 3}, {4, 2, 2, 2}, a));
  a = ConvLayout("NHWC", "HWIO", "NHWC");
  a.feature_group_count = 3;
  a.strides = {1, 2};
  cases.push_back(Conv("depthwise NHWC, channel multiplier 2", {1, 4, 4, 3}, {2, 2, 1, 6}, a));
  a = Nchw();
  a.batch_group_count = 2;
  cases.push_back(Conv("batch_group_count 2", {4, 2, 3, 3}, {4, 2, 2, 2}, a));
  a = ConvLayout("NHWC", "HWIO", "NHWC");
  a.batch_group_count = 2;
  a.strides = {2, 1};
  a.padding_low = {1, 0};
  cases.push_back(Conv("batch_group_count 2 NHWC with strides and padding", {4, 4, 3, 2}, {2, 2, 2, 4}, a));
  return cases;
}

// ---------------------------------------------------------- ReduceWindow.

struct WindowSpec {
  std::vector<int64_t> window, strides = {}, low = {}, high = {}, base_dilation = {}, window_dilation = {};
};

ir::WindowAttrs MakeWindow(WindowReduction reduction, const WindowSpec& w) {
  ir::WindowAttrs a;
  a.reduction = reduction;
  a.window_dimensions = w.window;
  a.strides = w.strides;
  a.padding_low = w.low;
  a.padding_high = w.high;
  a.base_dilations = w.base_dilation;
  a.window_dilations = w.window_dilation;
  return a;
}

GradCase Window(const std::string& name, WindowReduction reduction, const WindowSpec& w, tensors::Tensor x) {
  ir::WindowAttrs attrs = MakeWindow(reduction, w);
  return {OpType::kReduceWindow, "ReduceWindow " + name,
          [attrs](const std::vector<Node>& p) { return graph::ReduceWindow(p[0], attrs); },
          {std::move(x)}};
}

std::vector<GradCase> WindowCases() {
  // Random values are distinct (no max/min ties); products stay away from 0
  // except in the case with exact zeros.
  auto x = [](uint64_t seed) { return Uniform({4, 5}, -2, 2, seed); };
  auto positive = [](uint64_t seed) { return Uniform({4, 5}, 0.5, 1.5, seed); };
  const WindowSpec strided{.window = {2, 3}, .strides = {2, 1}, .low = {1, 0}, .high = {0, 2}};
  const WindowSpec dilated{.window = {2, 2}, .strides = {1, 2}, .low = {0, 1}, .high = {1, 0},
                           .base_dilation = {2, 1}, .window_dilation = {1, 2}};
  const WindowSpec cropped{.window = {2, 2}, .strides = {1, 1}, .low = {-1, 1}, .high = {0, -1}};
  tensors::Tensor with_zeros = positive(305);
  with_zeros.MutableFlat<double>()[0] = 0;  // one zero in a window
  with_zeros.MutableFlat<double>()[6] = 0;  // two zeros in the windows around 6, 7
  with_zeros.MutableFlat<double>()[7] = 0;
  return {
      Window("sum with strides and padding", WindowReduction::kSum, strided, x(301)),
      Window("sum with base and window dilation", WindowReduction::kSum, dilated, x(302)),
      Window("sum with negative padding", WindowReduction::kSum, cropped, x(303)),
      Window("max with strides and padding", WindowReduction::kMax, strided, x(311)),
      Window("max with base and window dilation", WindowReduction::kMax, dilated, x(312)),
      Window("min with strides and padding", WindowReduction::kMin, strided, x(321)),
      Window("min with base and window dilation", WindowReduction::kMin, dilated, x(322)),
      Window("product with strides and padding", WindowReduction::kProduct, strided, positive(331)),
      Window("product with base and window dilation", WindowReduction::kProduct, dilated, x(332)),
      Window("product with zeros", WindowReduction::kProduct, {.window = {2, 2}}, with_zeros),
  };
}

// ------------------------------------------------------ SelectAndScatter.

std::vector<GradCase> SelectAndScatterCases() {
  const ir::WindowAttrs overlapping =
      MakeWindow(WindowReduction::kMax, {.window = {2, 3}, .strides = {1, 2}, .low = {1, 0}, .high = {0, 2}});
  const ir::WindowAttrs dilated = MakeWindow(
      WindowReduction::kMin, {.window = {2, 2}, .low = {0, 1}, .base_dilation = {2, 1}, .window_dilation = {1, 2}});
  const tensors::Tensor operand = Uniform({4, 5}, -2, 2, 401);  // distinct values
  std::vector<GradCase> cases;
  // The operand is a constant: the gradient w.r.t. the source only.
  cases.push_back({OpType::kSelectAndScatter, "SelectAndScatter max w.r.t. source, overlapping windows",
                   [operand, overlapping](const std::vector<Node>& p) {
                     return graph::SelectAndScatter(graph::Const(p[0].Graph(), operand), p[0], overlapping);
                   },
                   {Uniform({4, 3}, -2, 2, 402)}});
  cases.push_back({OpType::kSelectAndScatter, "SelectAndScatter min w.r.t. source, base and window dilation",
                   [operand, dilated](const std::vector<Node>& p) {
                     return graph::SelectAndScatter(graph::Const(p[0].Graph(), operand), p[0], dilated);
                   },
                   {Uniform({6, 4}, -2, 2, 403)}});
  // With the operand a parameter too: its gradient is zero (distinct values,
  // so a small step never changes the selection).
  cases.push_back({OpType::kSelectAndScatter, "SelectAndScatter max w.r.t. operand (zero) and source",
                   [overlapping](const std::vector<Node>& p) {
                     return graph::SelectAndScatter(p[0], p[1], overlapping);
                   },
                   {operand, Uniform({4, 3}, -2, 2, 404)}});
  return cases;
}

// ---------------------------------------------------------- Second order.

std::vector<GradCase> SecondOrderCases() {
  ir::ConvAttrs strided = Nchw();
  strided.strides = {2, 1};
  strided.padding_low = {1, 0};
  strided.padding_high = {0, 1};
  ir::ConvAttrs grouped = ConvLayout("NHWC", "HWIO", "NHWC");
  grouped.feature_group_count = 2;
  const ir::WindowAttrs pool =
      MakeWindow(WindowReduction::kMax, {.window = {2, 2}, .strides = {1, 2}, .low = {0, 1}, .high = {1, 0}});
  const ir::WindowAttrs sum_pool =
      MakeWindow(WindowReduction::kSum, {.window = {2, 2}, .strides = {2, 1}, .low = {1, 0}, .high = {0, 1}});
  // fn(x, k) = d/d{x or k} sum(conv(x, k)^2).
  auto conv_grad = [](ir::ConvAttrs attrs, int wrt) {
    return [attrs, wrt](const std::vector<Node>& p) {
      Node y = graph::ConvGeneral(p[0], p[1], attrs);
      return graph::Gradient(graph::ReduceAllSum(graph::Square(y)), {p[0], p[1]})[wrt];
    };
  };
  // fn(x) = d/dx sum(pool(x)^3): for max pooling a SelectAndScatter whose
  // source depends on x, so its source gradient is exercised.
  auto pool_grad = [](ir::WindowAttrs attrs) {
    return [attrs](const std::vector<Node>& p) {
      Node y = graph::ReduceWindow(p[0], attrs);
      return graph::Gradient(graph::ReduceAllSum(graph::Mul(graph::Square(y), y)), {p[0]})[0];
    };
  };
  return {
      {OpType::kConvGeneral, "ConvGeneral second order: input gradient, strides and padding",
       conv_grad(strided, 0), {Uniform({1, 2, 4, 3}, -1, 1, 501), Uniform({2, 2, 2, 2}, -1, 1, 502)}},
      {OpType::kConvGeneral, "ConvGeneral second order: kernel gradient, feature_group_count 2",
       conv_grad(grouped, 1), {Uniform({1, 3, 3, 4}, -1, 1, 503), Uniform({2, 2, 2, 4}, -1, 1, 504)}},
      {OpType::kReduceWindow, "ReduceWindow max second order (max pooling)", pool_grad(pool),
       {Uniform({4, 5}, -2, 2, 505)}},
      {OpType::kReduceWindow, "ReduceWindow sum second order", pool_grad(sum_pool), {Uniform({4, 5}, -2, 2, 506)}},
  };
}

// ------------------------------------------------------------- Attention.

std::vector<GradCase> AttentionCases() {
  auto attention = [](graph::AttentionOptions o, bool masked) {
    return [o, masked](const std::vector<Node>& p) {
      Node mask;
      if (masked) {
        // Key 1 hidden from every query of head 0; head 1 sees all.
        const shapes::Shape s = shapes::Make(dtypes::Int32, 1, 2, 3, 4);
        mask = graph::LogicalOr(graph::NotEqual(graph::Iota(p[0].Graph(), s, 3), graph::Const(p[0].Graph(), 1)),
                                graph::Equal(graph::Iota(p[0].Graph(), s, 1), graph::Const(p[0].Graph(), 1)));
      }
      return graph::Attention(p[0], p[1], p[2], mask, o);
    };
  };
  return {
      {OpType::kAttention, "Attention", attention({.scale = 0.7}, false),
       {Uniform({2, 2, 3, 4}, -1, 1, 601), Uniform({2, 2, 4, 4}, -1, 1, 602), Uniform({2, 2, 4, 4}, -1, 1, 603)}},
      {OpType::kAttention, "Attention causal, grouped-query (2 heads per kv head)", attention({.scale = 0.5, .causal = true}, false),
       {Uniform({1, 4, 3, 2}, -1, 1, 604), Uniform({1, 2, 4, 2}, -1, 1, 605), Uniform({1, 2, 4, 2}, -1, 1, 606)}},
      {OpType::kAttention, "Attention with a mask broadcast over the batch", attention({.scale = 1}, true),
       {Uniform({2, 2, 3, 4}, -1, 1, 607), Uniform({2, 2, 4, 4}, -1, 1, 608), Uniform({2, 2, 4, 4}, -1, 1, 609)}},
      {OpType::kAttention, "Attention second order (gradient of q's gradient)",
       [](const std::vector<Node>& p) {
         Node y = graph::ReduceAllSum(graph::Sin(graph::Attention(p[0], p[1], p[2], {}, {.scale = 0.8, .causal = true})));
         return graph::Gradient(y, {p[0]})[0];
       },
       {Uniform({1, 1, 2, 3}, -1, 1, 610), Uniform({1, 1, 3, 3}, -1, 1, 611), Uniform({1, 1, 3, 3}, -1, 1, 612)}},
      {OpType::kAttentionGrad,
       "AttentionGrad (all three gradients, in q, k, v and the cotangent; grouped-query, causal, masked)",
       [](const std::vector<Node>& p) {
         graph::Graph* g = p[0].Graph();
         const shapes::Shape s = shapes::Make(dtypes::Int32, 1, 4, 3, 4);
         Node mask = graph::NotEqual(graph::Iota(g, s, 3), graph::Iota(g, s, 1));  // head h hides key h
         Node out = graph::Attention(p[0], p[1], p[2], mask, {.scale = 0.6, .causal = true});
         std::vector<Node> grads = graph::VJP({out}, {p[3]}, {p[0], p[1], p[2]});
         return graph::Concatenate({graph::Reshape(grads[0], {24}), graph::Reshape(grads[1], {16}),
                                    graph::Reshape(grads[2], {16})}, 0);
       },
       {Uniform({1, 4, 3, 2}, -1, 1, 613), Uniform({1, 2, 4, 2}, -1, 1, 614), Uniform({1, 2, 4, 2}, -1, 1, 615),
        Uniform({1, 4, 3, 2}, -1, 1, 616)}},
  };
}

}  // namespace

std::vector<GradCase> DotConvGradCases() {
  std::vector<GradCase> cases;
  for (auto group : {DotCases(), ConvCases(), WindowCases(), SelectAndScatterCases(), SecondOrderCases(),
                     AttentionCases()}) {
    cases.insert(cases.end(), group.begin(), group.end());
  }
  return cases;
}

}  // namespace kiln::testing
