// Copyright 2026 The Kiln Authors.
// Definitions (operand checks and shape rules) of DotGeneral, ConvGeneral,
// ReduceWindow and SelectAndScatter.
//
// Shape rules follow StableHLO dot_general, convolution, reduce_window and
// select_and_scatter. Negative paddings are accepted everywhere (they crop,
// as StableHLO allows); the CPU kernels support them.
#include <algorithm>
#include <atomic>
#include <limits>
#include <optional>
#include <string>

#include "src/graph/op_builder.h"
#include "src/graph/vjp.h"

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
  // In 128 bits: huge paddings or dilations must not wrap. A count beyond
  // int64 comes back as INT64_MAX, which the result shape's check rejects.
  using Wide = __int128;
  const Wide dilated_input = input == 0 ? 0 : Wide(input - 1) * base_dilation + 1;
  const Wide padded = Wide(pad_low) + dilated_input + pad_high;
  const Wide dilated_window = window == 0 ? 0 : Wide(window - 1) * window_dilation + 1;
  if (padded <= 0 || dilated_window > padded) return 0;
  const Wide n = (padded - dilated_window) / stride + 1;
  return n > INT64_MAX ? INT64_MAX : static_cast<int64_t>(n);
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
shapes::Shape ConvOutputShape(const ir::ConvAttrs& a, const shapes::Shape& in, const shapes::Shape& k, const Loc& loc) {
  std::vector<int64_t> dims(static_cast<size_t>(in.Rank()));
  dims[a.output_batch_axis] = in.Dims()[a.input_batch_axis] / a.batch_group_count;
  dims[a.output_feature_axis] = k.Dims()[a.kernel_output_feature_axis];
  for (size_t i = 0; i < a.input_spatial_axes.size(); ++i) {
    dims[a.output_spatial_axes[i]] =
        NumWindows(in.Dims()[a.input_spatial_axes[i]], k.Dims()[a.kernel_spatial_axes[i]], a.strides[i],
                   a.padding_low[i], a.padding_high[i], a.input_dilation[i], a.kernel_dilation[i]);
  }
  return internal::OpShape(in.DType(), dims, kConv, loc);
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

}  // namespace

namespace {

std::atomic<ir::DotPrecision> default_dot_precision{ir::DotPrecision::kHighest};
thread_local int scoped_dot_precision = -1;  // -1: no DotPrecisionScope on this thread

}  // namespace

ir::DotPrecision CurrentDotPrecision() {
  return scoped_dot_precision >= 0 ? static_cast<ir::DotPrecision>(scoped_dot_precision)
                                   : default_dot_precision.load(std::memory_order_relaxed);
}

void SetDefaultDotPrecision(ir::DotPrecision precision) {
  default_dot_precision.store(precision, std::memory_order_relaxed);
}

DotPrecisionScope::DotPrecisionScope(ir::DotPrecision precision) : previous_(scoped_dot_precision) {
  scoped_dot_precision = static_cast<int>(precision);
}

DotPrecisionScope::~DotPrecisionScope() { scoped_dot_precision = previous_; }

Node DotGeneral(Node lhs, std::vector<int> lhs_contracting, std::vector<int> lhs_batch, Node rhs,
                std::vector<int> rhs_contracting, std::vector<int> rhs_batch, Loc loc) {
  Graph* g = internal::CheckSameGraph({lhs, rhs}, "DotGeneral", loc);
  const shapes::Shape &ls = lhs.Shape(), &rs = rhs.Shape();
  if (ls.DType() != rs.DType()) OpError(loc, "DotGeneral", "dtypes differ: " + ls.ToString() + " and " + rs.ToString());
  if (dtypes::IsComplex(ls.DType())) {
    // (a + bi)(c + di) = (ac - bd) + (ad + bc)i: four real products, on the
    // backend's real matmul kernels.
    auto dot = [&](Node x, Node y) { return DotGeneral(x, lhs_contracting, lhs_batch, y, rhs_contracting, rhs_batch, loc); };
    Node a = Real(lhs, loc), b = Imag(lhs, loc), c = Real(rhs, loc), d = Imag(rhs, loc);
    return Complex(Sub(dot(a, c), dot(b, d), loc), Add(dot(a, d), dot(b, c), loc), loc);
  }
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
  if (ls.DType() == dtypes::Float32) attrs.precision = CurrentDotPrecision();

  std::vector<int64_t> dims;
  for (int64_t a : attrs.lhs_batch) dims.push_back(ls.Dims()[a]);
  AppendFreeDims(ls, lhs_used, dims);
  AppendFreeDims(rs, rhs_used, dims);
  return internal::Emit(g, OpType::kDotGeneral, {lhs, rhs}, internal::OpShape(ls.DType(), dims, "DotGeneral", loc),
                        std::move(attrs), loc);
}

Node ConvGeneral(Node input, Node kernel, ir::ConvAttrs attrs, Loc loc) {
  Graph* g = internal::CheckSameGraph({input, kernel}, kConv, loc);
  CheckConvOperands(input, kernel, loc);
  NormalizeConvAttrs(attrs, input.Rank(), loc);
  CheckConvGroups(attrs, input.Shape(), kernel.Shape(), loc);
  shapes::Shape out = ConvOutputShape(attrs, input.Shape(), kernel.Shape(), loc);
  return internal::Emit(g, OpType::kConvGeneral, {input, kernel}, std::move(out), std::move(attrs), loc);
}

Node ReduceWindow(Node x, ir::WindowAttrs attrs, Loc loc) {
  Graph* g = internal::CheckNode(x, "ReduceWindow", loc);
  if (x.DType() == dtypes::Bool) OpError(loc, "ReduceWindow", "Bool operands are not supported: " + x.Shape().ToString());
  if (dtypes::IsComplex(x.DType()) && attrs.reduction != ir::WindowReduction::kSum &&
      attrs.reduction != ir::WindowReduction::kProduct) {
    OpError(loc, "ReduceWindow", "max and min are not defined on complex numbers, got " + x.Shape().ToString());
  }
  NormalizeWindowAttrs(attrs, x.Shape(), "ReduceWindow", loc);
  shapes::Shape out = internal::OpShape(x.DType(), WindowOutputDims(attrs, x.Shape()), "ReduceWindow", loc);
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
                          ir::WindowReductionName(attrs.reduction));
  }
  NormalizeWindowAttrs(attrs, os, kOp, loc);
  const std::vector<int64_t> window_dims = WindowOutputDims(attrs, os);
  if (ss.Dims() != window_dims) {
    OpError(loc, kOp, "source " + ss.ToString() + " must have the window output dims " + ListToString(window_dims) +
                          " of operand " + os.ToString());
  }
  return internal::Emit(g, OpType::kSelectAndScatter, {operand, source}, os, std::move(attrs), loc);
}

// ------------------------------------------------------------ VJP rules.
// Every rule is built from graph ops, so gradients of gradients work.

namespace {

using internal::VJPArgs;

std::vector<int> ToInts(const std::vector<int64_t>& v) { return {v.begin(), v.end()}; }

// The permutation p with p[order[i]] = i: transposing a value whose axis i
// holds axis order[i] of some operand by p restores that operand's axis order.
std::vector<int> InversePermutation(const std::vector<int64_t>& order) {
  std::vector<int> inverse(order.size());
  for (size_t i = 0; i < order.size(); ++i) inverse[order[i]] = static_cast<int>(i);
  return inverse;
}

// --------------------------------------------------------- DotGeneral VJP.

// The layout of one DotGeneral operand: its batch and contracting axes (the
// pairing order of the attrs) and its free axes (increasing).
struct DotSide {
  std::vector<int64_t> batch, contracting, free;
};

// The side of an operand of `rank` with the given (normalized) axes.
DotSide MakeDotSide(int rank, std::vector<int64_t> batch, std::vector<int64_t> contracting) {
  std::vector<bool> used(static_cast<size_t>(rank), false);
  for (int64_t a : batch) used[a] = true;
  for (int64_t a : contracting) used[a] = true;
  DotSide side{std::move(batch), std::move(contracting), {}};
  for (int a = 0; a < rank; ++a) {
    if (!used[a]) side.free.push_back(a);
  }
  return side;
}

// The gradient of the operand `self` given the cotangent, whose axes are
// [batch, lhs free, rhs free]; `other_free_start` is the first cotangent axis
// of `other`'s free axes. DotGeneral(cotangent, other) contracts those axes
// with other's free axes and pairs the batch axes, which leaves
// [batch (self.batch), self's free axes, other's contracting axes in
// increasing order (each paired with one of self's contracting axes)]; a
// Transpose restores self's axis order.
Node DotOperandGrad(Node cotangent, Node other, const DotSide& self, const DotSide& other_side,
                    int64_t other_free_start, const Loc& loc) {
  std::vector<int> cot_batch, cot_contracting;
  for (size_t i = 0; i < self.batch.size(); ++i) cot_batch.push_back(static_cast<int>(i));
  for (size_t i = 0; i < other_side.free.size(); ++i) cot_contracting.push_back(static_cast<int>(other_free_start + i));
  Node grad = DotGeneral(cotangent, cot_contracting, cot_batch, other, ToInts(other_side.free),
                         ToInts(other_side.batch), loc);
  // order[i]: the axis of self held by axis i of grad.
  std::vector<int64_t> order = self.batch;
  order.insert(order.end(), self.free.begin(), self.free.end());
  std::vector<int64_t> other_contracting_sorted = other_side.contracting;
  std::sort(other_contracting_sorted.begin(), other_contracting_sorted.end());
  for (int64_t axis : other_contracting_sorted) {
    const auto pair = std::find(other_side.contracting.begin(), other_side.contracting.end(), axis) -
                      other_side.contracting.begin();
    order.push_back(self.contracting[pair]);
  }
  return Transpose(grad, InversePermutation(order), loc);
}

std::vector<Node> DotGeneralVJP(const VJPArgs& a) {
  const auto& attrs = ir::Attr<ir::DotGeneralAttrs>(a.instr);
  const DotPrecisionScope precision(attrs.precision);  // the gradient's dots as precise as the dot
  Node lhs = a.operands[0], rhs = a.operands[1];
  const DotSide l = MakeDotSide(lhs.Rank(), attrs.lhs_batch, attrs.lhs_contracting);
  const DotSide r = MakeDotSide(rhs.Rank(), attrs.rhs_batch, attrs.rhs_contracting);
  const auto nb = static_cast<int64_t>(l.batch.size()), nlf = static_cast<int64_t>(l.free.size());
  return {DotOperandGrad(a.cotangent, rhs, l, r, nb + nlf, a.loc), DotOperandGrad(a.cotangent, lhs, r, l, nb, a.loc)};
}

// -------------------------------------------------------- ConvGeneral VJP.
// The math of JAX's lax _conv_general_dilated_transpose_lhs/_rhs: both
// gradients are convolutions again.

// The extent of n elements spread `dilation` apart (StableHLO dilate).
int64_t DilatedSize(int64_t n, int64_t dilation) { return n == 0 ? 0 : (n - 1) * dilation + 1; }

// Splits `axis` of x into two axes (groups, size / groups), groups major.
Node SplitAxis(Node x, int64_t axis, int64_t groups, const Loc& loc) {
  std::vector<int64_t> dims = x.Shape().Dims();
  const int64_t size = dims[axis];
  dims[axis] = size / groups;
  dims.insert(dims.begin() + axis, groups);
  return Reshape(x, dims, loc);
}

// Merges axis `src` of x into axis `dst` (`dst` counts x's axes without
// `src`), `src` becoming the major part: the inverse of SplitAxis when `src`
// sits just before `dst`.
Node MergeAxisInto(Node x, int64_t src, int64_t dst, const Loc& loc) {
  std::vector<int> perm;
  for (int i = 0; i < x.Rank(); ++i) {
    if (i != src) perm.push_back(i);
  }
  perm.insert(perm.begin() + dst, static_cast<int>(src));
  std::vector<int64_t> dims;
  for (int p : perm) dims.push_back(x.Shape().Dims()[p]);
  dims[dst] *= dims[dst + 1];
  dims.erase(dims.begin() + dst + 1);
  return Reshape(Transpose(x, perm, loc), dims, loc);
}

// Spatial sizes (before dilation) of one conv value.
std::vector<int64_t> SpatialDims(const Node& x, const std::vector<int64_t>& axes) {
  std::vector<int64_t> dims;
  for (int64_t a : axes) dims.push_back(x.Shape().Dims()[a]);
  return dims;
}

// Gradient w.r.t. the input: the cotangent convolved with the spatially
// reversed kernel whose feature axes swap roles. Strides become input
// dilation (the cotangent is spread back over the input grid) and input
// dilation becomes strides (only the real input positions are kept). With
// groups, the kernel's output-feature groups move into its input-feature axis
// (so it becomes a feature-grouped conv); batch groups come back out of the
// result's feature axis into its batch axis.
Node ConvInputGrad(const ir::ConvAttrs& a, Node input, Node kernel, Node cotangent, const Loc& loc) {
  const int64_t groups = std::max(a.feature_group_count, a.batch_group_count);
  if (groups > 1) {
    kernel = SplitAxis(kernel, a.kernel_output_feature_axis, groups, loc);
    kernel = MergeAxisInto(kernel, a.kernel_output_feature_axis, a.kernel_input_feature_axis, loc);
  }
  kernel = Reverse(kernel, ToInts(a.kernel_spatial_axes), loc);
  ir::ConvAttrs t;
  t.input_batch_axis = a.output_batch_axis;
  t.input_feature_axis = a.output_feature_axis;
  t.input_spatial_axes = a.output_spatial_axes;
  t.kernel_input_feature_axis = a.kernel_output_feature_axis;
  t.kernel_output_feature_axis = a.kernel_input_feature_axis;
  t.kernel_spatial_axes = a.kernel_spatial_axes;
  t.output_batch_axis = a.input_batch_axis;
  t.output_feature_axis = a.input_feature_axis;
  t.output_spatial_axes = a.input_spatial_axes;
  t.strides = a.input_dilation;
  t.input_dilation = a.strides;
  t.kernel_dilation = a.kernel_dilation;
  t.feature_group_count = groups;
  const std::vector<int64_t> in = SpatialDims(input, a.input_spatial_axes);
  const std::vector<int64_t> k = SpatialDims(kernel, a.kernel_spatial_axes);
  const std::vector<int64_t> out = SpatialDims(cotangent, a.output_spatial_axes);
  for (size_t i = 0; i < in.size(); ++i) {
    const int64_t in_d = DilatedSize(in[i], a.input_dilation[i]), k_d = DilatedSize(k[i], a.kernel_dilation[i]);
    const int64_t out_d = DilatedSize(out[i], a.strides[i]);
    const int64_t low = k_d - a.padding_low[i] - 1;
    t.padding_low.push_back(low);
    t.padding_high.push_back(in_d + k_d - 1 - out_d - low);
  }
  Node grad = ConvGeneral(cotangent, kernel, std::move(t), loc);
  if (a.batch_group_count > 1) {
    grad = SplitAxis(grad, a.input_feature_axis, groups, loc);
    grad = MergeAxisInto(grad, a.input_feature_axis, a.input_batch_axis, loc);
  }
  return grad;
}

// Gradient w.r.t. the kernel: the input convolved with the cotangent as the
// kernel, batch and feature axes swapping roles (the sum over the batch
// becomes the contraction). Strides become kernel dilation and kernel
// dilation becomes strides. Feature groups turn into batch groups and vice
// versa.
Node ConvKernelGrad(const ir::ConvAttrs& a, Node input, Node kernel, Node cotangent, const Loc& loc) {
  ir::ConvAttrs t;
  t.input_batch_axis = a.input_feature_axis;
  t.input_feature_axis = a.input_batch_axis;
  t.input_spatial_axes = a.input_spatial_axes;
  t.kernel_input_feature_axis = a.output_batch_axis;
  t.kernel_output_feature_axis = a.output_feature_axis;
  t.kernel_spatial_axes = a.output_spatial_axes;
  t.output_batch_axis = a.kernel_input_feature_axis;
  t.output_feature_axis = a.kernel_output_feature_axis;
  t.output_spatial_axes = a.kernel_spatial_axes;
  t.strides = a.kernel_dilation;
  t.input_dilation = a.input_dilation;
  t.kernel_dilation = a.strides;
  t.feature_group_count = a.batch_group_count;
  t.batch_group_count = a.feature_group_count;
  const std::vector<int64_t> in = SpatialDims(input, a.input_spatial_axes);
  const std::vector<int64_t> k = SpatialDims(kernel, a.kernel_spatial_axes);
  const std::vector<int64_t> out = SpatialDims(cotangent, a.output_spatial_axes);
  t.padding_low = a.padding_low;
  for (size_t i = 0; i < in.size(); ++i) {
    const int64_t in_d = DilatedSize(in[i], a.input_dilation[i]), k_d = DilatedSize(k[i], a.kernel_dilation[i]);
    const int64_t out_d = DilatedSize(out[i], a.strides[i]);
    t.padding_high.push_back(out_d - in_d + k_d - a.padding_low[i] - 1);
  }
  return ConvGeneral(input, cotangent, std::move(t), loc);
}

std::vector<Node> ConvGeneralVJP(const VJPArgs& a) {
  const auto& attrs = ir::Attr<ir::ConvAttrs>(a.instr);
  Node input = a.operands[0], kernel = a.operands[1];
  // Empty values: nothing flows (and the transposed convolutions would have
  // empty windows).
  if (input.Shape().Size() == 0 || kernel.Shape().Size() == 0 || a.cotangent.Shape().Size() == 0) {
    return {ZerosLike(input, a.loc), ZerosLike(kernel, a.loc)};
  }
  return {ConvInputGrad(attrs, input, kernel, a.cotangent, a.loc),
          ConvKernelGrad(attrs, input, kernel, a.cotangent, a.loc)};
}

// ------------------------------------------------ ReduceWindow / SelectAndScatter VJPs.

// The operand elements each window covers, computed at graph-build time:
// for output (window) w and tap v (window order, row-major over the window
// axes, which is increasing operand order), the operand's flat index, or
// invalid where the tap falls on padding or a base-dilation hole.
struct WindowTaps {
  std::vector<int64_t> window_dims;  // the ReduceWindow output dims
  int64_t volume = 1;                // taps per window
  tensors::Tensor index;             // Int64 [window_dims..., volume]; 0 where invalid
  tensors::Tensor valid;             // Bool, same dims
};

// For one axis: the operand index of tap k of window o, or -1.
std::vector<std::vector<int64_t>> AxisTaps(const ir::WindowAttrs& a, size_t axis, int64_t input, int64_t windows) {
  const int64_t dilated_max = (input - 1) * a.base_dilations[axis];
  std::vector<std::vector<int64_t>> taps(static_cast<size_t>(windows));
  for (int64_t o = 0; o < windows; ++o) {
    for (int64_t k = 0; k < a.window_dimensions[axis]; ++k) {
      const int64_t d = o * a.strides[axis] + k * a.window_dilations[axis] - a.padding_low[axis];
      const bool hit = input > 0 && d >= 0 && d <= dilated_max && d % a.base_dilations[axis] == 0;
      taps[o].push_back(hit ? d / a.base_dilations[axis] : -1);
    }
  }
  return taps;
}

// The taps of every window (`windows`: the ReduceWindow output shape) of
// `operand`, with the attrs as normalized by the op.
WindowTaps MakeWindowTaps(const ir::WindowAttrs& a, const shapes::Shape& operand, const shapes::Shape& windows) {
  WindowTaps t;
  t.window_dims = windows.Dims();
  const int rank = operand.Rank();
  std::vector<std::vector<std::vector<int64_t>>> taps;
  for (int ax = 0; ax < rank; ++ax) {
    taps.push_back(AxisTaps(a, ax, operand.Dims()[ax], windows.Dims()[ax]));
    t.volume *= a.window_dimensions[ax];
  }
  std::vector<int64_t> dims = t.window_dims;
  dims.push_back(t.volume);
  t.index = tensors::Tensor(shapes::Shape(dtypes::Int64, dims));
  t.valid = tensors::Tensor(shapes::Shape(dtypes::Bool, dims));
  auto index = t.index.MutableFlat<int64_t>();
  auto valid = t.valid.MutableFlat<bool>();
  const std::vector<int64_t> strides = shapes::Strides(operand.Dims());
  std::vector<int64_t> w(static_cast<size_t>(rank));
  const int64_t num_windows = windows.Size();
  for (int64_t wi = 0, e = 0; wi < num_windows; ++wi) {
    int64_t rest = wi;  // the coordinates of window wi
    for (int ax = rank - 1; ax >= 0; --ax) {
      w[ax] = rest % windows.Dims()[ax];
      rest /= windows.Dims()[ax];
    }
    for (int64_t v = 0; v < t.volume; ++v, ++e) {
      int64_t rem = v, flat = 0;
      bool ok = true;
      for (int ax = rank - 1; ax >= 0; --ax) {
        const int64_t i = taps[ax][w[ax]][rem % a.window_dimensions[ax]];
        rem /= a.window_dimensions[ax];
        ok = ok && i >= 0;
        flat += (i >= 0 ? i : 0) * strides[ax];
      }
      index[e] = ok ? flat : 0;
      valid[e] = ok;
    }
  }
  return t;
}

// Flattens x and gathers it at the taps: [window dims..., volume]. Invalid
// taps read element 0; callers mask them.
Node GatherTaps(Node x, const WindowTaps& t, const Loc& loc) {
  ir::GatherAttrs attrs;
  attrs.collapsed_slice_dims = {0};
  attrs.start_index_map = {0};
  attrs.index_vector_dim = t.index.Shape().Rank();  // scalar indices
  attrs.slice_sizes = {1};
  return Gather(Reshape(x, {x.Shape().Size()}, loc), Const(x.Graph(), t.index, loc), std::move(attrs), loc);
}

// The transpose of a window sum (JAX's _reduce_window_sum_transpose_rule):
// the cotangent spread over the (base-dilated, padded) operand grid by Pad
// (interior = stride - 1, edges from the window extent), then summed over
// the same window with strides = base dilation, which keeps exactly the real
// operand positions. A sum window is symmetric, so it needs no reversal.
Node ReduceWindowSumGrad(const ir::WindowAttrs& a, Node x, Node cotangent, const Loc& loc) {
  std::vector<int64_t> low, high, interior;
  for (int i = 0; i < x.Rank(); ++i) {
    const int64_t in_d = DilatedSize(x.Shape().Dims()[i], a.base_dilations[i]);
    const int64_t w_d = DilatedSize(a.window_dimensions[i], a.window_dilations[i]);
    const int64_t out_d = DilatedSize(cotangent.Shape().Dims()[i], a.strides[i]);
    low.push_back(w_d - a.padding_low[i] - 1);
    high.push_back(in_d + w_d - 1 - out_d - low.back());
    interior.push_back(a.strides[i] - 1);
  }
  Node spread = Pad(cotangent, ScalarLike(cotangent, 0, loc), low, high, interior, loc);
  ir::WindowAttrs sum;
  sum.reduction = ir::WindowReduction::kSum;
  sum.window_dimensions = a.window_dimensions;
  sum.strides = a.base_dilations;
  sum.window_dilations = a.window_dilations;
  return ReduceWindow(spread, std::move(sum), loc);
}

// A window product's gradient: each tap gets the cotangent times the product
// of the other taps of its window, summed over the windows covering it. The
// "product of the others" is an explicit product with the tap itself
// replaced by 1 (not output / x), so zeros are handled exactly: it costs
// windows * volume^2 work and memory, fine for the usual small windows
// (cumulative windows, volume n for each of n outputs, take the O(n)
// CumulativeWindowGrad instead).
Node ReduceWindowProductGrad(const ir::WindowAttrs& a, Node x, Node cotangent, const Loc& loc) {
  Graph* g = x.Graph();
  const WindowTaps t = MakeWindowTaps(a, x.Shape(), cotangent.Shape());
  const int n = cotangent.Rank();
  Node valid = Const(g, t.valid, loc), one = ScalarLike(x, 1, loc);
  Node taps = Where(valid, GatherTaps(x, t, loc), one, loc);  // padding multiplies by 1
  std::vector<int64_t> dims = t.window_dims;
  dims.insert(dims.end(), {t.volume, t.volume});
  std::vector<int> axes;
  for (int i = 0; i < n; ++i) axes.push_back(i);
  axes.push_back(n + 1);
  Node rows = BroadcastInDim(taps, dims, axes, loc);  // rows[..., v, q] = taps[..., q]
  tensors::Tensor eye(shapes::Shape(dtypes::Bool, {t.volume, t.volume}));
  auto eye_flat = eye.MutableFlat<bool>();
  for (int64_t i = 0; i < t.volume * t.volume; ++i) eye_flat[i] = i / t.volume == i % t.volume;
  Node others = ReduceProduct(Where(Const(g, eye, loc), one, rows, loc), {n + 1}, loc);
  Node contrib = Where(valid, Mul(others, ExpandAxes(cotangent, {-1}, loc), loc), ZerosLike(one, loc), loc);
  ir::ScatterAttrs scatter;
  scatter.inserted_window_dims = {0};
  scatter.scatter_dims_to_operand_dims = {0};
  scatter.index_vector_dim = n + 1;  // scalar indices
  Node flat = Zeros(g, shapes::Shape(x.DType(), {x.Shape().Size()}), loc);
  flat = ScatterSum(flat, Const(g, t.index, loc), contrib, std::move(scatter), loc);
  return Reshape(flat, x.Shape().Dims(), loc);
}

std::vector<Node> ReduceWindowVJP(const VJPArgs& a) {
  const auto& attrs = ir::Attr<ir::WindowAttrs>(a.instr);
  Node x = a.operands[0];
  if (x.Shape().Size() == 0 || a.cotangent.Shape().Size() == 0) return {ZerosLike(x, a.loc)};
  if (Node cumulative = internal::CumulativeWindowGrad(attrs, x, a.cotangent, a.loc); cumulative.Ok()) return {cumulative};
  switch (attrs.reduction) {
    case ir::WindowReduction::kSum: return {ReduceWindowSumGrad(attrs, x, a.cotangent, a.loc)};
    case ir::WindowReduction::kProduct: return {ReduceWindowProductGrad(attrs, x, a.cotangent, a.loc)};
    // Max/min: the whole cotangent of a window goes to its selected element,
    // the FIRST max (min) in window order on ties, as SelectAndScatter
    // selects (unlike ReduceMax, which splits it evenly between ties); to the
    // first NaN if the window holds one. A window that covers only padding
    // passes nothing back.
    case ir::WindowReduction::kMax:
    case ir::WindowReduction::kMin: return {SelectAndScatter(x, a.cotangent, attrs, a.loc)};
  }
  OpError(a.loc, "Gradient", "ReduceWindow with an unknown reduction");
}

// For each window of `operand`, the cotangent at the element the window
// selects: the first max (min) in window order, or the first NaN if any,
// exactly as SelectAndScatter selects; 0 for a window that covers only
// padding. The selection is recomputed from gathered taps: valid taps equal
// to the window's max (or NaN) are candidates, ArgMax over them picks the
// first, and its flat operand index gathers the cotangent.
Node SelectedCotangent(const ir::WindowAttrs& a, Node operand, Node cotangent, const shapes::Shape& windows,
                       const Loc& loc) {
  Graph* g = operand.Graph();
  const WindowTaps t = MakeWindowTaps(a, operand.Shape(), windows);
  const int last = windows.Rank();
  const bool is_max = a.reduction == ir::WindowReduction::kMax;
  const double worst = is_max ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  Node valid = Const(g, t.valid, loc);
  Node taps = Where(valid, GatherTaps(operand, t, loc), ScalarLike(operand, worst, loc), loc);
  Node best = ExpandAxes(is_max ? ReduceMax(taps, {last}, loc) : ReduceMin(taps, {last}, loc), {-1}, loc);
  Node candidate = LogicalAnd(valid, LogicalOr(Equal(taps, best, loc), IsNaN(taps, loc), loc), loc);
  Node as_int = ConvertDType(candidate, dtypes::Int32, loc);
  Node first = ArgMax(as_int, last, dtypes::Int64, loc);
  Node any = ConvertDType(ReduceMax(as_int, {last}, loc), dtypes::Bool, loc);
  Node selected = ReduceSum(Mul(OneHot(first, t.volume, dtypes::Int64, loc), Const(g, t.index, loc), loc), {last}, loc);
  ir::GatherAttrs gather;
  gather.collapsed_slice_dims = {0};
  gather.start_index_map = {0};
  gather.index_vector_dim = last;  // scalar indices
  gather.slice_sizes = {1};
  Node picked = Gather(Reshape(cotangent, {cotangent.Shape().Size()}, loc), selected, std::move(gather), loc);
  return Where(any, picked, ZerosLike(picked, loc), loc);
}

// SelectAndScatter is linear in `source`; w.r.t. the operand it is piecewise
// constant (the selection only changes at ties), so that gradient is zero.
std::vector<Node> SelectAndScatterVJP(const VJPArgs& a) {
  const auto& attrs = ir::Attr<ir::WindowAttrs>(a.instr);
  Node operand = a.operands[0], source = a.operands[1];
  if (operand.Shape().Size() == 0 || source.Shape().Size() == 0) {
    return {ZerosLike(operand, a.loc), ZerosLike(source, a.loc)};
  }
  return {ZerosLike(operand, a.loc), SelectedCotangent(attrs, operand, a.cotangent, source.Shape(), a.loc)};
}

}  // namespace

namespace internal {

void RegisterDotConvVJPs(VJPTable& table) {
  auto set = [&](OpType op, VJPRule rule) { table[static_cast<size_t>(op)] = rule; };
  set(OpType::kDotGeneral, DotGeneralVJP);
  set(OpType::kConvGeneral, ConvGeneralVJP);
  set(OpType::kReduceWindow, ReduceWindowVJP);
  set(OpType::kSelectAndScatter, SelectAndScatterVJP);
}

}  // namespace internal

}  // namespace kiln::graph
