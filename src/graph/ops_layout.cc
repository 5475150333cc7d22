// Copyright 2026 The Kiln Authors.
// Definitions (operand checks and shape rules) of the data-movement ops:
// Reshape, Transpose, BroadcastInDim, Concatenate, Slice, Pad, Reverse, Iota,
// DynamicSlice, DynamicUpdateSlice.
#include <algorithm>
#include <numeric>
#include <string>

#include "src/graph/op_builder.h"
#include "src/graph/vjp.h"

namespace kiln::graph {

using internal::ListToString;
using internal::OpError;
using ir::OpType;

Node Reshape(Node x, std::vector<int64_t> dims, Loc loc) {
  Graph* g = internal::CheckNode(x, "Reshape", loc);
  int inferred = -1;
  int64_t known = 1;
  // An empty target has size 0 whatever its other dimensions (whose product
  // may not fit int64).
  const bool empty_target = std::find(dims.begin(), dims.end(), 0) != dims.end();
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == -1) {
      if (inferred >= 0) OpError(loc, "Reshape", "more than one -1 in " + ListToString(dims));
      inferred = static_cast<int>(i);
    } else if (dims[i] < 0) {
      OpError(loc, "Reshape", "negative dimension in " + ListToString(dims));
    } else if (!empty_target) {
      known = internal::CheckedMul(known, dims[i], "Reshape", loc);
    }
  }
  if (empty_target) known = 0;
  const int64_t size = x.Shape().Size();
  if (inferred >= 0) {
    if (known == 0 || size % known != 0) {
      OpError(loc, "Reshape", "cannot infer the -1 in " + ListToString(dims) + " for " + x.Shape().ToString());
    }
    dims[inferred] = size / known;
    known = size;
  }
  if (known != size) {
    OpError(loc, "Reshape", "cannot reshape " + x.Shape().ToString() + " (" + std::to_string(size) +
                                " elements) to " + ListToString(dims) + " (" + std::to_string(known) + " elements)");
  }
  if (dims == x.Shape().Dims()) return x;
  return internal::Emit(g, OpType::kReshape, {x}, internal::OpShape(x.DType(), dims, "Reshape", loc), ir::NoAttrs{},
                        loc);
}

Node Transpose(Node x, std::vector<int> permutation, Loc loc) {
  Graph* g = internal::CheckNode(x, "Transpose", loc);
  if (static_cast<int>(permutation.size()) != x.Rank()) {
    OpError(loc, "Transpose", "permutation " + ListToString(permutation) + " has " +
                                  std::to_string(permutation.size()) + " axes for " + x.Shape().ToString());
  }
  std::vector<int64_t> perm = internal::NormalizeAxes(permutation, x.Rank(), "Transpose", loc);
  std::vector<int64_t> dims(perm.size());
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i) {
    dims[i] = x.Shape().Dims()[perm[i]];
    identity = identity && perm[i] == static_cast<int64_t>(i);
  }
  if (identity) return x;
  return internal::Emit(g, OpType::kTranspose, {x}, shapes::Shape(x.DType(), dims), ir::AxesAttrs{perm}, loc);
}

Node BroadcastInDim(Node x, std::vector<int64_t> dims, std::vector<int> axes, Loc loc) {
  Graph* g = internal::CheckNode(x, "BroadcastInDim", loc);
  if (static_cast<int>(axes.size()) != x.Rank()) {
    OpError(loc, "BroadcastInDim", "operand " + x.Shape().ToString() + " needs " + std::to_string(x.Rank()) +
                                       " axes, got " + ListToString(axes));
  }
  const shapes::Shape out = internal::OpShape(x.DType(), dims, "BroadcastInDim", loc);
  std::vector<int64_t> mapped;
  int prev = -1;
  for (int i = 0; i < x.Rank(); ++i) {
    int a = axes[i];
    if (a < 0 || a >= out.Rank()) {
      OpError(loc, "BroadcastInDim", "axis " + std::to_string(a) + " is out of range for output " + out.ToString());
    }
    if (a <= prev) OpError(loc, "BroadcastInDim", "axes " + ListToString(axes) + " must be strictly increasing");
    prev = a;
    int64_t d = x.Shape().Dims()[i];
    if (d != 1 && d != dims[a]) {
      OpError(loc, "BroadcastInDim", "operand " + x.Shape().ToString() + " axis " + std::to_string(i) +
                                         " (size " + std::to_string(d) + ") cannot broadcast to output " +
                                         out.ToString() + " axis " + std::to_string(a));
    }
    mapped.push_back(a);
  }
  if (out == x.Shape()) return x;
  return internal::Emit(g, OpType::kBroadcastInDim, {x}, out, ir::AxesAttrs{mapped}, loc);
}

Node BroadcastTo(Node x, std::vector<int64_t> dims, Loc loc) {
  internal::CheckNode(x, "BroadcastTo", loc);
  const shapes::Shape target = internal::OpShape(x.DType(), dims, "BroadcastTo", loc);
  if (internal::BroadcastDims(x.Shape(), target, "BroadcastTo", loc) != dims) {
    OpError(loc, "BroadcastTo", "cannot broadcast " + x.Shape().ToString() + " to " + target.ToString());
  }
  return internal::BroadcastToDims(x, dims, loc);
}

Node TransposeAxes(Node x, int axis0, int axis1, Loc loc) {
  internal::CheckNode(x, "TransposeAxes", loc);
  std::vector<int> perm(static_cast<size_t>(x.Rank()));
  std::iota(perm.begin(), perm.end(), 0);
  int a = internal::NormalizeAxis(axis0, x.Rank(), "TransposeAxes", loc);
  int b = internal::NormalizeAxis(axis1, x.Rank(), "TransposeAxes", loc);
  std::swap(perm[a], perm[b]);
  return Transpose(x, perm, loc);
}


namespace {

// Checks that `starts` are scalars of one integer dtype in x's graph (the
// start operands of DynamicSlice and DynamicUpdateSlice).
void CheckStartIndices(const Node& x, const std::vector<Node>& starts, std::string_view op, const Loc& loc) {
  if (static_cast<int>(starts.size()) != x.Rank()) {
    OpError(loc, op, "got " + std::to_string(starts.size()) + " start indices for " + x.Shape().ToString() +
                         " (one scalar per axis is needed)");
  }
  for (size_t i = 0; i < starts.size(); ++i) {
    if (!starts[i].Ok()) OpError(loc, op, "start index #" + std::to_string(i) + " is an empty Node");
    if (!starts[i].Graph()->IsWithin(x.Graph()) && !x.Graph()->IsWithin(starts[i].Graph())) {
      OpError(loc, op, "start index #" + std::to_string(i) + " belongs to a different graph");
    }
    const shapes::Shape& s = starts[i].Shape();
    if (!s.IsScalar() || !dtypes::IsInteger(s.DType())) {
      OpError(loc, op, "start index #" + std::to_string(i) + " must be an integer scalar, got " + s.ToString());
    }
    if (s.DType() != starts[0].DType()) {
      OpError(loc, op, "start indices must share one dtype, got " + starts[0].Shape().ToString() + " and " +
                           s.ToString());
    }
  }
}

// The output size of a padded axis: low + high + d + max(d - 1, 0) * interior;
// an int64 overflow is an error naming `op`.
int64_t PaddedDim(int64_t d, int64_t low, int64_t high, int64_t interior, std::string_view op, const Loc& loc) {
  using internal::CheckedAdd;
  const int64_t inner = internal::CheckedMul(std::max<int64_t>(d - 1, 0), interior, op, loc);
  return CheckedAdd(CheckedAdd(CheckedAdd(low, high, op, loc), d, op, loc), inner, op, loc);
}

}  // namespace

Node Concatenate(const std::vector<Node>& xs, int axis, Loc loc) {
  Graph* g = internal::CheckSameGraph(xs, "Concatenate", loc);
  const shapes::Shape& first = xs[0].Shape();
  if (first.IsScalar()) OpError(loc, "Concatenate", "cannot concatenate scalars (" + first.ToString() + ")");
  const int a = internal::NormalizeAxis(axis, first.Rank(), "Concatenate", loc);
  std::vector<int64_t> dims = first.Dims();
  for (size_t i = 1; i < xs.size(); ++i) {
    const shapes::Shape& s = xs[i].Shape();
    if (s.DType() != first.DType()) {
      OpError(loc, "Concatenate", "dtypes differ: operand #0 is " + first.ToString() + ", operand #" +
                                      std::to_string(i) + " is " + s.ToString());
    }
    bool compatible = s.Rank() == first.Rank();
    for (int k = 0; compatible && k < s.Rank(); ++k) compatible = k == a || s.Dims()[k] == first.Dims()[k];
    if (!compatible) {
      OpError(loc, "Concatenate", "operand #" + std::to_string(i) + " " + s.ToString() +
                                      " does not match operand #0 " + first.ToString() + " outside axis " +
                                      std::to_string(a));
    }
    dims[a] = internal::CheckedAdd(dims[a], s.Dims()[a], "Concatenate", loc);
  }
  if (xs.size() == 1) return xs[0];
  return internal::Emit(g, OpType::kConcatenate, xs, internal::OpShape(first.DType(), dims, "Concatenate", loc),
                        ir::AxesAttrs{{a}}, loc);
}

Node Slice(Node x, std::vector<int64_t> starts, std::vector<int64_t> limits, std::vector<int64_t> strides, Loc loc) {
  Graph* g = internal::CheckNode(x, "Slice", loc);
  const size_t rank = static_cast<size_t>(x.Rank());
  if (strides.empty()) strides.assign(rank, 1);
  if (starts.size() != rank || limits.size() != rank || strides.size() != rank) {
    OpError(loc, "Slice", "starts " + ListToString(starts) + ", limits " + ListToString(limits) + " and strides " +
                              ListToString(strides) + " must each have one entry per axis of " +
                              x.Shape().ToString());
  }
  std::vector<int64_t> dims(rank);
  bool identity = true;
  for (size_t i = 0; i < rank; ++i) {
    const int64_t d = x.Shape().Dims()[i];
    if (starts[i] < 0 || starts[i] > limits[i] || limits[i] > d) {
      OpError(loc, "Slice", "axis " + std::to_string(i) + ": need 0 <= start <= limit <= " + std::to_string(d) +
                                ", got start " + std::to_string(starts[i]) + " and limit " +
                                std::to_string(limits[i]) + " for " + x.Shape().ToString());
    }
    if (strides[i] < 1) {
      OpError(loc, "Slice", "axis " + std::to_string(i) + ": stride must be >= 1, got " + std::to_string(strides[i]));
    }
    // ceil((limit - start) / stride), without overflow for huge strides.
    dims[i] = limits[i] == starts[i] ? 0 : (limits[i] - starts[i] - 1) / strides[i] + 1;
    identity = identity && dims[i] == d;
  }
  if (identity) return x;  // only a full, stride-1 slice keeps every element
  return internal::Emit(g, OpType::kSlice, {x}, shapes::Shape(x.DType(), dims),
                        ir::SliceAttrs{std::move(starts), std::move(limits), std::move(strides)}, loc);
}

Node Pad(Node x, Node value, std::vector<int64_t> low, std::vector<int64_t> high, std::vector<int64_t> interior,
         Loc loc) {
  Graph* g = internal::CheckSameGraph({x, value}, "Pad", loc);
  if (!value.Shape().IsScalar() || value.DType() != x.DType()) {
    OpError(loc, "Pad", "value must be a scalar of x's dtype " + std::string(dtypes::Name(x.DType())) + ", got " +
                            value.Shape().ToString());
  }
  const size_t rank = static_cast<size_t>(x.Rank());
  if (interior.empty()) interior.assign(rank, 0);
  if (low.size() != rank || high.size() != rank || interior.size() != rank) {
    OpError(loc, "Pad", "low " + ListToString(low) + ", high " + ListToString(high) + " and interior " +
                            ListToString(interior) + " must each have one entry per axis of " + x.Shape().ToString());
  }
  std::vector<int64_t> dims(rank);
  bool identity = true;
  for (size_t i = 0; i < rank; ++i) {
    if (interior[i] < 0) {
      OpError(loc, "Pad", "axis " + std::to_string(i) + ": interior padding must be >= 0, got " +
                              std::to_string(interior[i]));
    }
    dims[i] = PaddedDim(x.Shape().Dims()[i], low[i], high[i], interior[i], "Pad", loc);
    if (dims[i] < 0) {
      OpError(loc, "Pad", "axis " + std::to_string(i) + ": padding low " + std::to_string(low[i]) + ", high " +
                              std::to_string(high[i]) + ", interior " + std::to_string(interior[i]) + " of " +
                              x.Shape().ToString() + " gives a negative dimension " + std::to_string(dims[i]));
    }
    identity = identity && low[i] == 0 && high[i] == 0 && (interior[i] == 0 || x.Shape().Dims()[i] <= 1);
  }
  if (identity) return x;
  return internal::Emit(g, OpType::kPad, {x, value}, internal::OpShape(x.DType(), dims, "Pad", loc),
                        ir::PadAttrs{std::move(low), std::move(high), std::move(interior)}, loc);
}

Node Reverse(Node x, std::vector<int> axes, Loc loc) {
  Graph* g = internal::CheckNode(x, "Reverse", loc);
  std::vector<int64_t> normalized = internal::NormalizeAxes(axes, x.Rank(), "Reverse", loc);
  std::sort(normalized.begin(), normalized.end());
  if (normalized.empty()) return x;
  return internal::Emit(g, OpType::kReverse, {x}, x.Shape(), ir::AxesAttrs{std::move(normalized)}, loc);
}

Node Iota(Graph* g, const shapes::Shape& shape, int axis, Loc loc) {
  if (g == nullptr) OpError(loc, "Iota", "graph is null");
  if (!dtypes::IsInteger(shape.DType()) && !dtypes::IsFloat(shape.DType())) {
    OpError(loc, "Iota", "requires a numeric (integer or float) dtype, got " + shape.ToString());
  }
  if (shape.IsScalar()) OpError(loc, "Iota", "shape must have at least one axis, got " + shape.ToString());
  const int a = internal::NormalizeAxis(axis, shape.Rank(), "Iota", loc);
  return internal::Emit(g, OpType::kIota, {}, shape, ir::AxesAttrs{{a}}, loc);
}

Node DynamicSlice(Node x, const std::vector<Node>& starts, std::vector<int64_t> sizes, Loc loc) {
  Graph* g = internal::CheckNode(x, "DynamicSlice", loc);
  CheckStartIndices(x, starts, "DynamicSlice", loc);
  if (static_cast<int>(sizes.size()) != x.Rank()) {
    OpError(loc, "DynamicSlice", "sizes " + ListToString(sizes) + " must have one entry per axis of " +
                                     x.Shape().ToString());
  }
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] < 0 || sizes[i] > x.Shape().Dims()[i]) {
      OpError(loc, "DynamicSlice", "sizes " + ListToString(sizes) + " must be within [0, dim] for " +
                                       x.Shape().ToString() + " (axis " + std::to_string(i) + ")");
    }
  }
  if (sizes == x.Shape().Dims()) return x;  // every start clamps to 0
  std::vector<Node> operands{x};
  operands.insert(operands.end(), starts.begin(), starts.end());
  shapes::Shape out(x.DType(), sizes);
  return internal::Emit(g, OpType::kDynamicSlice, operands, std::move(out), ir::DynamicSliceAttrs{std::move(sizes)},
                        loc);
}

Node DynamicUpdateSlice(Node x, Node update, const std::vector<Node>& starts, Loc loc) {
  Graph* g = internal::CheckSameGraph({x, update}, "DynamicUpdateSlice", loc);
  if (update.DType() != x.DType()) {
    OpError(loc, "DynamicUpdateSlice", "dtypes differ: x is " + x.Shape().ToString() + ", update is " +
                                           update.Shape().ToString());
  }
  bool fits = update.Rank() == x.Rank();
  for (int i = 0; fits && i < x.Rank(); ++i) fits = update.Shape().Dims()[i] <= x.Shape().Dims()[i];
  if (!fits) {
    OpError(loc, "DynamicUpdateSlice", "update " + update.Shape().ToString() + " must have the rank of x " +
                                           x.Shape().ToString() + " and no larger dimensions");
  }
  CheckStartIndices(x, starts, "DynamicUpdateSlice", loc);
  if (update.Shape() == x.Shape()) return update;  // every start clamps to 0
  std::vector<Node> operands{x, update};
  operands.insert(operands.end(), starts.begin(), starts.end());
  return internal::Emit(g, OpType::kDynamicUpdateSlice, operands, x.Shape(), ir::NoAttrs{}, loc);
}

// ------------------------------------------------------------ VJP rules.
// Data movement is linear: each gradient moves the cotangent back to where
// the operand's elements came from (summing where one element fed several
// outputs), with graph ops so that gradients of gradients work. Iota has no
// operands and no rule; start indices get no gradient.

namespace {

using internal::VJPArgs;

Node ZeroScalarLike(const Node& x, const Loc& loc) { return ScalarLike(x, 0, loc); }

std::vector<Node> ReshapeVJP(const VJPArgs& a) { return {Reshape(a.cotangent, a.operands[0].Shape().Dims(), a.loc)}; }

// Output axis i is operand axis perm[i], so operand axis perm[i] comes back
// from output axis i: the inverse permutation.
std::vector<Node> TransposeVJP(const VJPArgs& a) {
  const auto& perm = ir::Attr<ir::AxesAttrs>(a.instr).axes;
  std::vector<int> inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i) inverse[perm[i]] = static_cast<int>(i);
  return {Transpose(a.cotangent, inverse, a.loc)};
}

// Sums over the output axes the operand does not map to and over the mapped
// axes where a size-1 operand axis was stretched; the reshape then restores
// the operand's (size-1) axes.
std::vector<Node> BroadcastInDimVJP(const VJPArgs& a) {
  const Node& x = a.operands[0];
  const auto& mapped = ir::Attr<ir::AxesAttrs>(a.instr).axes;
  const auto& out_dims = a.output.Shape().Dims();
  std::vector<bool> keep(out_dims.size(), false);
  for (size_t i = 0; i < mapped.size(); ++i) {
    keep[mapped[i]] = x.Shape().Dims()[i] == out_dims[mapped[i]];
  }
  std::vector<int> summed;
  for (size_t k = 0; k < out_dims.size(); ++k) {
    if (!keep[k]) summed.push_back(static_cast<int>(k));
  }
  Node grad = a.cotangent;
  if (!summed.empty()) grad = ReduceSum(grad, summed, a.loc);  // (empty axes would mean all axes)
  return {Reshape(grad, x.Shape().Dims(), a.loc)};
}

// Each operand gets its own window of the cotangent along the axis.
std::vector<Node> ConcatenateVJP(const VJPArgs& a) {
  const int64_t axis = ir::Attr<ir::AxesAttrs>(a.instr).axes[0];
  std::vector<int64_t> starts(static_cast<size_t>(a.output.Rank()), 0);
  std::vector<int64_t> limits = a.output.Shape().Dims();
  std::vector<Node> grads;
  int64_t offset = 0;
  for (const Node& x : a.operands) {
    starts[axis] = offset;
    offset += x.Shape().Dims()[axis];
    limits[axis] = offset;
    grads.push_back(Slice(a.cotangent, starts, limits, {}, a.loc));
  }
  return grads;
}

// The cotangent scattered back to the sliced positions: a Pad with low =
// start, interior = stride - 1 and high filling up to the operand's size
// (>= 0, since the last taken element is before the limit). An empty slice
// gives zeros.
std::vector<Node> SliceVJP(const VJPArgs& a) {
  const Node& x = a.operands[0];
  if (a.cotangent.Shape().Size() == 0) return {ZerosLike(x, a.loc)};
  const auto& attrs = ir::Attr<ir::SliceAttrs>(a.instr);
  const auto& dims = x.Shape().Dims();
  const auto& out = a.output.Shape().Dims();
  std::vector<int64_t> low = attrs.starts, high(dims.size()), interior(dims.size());
  for (size_t i = 0; i < dims.size(); ++i) {
    interior[i] = attrs.strides[i] - 1;
    high[i] = dims[i] - low[i] - out[i] - (out[i] - 1) * interior[i];
  }
  return {Pad(a.cotangent, ZeroScalarLike(x, a.loc), low, high, interior, a.loc)};
}

// Operand: the cotangent at the operand's positions. Negative low/high
// cropped elements away; padding the cotangent back with zeros (by the
// cropped amounts) gives those elements a zero gradient and leaves an
// array where the operand starts at max(low, 0) with stride interior + 1.
// Padding value: the sum of the cotangent over every output position not
// taken from the operand, selected by a mask (an operand-shaped array of
// false padded with true the same way). Not the cotangent's total minus the
// operand's part: that difference cancels when the padding is a small part.
std::vector<Node> PadVJP(const VJPArgs& a) {
  const Node& x = a.operands[0];
  const Node& value = a.operands[1];
  if (a.cotangent.Shape().Size() == 0) return {ZerosLike(x, a.loc), ZerosLike(value, a.loc)};
  const auto& attrs = ir::Attr<ir::PadAttrs>(a.instr);
  const auto& dims = x.Shape().Dims();
  const size_t rank = dims.size();
  std::vector<int64_t> uncrop_low(rank), uncrop_high(rank), starts(rank), limits(rank), strides(rank);
  for (size_t i = 0; i < rank; ++i) {
    uncrop_low[i] = std::max<int64_t>(-attrs.low[i], 0);
    uncrop_high[i] = std::max<int64_t>(-attrs.high[i], 0);
    starts[i] = std::max<int64_t>(attrs.low[i], 0);
    limits[i] = starts[i] + PaddedDim(dims[i], 0, 0, attrs.interior[i], "Pad", a.loc);
    strides[i] = attrs.interior[i] + 1;
  }
  Node full = Pad(a.cotangent, ZeroScalarLike(x, a.loc), uncrop_low, uncrop_high, {}, a.loc);
  Node dx = Slice(full, starts, limits, strides, a.loc);
  Graph* g = x.Graph();
  Node padded = Pad(Zeros(g, shapes::Shape(dtypes::Bool, dims), a.loc), Scalar(g, dtypes::Bool, 1, a.loc), attrs.low,
                    attrs.high, attrs.interior, a.loc);
  Node dvalue = ReduceSum(Where(padded, a.cotangent, ZerosLike(a.cotangent, a.loc), a.loc), {}, a.loc);
  return {dx, dvalue};
}

std::vector<Node> ReverseVJP(const VJPArgs& a) {
  const auto& axes = ir::Attr<ir::AxesAttrs>(a.instr).axes;
  return {Reverse(a.cotangent, std::vector<int>(axes.begin(), axes.end()), a.loc)};
}

std::vector<Node> StartIndices(const VJPArgs& a, size_t first) {
  return {a.operands.begin() + static_cast<std::ptrdiff_t>(first), a.operands.end()};
}

// The cotangent written into zeros at the same start indices: the slice and
// the update have the same sizes, so both clamp the starts alike.
std::vector<Node> DynamicSliceVJP(const VJPArgs& a) {
  const Node& x = a.operands[0];
  std::vector<Node> grads(a.operands.size());
  grads[0] = DynamicUpdateSlice(ZerosLike(x, a.loc), a.cotangent, StartIndices(a, 1), a.loc);
  return grads;
}

// Operand: the cotangent with the (overwritten) update window zeroed.
// Update: the cotangent's window, at the same clamped starts. The window is
// read first, so the zeroing can overwrite the cotangent in place where it
// is its last reader (a loop's carried cotangent: otherwise a full copy per
// iteration).
std::vector<Node> DynamicUpdateSliceVJP(const VJPArgs& a) {
  const Node& update = a.operands[1];
  const std::vector<Node> starts = StartIndices(a, 2);
  std::vector<Node> grads(a.operands.size());
  grads[1] = DynamicSlice(a.cotangent, starts, update.Shape().Dims(), a.loc);
  grads[0] = DynamicUpdateSlice(a.cotangent, ZerosLike(update, a.loc), starts, a.loc);
  return grads;
}

}  // namespace

namespace internal {

void RegisterLayoutVJPs(VJPTable& table) {
  auto set = [&](OpType op, VJPRule rule) { table[static_cast<size_t>(op)] = rule; };
  set(OpType::kReshape, ReshapeVJP);
  set(OpType::kTranspose, TransposeVJP);
  set(OpType::kBroadcastInDim, BroadcastInDimVJP);
  set(OpType::kConcatenate, ConcatenateVJP);
  set(OpType::kSlice, SliceVJP);
  set(OpType::kPad, PadVJP);
  set(OpType::kReverse, ReverseVJP);
  set(OpType::kDynamicSlice, DynamicSliceVJP);
  set(OpType::kDynamicUpdateSlice, DynamicUpdateSliceVJP);
}

}  // namespace internal

}  // namespace kiln::graph
