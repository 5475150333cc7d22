// Copyright 2026 The Kiln Authors.
// Definitions (operand checks and shape rules) of DotGeneral, ConvGeneral,
// ReduceWindow and SelectAndScatter.
//
// Shape rules follow StableHLO dot_general, convolution, reduce_window and
// select_and_scatter. Negative paddings are accepted everywhere (they crop,
// as StableHLO allows); the CPU kernels support them.
#include <optional>
#include <string>

#include "src/graph/op_builder.h"

namespace kiln::graph {

using internal::ListToString;
using internal::OpError;
using ir::OpType;

namespace {

// ------------------------------------------------------------- DotGeneral.

// Normalizes the `role` axes ("lhs contracting", ...) of `operand`, checking
// range and repeats (also against the axes already `used` by the operand).
std::vector<int64_t> NormalizeDotAxes(const std::vector<int>& axes, const shapes::Shape& operand,
                                      const std::string& role, std::vector<bool>& used, const Loc& loc) {
  std::vector<int64_t> out;
  out.reserve(axes.size());
  for (int axis : axes) {
    const int a = axis < 0 ? axis + operand.Rank() : axis;
    if (a < 0 || a >= operand.Rank()) {
      OpError(loc, "DotGeneral", role + " axis " + std::to_string(axis) + " is out of range for " + operand.ToString());
    }
    if (used[a]) {
      OpError(loc, "DotGeneral", role + " axis " + std::to_string(axis) + " of " + operand.ToString() +
                                     " is used more than once (batch and contracting axes must be distinct)");
    }
    used[a] = true;
    out.push_back(a);
  }
  return out;
}

// Checks that paired axes of lhs and rhs have equal dimensions.
void CheckPairedDims(const shapes::Shape& lhs, const std::vector<int64_t>& lhs_axes, const shapes::Shape& rhs,
                     const std::vector<int64_t>& rhs_axes, const std::string& kind, const Loc& loc) {
  for (size_t i = 0; i < lhs_axes.size(); ++i) {
    const int64_t dl = lhs.Dims()[lhs_axes[i]], dr = rhs.Dims()[rhs_axes[i]];
    if (dl != dr) {
      OpError(loc, "DotGeneral", kind + " axes differ in size: lhs " + lhs.ToString() + " axis " +
                                     std::to_string(lhs_axes[i]) + " has " + std::to_string(dl) + ", rhs " +
                                     rhs.ToString() + " axis " + std::to_string(rhs_axes[i]) + " has " +
                                     std::to_string(dr));
    }
  }
}

// Appends the dims of the axes of `shape` not marked in `used`, in order.
void AppendFreeDims(const shapes::Shape& shape, const std::vector<bool>& used, std::vector<int64_t>& dims) {
  for (int a = 0; a < shape.Rank(); ++a) {
    if (!used[a]) dims.push_back(shape.Dims()[a]);
  }
}

// -------------------------------------------------- Window shape helpers.

// Per-axis window geometry shared by ConvGeneral's spatial axes and
// ReduceWindow / SelectAndScatter: StableHLO's num_windows.
int64_t NumWindows(int64_t input, int64_t window, int64_t stride, int64_t pad_low, int64_t pad_high,
                   int64_t base_dilation, int64_t window_dilation) {
  const int64_t dilated_input = input == 0 ? 0 : (input - 1) * base_dilation + 1;
  const int64_t padded = pad_low + dilated_input + pad_high;
  const int64_t dilated_window = window == 0 ? 0 : (window - 1) * window_dilation + 1;
  if (padded <= 0 || dilated_window > padded) return 0;
  return (padded - dilated_window) / stride + 1;
}

// Fills an empty per-axis attribute with `fill`, or checks its length is `n`
// (one value per `what`) and that every value is >= `min` if given.
void DefaultOrCheck(std::vector<int64_t>& values, size_t n, int64_t fill, const char* name,
                    std::optional<int64_t> min, std::string_view op, const std::string& what, const Loc& loc) {
  if (values.empty()) {
    values.assign(n, fill);
    return;
  }
  if (values.size() != n) {
    OpError(loc, op, std::string(name) + " " + ListToString(values) + " must have " + std::to_string(n) +
                         " values (one per " + what + ")");
  }
  if (!min) return;
  for (int64_t v : values) {
    if (v < *min) {
      OpError(loc, op, std::string(name) + " " + ListToString(values) + " must be >= " + std::to_string(*min));
    }
  }
}

// ------------------------------------------------------------ ConvGeneral.

constexpr std::string_view kConv = "ConvGeneral";

// Normalizes the axes of one conv operand (negative counts from the end) in
// place: each must be in range and all must be distinct.
void NormalizeConvAxes(const std::vector<int64_t*>& axes, int rank, const std::string& role, const Loc& loc) {
  std::vector<bool> seen(static_cast<size_t>(rank), false);
  for (int64_t* axis : axes) {
    const int64_t a = *axis < 0 ? *axis + rank : *axis;
    if (a < 0 || a >= rank) {
      OpError(loc, kConv, role + " axis " + std::to_string(*axis) + " is out of range for rank " +
                              std::to_string(rank));
    }
    if (seen[a]) OpError(loc, kConv, role + " axis " + std::to_string(*axis) + " is named twice");
    seen[a] = true;
    *axis = a;
  }
}

// The batch/feature/spatial axes of one operand as a list of pointers, after
// checking the number of spatial axes.
std::vector<int64_t*> ConvAxisList(int64_t& batch, int64_t& feature, std::vector<int64_t>& spatial, int rank,
                                   const std::string& role, const Loc& loc) {
  if (static_cast<int>(spatial.size()) != rank - 2) {
    OpError(loc, kConv, role + " spatial axes " + ListToString(spatial) + " must name " + std::to_string(rank - 2) +
                            " axes for rank " + std::to_string(rank));
  }
  std::vector<int64_t*> list = {&batch, &feature};
  for (int64_t& s : spatial) list.push_back(&s);
  return list;
}

void CheckConvOperands(const Node& input, const Node& kernel, const Loc& loc) {
  const shapes::Shape &in = input.Shape(), &k = kernel.Shape();
  if (in.DType() != k.DType()) OpError(loc, kConv, "dtypes differ: " + in.ToString() + " and " + k.ToString());
  if (in.DType() == dtypes::Bool) OpError(loc, kConv, "Bool operands are not supported: " + in.ToString());
  if (in.Rank() < 2) {
    OpError(loc, kConv, "input " + in.ToString() + " must have rank >= 2 (batch and feature axes)");
  }
  if (k.Rank() != in.Rank()) {
    OpError(loc, kConv, "kernel " + k.ToString() + " must have the rank of input " + in.ToString());
  }
}

// Normalizes the axes and fills/checks the per-spatial-axis attributes.
void NormalizeConvAttrs(ir::ConvAttrs& a, int rank, const Loc& loc) {
  NormalizeConvAxes(ConvAxisList(a.input_batch_axis, a.input_feature_axis, a.input_spatial_axes, rank, "input", loc),
                    rank, "input", loc);
  NormalizeConvAxes(ConvAxisList(a.kernel_input_feature_axis, a.kernel_output_feature_axis, a.kernel_spatial_axes,
                                 rank, "kernel", loc),
                    rank, "kernel", loc);
  NormalizeConvAxes(
      ConvAxisList(a.output_batch_axis, a.output_feature_axis, a.output_spatial_axes, rank, "output", loc), rank,
      "output", loc);
  const auto n = static_cast<size_t>(rank - 2);
  DefaultOrCheck(a.strides, n, 1, "strides", 1, kConv, "spatial axis", loc);
  DefaultOrCheck(a.padding_low, n, 0, "padding_low", std::nullopt, kConv, "spatial axis", loc);
  DefaultOrCheck(a.padding_high, n, 0, "padding_high", std::nullopt, kConv, "spatial axis", loc);
  DefaultOrCheck(a.input_dilation, n, 1, "input_dilation", 1, kConv, "spatial axis", loc);
  DefaultOrCheck(a.kernel_dilation, n, 1, "kernel_dilation", 1, kConv, "spatial axis", loc);
}

// Checks the group counts against the feature and batch sizes.
void CheckConvGroups(const ir::ConvAttrs& a, const shapes::Shape& in, const shapes::Shape& k, const Loc& loc) {
  const int64_t fg = a.feature_group_count, bg = a.batch_group_count;
  if (fg < 1) OpError(loc, kConv, "feature_group_count " + std::to_string(fg) + " must be >= 1");
  if (bg < 1) OpError(loc, kConv, "batch_group_count " + std::to_string(bg) + " must be >= 1");
  if (fg > 1 && bg > 1) {
    OpError(loc, kConv, "feature_group_count (" + std::to_string(fg) + ") and batch_group_count (" +
                            std::to_string(bg) + ") cannot both be > 1");
  }
  const int64_t in_features = in.Dims()[a.input_feature_axis];
  const int64_t kernel_in = k.Dims()[a.kernel_input_feature_axis];
  const int64_t kernel_out = k.Dims()[a.kernel_output_feature_axis];
  const int64_t batch = in.Dims()[a.input_batch_axis];
  if (in_features % fg != 0) {
    OpError(loc, kConv, "input features (" + std::to_string(in_features) + " in " + in.ToString() +
                            ") must be divisible by feature_group_count " + std::to_string(fg));
  }
  if (in_features != kernel_in * fg) {
    OpError(loc, kConv, "input features (" + std::to_string(in_features) + " in " + in.ToString() +
                            ") must equal kernel input features (" + std::to_string(kernel_in) + " in " +
                            k.ToString() + ") * feature_group_count " + std::to_string(fg));
  }
  if (kernel_out % fg != 0) {
    OpError(loc, kConv, "kernel output features (" + std::to_string(kernel_out) + " in " + k.ToString() +
                            ") must be divisible by feature_group_count " + std::to_string(fg));
  }
  if (kernel_out % bg != 0) {
    OpError(loc, kConv, "kernel output features (" + std::to_string(kernel_out) + " in " + k.ToString() +
                            ") must be divisible by batch_group_count " + std::to_string(bg));
  }
  if (batch % bg != 0) {
    OpError(loc, kConv, "input batch (" + std::to_string(batch) + " in " + in.ToString() +
                            ") must be divisible by batch_group_count " + std::to_string(bg));
  }
}

// The StableHLO convolution output shape.
shapes::Shape ConvOutputShape(const ir::ConvAttrs& a, const shapes::Shape& in, const shapes::Shape& k) {
  std::vector<int64_t> dims(static_cast<size_t>(in.Rank()));
  dims[a.output_batch_axis] = in.Dims()[a.input_batch_axis] / a.batch_group_count;
  dims[a.output_feature_axis] = k.Dims()[a.kernel_output_feature_axis];
  for (size_t i = 0; i < a.input_spatial_axes.size(); ++i) {
    dims[a.output_spatial_axes[i]] =
        NumWindows(in.Dims()[a.input_spatial_axes[i]], k.Dims()[a.kernel_spatial_axes[i]], a.strides[i],
                   a.padding_low[i], a.padding_high[i], a.input_dilation[i], a.kernel_dilation[i]);
  }
  return shapes::Shape(in.DType(), dims);
}

// ------------------------------------------------------------ Windows.

// Fills defaults of `attrs` for an operand of `shape` and checks every field.
void NormalizeWindowAttrs(ir::WindowAttrs& a, const shapes::Shape& shape, std::string_view op, const Loc& loc) {
  const auto n = static_cast<size_t>(shape.Rank());
  if (a.window_dimensions.size() != n) {
    OpError(loc, op, "window_dimensions " + ListToString(a.window_dimensions) + " must have " + std::to_string(n) +
                         " values (one per axis of " + shape.ToString() + ")");
  }
  for (int64_t w : a.window_dimensions) {
    if (w < 1) OpError(loc, op, "window_dimensions " + ListToString(a.window_dimensions) + " must be >= 1");
  }
  const std::string what = "axis of " + shape.ToString();
  DefaultOrCheck(a.strides, n, 1, "strides", 1, op, what, loc);
  DefaultOrCheck(a.base_dilations, n, 1, "base_dilations", 1, op, what, loc);
  DefaultOrCheck(a.window_dilations, n, 1, "window_dilations", 1, op, what, loc);
  DefaultOrCheck(a.padding_low, n, 0, "padding_low", std::nullopt, op, what, loc);
  DefaultOrCheck(a.padding_high, n, 0, "padding_high", std::nullopt, op, what, loc);
}

// The ReduceWindow output dims of an operand of `shape`.
std::vector<int64_t> WindowOutputDims(const ir::WindowAttrs& a, const shapes::Shape& shape) {
  std::vector<int64_t> dims(static_cast<size_t>(shape.Rank()));
  for (size_t i = 0; i < dims.size(); ++i) {
    dims[i] = NumWindows(shape.Dims()[i], a.window_dimensions[i], a.strides[i], a.padding_low[i], a.padding_high[i],
                         a.base_dilations[i], a.window_dilations[i]);
  }
  return dims;
}

const char* ReductionName(ir::WindowReduction r) {
  switch (r) {
    case ir::WindowReduction::kSum: return "sum";
    case ir::WindowReduction::kProduct: return "product";
    case ir::WindowReduction::kMax: return "max";
    case ir::WindowReduction::kMin: return "min";
  }
  return "unknown";
}

}  // namespace

Node DotGeneral(Node lhs, std::vector<int> lhs_contracting, std::vector<int> lhs_batch, Node rhs,
                std::vector<int> rhs_contracting, std::vector<int> rhs_batch, Loc loc) {
  Graph* g = internal::CheckSameGraph({lhs, rhs}, "DotGeneral", loc);
  const shapes::Shape &ls = lhs.Shape(), &rs = rhs.Shape();
  if (ls.DType() != rs.DType()) OpError(loc, "DotGeneral", "dtypes differ: " + ls.ToString() + " and " + rs.ToString());
  if (ls.DType() == dtypes::Bool) OpError(loc, "DotGeneral", "Bool operands are not supported: " + ls.ToString());
  if (lhs_batch.size() != rhs_batch.size()) {
    OpError(loc, "DotGeneral", "lhs batch axes " + ListToString(lhs_batch) + " and rhs batch axes " +
                                   ListToString(rhs_batch) + " differ in count");
  }
  if (lhs_contracting.size() != rhs_contracting.size()) {
    OpError(loc, "DotGeneral", "lhs contracting axes " + ListToString(lhs_contracting) +
                                   " and rhs contracting axes " + ListToString(rhs_contracting) + " differ in count");
  }
  std::vector<bool> lhs_used(static_cast<size_t>(ls.Rank()), false), rhs_used(static_cast<size_t>(rs.Rank()), false);
  ir::DotGeneralAttrs attrs;
  attrs.lhs_batch = NormalizeDotAxes(lhs_batch, ls, "lhs batch", lhs_used, loc);
  attrs.lhs_contracting = NormalizeDotAxes(lhs_contracting, ls, "lhs contracting", lhs_used, loc);
  attrs.rhs_batch = NormalizeDotAxes(rhs_batch, rs, "rhs batch", rhs_used, loc);
  attrs.rhs_contracting = NormalizeDotAxes(rhs_contracting, rs, "rhs contracting", rhs_used, loc);
  CheckPairedDims(ls, attrs.lhs_batch, rs, attrs.rhs_batch, "batch", loc);
  CheckPairedDims(ls, attrs.lhs_contracting, rs, attrs.rhs_contracting, "contracting", loc);

  std::vector<int64_t> dims;
  for (int64_t a : attrs.lhs_batch) dims.push_back(ls.Dims()[a]);
  AppendFreeDims(ls, lhs_used, dims);
  AppendFreeDims(rs, rhs_used, dims);
  return internal::Emit(g, OpType::kDotGeneral, {lhs, rhs}, shapes::Shape(ls.DType(), dims), std::move(attrs), loc);
}

Node ConvGeneral(Node input, Node kernel, ir::ConvAttrs attrs, Loc loc) {
  Graph* g = internal::CheckSameGraph({input, kernel}, kConv, loc);
  CheckConvOperands(input, kernel, loc);
  NormalizeConvAttrs(attrs, input.Rank(), loc);
  CheckConvGroups(attrs, input.Shape(), kernel.Shape(), loc);
  shapes::Shape out = ConvOutputShape(attrs, input.Shape(), kernel.Shape());
  return internal::Emit(g, OpType::kConvGeneral, {input, kernel}, std::move(out), std::move(attrs), loc);
}

Node ReduceWindow(Node x, ir::WindowAttrs attrs, Loc loc) {
  Graph* g = internal::CheckNode(x, "ReduceWindow", loc);
  if (x.DType() == dtypes::Bool) OpError(loc, "ReduceWindow", "Bool operands are not supported: " + x.Shape().ToString());
  NormalizeWindowAttrs(attrs, x.Shape(), "ReduceWindow", loc);
  shapes::Shape out(x.DType(), WindowOutputDims(attrs, x.Shape()));
  return internal::Emit(g, OpType::kReduceWindow, {x}, std::move(out), std::move(attrs), loc);
}

Node SelectAndScatter(Node operand, Node source, ir::WindowAttrs attrs, Loc loc) {
  constexpr std::string_view kOp = "SelectAndScatter";
  Graph* g = internal::CheckSameGraph({operand, source}, kOp, loc);
  const shapes::Shape &os = operand.Shape(), &ss = source.Shape();
  if (os.DType() != ss.DType()) OpError(loc, kOp, "dtypes differ: " + os.ToString() + " and " + ss.ToString());
  if (os.DType() == dtypes::Bool) OpError(loc, kOp, "Bool operands are not supported: " + os.ToString());
  if (attrs.reduction != ir::WindowReduction::kMax && attrs.reduction != ir::WindowReduction::kMin) {
    OpError(loc, kOp, std::string("reduction must be kMax or kMin (the select), got ") +
                          ReductionName(attrs.reduction));
  }
  NormalizeWindowAttrs(attrs, os, kOp, loc);
  const std::vector<int64_t> window_dims = WindowOutputDims(attrs, os);
  if (ss.Dims() != window_dims) {
    OpError(loc, kOp, "source " + ss.ToString() + " must have the window output dims " + ListToString(window_dims) +
                          " of operand " + os.ToString());
  }
  return internal::Emit(g, OpType::kSelectAndScatter, {operand, source}, os, std::move(attrs), loc);
}

}  // namespace kiln::graph
