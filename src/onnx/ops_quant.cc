// Copyright 2026 The Kiln Authors.
// ONNX quantization operators: QuantizeLinear, DequantizeLinear,
// DynamicQuantizeLinear, and the integer / quantized-linear MatMul and Conv.
// Integer products accumulate in Int32, as ONNX specifies.
#include <algorithm>
#include <limits>

#include "kiln/graph/ops.h"
#include "src/onnx/converter.h"

namespace kiln::onnx::internal {
namespace {

using graph::Node;

Node S(Node x, double v) { return graph::ScalarLike(x, v); }

// A per-tensor scalar or a per-axis 1-D parameter, shaped to broadcast
// against a rank-r value along `axis`.
Node AlongAxis(Node p, int axis, int r) {
  if (p.Rank() == 0 || p.Shape().Size() == 1) return graph::Reshape(p, {});
  if (p.Rank() == r && r > 1) return p;  // already laid out to broadcast (N-D zero points of MatMulInteger)
  if (axis < 0 || axis >= r) Throw("ONNX import: a per-axis quantization parameter does not fit the value's rank");
  std::vector<int64_t> dims(static_cast<size_t>(r), 1);
  dims[static_cast<size_t>(axis)] = p.Shape().Size();
  return graph::Reshape(p, dims);
}

// round-half-to-even(v) saturated to the range of `dtype`.
Node Saturate(Node v, dtypes::DType dtype) {
  double lo = 0, hi = 0;
  DispatchDType(dtype, [&]<typename T>(T) {
    if constexpr (std::is_integral_v<T>) {
      lo = static_cast<double>(std::numeric_limits<T>::lowest());
      hi = static_cast<double>(std::numeric_limits<T>::max());
    }
  });
  if (lo == hi) Throw("quantization to " + std::string(dtypes::Name(dtype)) + " is not supported");
  return graph::ConvertDType(graph::Clamp(S(v, lo), graph::Round(v), S(v, hi)), dtype);
}

Node Quantize(OpContext& c, Node x, Node scale, Node zp, int axis) {
  const int r = x.Rank();
  const dtypes::DType out = zp.Ok() ? zp.DType() : dtypes::Uint8;
  Node xf = graph::ConvertDType(x, dtypes::Float32);
  Node v = graph::Round(xf / AlongAxis(graph::ConvertDType(scale, dtypes::Float32), axis, r));
  if (zp.Ok()) v = v + AlongAxis(graph::ConvertDType(zp, dtypes::Float32), axis, r);
  (void)c;
  return Saturate(v, out);
}

Node Dequantize(Node x, Node scale, Node zp, int axis) {
  const int r = x.Rank();
  Node xi = graph::ConvertDType(x, dtypes::Float32);
  if (zp.Ok()) xi = xi - AlongAxis(graph::ConvertDType(zp, dtypes::Float32), axis, r);
  return xi * AlongAxis(graph::ConvertDType(scale, dtypes::Float32), axis, r);
}

// x - zero_point in Int32 (a zero point per row of a matrix, or per
// output channel of a kernel, along `axis`).
Node Centered(Node x, Node zp, int axis) {
  Node xi = graph::ConvertDType(x, dtypes::Int32);
  if (!zp.Ok()) return xi;
  return xi - AlongAxis(graph::ConvertDType(zp, dtypes::Int32), axis, x.Rank());
}

}  // namespace

void RegisterQuantOps() {
  using namespace graph;  // NOLINT
  // The axis matters only for a per-axis (1-D, more than one value) scale.
  auto quant_axis = [](OpContext& c) {
    const int64_t axis = c.Int("axis", 1);
    return c.ShapeOf(1).Size() > 1 ? NormAxis(c, axis, c.RankOf(0)) : 0;
  };
  RegisterOp("QuantizeLinear", [quant_axis](OpContext& c) -> std::vector<Out> {
    return {Quantize(c, c.In(0), c.In(1), c.InOr(2), quant_axis(c))};
  });
  RegisterOp("DequantizeLinear", [quant_axis](OpContext& c) -> std::vector<Out> {
    return {Dequantize(c.In(0), c.In(1), c.InOr(2), quant_axis(c))};
  });
  RegisterOp("DynamicQuantizeLinear", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    Node zero = ScalarLike(x, 0);
    Node hi = Max(ReduceMax(x, {}), zero), lo = Min(ReduceMin(x, {}), zero);
    // All zeros: scale 1 (onnxruntime's choice), not 0 (a later division would give NaN).
    Node scale = Where(Equal(hi, lo), ScalarLike(hi, 1), (hi - lo) / ScalarLike(x, 255));
    Node zp = Saturate(Round(zero - lo / scale), dtypes::Uint8);
    Node y = Saturate(Round(x / scale) + ConvertDType(zp, x.DType()), dtypes::Uint8);
    return {y, scale, zp};
  });
  RegisterOp("MatMulInteger", [](OpContext& c) -> std::vector<Out> {
    Node a = c.In(0), b = c.In(1);
    // a's zero point is per row (its second-to-last axis), b's per column.
    return {MatMul(Centered(a, c.InOr(2), std::max(a.Rank() - 2, 0)), Centered(b, c.InOr(3), b.Rank() - 1))};
  });
  RegisterOp("ConvInteger", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), w = c.In(1);
    return {ConvGeneral(Centered(x, c.InOr(2), 1), Centered(w, c.InOr(3), 0), ConvAttrsOf(c, x, w))};
  });
  RegisterOp("QLinearMatMul", [](OpContext& c) -> std::vector<Out> {
    Node a = c.In(0), b = c.In(3);
    Node acc = ConvertDType(MatMul(Centered(a, c.In(2), std::max(a.Rank() - 2, 0)), Centered(b, c.In(5), b.Rank() - 1)),
                            dtypes::Float32);
    // a's scale is per row: the output's second-to-last axis.
    Node scale = ConvertDType(AlongAxis(c.In(1), std::max(acc.Rank() - 2, 0), acc.Rank()), dtypes::Float32) *
                 ConvertDType(AlongAxis(c.In(4), acc.Rank() - 1, acc.Rank()), dtypes::Float32) /
                 ConvertDType(Reshape(c.In(6), {}), dtypes::Float32);
    Node zp = c.In(7);
    return {Saturate(Round(acc * scale) + ConvertDType(Reshape(zp, {}), dtypes::Float32), zp.DType())};
  });
  RegisterOp("QLinearConv", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), w = c.In(3);
    Node acc = ConvGeneral(Centered(x, c.In(2), 1), Centered(w, c.In(5), 0), ConvAttrsOf(c, x, w));
    if (c.Has(8)) {
      std::vector<int64_t> d(static_cast<size_t>(acc.Rank()), 1);
      d[1] = acc.Shape().Dim(1);
      acc = acc + Reshape(ConvertDType(c.In(8), dtypes::Int32), d);
    }
    Node accf = ConvertDType(acc, dtypes::Float32);
    Node scale = ConvertDType(Reshape(c.In(1), {}), dtypes::Float32) *
                 ConvertDType(AlongAxis(c.In(4), 1, acc.Rank()), dtypes::Float32) /
                 ConvertDType(Reshape(c.In(6), {}), dtypes::Float32);
    Node zp = c.In(7);
    return {Saturate(Round(accf * scale) + ConvertDType(Reshape(zp, {}), dtypes::Float32), zp.DType())};
  });
}

}  // namespace kiln::onnx::internal
