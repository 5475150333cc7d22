// Copyright 2026 The Kiln Authors.
// ONNX operators that move data: shapes, slicing, gathers and scatters,
// padding, tiling, constants. Arguments that decide an output's shape
// (Reshape's shape, Slice's bounds, ...) must be known at trace time.
#include <algorithm>
#include <numeric>

#include "kiln/graph/linalg.h"
#include "kiln/graph/ops.h"
#include "kiln/graph/sort.h"
#include "src/onnx/converter.h"

namespace kiln::onnx::internal {
namespace {

using graph::Node;

tensors::Tensor Int64Tensor(const std::vector<int64_t>& v, bool scalar = false) {
  return tensors::FromFlat<int64_t>(shapes::Shape(dtypes::Int64, scalar ? std::vector<int64_t>{}
                                                                         : std::vector<int64_t>{(int64_t)v.size()}),
                                    v);
}

std::string DimsText(const std::vector<int64_t>& d) {
  std::string s = "[";
  for (size_t i = 0; i < d.size(); ++i) s += (i ? ", " : "") + std::to_string(d[i]);
  return s + "]";
}

// Indices made non-negative: i < 0 counts from the end of an axis of size dim.
Node WrapIndices(Node idx, Node dim) {
  return graph::Where(graph::LessThan(idx, graph::ZerosLike(idx)), idx + dim, idx);
}

// Axes attribute (old opsets) or input `i` (newer ones).
std::vector<int64_t> AxesArg(OpContext& c, int input, int64_t since_opset, bool* given) {
  if (c.Opset() >= since_opset) {
    *given = c.Has(input);
    return *given ? c.Ints(input, "axes") : std::vector<int64_t>{};
  }
  *given = c.HasAttr("axes");
  return c.IntsAttr("axes");
}

// numpy take along `axis` (ONNX Gather) with non-negative indices.
Node Take(Node x, Node idx, int axis) {
  const int r = x.Rank(), q = idx.Rank();
  ir::GatherAttrs a;
  a.index_vector_dim = q;
  a.start_index_map = {axis};
  a.collapsed_slice_dims = {axis};
  a.slice_sizes = x.Shape().Dims();
  a.slice_sizes[static_cast<size_t>(axis)] = 1;
  for (int d = 0; d < axis; ++d) a.offset_dims.push_back(d);
  for (int d = axis + 1; d < r; ++d) a.offset_dims.push_back(d - 1 + q);
  return graph::Gather(x, idx, a);
}

// The coordinates of every element of a tensor of `dims` with `idx` along
// `axis`: an index array [dims..., rank] for XLA gather/scatter.
Node FullCoordinates(Node idx, int axis) {
  std::vector<Node> coords;
  const shapes::Shape s = idx.Shape();
  for (int d = 0; d < idx.Rank(); ++d) {
    coords.push_back(d == axis ? idx : graph::Iota(idx.Graph(), s, d));
  }
  return graph::Stack(coords, idx.Rank());
}

std::vector<Out> Scatter(OpContext& c, Node data, Node indices, Node updates, const ir::ScatterAttrs& a) {
  const std::string red = c.Str("reduction", "none");
  if (red == "none") return {graph::ScatterUpdate(data, indices, updates, a)};
  if (red == "add") return {graph::ScatterSum(data, indices, updates, a)};
  if (red == "max") return {graph::ScatterMax(data, indices, updates, a)};
  if (red == "min") return {graph::ScatterMin(data, indices, updates, a)};
  c.Fail("reduction \"" + red + "\" is not supported (none, add, max, min are)");
}

Node PadAxisEdgeReflect(Node x, int axis, int64_t lo, int64_t hi, bool reflect, const OpContext& c) {
  const int64_t n = x.Shape().Dim(axis);
  std::vector<Node> parts;
  if (reflect && (lo >= n || hi >= n)) c.Fail("reflect padding must be smaller than the axis size");
  if (n == 0 && (lo > 0 || hi > 0)) c.Fail("edge or reflect padding of an empty axis");
  if (lo > 0) {
    if (reflect) {
      parts.push_back(graph::Reverse(graph::SliceAxis(x, axis, 1, lo + 1), {axis}));
    } else {
      Node first = graph::SliceAxis(x, axis, 0, 1);
      std::vector<int64_t> dims = x.Shape().Dims();
      dims[static_cast<size_t>(axis)] = lo;
      parts.push_back(graph::BroadcastTo(first, dims));
    }
  }
  parts.push_back(x);
  if (hi > 0) {
    if (reflect) {
      parts.push_back(graph::Reverse(graph::SliceAxis(x, axis, n - 1 - hi, n - 1), {axis}));
    } else {
      Node last = graph::SliceAxis(x, axis, n - 1, n);
      std::vector<int64_t> dims = x.Shape().Dims();
      dims[static_cast<size_t>(axis)] = hi;
      parts.push_back(graph::BroadcastTo(last, dims));
    }
  }
  return parts.size() == 1 ? x : graph::Concatenate(parts, axis);
}

}  // namespace

void RegisterShapeOps() {
  using namespace graph;  // NOLINT

  RegisterOp("Shape", [](OpContext& c) -> std::vector<Out> {
    const auto dims = c.ShapeOf(0).Dims();
    const int r = static_cast<int>(dims.size());
    int64_t start = c.Int("start", 0), end = c.Int("end", r);
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = std::clamp<int64_t>(start, 0, r);
    end = std::clamp<int64_t>(end, 0, r);
    std::vector<int64_t> v;
    for (int64_t i = start; i < end; ++i) v.push_back(dims[static_cast<size_t>(i)]);
    return {Int64Tensor(v)};
  });
  RegisterOp("Size", [](OpContext& c) -> std::vector<Out> { return {Int64Tensor({c.ShapeOf(0).Size()}, true)}; });
  RegisterOp("Constant", [](OpContext& c) -> std::vector<Out> {
    if (c.HasAttr("value")) return {c.TensorAttr("value")};
    if (c.HasAttr("value_float")) return {tensors::FromValue(c.Float("value_float", 0))};
    if (c.HasAttr("value_int")) return {Int64Tensor({c.Int("value_int", 0)}, true)};
    if (c.HasAttr("value_floats")) {
      auto f = c.Floats("value_floats");
      return {tensors::FromFlat<float>(shapes::Shape(dtypes::Float32, {(int64_t)f.size()}), f)};
    }
    if (c.HasAttr("value_ints")) return {Int64Tensor(c.IntsAttr("value_ints"))};
    if (c.HasAttr("value_string") || c.HasAttr("value_strings")) c.Fail("string constants are not supported");
    c.Fail("a sparse or missing value is not supported");
  });
  RegisterOp("ConstantOfShape", [](OpContext& c) -> std::vector<Out> {
    const auto dims = c.Ints(0, "shape");
    for (int64_t d : dims) {
      if (d < 0) c.Fail("negative dimension in shape " + DimsText(dims));
    }
    tensors::Tensor value = c.HasAttr("value") ? c.TensorAttr("value") : tensors::FromValue(0.0f);
    if (value.Size() != 1) c.Fail("value must hold one element");
    int64_t total = 1;
    for (int64_t d : dims) total = d == 0 || total <= (int64_t{1} << 40) / d ? total * d : (int64_t{1} << 41);
    if (total * static_cast<int64_t>(dtypes::SizeOf(value.DType())) > kMaxFoldBytes) {
      // Too large to be a shape-like value: a broadcast in the graph.
      return {BroadcastTo(Reshape(Const(c.G(), value), {}), dims)};
    }
    tensors::Tensor out(shapes::Shape(value.DType(), dims));
    const size_t elem = dtypes::SizeOf(value.DType());
    auto* dst = static_cast<char*>(out.MutableHostData());
    for (int64_t i = 0; i < out.Size(); ++i) std::memcpy(dst + i * elem, value.HostData(), elem);
    return {out};
  });

  RegisterOp("Reshape", [](OpContext& c) -> std::vector<Out> {
    const auto in = c.ShapeOf(0).Dims();
    std::vector<int64_t> dims = c.Opset() < 5 ? c.IntsAttr("shape") : c.Ints(1, "shape");
    const bool allow_zero = c.Int("allowzero", 0) != 0;
    int64_t known = 1;
    int infer = -1;
    for (size_t i = 0; i < dims.size(); ++i) {
      if (dims[i] == 0 && !allow_zero) {
        if (i >= in.size()) c.Fail("shape " + DimsText(dims) + " copies axis " + std::to_string(i) + " of a rank-" +
                                   std::to_string(in.size()) + " input");
        dims[i] = in[i];
      }
      if (dims[i] == -1) {
        if (infer >= 0) c.Fail("shape " + DimsText(dims) + " has two -1");
        infer = static_cast<int>(i);
      } else if (dims[i] < 0) {
        c.Fail("invalid dimension in shape " + DimsText(dims));
      } else {
        known = CheckedMul(c, known, dims[i]);
      }
    }
    const int64_t total = c.ShapeOf(0).Size();
    if (infer >= 0) {
      if (known == 0 || total % known != 0) {
        c.Fail("cannot reshape " + c.ShapeOf(0).ToString() + " to " + DimsText(dims));
      }
      dims[static_cast<size_t>(infer)] = total / known;
    }
    return {Reshape(c.In(0), dims)};
  });
  RegisterOp("Flatten", [](OpContext& c) -> std::vector<Out> {
    const auto s = c.ShapeOf(0);
    int64_t axis = c.Int("axis", 1);
    if (axis < 0) axis += s.Rank();
    if (axis < 0 || axis > s.Rank()) c.Fail("axis out of range");
    int64_t outer = 1, inner = 1;
    for (int d = 0; d < s.Rank(); ++d) (d < axis ? outer : inner) *= s.Dims()[d];
    return {Reshape(c.In(0), {outer, inner})};
  });
  RegisterOp("Transpose", [](OpContext& c) -> std::vector<Out> {
    const int r = c.RankOf(0);
    std::vector<int64_t> perm = c.IntsAttr("perm");
    std::vector<int> p;
    if (perm.empty()) {
      for (int d = r - 1; d >= 0; --d) p.push_back(d);
    } else {
      for (int64_t d : perm) p.push_back(NormAxis(c, d, r));
    }
    return {Transpose(c.In(0), p)};
  });
  RegisterOp("Squeeze", [](OpContext& c) -> std::vector<Out> {
    bool given = false;
    auto axes = AxesArg(c, 1, 13, &given);
    std::vector<int> a;
    for (int64_t ax : axes) a.push_back(NormAxis(c, ax, c.RankOf(0)));
    for (int ax : a) {
      if (c.ShapeOf(0).Dims()[ax] != 1) c.Fail("axis " + std::to_string(ax) + " of " + c.ShapeOf(0).ToString() + " is not 1");
    }
    return {Squeeze(c.In(0), a)};
  });
  RegisterOp("Unsqueeze", [](OpContext& c) -> std::vector<Out> {
    bool given = false;
    auto axes = AxesArg(c, 1, 13, &given);
    const int out_rank = c.RankOf(0) + static_cast<int>(axes.size());
    std::vector<int> a;
    for (int64_t ax : axes) a.push_back(NormAxis(c, ax, out_rank));
    std::sort(a.begin(), a.end());
    if (std::adjacent_find(a.begin(), a.end()) != a.end()) c.Fail("repeated axis");
    return {ExpandAxes(c.In(0), a)};
  });
  RegisterOp("Concat", [](OpContext& c) -> std::vector<Out> {
    std::vector<Node> xs;
    for (int i = 0; i < c.NumInputs(); ++i) {
      if (c.Has(i)) xs.push_back(c.In(i));
    }
    if (xs.empty()) c.Fail("needs at least one input");
    return {Concatenate(xs, NormAxis(c, c.Int("axis", 0), xs[0].Rank()))};
  });
  RegisterOp("Split", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int axis = NormAxis(c, c.Int("axis", 0), x.Rank());
    const int64_t n = x.Shape().Dim(axis);
    std::vector<int64_t> sizes;
    if (c.Opset() >= 13 && c.Has(1)) sizes = c.Ints(1, "split");
    else if (c.Opset() < 13) sizes = c.IntsAttr("split");
    const int outputs = c.Proto().output_size();
    if (sizes.empty()) {
      const int64_t parts = c.HasAttr("num_outputs") ? c.Int("num_outputs", outputs) : outputs;
      if (parts < 1) c.Fail("num_outputs must be positive");
      const int64_t each = (n + parts - 1) / parts;
      for (int64_t k = 0; k < parts; ++k) sizes.push_back(std::max<int64_t>(0, std::min(each, n - k * each)));
    }
    int64_t sum = 0;
    for (int64_t s : sizes) {
      if (s < 0 || s > n - sum) c.Fail("split sizes " + DimsText(sizes) + " do not add up to " + std::to_string(n));
      sum += s;
    }
    if (sum != n) c.Fail("split sizes " + DimsText(sizes) + " do not add up to " + std::to_string(n));
    std::vector<Out> outs;
    int64_t at = 0;
    for (int64_t s : sizes) {
      outs.push_back(SliceAxis(x, axis, at, at + s));
      at += s;
    }
    return outs;
  });
  RegisterOp("Slice", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const auto dims = x.Shape().Dims();
    std::vector<int64_t> starts, ends, axes, steps;
    if (c.Opset() < 10) {
      starts = c.IntsAttr("starts");
      ends = c.IntsAttr("ends");
      axes = c.IntsAttr("axes");
    } else {
      starts = c.Ints(1, "starts");
      ends = c.Ints(2, "ends");
      if (c.Has(3)) axes = c.Ints(3, "axes");
      if (c.Has(4)) steps = c.Ints(4, "steps");
    }
    if (axes.empty()) {
      for (size_t i = 0; i < starts.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    }
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size()) {
      c.Fail("starts, ends, axes and steps must have one length");
    }
    const int r = x.Rank();
    std::vector<int64_t> lo(r, 0), hi(dims.begin(), dims.end()), st(r, 1);
    std::vector<int> reversed;
    for (size_t i = 0; i < starts.size(); ++i) {
      const int a = NormAxis(c, axes[i], r);
      const int64_t n = dims[a];
      if (steps[i] == 0) c.Fail("step 0");
      // A step longer than the axis takes one element, as the axis length would.
      const int64_t longest = std::max<int64_t>(n, 1);
      const int64_t step = std::clamp<int64_t>(steps[i], -longest, longest);
      int64_t s = starts[i], e = ends[i];
      if (s < 0) s += n;
      if (e < 0) e += n;
      if (step > 0) {
        s = std::clamp<int64_t>(s, 0, n);
        e = std::clamp<int64_t>(e, 0, n);
        lo[a] = s;
        hi[a] = std::max(s, e);
        st[a] = step;
      } else {
        s = std::clamp<int64_t>(s, 0, n - 1);
        e = std::clamp<int64_t>(e, -1, n - 1);
        const int64_t count = s > e ? (s - e - 1) / (-step) + 1 : 0;  // ceil, without overflow
        // Reverse the axis, then slice forward from the mirrored start.
        reversed.push_back(a);
        const int64_t r0 = n - 1 - s;
        lo[a] = count > 0 ? r0 : 0;
        hi[a] = count > 0 ? r0 + (count - 1) * (-step) + 1 : 0;
        st[a] = -step;
      }
    }
    if (!reversed.empty()) x = Reverse(x, reversed);
    return {Slice(x, lo, hi, st)};
  });
  RegisterOp("Gather", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), idx = c.In(1);
    const int axis = NormAxis(c, c.Int("axis", 0), x.Rank());
    if (!dtypes::IsInteger(idx.DType())) c.Fail("indices must be integers");
    idx = WrapIndices(idx, ScalarLike(idx, static_cast<double>(x.Shape().Dim(axis))));
    return {Take(x, idx, axis)};
  });
  RegisterOp("GatherElements", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), idx = c.In(1);
    const int axis = NormAxis(c, c.Int("axis", 0), x.Rank());
    if (idx.Rank() != x.Rank()) c.Fail("indices must have the data's rank");
    idx = WrapIndices(idx, ScalarLike(idx, static_cast<double>(x.Shape().Dim(axis))));
    ir::GatherAttrs a;
    const int r = x.Rank();
    a.index_vector_dim = r;
    for (int d = 0; d < r; ++d) {
      a.start_index_map.push_back(d);
      a.collapsed_slice_dims.push_back(d);
    }
    a.slice_sizes.assign(r, 1);
    return {Gather(x, FullCoordinates(ConvertDType(idx, dtypes::Int64), axis), a)};
  });
  RegisterOp("GatherND", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), idx = c.In(1);
    const int b = static_cast<int>(c.Int("batch_dims", 0));
    const int q = idx.Rank(), r = x.Rank();
    const int k = static_cast<int>(idx.Shape().Dim(-1));
    if (b + k > r) c.Fail("index vectors of length " + std::to_string(k) + " are too long for " + x.Shape().ToString());
    idx = ConvertDType(idx, dtypes::Int64);
    // Non-negative indices: add each indexed axis's size where negative.
    std::vector<int64_t> sizes;
    for (int j = 0; j < k; ++j) sizes.push_back(x.Shape().Dim(b + j));
    Node sz = BroadcastTo(Const(idx.Graph(), Int64Tensor(sizes)), idx.Shape().Dims());
    idx = Where(LessThan(idx, ZerosLike(idx)), idx + sz, idx);
    if (b > 0) {
      // The batch axes become leading coordinates taken from iotas.
      std::vector<Node> parts;
      std::vector<int64_t> dims = idx.Shape().Dims();
      dims.back() = 1;
      for (int d = 0; d < b; ++d) parts.push_back(Iota(idx.Graph(), shapes::Shape(dtypes::Int64, dims), d));
      parts.push_back(idx);
      idx = Concatenate(parts, q - 1);
    }
    ir::GatherAttrs a;
    a.index_vector_dim = q - 1;
    for (int d = 0; d < b + k; ++d) {
      a.start_index_map.push_back(d);
      a.collapsed_slice_dims.push_back(d);
    }
    a.slice_sizes.assign(r, 1);
    for (int d = b + k; d < r; ++d) {
      a.slice_sizes[d] = x.Shape().Dim(d);
      a.offset_dims.push_back(q - 1 + d - (b + k));
    }
    return {Gather(x, idx, a)};
  });
  auto scatter_elements = [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), idx = c.In(1), upd = c.In(2);
    const int axis = NormAxis(c, c.Int("axis", 0), x.Rank());
    const int r = x.Rank();
    if (idx.Shape().Dims() != upd.Shape().Dims()) c.Fail("indices and updates must have one shape");
    idx = ConvertDType(idx, dtypes::Int64);
    idx = WrapIndices(idx, ScalarLike(idx, static_cast<double>(x.Shape().Dim(axis))));
    ir::ScatterAttrs a;
    a.index_vector_dim = r;
    for (int d = 0; d < r; ++d) {
      a.inserted_window_dims.push_back(d);
      a.scatter_dims_to_operand_dims.push_back(d);
    }
    return Scatter(c, x, FullCoordinates(idx, axis), upd, a);
  };
  RegisterOp("ScatterElements", scatter_elements);
  RegisterOp("Scatter", scatter_elements);
  RegisterOp("ScatterND", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), idx = c.In(1), upd = c.In(2);
    const int q = idx.Rank();
    const int k = static_cast<int>(idx.Shape().Dim(-1));
    ir::ScatterAttrs a;
    a.index_vector_dim = q - 1;
    for (int d = 0; d < k; ++d) {
      a.inserted_window_dims.push_back(d);
      a.scatter_dims_to_operand_dims.push_back(d);
    }
    for (int d = q - 1; d < upd.Rank(); ++d) a.update_window_dims.push_back(d);
    return Scatter(c, x, ConvertDType(idx, dtypes::Int64), upd, a);
  });
  RegisterOp("Expand", [](OpContext& c) -> std::vector<Out> {
    const auto dims = BroadcastDims(c, c.ShapeOf(0).Dims(), c.Ints(1, "shape"));
    return {BroadcastTo(c.In(0), dims)};
  });
  RegisterOp("Tile", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const auto reps = c.Ints(1, "repeats");
    const auto dims = x.Shape().Dims();
    if (reps.size() != dims.size()) c.Fail("repeats must have one entry per axis");
    std::vector<int64_t> wide, flat;
    std::vector<int> axes;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (reps[d] < 0) c.Fail("negative repeat");
      wide.push_back(reps[d]);
      wide.push_back(dims[d]);
      axes.push_back(static_cast<int>(2 * d + 1));
      flat.push_back(CheckedMul(c, reps[d], dims[d]));
    }
    return {Reshape(BroadcastInDim(x, wide, axes), flat)};
  });
  RegisterOp("Pad", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int r = x.Rank();
    std::vector<int64_t> pads;
    Node value;
    if (c.Opset() < 11) {
      pads = c.IntsAttr(c.Opset() < 2 ? "paddings" : "pads");
      value = ScalarLike(x, c.Float("value", 0));
    } else {
      pads = c.Ints(1, "pads");
      if (c.Has(2)) value = Reshape(c.In(2), {});
    }
    std::vector<int64_t> axes;
    if (c.Has(3)) {
      for (int64_t a : c.Ints(3, "axes")) axes.push_back(NormAxis(c, a, r));
    } else {
      for (int d = 0; d < r; ++d) axes.push_back(d);
    }
    if (pads.size() != 2 * axes.size()) c.Fail("pads must have 2 entries per axis");
    CheckPadding(c, pads, "pads");
    std::vector<int64_t> lo(r, 0), hi(r, 0);
    for (size_t i = 0; i < axes.size(); ++i) {
      lo[axes[i]] = pads[i];
      hi[axes[i]] = pads[i + axes.size()];
    }
    const std::string mode = c.Str("mode", "constant");
    if (mode == "constant") return {Pad(x, value.Ok() ? value : ScalarLike(x, 0), lo, hi)};
    if (mode != "edge" && mode != "reflect") c.Fail("mode \"" + mode + "\" is not supported");
    for (int d = 0; d < r; ++d) {
      // Negative pads crop first.
      if (lo[d] < 0 || hi[d] < 0) {
        x = SliceAxis(x, d, std::max<int64_t>(0, -lo[d]), x.Shape().Dim(d) - std::max<int64_t>(0, -hi[d]));
      }
      x = PadAxisEdgeReflect(x, d, std::max<int64_t>(0, lo[d]), std::max<int64_t>(0, hi[d]), mode == "reflect", c);
    }
    return {x};
  });
  RegisterOp("Range", [](OpContext& c) -> std::vector<Out> {
    const auto s = c.Doubles(0, "start"), l = c.Doubles(1, "limit"), d = c.Doubles(2, "delta");
    if (s.size() != 1 || l.size() != 1 || d.size() != 1) c.Fail("start, limit and delta must be scalars");
    if (d[0] == 0) c.Fail("delta is 0");
    const int64_t n = std::max<int64_t>(0, ToIndex(c, std::ceil((l[0] - s[0]) / d[0]), "the number of elements"));
    const dtypes::DType dt = c.DTypeOf(0);
    Node i = Iota(c.G(), shapes::Shape(dt, {n}), 0);
    return {i * Reshape(c.In(2), {}) + Reshape(c.In(0), {})};
  });
  RegisterOp("OneHot", [](OpContext& c) -> std::vector<Out> {
    Node idx = c.In(0);
    const auto depth_v = c.Doubles(1, "depth");
    if (depth_v.size() != 1) c.Fail("depth must hold one value");
    const int64_t depth = ToIndex(c, depth_v[0], "depth");
    if (depth <= 0) c.Fail("depth must be positive");
    Node values = c.In(2);
    if (values.Shape().Size() != 2) c.Fail("values must hold [off, on]");
    values = Reshape(values, {2});
    Node i = idx.DType() == dtypes::Int64 ? idx : ConvertDType(idx, dtypes::Int64);
    i = WrapIndices(i, ScalarLike(i, static_cast<double>(depth)));
    Node hot = OneHot(i, depth, dtypes::Bool);
    Node out = Where(hot, Reshape(SliceAxis(values, 0, 1, 2), {}), Reshape(SliceAxis(values, 0, 0, 1), {}));
    const int r = out.Rank();
    const int axis = NormAxis(c, c.Int("axis", -1), r);
    if (axis != r - 1) {
      std::vector<int> perm;
      for (int d = 0; d < r - 1; ++d) perm.push_back(d);
      perm.insert(perm.begin() + axis, r - 1);
      out = Transpose(out, perm);
    }
    return {out};
  });
  RegisterOp("DepthToSpace", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const auto d = x.Shape().Dims();
    const int64_t b = c.Int("blocksize", 0);
    if (d.size() != 4 || b <= 0 || b > (int64_t{1} << 20) || d[1] % (b * b) != 0) {
      c.Fail("needs NCHW input with C divisible by blocksize^2");
    }
    const int64_t n = d[0], ch = d[1] / (b * b), h = d[2], w = d[3];
    Node y = c.Str("mode", "DCR") == "DCR"
                 ? Transpose(Reshape(x, {n, b, b, ch, h, w}), {0, 3, 4, 1, 5, 2})
                 : Transpose(Reshape(x, {n, ch, b, b, h, w}), {0, 1, 4, 2, 5, 3});
    return {Reshape(y, {n, ch, h * b, w * b})};
  });
  RegisterOp("SpaceToDepth", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const auto d = x.Shape().Dims();
    const int64_t b = c.Int("blocksize", 0);
    if (d.size() != 4 || b <= 0 || b > (int64_t{1} << 20) || d[2] % b != 0 || d[3] % b != 0) {
      c.Fail("needs NCHW input with H, W divisible by blocksize");
    }
    const int64_t n = d[0], ch = d[1], h = d[2] / b, w = d[3] / b;
    return {Reshape(Transpose(Reshape(x, {n, ch, h, b, w, b}), {0, 3, 5, 1, 2, 4}), {n, ch * b * b, h, w})};
  });
  RegisterOp("Trilu", [](OpContext& c) -> std::vector<Out> {
    int64_t k = 0;
    if (c.Has(1)) {
      const auto kv = c.Ints(1, "k");
      if (kv.size() != 1) c.Fail("k must hold one value");
      k = kv[0];
    }
    Node x = c.In(0);
    const int64_t big = x.Shape().Dim(-1) + x.Shape().Dim(-2) + 1;
    k = std::clamp<int64_t>(k, -big, big);
    return {c.Int("upper", 1) != 0 ? Triu(x, static_cast<int>(k)) : Tril(x, static_cast<int>(k))};
  });
  RegisterOp("EyeLike", [](OpContext& c) -> std::vector<Out> {
    const auto s = c.ShapeOf(0);
    if (s.Rank() != 2) c.Fail("input must be 2-D");
    const dtypes::DType dt = c.HasAttr("dtype") ? DTypeFromOnnx(static_cast<int32_t>(c.Int("dtype", 1))) : s.DType();
    if (dt == dtypes::Invalid) c.Fail("unsupported dtype");
    const shapes::Shape is(dtypes::Int64, s.Dims());
    Node diff = Iota(c.G(), is, 1) - Iota(c.G(), is, 0);
    return {ConvertDType(Equal(diff, ScalarLike(diff, static_cast<double>(c.Int("k", 0)))), dt)};
  });
  RegisterOp("Compress", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const tensors::Tensor cond = c.ConstIn(1, "condition");
    if (cond.DType() != dtypes::Bool || cond.Rank() != 1) c.Fail("condition must be a 1-D bool tensor");
    int axis = 0;
    if (c.HasAttr("axis")) {
      axis = NormAxis(c, c.Int("axis", 0), x.Rank());
    } else {
      x = Reshape(x, {-1});
    }
    std::vector<int64_t> keep;
    auto flat = cond.Flat<bool>();
    for (int64_t i = 0; i < cond.Size() && i < x.Shape().Dim(axis); ++i) {
      if (flat[i]) keep.push_back(i);
    }
    return {Take(x, Const(x.Graph(), Int64Tensor(keep)), axis)};
  });
  RegisterOp("NonZero", [](OpContext& c) -> std::vector<Out> {
    const tensors::Tensor x = c.ConstIn(0, "input");
    const auto dims = x.Shape().Dims();
    std::vector<int64_t> hits;
    DispatchDType(x.DType(), [&]<typename T>(T) {
      auto flat = x.Flat<T>();
      for (int64_t i = 0; i < x.Size(); ++i) {
        if (static_cast<double>(flat[i]) != 0) hits.push_back(i);
      }
    });
    const int64_t r = std::max<int64_t>(1, static_cast<int64_t>(dims.size()));
    std::vector<int64_t> out(static_cast<size_t>(r) * hits.size());
    for (size_t h = 0; h < hits.size(); ++h) {
      int64_t rem = hits[h];
      for (int64_t d = static_cast<int64_t>(dims.size()) - 1; d >= 0; --d) {
        out[static_cast<size_t>(d) * hits.size() + h] = rem % dims[d];
        rem /= dims[d];
      }
    }
    return {tensors::FromFlat<int64_t>(shapes::Shape(dtypes::Int64, {r, (int64_t)hits.size()}), out)};
  });
}

}  // namespace kiln::onnx::internal
