// Copyright 2026 The Kiln Authors.
// Definitions (operand checks and shape rules) of Gather, Scatter* and
// RNGBitGenerator.
//
// Gather and Scatter follow the StableHLO spec (without batching dims); every
// constraint of the spec is checked here so that the kernels can rely on it.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "src/graph/op_builder.h"
#include "src/graph/vjp.h"

namespace kiln::graph {

using internal::ListToString;
using internal::OpError;
using ir::OpType;

namespace {

std::string Str(int64_t v) { return std::to_string(v); }

// Checks that `dims` (an attribute named `what`) is strictly increasing (so
// sorted and unique) with every value in [0, bound).
void CheckSortedAxes(const std::vector<int64_t>& dims, int64_t bound, std::string_view op, const char* what,
                     const std::string& bound_what, const Loc& loc) {
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] < 0 || dims[i] >= bound) {
      OpError(loc, op, std::string(what) + " " + ListToString(dims) + ": " + Str(dims[i]) + " is out of range for " +
                           bound_what + " (rank " + Str(bound) + ")");
    }
    if (i > 0 && dims[i] <= dims[i - 1]) {
      OpError(loc, op, std::string(what) + " " + ListToString(dims) + " must be sorted and unique");
    }
  }
}

// Checks that the operand-dims map (start_index_map or
// scatter_dims_to_operand_dims) has one entry per index vector component,
// each a distinct operand axis.
void CheckIndexMap(const std::vector<int64_t>& map, int64_t index_vector_size, int operand_rank, std::string_view op,
                   const char* what, const Loc& loc) {
  if (static_cast<int64_t>(map.size()) != index_vector_size) {
    OpError(loc, op, std::string(what) + " " + ListToString(map) + " has " + Str(static_cast<int64_t>(map.size())) +
                         " entries but the index vectors have " + Str(index_vector_size) + " components");
  }
  std::vector<bool> seen(static_cast<size_t>(operand_rank), false);
  for (int64_t d : map) {
    if (d < 0 || d >= operand_rank) {
      OpError(loc, op, std::string(what) + " " + ListToString(map) + ": " + Str(d) +
                           " is out of range for the operand (rank " + Str(operand_rank) + ")");
    }
    if (seen[d]) OpError(loc, op, std::string(what) + " " + ListToString(map) + " has duplicate axis " + Str(d));
    seen[d] = true;
  }
}

// Checks the indices operand and index_vector_dim; returns the number of
// components of each index vector (1 when index_vector_dim == rank).
int64_t CheckIndices(const Node& indices, int64_t index_vector_dim, std::string_view op, const Loc& loc) {
  if (!dtypes::IsInteger(indices.DType())) {
    OpError(loc, op, "indices must have an integer dtype, got " + indices.Shape().ToString());
  }
  if (index_vector_dim < 0 || index_vector_dim > indices.Rank()) {
    OpError(loc, op, "index_vector_dim " + Str(index_vector_dim) + " is out of range [0, " + Str(indices.Rank()) +
                         "] for indices " + indices.Shape().ToString());
  }
  return index_vector_dim == indices.Rank() ? 1 : indices.Shape().Dims()[index_vector_dim];
}

// The dims of `indices` other than index_vector_dim: the batch (gather) or
// scatter (scatter) dims.
std::vector<int64_t> IndexBatchDims(const Node& indices, int64_t index_vector_dim) {
  std::vector<int64_t> dims;
  for (int d = 0; d < indices.Rank(); ++d) {
    if (d != index_vector_dim) dims.push_back(indices.Shape().Dims()[d]);
  }
  return dims;
}

// Checks slice_sizes against the operand and collapsed_slice_dims; returns
// the sizes of the offset (non-collapsed) dims, in operand order.
std::vector<int64_t> CheckSliceSizes(const Node& operand, const ir::GatherAttrs& a, const Loc& loc) {
  const auto& dims = operand.Shape().Dims();
  if (static_cast<int>(a.slice_sizes.size()) != operand.Rank()) {
    OpError(loc, "Gather", "slice_sizes " + ListToString(a.slice_sizes) + " has " +
                               Str(static_cast<int64_t>(a.slice_sizes.size())) + " entries for operand " +
                               operand.Shape().ToString() + " of rank " + Str(operand.Rank()));
  }
  for (int d = 0; d < operand.Rank(); ++d) {
    if (a.slice_sizes[d] < 0 || a.slice_sizes[d] > dims[d]) {
      OpError(loc, "Gather", "slice_sizes " + ListToString(a.slice_sizes) + ": size " + Str(a.slice_sizes[d]) +
                                 " of axis " + Str(d) + " is out of range [0, " + Str(dims[d]) + "] for operand " +
                                 operand.Shape().ToString());
    }
  }
  CheckSortedAxes(a.collapsed_slice_dims, operand.Rank(), "Gather", "collapsed_slice_dims", "the operand", loc);
  std::vector<bool> collapsed(dims.size(), false);
  for (int64_t d : a.collapsed_slice_dims) {
    if (a.slice_sizes[d] != 1) {
      OpError(loc, "Gather", "collapsed axis " + Str(d) + " must have slice size 1, got slice_sizes " +
                                 ListToString(a.slice_sizes));
    }
    collapsed[d] = true;
  }
  std::vector<int64_t> offset_sizes;
  for (int d = 0; d < operand.Rank(); ++d) {
    if (!collapsed[d]) offset_sizes.push_back(a.slice_sizes[d]);
  }
  return offset_sizes;
}

// Places `offset_sizes` at the output axes `offset_dims` and `batch_sizes`
// (in order) at the others: the spec's combine().
std::vector<int64_t> Combine(const std::vector<int64_t>& batch_sizes, const std::vector<int64_t>& offset_sizes,
                             const std::vector<int64_t>& offset_dims) {
  const size_t rank = batch_sizes.size() + offset_sizes.size();
  std::vector<int64_t> out(rank);
  size_t b = 0, o = 0;
  for (size_t d = 0; d < rank; ++d) {
    if (o < offset_dims.size() && offset_dims[o] == static_cast<int64_t>(d)) out[d] = offset_sizes[o++];
    else out[d] = batch_sizes[b++];
  }
  return out;
}

// Checks the scatter attributes that relate updates to the operand and the
// indices (spec constraints C2-C8 without batching dims).
void CheckScatterUpdates(std::string_view op, const Node& operand, const Node& indices, const Node& updates,
                         const ir::ScatterAttrs& a, const Loc& loc) {
  const int operand_rank = operand.Rank();
  CheckSortedAxes(a.update_window_dims, updates.Rank(), op, "update_window_dims", "updates", loc);
  CheckSortedAxes(a.inserted_window_dims, operand_rank, op, "inserted_window_dims", "the operand", loc);
  const auto window_count = static_cast<int64_t>(a.update_window_dims.size());
  const auto inserted_count = static_cast<int64_t>(a.inserted_window_dims.size());
  if (window_count + inserted_count != operand_rank) {
    OpError(loc, op, "update_window_dims " + ListToString(a.update_window_dims) + " and inserted_window_dims " +
                         ListToString(a.inserted_window_dims) + " must have " + Str(operand_rank) +
                         " entries in all (the operand " + operand.Shape().ToString() + "'s rank), got " +
                         Str(window_count + inserted_count));
  }
  const std::vector<int64_t> scatter_sizes = IndexBatchDims(indices, a.index_vector_dim);
  const auto want_rank = static_cast<int64_t>(scatter_sizes.size()) + window_count;
  if (updates.Rank() != want_rank) {
    OpError(loc, op, "updates " + updates.Shape().ToString() + " must have rank " + Str(want_rank) + " (" +
                         Str(static_cast<int64_t>(scatter_sizes.size())) + " scatter dims from indices " +
                         indices.Shape().ToString() + " plus " + Str(window_count) + " update_window_dims)");
  }
  // Window sizes must fit the operand's non-inserted axes; the other update
  // axes must match the indices' scatter dims.
  std::vector<bool> inserted(static_cast<size_t>(operand_rank), false);
  for (int64_t d : a.inserted_window_dims) inserted[d] = true;
  size_t w = 0, s = 0;
  int operand_axis = 0;
  for (int d = 0; d < updates.Rank(); ++d) {
    const int64_t size = updates.Shape().Dims()[d];
    if (w < a.update_window_dims.size() && a.update_window_dims[w] == d) {
      while (inserted[operand_axis]) ++operand_axis;
      const int64_t limit = operand.Shape().Dims()[operand_axis];
      if (size > limit) {
        OpError(loc, op, "updates " + updates.Shape().ToString() + " window axis " + Str(d) + " (size " + Str(size) +
                             ") is larger than operand " + operand.Shape().ToString() + " axis " +
                             Str(operand_axis) + " (size " + Str(limit) + ")");
      }
      ++w;
      ++operand_axis;
    } else {
      if (size != scatter_sizes[s]) {
        OpError(loc, op, "updates " + updates.Shape().ToString() + " scatter axis " + Str(d) + " has size " +
                             Str(size) + " but the matching indices " + indices.Shape().ToString() +
                             " batch dim has size " + Str(scatter_sizes[s]));
      }
      ++s;
    }
  }
}

Node Scatter(OpType op, Node operand, Node indices, Node updates, ir::ScatterAttrs attrs, const Loc& loc) {
  const std::string_view name = ir::OpName(op);
  Graph* g = internal::CheckSameGraph({operand, indices, updates}, name, loc);
  if (operand.DType() != updates.DType()) {
    OpError(loc, name, "operand " + operand.Shape().ToString() + " and updates " + updates.Shape().ToString() +
                           " must have the same dtype");
  }
  if (op != OpType::kScatterUpdate && operand.DType() == dtypes::Bool) {
    OpError(loc, name, "does not support Bool operands (" + operand.Shape().ToString() +
                           "); use ScatterUpdate, or convert to an integer dtype");
  }
  const int64_t index_vector_size = CheckIndices(indices, attrs.index_vector_dim, name, loc);
  CheckIndexMap(attrs.scatter_dims_to_operand_dims, index_vector_size, operand.Rank(), name,
                "scatter_dims_to_operand_dims", loc);
  CheckScatterUpdates(name, operand, indices, updates, attrs, loc);
  return internal::Emit(g, op, {operand, indices, updates}, operand.Shape(), std::move(attrs), loc);
}

}  // namespace

Node Gather(Node operand, Node indices, ir::GatherAttrs attrs, Loc loc) {
  Graph* g = internal::CheckSameGraph({operand, indices}, "Gather", loc);
  const int64_t index_vector_size = CheckIndices(indices, attrs.index_vector_dim, "Gather", loc);
  const std::vector<int64_t> offset_sizes = CheckSliceSizes(operand, attrs, loc);
  CheckIndexMap(attrs.start_index_map, index_vector_size, operand.Rank(), "Gather", "start_index_map", loc);
  if (attrs.offset_dims.size() != offset_sizes.size()) {
    OpError(loc, "Gather", "offset_dims " + ListToString(attrs.offset_dims) + " and collapsed_slice_dims " +
                               ListToString(attrs.collapsed_slice_dims) + " must have " + Str(operand.Rank()) +
                               " entries in all (the operand " + operand.Shape().ToString() + "'s rank), got " +
                               Str(static_cast<int64_t>(attrs.offset_dims.size() +
                                                        attrs.collapsed_slice_dims.size())));
  }
  const std::vector<int64_t> batch_sizes = IndexBatchDims(indices, attrs.index_vector_dim);
  const auto output_rank = static_cast<int64_t>(batch_sizes.size() + offset_sizes.size());
  CheckSortedAxes(attrs.offset_dims, output_rank, "Gather", "offset_dims", "the output", loc);
  shapes::Shape shape = internal::OpShape(operand.DType(), Combine(batch_sizes, offset_sizes, attrs.offset_dims), "Gather", loc);
  return internal::Emit(g, OpType::kGather, {operand, indices}, std::move(shape), std::move(attrs), loc);
}

// Semantics shared by every Scatter*: the result starts as `operand`; each
// update element is combined into the operand element it targets, index
// vector by index vector (row-major over the scatter dims of `indices`), each
// window in row-major order, as XLA does. Per the StableHLO spec, the target
// is checked per update element: an element whose target lies outside the
// operand is skipped (the rest of its window still applies). Start indices are
// not clamped (unlike Gather).
Node ScatterSum(Node operand, Node indices, Node updates, ir::ScatterAttrs attrs, Loc loc) {
  return Scatter(OpType::kScatterSum, operand, indices, updates, std::move(attrs), loc);
}

// NaN in either value gives NaN.
Node ScatterMax(Node operand, Node indices, Node updates, ir::ScatterAttrs attrs, Loc loc) {
  return Scatter(OpType::kScatterMax, operand, indices, updates, std::move(attrs), loc);
}

// NaN in either value gives NaN.
Node ScatterMin(Node operand, Node indices, Node updates, ir::ScatterAttrs attrs, Loc loc) {
  return Scatter(OpType::kScatterMin, operand, indices, updates, std::move(attrs), loc);
}

// With duplicate targets the last update (in the order above) wins.
Node ScatterUpdate(Node operand, Node indices, Node updates, ir::ScatterAttrs attrs, Loc loc) {
  return Scatter(OpType::kScatterUpdate, operand, indices, updates, std::move(attrs), loc);
}

// The bits come from Philox4x32-10 (see src/backends/cpu/philox.h for the
// layout of words into elements). The new state is computed here with an Add:
// counter_lo advances by the number of 128-bit Philox blocks consumed, so the
// next call continues the stream. The carry into counter_hi is not
// propagated: a stream would need 2^64 blocks (2^70 bytes) to wrap.
std::pair<Node, Node> RNGBitGenerator(Node state, const shapes::Shape& shape, Loc loc) {
  Graph* g = internal::CheckNode(state, "RNGBitGenerator", loc);
  if (state.Shape() != shapes::Make(dtypes::Uint64, 3)) {
    OpError(loc, "RNGBitGenerator", "state must be Uint64[3] {key, counter_lo, counter_hi}, got " +
                                        state.Shape().ToString());
  }
  if (!dtypes::IsUnsignedInteger(shape.DType())) {
    OpError(loc, "RNGBitGenerator", "the output shape " + shape.ToString() +
                                        " must have an unsigned integer dtype (Uint8, Uint16, Uint32 or Uint64)");
  }
  const int64_t words = shape.Size() * (shape.DType() == dtypes::Uint64 ? 2 : 1);
  const auto blocks = static_cast<uint64_t>((words + 3) / 4);
  Node bits = internal::Emit(g, OpType::kRNGBitGenerator, {state}, shape, ir::NoAttrs{}, loc);
  Node new_state = Add(state, Const(g, std::vector<uint64_t>{0, blocks, 0}, loc), loc);
  return {new_state, bits};
}

// ------------------------------------------------------------ VJP rules.
//
// Indices never get a gradient. Every rule is built from graph ops, so
// gradients of gradients work, and works for every float dtype.

namespace {

using internal::VJPArgs;

// A Const of `dtype` (an integer dtype) holding one value per index vector
// component, shaped to broadcast against `indices` (component k along
// index_vector_dim). Values that do not fit the dtype saturate: as bounds of
// a Clamp of indices of that dtype, a saturated bound is never crossed.
Node IndexBounds(const Node& indices, int64_t index_vector_dim, dtypes::DType dtype,
                 const std::vector<int64_t>& values, const Loc& loc) {
  tensors::Tensor t(shapes::Shape(dtype, {static_cast<int64_t>(values.size())}));
  DispatchDType(dtype, [&](auto zero) {
    using T = decltype(zero);
    if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
      auto out = t.MutableFlat<T>();
      for (size_t k = 0; k < values.size(); ++k) {
        const int64_t v = values[k];
        if (std::cmp_less(v, std::numeric_limits<T>::min())) out[k] = std::numeric_limits<T>::min();
        else if (std::cmp_greater(v, std::numeric_limits<T>::max())) out[k] = std::numeric_limits<T>::max();
        else out[k] = static_cast<T>(v);
      }
    }
  });
  Node c = Const(indices.Graph(), t, loc);
  if (index_vector_dim == indices.Rank()) return Reshape(c, {}, loc);  // one component, implicit axis
  return BroadcastInDim(c, indices.Shape().Dims(), {static_cast<int>(index_vector_dim)}, loc);
}

// Clamps component k of every index vector to [lo[k], hi[k]].
Node ClampIndices(Node indices, int64_t index_vector_dim, const std::vector<int64_t>& lo,
                  const std::vector<int64_t>& hi, const Loc& loc) {
  if (lo.empty()) return indices;  // empty index vectors: nothing to clamp
  const dtypes::DType dtype = indices.DType();
  return Clamp(IndexBounds(indices, index_vector_dim, dtype, lo, loc), indices,
               IndexBounds(indices, index_vector_dim, dtype, hi, loc), loc);
}

// Gather's gradient scatters the cotangent back into the operand. Gather
// clamps each start index to [0, dim - slice size] while Scatter skips out of
// bounds elements, so the indices are clamped here first: every cotangent
// element goes back to the operand element the forward pass read, including
// for out-of-range indices. Duplicate indices accumulate.
std::vector<Node> GatherVJP(const VJPArgs& a) {
  const auto& attrs = std::get<ir::GatherAttrs>(a.instr.attrs);
  Node operand = a.operands[0], indices = a.operands[1];
  const auto& dims = operand.Shape().Dims();
  std::vector<int64_t> lo, hi;
  for (int64_t d : attrs.start_index_map) {
    lo.push_back(0);
    hi.push_back(dims[d] - attrs.slice_sizes[d]);
  }
  Node clamped = ClampIndices(indices, attrs.index_vector_dim, lo, hi, a.loc);
  ir::ScatterAttrs scatter{.update_window_dims = attrs.offset_dims,
                           .inserted_window_dims = attrs.collapsed_slice_dims,
                           .scatter_dims_to_operand_dims = attrs.start_index_map,
                           .index_vector_dim = attrs.index_vector_dim,
                           .indices_are_sorted = attrs.indices_are_sorted};
  Node grad = ScatterSum(Zeros(a.g, operand.Shape(), a.loc), clamped, a.cotangent, std::move(scatter), a.loc);
  return {grad, Node()};
}

// The value of `values` (of the scatter operand's shape) at the target of
// every update element, or `pad_value` where the target lies outside the
// operand (the elements Scatter skips); the result has `update_dims`.
//
// A windowed Gather would clamp whole windows and so shift the in-bounds
// elements of a partly out-of-bounds window. Instead `values` is padded on
// each indexed axis by p >= the window size and the start indices are shifted
// by p (after clamping them to [-p, dim], which changes no outcome: below -p
// or above dim the whole window is out of bounds). Every start then stays
// inside Gather's clamp range, and out-of-bounds elements read the padding.
Node GatherAtUpdates(Node values, Node indices, const ir::ScatterAttrs& attrs,
                     const std::vector<int64_t>& update_dims, double pad_value, const Loc& loc) {
  const int rank = values.Rank();
  const auto& dims = values.Shape().Dims();
  std::vector<bool> inserted(static_cast<size_t>(rank), false);
  for (int64_t d : attrs.inserted_window_dims) inserted[d] = true;
  std::vector<int64_t> slice_sizes(static_cast<size_t>(rank), 1);
  for (int d = 0, w = 0; d < rank; ++d) {
    if (!inserted[d]) slice_sizes[d] = update_dims[attrs.update_window_dims[w++]];
  }
  std::vector<int64_t> pad(static_cast<size_t>(rank), 0), lo, hi;
  for (int64_t d : attrs.scatter_dims_to_operand_dims) {
    pad[d] = std::max<int64_t>(slice_sizes[d], 1);
    lo.push_back(-pad[d]);
    hi.push_back(dims[d]);
  }
  Node padded = Pad(values, ScalarLike(values, pad_value, loc), pad, pad, {}, loc);
  Node shifted = ConvertDType(ClampIndices(indices, attrs.index_vector_dim, lo, hi, loc), dtypes::Int64, loc);
  if (!hi.empty()) {
    std::vector<int64_t> shift;
    for (int64_t d : attrs.scatter_dims_to_operand_dims) shift.push_back(pad[d]);
    shifted = Add(shifted, IndexBounds(shifted, attrs.index_vector_dim, dtypes::Int64, shift, loc), loc);
  }
  ir::GatherAttrs gather{.offset_dims = attrs.update_window_dims,
                         .collapsed_slice_dims = attrs.inserted_window_dims,
                         .start_index_map = attrs.scatter_dims_to_operand_dims,
                         .index_vector_dim = attrs.index_vector_dim,
                         .slice_sizes = std::move(slice_sizes),
                         .indices_are_sorted = attrs.indices_are_sorted};
  return Gather(padded, shifted, std::move(gather), loc);
}

// ScatterSum is linear: the operand's gradient is the cotangent, each update
// element's is the cotangent at its target (zero for skipped, out of bounds
// elements).
std::vector<Node> ScatterSumVJP(const VJPArgs& a) {
  const auto& attrs = std::get<ir::ScatterAttrs>(a.instr.attrs);
  const Node& indices = a.operands[1];
  return {a.cotangent, Node(),
          GatherAtUpdates(a.cotangent, indices, attrs, a.operands[2].Shape().Dims(), 0, a.loc)};
}

// The position of every update element in Scatter's application order
// (row-major over the scatter dims; elements of one window never share a
// target, so their order among themselves does not matter): Int64 of
// `update_dims`, constant along the window axes.
Node UpdateOrder(Graph* g, const std::vector<int64_t>& update_dims, const ir::ScatterAttrs& attrs, const Loc& loc) {
  std::vector<int64_t> scatter_dims;
  std::vector<int> scatter_axes;
  int64_t count = 1;
  for (int d = 0, w = 0; d < static_cast<int>(update_dims.size()); ++d) {
    if (w < static_cast<int>(attrs.update_window_dims.size()) && attrs.update_window_dims[w] == d) {
      ++w;
      continue;
    }
    scatter_dims.push_back(update_dims[d]);
    scatter_axes.push_back(d);
    count *= update_dims[d];
  }
  Node order = Reshape(Iota(g, shapes::Make(dtypes::Int64, count), 0, loc), scatter_dims, loc);
  return BroadcastInDim(order, update_dims, scatter_axes, loc);
}

// ScatterUpdate: the operand's gradient is the cotangent except at the
// written positions (the in-bounds targets). Each update element gets the
// cotangent at its target if it is the one that wins there, zero otherwise:
// with duplicate targets only the last writer (in application order)
// influences the output, so earlier duplicates get zero. Unless the op
// promises unique indices, the winners are found by scattering (ScatterMax)
// each element's application order into the operand's positions.
std::vector<Node> ScatterUpdateVJP(const VJPArgs& a) {
  const auto& attrs = std::get<ir::ScatterAttrs>(a.instr.attrs);
  const Node &indices = a.operands[1], &updates = a.operands[2];
  const auto& update_dims = updates.Shape().Dims();
  Node operand_grad = ScatterUpdate(a.cotangent, indices, ZerosLike(updates, a.loc), attrs, a.loc);
  Node update_grad = GatherAtUpdates(a.cotangent, indices, attrs, update_dims, 0, a.loc);
  if (!attrs.unique_indices) {
    Node order = UpdateOrder(a.g, update_dims, attrs, a.loc);
    Node none = Scalar(a.g, dtypes::Int64, -1, a.loc);
    Node winner = ScatterMax(BroadcastTo(none, a.output.Shape().Dims(), a.loc), indices, order, attrs, a.loc);
    Node wins = Equal(GatherAtUpdates(winner, indices, attrs, update_dims, -1, a.loc), order, a.loc);
    update_grad = Where(wins, update_grad, ZerosLike(update_grad, a.loc), a.loc);
  }
  return {operand_grad, Node(), update_grad};
}

// ScatterMax / ScatterMin: the result at each position is one of the values
// combined there (the operand's and those of the updates targeting it); the
// cotangent goes to the values equal to the result. Ties split it evenly
// among them (as JAX, and as the elementwise Max/Min rules), so the
// gradients always sum to the cotangent; a two-way tie matches the central
// difference. Where the result is NaN nothing equals it and no value gets a
// gradient.
std::vector<Node> ScatterExtremumVJP(const VJPArgs& a) {
  const auto& attrs = std::get<ir::ScatterAttrs>(a.instr.attrs);
  const Node &operand = a.operands[0], &indices = a.operands[1], &updates = a.operands[2];
  const auto& update_dims = updates.Shape().Dims();
  const dtypes::DType dtype = operand.DType();
  Node operand_hits = Equal(operand, a.output, a.loc);
  // Skipped elements read NaN, which equals nothing.
  Node result_at_updates = GatherAtUpdates(a.output, indices, attrs, update_dims, std::nan(""), a.loc);
  Node update_hits = Equal(updates, result_at_updates, a.loc);
  Node count = Add(ConvertDType(operand_hits, dtype, a.loc),
                   ScatterSum(ZerosLike(operand, a.loc), indices, ConvertDType(update_hits, dtype, a.loc), attrs,
                              a.loc),
                   a.loc);
  // count >= 1 wherever a share is used; the Max avoids 0/0 elsewhere (and
  // so NaNs in gradients of this gradient).
  Node share = Div(a.cotangent, Max(count, OnesLike(count, a.loc), a.loc), a.loc);
  Node operand_grad = Where(operand_hits, share, ZerosLike(share, a.loc), a.loc);
  Node update_share = GatherAtUpdates(share, indices, attrs, update_dims, 0, a.loc);
  Node update_grad = Where(update_hits, update_share, ZerosLike(update_share, a.loc), a.loc);
  return {operand_grad, Node(), update_grad};
}

}  // namespace

namespace internal {

void RegisterGatherVJPs(VJPTable& table) {
  auto set = [&](OpType op, VJPRule rule) { table[static_cast<size_t>(op)] = rule; };
  set(OpType::kGather, GatherVJP);
  set(OpType::kScatterSum, ScatterSumVJP);
  set(OpType::kScatterUpdate, ScatterUpdateVJP);
  set(OpType::kScatterMax, ScatterExtremumVJP);
  set(OpType::kScatterMin, ScatterExtremumVJP);
}

}  // namespace internal

}  // namespace kiln::graph
