// Copyright 2026 The Kiln Authors.
// ONNX reductions, ArgMax/ArgMin, CumSum and TopK.
#include <algorithm>

#include "kiln/graph/cumulative.h"
#include "kiln/graph/ops.h"
#include "kiln/graph/sort.h"
#include "src/onnx/converter.h"

namespace kiln::onnx::internal {
namespace {

using graph::Node;

// ReduceX: axes from the attribute (before `axes_input_opset`) or input 1;
// keepdims; noop_with_empty_axes.
void Reduction(const std::string& name, int64_t axes_input_opset, std::function<Node(Node, std::vector<int>)> fn) {
  RegisterOp(name, [fn, axes_input_opset](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int r = x.Rank();
    const bool keepdims = c.Int("keepdims", 1) != 0;
    std::vector<int64_t> axes;
    bool given;
    if (c.Opset() >= axes_input_opset) {
      given = c.Has(1);
      if (given) axes = c.Ints(1, "axes");
    } else {
      given = c.HasAttr("axes");
      axes = c.IntsAttr("axes");
    }
    if (axes.empty()) {
      if (c.Int("noop_with_empty_axes", 0) != 0) return {x};
      for (int d = 0; d < r; ++d) axes.push_back(d);
    }
    std::vector<int> a;
    for (int64_t ax : axes) a.push_back(NormAxis(c, ax, r));
    std::sort(a.begin(), a.end());
    a.erase(std::unique(a.begin(), a.end()), a.end());
    Node y = a.empty() ? x : fn(x, a);
    if (keepdims) {
      auto d = x.Shape().Dims();
      for (int ax : a) d[ax] = 1;
      y = graph::Reshape(y, d);
    }
    return {y};
  });
}

void ArgMinMax(const std::string& name, bool is_min) {
  RegisterOp(name, [is_min](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int axis = NormAxis(c, c.Int("axis", 0), x.Rank());
    const bool last = c.Int("select_last_index", 0) != 0;
    Node idx;
    if (last) {
      idx = graph::ArgMinMax(graph::Reverse(x, {axis}), axis, is_min, dtypes::Int64);
      idx = graph::ScalarLike(idx, static_cast<double>(x.Shape().Dim(axis) - 1)) - idx;
    } else {
      idx = graph::ArgMinMax(x, axis, is_min, dtypes::Int64);
    }
    if (c.Int("keepdims", 1) != 0) idx = graph::ExpandAxes(idx, {axis});
    return {idx};
  });
}

}  // namespace

void RegisterReduceOps() {
  using namespace graph;  // NOLINT
  Reduction("ReduceSum", 13, [](Node x, std::vector<int> a) { return ReduceSum(x, a); });
  Reduction("ReduceMean", 18, [](Node x, std::vector<int> a) {
    if (dtypes::IsFloat(x.DType())) return ReduceMean(x, a);
    // Integers: the sum divided by the count, truncated (as onnxruntime).
    int64_t count = 1;
    for (int axis : a) count *= x.Shape().Dim(axis);
    Node sum = ReduceSum(x, a);
    return count == 0 ? sum : Div(sum, ScalarLike(sum, static_cast<double>(count)));
  });
  Reduction("ReduceMax", 18, [](Node x, std::vector<int> a) { return ReduceMax(x, a); });
  Reduction("ReduceMin", 18, [](Node x, std::vector<int> a) { return ReduceMin(x, a); });
  Reduction("ReduceProd", 18, [](Node x, std::vector<int> a) { return ReduceProduct(x, a); });
  Reduction("ReduceL1", 18, [](Node x, std::vector<int> a) { return ReduceSum(Abs(x), a); });
  Reduction("ReduceL2", 18, [](Node x, std::vector<int> a) {
    if (!dtypes::IsFloat(x.DType())) {
      return ConvertDType(Sqrt(ReduceSum(Square(ConvertDType(x, dtypes::Float64)), a)), x.DType());
    }
    return Sqrt(ReduceSum(Square(x), a));
  });
  Reduction("ReduceSumSquare", 18, [](Node x, std::vector<int> a) { return ReduceSum(Square(x), a); });
  Reduction("ReduceLogSum", 18, [](Node x, std::vector<int> a) { return Log(ReduceSum(x, a)); });
  Reduction("ReduceLogSumExp", 18, [](Node x, std::vector<int> a) {
    if (x.Shape().Size() == 0) return Log(ReduceSum(Exp(x), a));
    return LogSumExp(x, a);
  });
  ArgMinMax("ArgMax", false);
  ArgMinMax("ArgMin", true);

  RegisterOp("CumSum", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const auto axis = c.Ints(1, "axis");
    if (axis.size() != 1) c.Fail("axis must hold one value");
    CumulativeOptions o{.exclusive = c.Int("exclusive", 0) != 0, .reverse = c.Int("reverse", 0) != 0};
    return {CumSum(x, NormAxis(c, axis[0], x.Rank()), o)};
  });
  RegisterOp("TopK", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    int64_t k;
    if (c.Opset() < 10) {
      k = c.Int("k", 0);
    } else {
      const auto kv = c.Ints(1, "K");
      if (kv.size() != 1) c.Fail("K must hold one value");
      k = kv[0];
    }
    const int axis = NormAxis(c, c.Int("axis", -1), x.Rank());
    if (k < 0 || k > x.Shape().Dim(axis)) c.Fail("K = " + std::to_string(k) + " is out of range for " + x.Shape().ToString());
    const bool largest = c.Opset() < 11 || c.Int("largest", 1) != 0;
    c.Ignore({"sorted"});  // sorted = 0 allows any order; sorted is one
    TopKResult t = largest ? TopK(x, k, axis, dtypes::Int64) : BottomK(x, k, axis, dtypes::Int64);
    return {t.values, t.indices};
  });
}

}  // namespace kiln::onnx::internal
