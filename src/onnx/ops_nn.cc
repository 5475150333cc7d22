// Copyright 2026 The Kiln Authors.
// ONNX neural-network operators (NCHW layouts): convolutions, pooling,
// normalizations, softmax, Gemm/MatMul/Einsum, Dropout, Resize/Upsample.
#include <algorithm>
#include <cstring>
#include <cmath>
#include <limits>
#include <map>

#include "kiln/graph/ops.h"
#include "src/onnx/converter.h"

namespace kiln::onnx::internal {
namespace {

using graph::Node;

Node S(Node x, double v) { return graph::ScalarLike(x, v); }

// Spatial padding of a conv or pool: explicit pads or auto_pad.
struct SpatialPads {
  std::vector<int64_t> low, high;
};

SpatialPads Pads(const OpContext& c, const std::vector<int64_t>& in, const std::vector<int64_t>& kernel,
                 const std::vector<int64_t>& strides, const std::vector<int64_t>& dil) {
  const size_t n = in.size();
  if (kernel.size() != n || strides.size() != n || dil.size() != n) {
    c.Fail("kernel_shape, strides and dilations must have one entry per spatial axis");
  }
  CheckPositive(c, kernel, "kernel_shape");
  CheckPositive(c, strides, "strides");
  CheckPositive(c, dil, "dilations");
  SpatialPads p{std::vector<int64_t>(n, 0), std::vector<int64_t>(n, 0)};
  const std::string auto_pad = c.Str("auto_pad", "NOTSET");
  if (auto_pad == "NOTSET") {
    const auto pads = c.IntsAttr("pads", std::vector<int64_t>(2 * n, 0));
    if (pads.size() != 2 * n) c.Fail("pads must have 2 entries per spatial axis");
    CheckPadding(c, pads, "pads");
    for (size_t i = 0; i < n; ++i) {
      p.low[i] = pads[i];
      p.high[i] = pads[i + n];
    }
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    for (size_t i = 0; i < n; ++i) {
      const int64_t out = in[i] == 0 ? 0 : (in[i] - 1) / strides[i] + 1;
      const int64_t total = std::max<int64_t>(
          0, CheckedMul(c, out - 1, strides[i]) + CheckedMul(c, kernel[i] - 1, dil[i]) + 1 - in[i]);
      p.low[i] = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
      p.high[i] = total - p.low[i];
    }
  } else if (auto_pad != "VALID") {
    c.Fail("auto_pad \"" + auto_pad + "\" is not supported");
  }
  return p;
}

// The spatial dims of an [N, C, spatial...] value (at least one spatial axis).
std::vector<int64_t> Spatial(const OpContext& c, const shapes::Shape& s) {
  if (s.Rank() < 3) c.Fail("needs an [N, C, spatial...] input, got " + s.ToString());
  return {s.Dims().begin() + 2, s.Dims().end()};
}

// A [1, C, 1, ...] view of a per-channel vector for a rank-r NC... tensor.
Node PerChannel(Node v, int rank) {
  if (rank < 2) Throw("ONNX import: a per-channel parameter needs an input of rank 2 or more");
  std::vector<int64_t> dims(static_cast<size_t>(rank), 1);
  dims[1] = v.Shape().Size();
  return graph::Reshape(v, dims);
}

// ReduceWindow over [N, C, spatial...] computed channels-last: the CPU
// backend's row kernels reduce whole rows of C values (NHWC pooling), several
// times faster than its generic kernel on NCHW windows, which more than pays
// for the two transposes.
Node WindowChannelsLast(Node x, const ir::WindowAttrs& a) {
  const int r = x.Rank();
  std::vector<int> to_last = {0}, back = {0, r - 1};
  for (int d = 2; d < r; ++d) to_last.push_back(d);
  to_last.push_back(1);
  for (int d = 1; d < r - 1; ++d) back.push_back(d);
  auto permute = [&](const std::vector<int64_t>& v) {
    std::vector<int64_t> out;
    for (int d : to_last) out.push_back(v[static_cast<size_t>(d)]);
    return out;
  };
  ir::WindowAttrs t = a;
  t.window_dimensions = permute(a.window_dimensions);
  t.strides = permute(a.strides);
  t.window_dilations = permute(a.window_dilations);
  t.padding_low = permute(a.padding_low);
  t.padding_high = permute(a.padding_high);
  if (!a.base_dilations.empty()) t.base_dilations = permute(a.base_dilations);
  return graph::Transpose(graph::ReduceWindow(graph::Transpose(x, to_last), t), back);
}

Node Pool(OpContext& c, ir::WindowReduction red, Node x, bool average) {
  const auto in = Spatial(c, x.Shape());
  const size_t n = in.size();
  const auto kernel = c.IntsAttr("kernel_shape");
  if (kernel.size() != n) c.Fail("kernel_shape must have one entry per spatial axis");
  const auto strides = c.IntsAttr("strides", std::vector<int64_t>(n, 1));
  const auto dil = c.IntsAttr("dilations", std::vector<int64_t>(n, 1));
  SpatialPads p = Pads(c, in, kernel, strides, dil);
  if (c.Int("ceil_mode", 0) != 0) {
    for (size_t i = 0; i < n; ++i) {
      const int64_t span = CheckedMul(c, kernel[i] - 1, dil[i]) + 1;
      const int64_t padded = in[i] + p.low[i] + p.high[i];
      int64_t out = (padded - span + strides[i] - 1) / strides[i] + 1;
      // The last window must start inside the input or its left padding
      // (PyTorch, onnxruntime, ONNX >= 1.16).
      if (out > 1 && CheckedMul(c, out - 1, strides[i]) >= in[i] + p.low[i]) --out;
      p.high[i] += std::max<int64_t>(0, CheckedMul(c, out - 1, strides[i]) + span - padded);
    }
  }
  ir::WindowAttrs a;
  a.reduction = red;
  a.window_dimensions = {1, 1};
  a.strides = {1, 1};
  a.window_dilations = {1, 1};
  a.padding_low = {0, 0};
  a.padding_high = {0, 0};
  for (size_t i = 0; i < n; ++i) {
    a.window_dimensions.push_back(kernel[i]);
    a.strides.push_back(strides[i]);
    a.window_dilations.push_back(dil[i]);
    a.padding_low.push_back(p.low[i]);
    a.padding_high.push_back(p.high[i]);
  }
  Node y = WindowChannelsLast(x, a);
  if (!average) return y;
  if (c.Int("count_include_pad", 0) != 0) {
    // The explicit pads count; the extra high padding of ceil_mode does not.
    ir::WindowAttrs ca = a;
    std::vector<int64_t> lo = {0, 0}, hi = {0, 0};
    const SpatialPads given = Pads(c, in, kernel, strides, dil);
    for (size_t i = 0; i < n; ++i) {
      lo.push_back(given.low[i]);
      hi.push_back(given.high[i]);
      ca.padding_low[i + 2] = 0;
      ca.padding_high[i + 2] -= given.high[i];
    }
    Node ones = graph::Pad(graph::OnesLike(x), S(x, 1), lo, hi);
    return y / graph::ReduceWindow(ones, ca);
  }
  return y / graph::ReduceWindow(graph::OnesLike(x), a);
}

// MaxPool with its Indices output: the windows as strided slices of the
// padded input, one per kernel offset, stacked; the max and its first
// position among them, turned into a flat index of the input (row-major, or
// column-major over the spatial axes with storage_order = 1).
std::vector<Out> MaxPoolWithIndices(OpContext& c, Node x) {
  const auto in = Spatial(c, x.Shape());
  const size_t n = in.size();
  const auto kernel = c.IntsAttr("kernel_shape");
  if (kernel.size() != n) c.Fail("kernel_shape must have one entry per spatial axis");
  if (c.Int("ceil_mode", 0) != 0) c.Fail("ceil_mode with the Indices output is not supported");
  const auto strides = c.IntsAttr("strides", std::vector<int64_t>(n, 1));
  const auto dil = c.IntsAttr("dilations", std::vector<int64_t>(n, 1));
  const SpatialPads p = Pads(c, in, kernel, strides, dil);
  std::vector<int64_t> lo = {0, 0}, hi = {0, 0}, out;
  for (size_t i = 0; i < n; ++i) {
    lo.push_back(p.low[i]);
    hi.push_back(p.high[i]);
    out.push_back((in[i] + p.low[i] + p.high[i] - (CheckedMul(c, kernel[i] - 1, dil[i]) + 1)) / strides[i] + 1);
    if (out.back() < 1) c.Fail("the window is larger than the padded input");
  }
  Node xp = graph::Pad(x, graph::ScalarLike(x, -std::numeric_limits<double>::infinity()), lo, hi);
  std::vector<Node> slices;
  int64_t count = 1;
  for (int64_t k : kernel) {
    if (k <= 0 || count * k > 4096) c.Fail("kernels of more than 4096 elements are not supported with the Indices output");
    count *= k;
  }
  for (int64_t flat = 0; flat < count; ++flat) {
    std::vector<int64_t> start = {0, 0}, limit = {x.Shape().Dim(0), x.Shape().Dim(1)}, step = {1, 1};
    int64_t rem = flat;
    for (size_t i = n; i-- > 0;) {
      const int64_t k = rem % kernel[i];
      rem /= kernel[i];
      start.insert(start.begin() + 2, k * dil[i]);
    }
    for (size_t i = 0; i < n; ++i) {
      limit.push_back(start[i + 2] + (out[i] - 1) * strides[i] + 1);
      step.push_back(strides[i]);
    }
    slices.push_back(graph::Slice(xp, start, limit, step));
  }
  Node stacked = graph::Stack(slices, 0);
  Node values = graph::ReduceMax(stacked, {0});
  Node arg = graph::ArgMax(stacked, 0, dtypes::Int64);  // which kernel offset
  // The input position along each spatial axis: o * stride + k * dilation - pad.
  std::vector<Node> pos;
  const shapes::Shape os(dtypes::Int64, values.Shape().Dims());
  Node rem = arg;
  for (size_t i = n; i-- > 0;) {
    Node k = graph::Rem(rem, graph::ScalarLike(rem, static_cast<double>(kernel[i])));
    rem = graph::Div(rem, graph::ScalarLike(rem, static_cast<double>(kernel[i])));
    Node o = graph::Iota(x.Graph(), os, static_cast<int>(i + 2));
    pos.insert(pos.begin(), o * graph::ScalarLike(o, static_cast<double>(strides[i])) +
                                k * graph::ScalarLike(k, static_cast<double>(dil[i])) -
                                graph::ScalarLike(o, static_cast<double>(p.low[i])));
  }
  const bool column_major = c.Int("storage_order", 0) != 0;
  Node index = graph::Iota(x.Graph(), os, 0) * graph::ScalarLike(arg, static_cast<double>(x.Shape().Dim(1))) +
               graph::Iota(x.Graph(), os, 1);
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = column_major ? n - 1 - i : i;
  for (size_t i : order) index = index * graph::ScalarLike(index, static_cast<double>(in[i])) + pos[i];
  return {values, index};
}

// Softmax-like ops: opset >= 13 along one axis; before, on the input
// flattened to 2-D at `axis` (default 1).
Node AlongAxis(OpContext& c, Node x, const std::function<Node(Node, int)>& fn) {
  const int r = x.Rank();
  if (c.Opset() >= 13) return fn(x, NormAxis(c, c.Int("axis", -1), r));
  const int axis = NormAxis(c, c.Int("axis", 1), r);
  int64_t outer = 1;
  for (int d = 0; d < axis; ++d) outer *= x.Shape().Dim(d);
  return graph::Reshape(fn(graph::Reshape(x, {outer, -1}), 1), x.Shape().Dims());
}

Node Hardmax(Node x, int axis) {
  Node idx = graph::ArgMax(x, axis, dtypes::Int64);
  Node hot = graph::OneHot(idx, x.Shape().Dim(axis), x.DType());
  // OneHot appends the axis last; move it back.
  const int r = x.Rank();
  std::vector<int> perm;
  for (int d = 0; d < r - 1; ++d) perm.push_back(d);
  perm.insert(perm.begin() + axis, r - 1);
  return graph::Transpose(hot, perm);
}

// ---------------------------------------------------------------- Einsum.

Node Einsum(OpContext& c, std::string eq, std::vector<Node> xs) {
  eq.erase(std::remove(eq.begin(), eq.end(), ' '), eq.end());
  const size_t arrow = eq.find("->");
  std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t at = 0;;) {
    const size_t comma = lhs.find(',', at);
    terms.push_back(lhs.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  if (terms.size() != xs.size()) c.Fail("equation \"" + eq + "\" does not match " + std::to_string(xs.size()) + " inputs");
  // Ellipses become upper-case letters (broadcast dims aligned right).
  int ell_rank = 0;
  for (size_t t = 0; t < terms.size(); ++t) {
    if (terms[t].find("...") != std::string::npos) {
      ell_rank = std::max(ell_rank, xs[t].Rank() - static_cast<int>(terms[t].size() - 3));
    }
  }
  // Ellipsis axes get characters no equation letter can be.
  std::string ell;
  for (int k = 0; k < ell_rank; ++k) ell += static_cast<char>(1 + k);
  for (size_t t = 0; t < terms.size(); ++t) {
    const size_t e = terms[t].find("...");
    if (e == std::string::npos) continue;
    const int here = xs[t].Rank() - static_cast<int>(terms[t].size() - 3);
    if (here < 0) c.Fail("term \"" + terms[t] + "\" has more letters than input " + std::to_string(t) + " has axes");
    terms[t].replace(e, 3, ell.substr(static_cast<size_t>(ell_rank - here)));
  }
  std::string out;
  if (arrow != std::string::npos) {
    out = eq.substr(arrow + 2);
    const size_t e = out.find("...");
    if (e != std::string::npos) out.replace(e, 3, ell);
  } else {
    std::map<char, int> count;
    for (const auto& t : terms) {
      for (char ch : t) ++count[ch];
    }
    out = ell;
    for (auto [ch, k] : count) {  // letters used once, in alphabetical (ASCII) order, as numpy
      if (k == 1 && std::isalpha(static_cast<unsigned char>(ch))) out += ch;
    }
  }
  for (size_t t = 0; t < terms.size(); ++t) {
    if (static_cast<int>(terms[t].size()) != xs[t].Rank()) c.Fail("term \"" + terms[t] + "\" does not match the rank of input " + std::to_string(t));
  }
  // Per operand: take diagonals of repeated letters, sum letters used nowhere else.
  auto simplify = [&](Node x, std::string term, const std::string& others) {
    for (;;) {
      bool changed = false;
      for (size_t i = 0; i < term.size() && !changed; ++i) {
        const size_t j = term.find(term[i], i + 1);
        if (j == std::string::npos) continue;
        const int64_t n = x.Shape().Dim(static_cast<int>(i));
        const shapes::Shape is(dtypes::Int32, x.Shape().Dims());
        Node eye = graph::Equal(graph::Iota(x.Graph(), is, static_cast<int>(i)), graph::Iota(x.Graph(), is, static_cast<int>(j)));
        (void)n;
        x = graph::ReduceSum(graph::Where(eye, x, graph::ZerosLike(x)), {static_cast<int>(j)});
        term.erase(j, 1);
        changed = true;
      }
      if (!changed) break;
    }
    std::vector<int> sum_axes;
    std::string kept;
    for (size_t i = 0; i < term.size(); ++i) {
      if (out.find(term[i]) == std::string::npos && others.find(term[i]) == std::string::npos) {
        sum_axes.push_back(static_cast<int>(i));
      } else {
        kept += term[i];
      }
    }
    if (!sum_axes.empty()) x = graph::ReduceSum(x, sum_axes);
    return std::pair<Node, std::string>(x, kept);
  };
  auto to_output = [&](Node x, const std::string& term) {
    std::vector<int> perm;
    for (char ch : out) {
      const size_t p = term.find(ch);
      if (p == std::string::npos) c.Fail("output letter '" + std::string(1, ch) + "' is in no input");
      perm.push_back(static_cast<int>(p));
    }
    return graph::Transpose(x, perm);
  };
  if (xs.size() == 1) {
    auto [x, t] = simplify(xs[0], terms[0], "");
    return to_output(x, t);
  }
  if (xs.size() != 2) c.Fail("more than two operands are not supported");
  auto [a, ta] = simplify(xs[0], terms[0], terms[1]);
  auto [b, tb] = simplify(xs[1], terms[1], ta);
  // The contraction is Kiln's two-operand Einsum, with every axis label
  // (ellipsis axes have none) renamed to a letter.
  static const std::string kLetters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  std::map<char, char> letter;
  auto rename = [&](const std::string& labels) {
    std::string renamed;
    for (char ch : labels) {
      auto it = letter.find(ch);
      if (it == letter.end()) {
        if (letter.size() == kLetters.size()) c.Fail("more than 52 axis labels");
        it = letter.emplace(ch, kLetters[letter.size()]).first;
      }
      renamed += it->second;
    }
    return renamed;
  };
  const std::string two = rename(ta) + "," + rename(tb) + "->" + rename(out);
  return graph::Einsum(two, a, b);
}

// ---------------------------------------------------------------- Resize.

// Source coordinate of output index o along an axis (ONNX's modes).
// `out` is the resized length before rounding (in * scale when scales are
// given), as ONNX's reference uses it.
double SourceCoord(const std::string& mode, double o, double scale, int64_t in, double out, double roi_lo,
                   double roi_hi) {
  if (mode == "half_pixel") return (o + 0.5) / scale - 0.5;
  if (mode == "pytorch_half_pixel") return out > 1 ? (o + 0.5) / scale - 0.5 : 0.0;
  if (mode == "align_corners") return out > 1 ? o * static_cast<double>(in - 1) / (out - 1) : 0.0;
  if (mode == "asymmetric") return o / scale;
  if (mode == "tf_half_pixel_for_nn") return (o + 0.5) / scale;
  if (mode == "tf_crop_and_resize") {
    return out > 1 ? roi_lo * (in - 1) + o * (roi_hi - roi_lo) * (in - 1) / (out - 1)
                   : 0.5 * (roi_lo + roi_hi) * (in - 1);
  }
  return std::nan("");
}

double CubicWeight(double t, double a) {
  t = std::abs(t);
  if (t <= 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
  if (t < 2) return ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  return 0;
}

Node ResizeImpl(OpContext& c, Node x, const std::vector<double>& scales, const std::vector<int64_t>& sizes,
                bool from_scales, const std::string& mode, const std::string& coord_mode, const std::vector<double>& roi,
                const std::string& nearest_default = "round_prefer_floor") {
  const int r = x.Rank();
  const std::string nearest_mode = c.Str("nearest_mode", nearest_default);
  const double a = c.Float("cubic_coeff_a", -0.75f);
  const bool exclude_outside = c.Int("exclude_outside", 0) != 0;
  const double extrapolation = c.Float("extrapolation_value", 0.0f);
  for (int d = 0; d < r; ++d) {
    const int64_t in = x.Shape().Dim(d), out = sizes[d];
    const double scale = scales[d];
    if (in == out && scale == 1.0 && coord_mode != "tf_crop_and_resize") continue;
    const double roi_lo = roi.empty() ? 0 : roi[d], roi_hi = roi.empty() ? 1 : roi[d + r];
    const double length = from_scales ? static_cast<double>(in) * scale : static_cast<double>(out);
    if (out < 0) c.Fail("negative output size");
    CheckTraceTimeSize(c, mode == "nearest" ? out : out * std::max<int64_t>(in, 1), dtypes::Float64, "a resize table");
    if (mode == "nearest") {
      std::vector<int64_t> idx(out);
      std::vector<uint8_t> outside(out, 0);
      for (int64_t o = 0; o < out; ++o) {
        const double s = SourceCoord(coord_mode, static_cast<double>(o), scale, in, length, roi_lo, roi_hi);
        if (!std::isfinite(s)) c.Fail("the coordinates are not finite (coordinate_transformation_mode \"" + coord_mode + "\")");
        if (coord_mode == "tf_crop_and_resize" && (s < 0 || s > in - 1)) outside[o] = 1;
        double v;
        if (nearest_mode == "round_prefer_floor") v = (s == std::floor(s) + 0.5) ? std::floor(s) : std::round(s);
        else if (nearest_mode == "round_prefer_ceil") v = std::round(s);
        else if (nearest_mode == "floor") v = std::floor(s);
        else if (nearest_mode == "ceil") v = std::ceil(s);
        else c.Fail("nearest_mode \"" + nearest_mode + "\" is not supported");
        idx[o] = static_cast<int64_t>(std::clamp(v, 0.0, static_cast<double>(in - 1)));
      }
      ir::GatherAttrs ga;
      ga.index_vector_dim = 1;
      ga.start_index_map = {d};
      ga.collapsed_slice_dims = {d};
      ga.slice_sizes = x.Shape().Dims();
      ga.slice_sizes[d] = 1;
      for (int k = 0; k < r; ++k) {
        if (k != d) ga.offset_dims.push_back(k);
      }
      Node id = graph::Const(x.Graph(), tensors::FromFlat<int64_t>(shapes::Shape(dtypes::Int64, {out}), idx));
      x = graph::Gather(x, id, ga);  // the offset dims leave position d to the index
      if (std::any_of(outside.begin(), outside.end(), [](uint8_t o) { return o; })) {
        tensors::Tensor mt(shapes::Shape(dtypes::Bool, {out}));
        std::memcpy(mt.MutableHostData(), outside.data(), outside.size());
        Node mask = graph::Const(x.Graph(), mt);
        std::vector<int64_t> bd(r, 1);
        bd[d] = out;
        x = graph::Where(graph::Reshape(mask, bd), S(x, extrapolation), x);
      }
      continue;
    }
    if (!dtypes::IsFloat(x.DType())) c.Fail(mode + " resizing needs float values");
    // Linear and cubic: a constant [out, in] interpolation matrix, plus the
    // extrapolation value where the source lies outside (tf_crop_and_resize).
    std::vector<double> w(static_cast<size_t>(out * in), 0.0), extra(out, 0.0);
    for (int64_t o = 0; o < out; ++o) {
      const double s = SourceCoord(coord_mode, static_cast<double>(o), scale, in, length, roi_lo, roi_hi);
      if (std::isnan(s)) c.Fail("coordinate_transformation_mode \"" + coord_mode + "\" is not supported");
      if (!std::isfinite(s)) c.Fail("the coordinates are not finite");
      if (coord_mode == "tf_crop_and_resize" && (s < 0 || s > in - 1)) {
        extra[o] = extrapolation;
        continue;
      }
      double* row = &w[static_cast<size_t>(o * in)];
      if (mode == "linear") {
        const double sc = std::clamp(s, 0.0, static_cast<double>(in - 1));
        const int64_t i0 = static_cast<int64_t>(std::floor(sc));
        const int64_t i1 = std::min(i0 + 1, in - 1);
        const double f = sc - static_cast<double>(i0);
        row[i0] += 1 - f;
        row[i1] += f;
      } else if (mode == "cubic") {
        const int64_t i0 = static_cast<int64_t>(std::floor(s));
        const double f = s - static_cast<double>(i0);
        double total = 0;
        double ws[4];
        for (int k = -1; k <= 2; ++k) {
          const int64_t i = i0 + k;
          ws[k + 1] = CubicWeight(f - k, a);
          if (exclude_outside && (i < 0 || i >= in)) ws[k + 1] = 0;
          total += ws[k + 1];
        }
        for (int k = -1; k <= 2; ++k) {
          const int64_t i = std::clamp<int64_t>(i0 + k, 0, in - 1);
          row[i] += exclude_outside ? ws[k + 1] / total : ws[k + 1];
        }
      } else {
        c.Fail("mode \"" + mode + "\" is not supported");
      }
    }
    Node wm = graph::ConvertDType(
        graph::Const(x.Graph(), tensors::FromFlat<double>(shapes::Shape(dtypes::Float64, {out, in}), w)), x.DType());
    Node y = graph::DotGeneral(x, {d}, {}, wm, {1}, {});  // [other axes..., out]
    std::vector<int> perm;
    for (int k = 0; k < r - 1; ++k) perm.push_back(k);
    perm.insert(perm.begin() + d, r - 1);
    x = graph::Transpose(y, perm);
    if (std::any_of(extra.begin(), extra.end(), [](double e) { return e != 0; })) {
      std::vector<int64_t> bd(r, 1);
      bd[d] = out;
      x = x + graph::ConvertDType(
                  graph::Reshape(graph::Const(x.Graph(), tensors::FromFlat<double>(shapes::Shape(dtypes::Float64, {out}), extra)), bd),
                  x.DType());
    }
  }
  return x;
}

}  // namespace

ir::ConvAttrs ConvAttrsOf(const OpContext& c, Node x, Node w) {
  const auto in = Spatial(c, x.Shape());
  const size_t n = in.size();
  if (w.Rank() != x.Rank()) c.Fail("W must have X's rank, got " + w.Shape().ToString());
  const auto kernel = Spatial(c, w.Shape());
  if (c.HasAttr("kernel_shape") && c.IntsAttr("kernel_shape") != kernel) c.Fail("kernel_shape does not match W");
  const auto strides = c.IntsAttr("strides", std::vector<int64_t>(n, 1));
  const auto dil = c.IntsAttr("dilations", std::vector<int64_t>(n, 1));
  const SpatialPads p = Pads(c, in, kernel, strides, dil);
  ir::ConvAttrs a;
  for (size_t i = 0; i < n; ++i) {
    a.input_spatial_axes.push_back(static_cast<int64_t>(i + 2));
    a.kernel_spatial_axes.push_back(static_cast<int64_t>(i + 2));
    a.output_spatial_axes.push_back(static_cast<int64_t>(i + 2));
  }
  a.kernel_output_feature_axis = 0;  // ONNX kernels are [M, C / group, k...]
  a.kernel_input_feature_axis = 1;
  a.strides = strides;
  a.kernel_dilation = dil;
  a.padding_low = p.low;
  a.padding_high = p.high;
  a.feature_group_count = c.Int("group", 1);
  CheckPositive(c, {a.feature_group_count}, "group");
  return a;
}

void RegisterNnOps() {
  using namespace graph;  // NOLINT

  RegisterOp("Conv", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), w = c.In(1);
    Node y = ConvGeneral(x, w, ConvAttrsOf(c, x, w));
    if (c.Has(2)) y = y + PerChannel(c.In(2), y.Rank());
    return {y};
  });
  RegisterOp("ConvTranspose", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0), w = c.In(1);
    const auto in = Spatial(c, x.Shape());
    const size_t n = in.size();
    const auto kernel = Spatial(c, w.Shape());
    if (c.HasAttr("kernel_shape") && c.IntsAttr("kernel_shape") != kernel) c.Fail("kernel_shape does not match W");
    const int64_t group = c.Int("group", 1);
    const auto strides = c.IntsAttr("strides", std::vector<int64_t>(n, 1));
    const auto dil = c.IntsAttr("dilations", std::vector<int64_t>(n, 1));
    const auto out_pad = c.IntsAttr("output_padding", std::vector<int64_t>(n, 0));
    const auto out_shape = c.IntsAttr("output_shape");
    const std::string auto_pad = c.Str("auto_pad", "NOTSET");
    if (strides.size() != n || dil.size() != n || out_pad.size() != n) c.Fail("attributes must have one entry per spatial axis");
    CheckPositive(c, strides, "strides");
    CheckPositive(c, dil, "dilations");
    CheckPositive(c, {group}, "group");
    CheckPadding(c, out_pad, "output_padding");
    CheckPadding(c, out_shape, "output_shape");
    if (w.Shape().Dim(0) % group != 0) c.Fail("the kernel's input channels are not divisible by group");
    std::vector<int64_t> lo(n, 0), hi(n, 0);
    if (!out_shape.empty() || auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
      for (size_t i = 0; i < n; ++i) {
        if (!out_shape.empty() && out_shape.size() != n && out_shape.size() != n + 2) {
          c.Fail("output_shape must have one entry per spatial axis");
        }
        const int64_t want = !out_shape.empty() ? out_shape[out_shape.size() - n + i] : CheckedMul(c, in[i], strides[i]);
        const int64_t total =
            CheckedMul(c, strides[i], in[i] - 1) + out_pad[i] + CheckedMul(c, kernel[i] - 1, dil[i]) + 1 - want;
        // Floor division, as ONNX's reference: a negative total (an
        // output_shape larger than the natural one) extends the end.
        const int64_t half = total >= 0 ? total / 2 : -((-total + 1) / 2);
        if (auto_pad == "SAME_UPPER") {
          lo[i] = half;
          hi[i] = total - half;
        } else {
          lo[i] = total - half;
          hi[i] = half;
        }
      }
    } else if (auto_pad == "NOTSET") {
      const auto pads = c.IntsAttr("pads", std::vector<int64_t>(2 * n, 0));
      if (pads.size() != 2 * n) c.Fail("pads must have 2 entries per spatial axis");
      CheckPadding(c, pads, "pads");
      for (size_t i = 0; i < n; ++i) {
        lo[i] = pads[i];
        hi[i] = pads[i + n];
      }
    }
    // As a convolution: the input dilated by the strides, the kernel
    // flipped with input and output features swapped.
    const auto wd = w.Shape().Dims();
    const int64_t cin = wd[0], cout_g = wd[1];
    std::vector<int64_t> grouped = {group, cin / group, cout_g};
    grouped.insert(grouped.end(), kernel.begin(), kernel.end());
    std::vector<int> perm = {0, 2, 1};
    std::vector<int> flip;
    for (size_t i = 0; i < n; ++i) {
      perm.push_back(static_cast<int>(i + 3));
      flip.push_back(static_cast<int>(i + 2));
    }
    std::vector<int64_t> kdims = {group * cout_g, cin / group};
    kdims.insert(kdims.end(), kernel.begin(), kernel.end());
    Node k = Reverse(Reshape(Transpose(Reshape(w, grouped), perm), kdims), flip);
    ir::ConvAttrs a;
    for (size_t i = 0; i < n; ++i) {
      a.input_spatial_axes.push_back(static_cast<int64_t>(i + 2));
      a.kernel_spatial_axes.push_back(static_cast<int64_t>(i + 2));
      a.output_spatial_axes.push_back(static_cast<int64_t>(i + 2));
      const int64_t span = CheckedMul(c, kernel[i] - 1, dil[i]);
      a.padding_low.push_back(span - lo[i]);
      a.padding_high.push_back(span - hi[i] + out_pad[i]);
    }
    a.kernel_output_feature_axis = 0;
    a.kernel_input_feature_axis = 1;
    a.input_dilation = strides;
    a.kernel_dilation = dil;
    a.feature_group_count = group;
    Node y = ConvGeneral(x, k, a);
    if (c.Has(2)) y = y + PerChannel(c.In(2), y.Rank());
    return {y};
  });
  RegisterOp("MaxPool", [](OpContext& c) -> std::vector<Out> {
    if (c.Proto().output_size() > 1 && !c.Proto().output(1).empty()) return MaxPoolWithIndices(c, c.In(0));
    c.Ignore({"storage_order"});  // the layout of the Indices output only
    return {Pool(c, ir::WindowReduction::kMax, c.In(0), false)};
  });
  RegisterOp("AveragePool", [](OpContext& c) -> std::vector<Out> {
    return {Pool(c, ir::WindowReduction::kSum, c.In(0), true)};
  });
  RegisterOp("LpPool", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const double p = static_cast<double>(c.Int("p", 2));
    Node s = Pool(c, ir::WindowReduction::kSum, Pow(Abs(x), S(x, p)), false);
    return {Pow(s, S(s, 1.0 / p))};
  });
  auto spatial_axes = [](int r) {
    std::vector<int> axes;
    for (int d = 2; d < r; ++d) axes.push_back(d);
    return axes;
  };
  RegisterOp("GlobalAveragePool", [spatial_axes](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    return {Reshape(ReduceMean(x, spatial_axes(x.Rank())), [&] {
      auto d = x.Shape().Dims();
      for (size_t i = 2; i < d.size(); ++i) d[i] = 1;
      return d;
    }())};
  });
  RegisterOp("GlobalMaxPool", [spatial_axes](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    auto d = x.Shape().Dims();
    for (size_t i = 2; i < d.size(); ++i) d[i] = 1;
    return {Reshape(ReduceMax(x, spatial_axes(x.Rank())), d)};
  });
  RegisterOp("GlobalLpPool", [spatial_axes](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const double p = static_cast<double>(c.Int("p", 2));
    auto d = x.Shape().Dims();
    for (size_t i = 2; i < d.size(); ++i) d[i] = 1;
    Node s = ReduceSum(Pow(Abs(x), S(x, p)), spatial_axes(x.Rank()));
    return {Reshape(Pow(s, S(s, 1.0 / p)), d)};
  });
  RegisterOp("BatchNormalization", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int r = x.Rank();
    if (r < 2) c.Fail("needs an [N, C, ...] input");
    Node scale = PerChannel(c.In(1), r), bias = PerChannel(c.In(2), r);
    Node mean = PerChannel(c.In(3), r), var = PerChannel(c.In(4), r);
    const double eps = c.Float("epsilon", 1e-5f);
    c.Ignore({"consumed_inputs"});  // opset 1's legacy optimization hint
    if (c.Int("spatial", 1) == 0) c.Fail("spatial = 0 (statistics per element) is not supported");
    if (c.Opset() < 7 && c.Int("is_test", 0) == 0 && c.Proto().output_size() > 1) {
      c.Fail("training mode (is_test = 0) is not supported before opset 14");
    }
    const bool training = c.Opset() >= 14 && c.Int("training_mode", 0) != 0;
    if (!training) {
      c.Ignore({"momentum"});  // updates the running statistics in training only
      return {(x - mean) * Rsqrt(var + S(var, eps)) * scale + bias};
    }
    std::vector<int> axes = {0};
    for (int d = 2; d < r; ++d) axes.push_back(d);
    Node bm = ReduceMean(x, axes), bv = ReduceMean(Square(x - PerChannel(ReduceMean(x, axes), r)), axes);
    const double momentum = c.Float("momentum", 0.9f);
    Node y = (x - PerChannel(bm, r)) * Rsqrt(PerChannel(bv, r) + S(x, eps)) * scale + bias;
    Node rm = c.In(3) * S(bm, momentum) + bm * S(bm, 1 - momentum);
    Node rv = c.In(4) * S(bv, momentum) + bv * S(bv, 1 - momentum);
    return {y, rm, rv};
  });
  RegisterOp("InstanceNormalization", [spatial_axes](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int r = x.Rank();
    if (r < 3) c.Fail("needs an [N, C, spatial...] input");
    const auto axes = spatial_axes(r);
    auto keep = [&](Node v) {
      auto d = x.Shape().Dims();
      for (size_t i = 2; i < d.size(); ++i) d[i] = 1;
      return Reshape(v, d);
    };
    Node mean = keep(ReduceMean(x, axes));
    Node var = keep(ReduceMean(Square(x - mean), axes));
    const double eps = c.Float("epsilon", 1e-5f);
    return {(x - mean) * Rsqrt(var + S(var, eps)) * PerChannel(c.In(1), r) + PerChannel(c.In(2), r)};
  });
  RegisterOp("LayerNormalization", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int r = x.Rank();
    const int axis = NormAxis(c, c.Int("axis", -1), r);
    std::vector<int> axes;
    auto d = x.Shape().Dims();
    for (int k = axis; k < r; ++k) {
      axes.push_back(k);
      d[k] = 1;
    }
    const dtypes::DType stash = c.Int("stash_type", 1) == 1 && dtypes::IsHalf(x.DType()) ? dtypes::Float32 : x.DType();
    Node xs = x.DType() == stash ? x : ConvertDType(x, stash);
    Node mean = Reshape(ReduceMean(xs, axes), d);
    Node var = Reshape(ReduceMean(Square(xs - mean), axes), d);
    Node inv = Rsqrt(var + S(var, c.Float("epsilon", 1e-5f)));
    Node y = (xs - mean) * inv;
    if (y.DType() != x.DType()) y = ConvertDType(y, x.DType());
    y = y * c.In(1);
    if (c.Has(2)) y = y + c.In(2);
    return {y, mean, inv};
  });
  RegisterOp("LRN", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int64_t size = c.Int("size", 0);
    const double alpha = c.Float("alpha", 1e-4f), beta = c.Float("beta", 0.75f), bias = c.Float("bias", 1.0f);
    if (x.Rank() < 3) c.Fail("needs an [N, C, spatial...] input");
    CheckPositive(c, {size}, "size");
    ir::WindowAttrs a;
    a.reduction = ir::WindowReduction::kSum;
    a.window_dimensions.assign(x.Rank(), 1);
    a.window_dimensions[1] = size;
    a.padding_low.assign(x.Rank(), 0);
    a.padding_high.assign(x.Rank(), 0);
    a.padding_low[1] = (size - 1) / 2;
    a.padding_high[1] = size - 1 - (size - 1) / 2;
    Node sq = ReduceWindow(Square(x), a);
    return {x / Pow(S(x, bias) + S(x, alpha / static_cast<double>(size)) * sq, S(x, beta))};
  });
  RegisterOp("MeanVarianceNormalization", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    std::vector<int> axes;
    for (int64_t a : c.IntsAttr("axes", {0, 2, 3})) axes.push_back(NormAxis(c, a, x.Rank()));
    auto d = x.Shape().Dims();
    for (int a : axes) d[a] = 1;
    Node mean = Reshape(ReduceMean(x, axes), d);
    Node var = Reshape(ReduceMean(Square(x), axes), d) - Square(mean);
    return {(x - mean) / (Sqrt(var) + S(x, 1e-9))};
  });
  RegisterOp("Softmax", [](OpContext& c) -> std::vector<Out> {
    return {AlongAxis(c, c.In(0), [](Node x, int a) { return Softmax(x, a); })};
  });
  RegisterOp("LogSoftmax", [](OpContext& c) -> std::vector<Out> {
    return {AlongAxis(c, c.In(0), [](Node x, int a) { return LogSoftmax(x, a); })};
  });
  RegisterOp("Hardmax", [](OpContext& c) -> std::vector<Out> { return {AlongAxis(c, c.In(0), Hardmax)}; });
  RegisterOp("MatMul", [](OpContext& c) -> std::vector<Out> { return {MatMul(c.In(0), c.In(1))}; });
  RegisterOp("Gemm", [](OpContext& c) -> std::vector<Out> {
    Node a = c.In(0), b = c.In(1);
    c.Ignore({"broadcast"});  // opset < 7: C broadcasts, as numpy's rules do here
    if (a.Rank() != 2 || b.Rank() != 2) c.Fail("A and B must be matrices");
    // The transposes are the dot's contracting axes, not copies.
    const int ka = c.Int("transA", 0) ? 0 : 1, kb = c.Int("transB", 0) ? 1 : 0;
    Node y = DotGeneral(a, {ka}, {}, b, {kb}, {});
    const double alpha = c.Float("alpha", 1.0f), beta = c.Float("beta", 1.0f);
    if (alpha != 1.0) y = y * S(y, alpha);
    if (c.Has(2) && beta != 0.0) {
      Node bias = c.In(2);
      y = y + (beta == 1.0 ? bias : bias * S(bias, beta));
    }
    return {y};
  });
  RegisterOp("Einsum", [](OpContext& c) -> std::vector<Out> {
    std::vector<Node> xs;
    for (int i = 0; i < c.NumInputs(); ++i) xs.push_back(c.In(i));
    return {Einsum(c, c.Str("equation", ""), xs)};
  });
  RegisterOp("Dropout", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    bool training = false;
    if (c.Opset() >= 12 && c.Has(2)) {
      const tensors::Tensor t = c.ConstIn(2, "training_mode");
      training = t.Size() == 1 && t.Flat<bool>()[0];
    } else if (c.Opset() < 7) {
      training = c.Int("is_test", 0) == 0;
    }
    double ratio = 0.5;
    if (c.Opset() >= 12 && c.Has(1)) {
      const auto r = c.Doubles(1, "ratio");
      if (r.size() != 1) c.Fail("ratio must be a scalar");
      ratio = r[0];
    }
    else if (c.Opset() < 12) ratio = c.Float("ratio", 0.5f);
    if (training && ratio > 0) c.Fail("training-mode dropout is not supported (it draws random numbers)");
    c.Ignore({"seed"});  // only training mode draws
    return {x, BroadcastTo(Const(x.Graph(), true), x.Shape().Dims())};
  });
  RegisterOp("Resize", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int r = x.Rank();
    std::vector<double> scales, roi;
    std::vector<int64_t> sizes;
    if (c.Opset() < 11) {
      scales = c.Doubles(1, "scales");
    } else {
      if (c.Has(1) && c.ShapeOf(1).Size() > 0) roi = c.Doubles(1, "roi");
      if (c.Has(2) && c.ShapeOf(2).Size() > 0) scales = c.Doubles(2, "scales");
      if (c.Has(3) && c.ShapeOf(3).Size() > 0) sizes = c.Ints(3, "sizes");
    }
    if (c.HasAttr("axes")) c.Fail("the axes attribute is not supported");
    if (c.Int("antialias", 0) != 0) c.Fail("antialias is not supported");
    const bool from_scales = sizes.empty();
    if (sizes.empty()) {
      if (static_cast<int>(scales.size()) != r) c.Fail("scales must have one entry per axis");
      for (int d = 0; d < r; ++d) sizes.push_back(ToIndex(c, std::floor(x.Shape().Dim(d) * scales[d]), "an output size"));
    } else {
      if (static_cast<int>(sizes.size()) != r) c.Fail("sizes must have one entry per axis");
      scales.clear();
      for (int d = 0; d < r; ++d) scales.push_back(static_cast<double>(sizes[d]) / x.Shape().Dim(d));
    }
    const std::string mode = c.Str("mode", "nearest");
    const std::string coord = c.Opset() < 11 ? "asymmetric" : c.Str("coordinate_transformation_mode", "half_pixel");
    return {ResizeImpl(c, x, scales, sizes, from_scales, mode, coord, roi, c.Opset() < 11 ? "floor" : "round_prefer_floor")};
  });
  RegisterOp("Upsample", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int r = x.Rank();
    std::vector<double> scales;
    if (c.Opset() >= 9) {
      scales = c.Doubles(1, "scales");
    } else {
      for (float f : c.Floats("scales")) scales.push_back(f);
    }
    if (static_cast<int>(scales.size()) != r) c.Fail("scales must have one entry per axis");
    std::vector<int64_t> sizes;
    for (int d = 0; d < r; ++d) sizes.push_back(ToIndex(c, std::floor(x.Shape().Dim(d) * scales[d]), "an output size"));
    std::string mode = c.Str("mode", "nearest");
    if (mode == "bilinear" || mode == "trilinear") mode = "linear";
    return {ResizeImpl(c, x, scales, sizes, true, mode, "asymmetric", {}, "floor")};
  });
}

}  // namespace kiln::onnx::internal
