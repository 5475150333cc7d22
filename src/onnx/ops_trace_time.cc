// Copyright 2026 The Kiln Authors.
// ONNX operators whose output shape depends on input values (Unique,
// NonMaxSuppression) or whose sampling pattern does (RoiAlign with
// sampling_ratio 0): Kiln's shapes are static, so these read those inputs
// at trace time. They work on constants and on inputs onnx::Exec makes
// static; on values computed at run time they are a clear error.
#include <algorithm>
#include <array>
#include <limits>
#include <cmath>
#include <map>
#include <numeric>

#include "kiln/graph/ops.h"
#include "src/onnx/converter.h"

namespace kiln::onnx::internal {
namespace {

using graph::Node;

std::vector<double> AsDoubles(const tensors::Tensor& t) {
  std::vector<double> v(static_cast<size_t>(t.Size()));
  DispatchDType(t.DType(), [&]<typename T>(T) {
    auto flat = t.Flat<T>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(flat[i]);
  });
  return v;
}

tensors::Tensor Int64s(const std::vector<int64_t>& v, std::vector<int64_t> dims) {
  return tensors::FromFlat<int64_t>(shapes::Shape(dtypes::Int64, std::move(dims)), v);
}

// numpy take along `axis` with constant indices.
Node TakeConst(Node x, const std::vector<int64_t>& idx, int axis) {
  ir::GatherAttrs a;
  a.index_vector_dim = 1;
  a.start_index_map = {axis};
  a.collapsed_slice_dims = {axis};
  a.slice_sizes = x.Shape().Dims();
  a.slice_sizes[static_cast<size_t>(axis)] = 1;
  for (int d = 0; d < x.Rank(); ++d) {
    if (d != axis) a.offset_dims.push_back(d);
  }
  return graph::Gather(x, graph::Const(x.Graph(), Int64s(idx, {static_cast<int64_t>(idx.size())})), a);
}

}  // namespace

void RegisterTraceTimeOps() {
  using namespace graph;  // NOLINT

  RegisterOp("Unique", [](OpContext& c) -> std::vector<Out> {
    const tensors::Tensor t = c.ConstIn(0, "X");
    if (dtypes::IsComplex(t.DType())) c.Fail("complex values are not supported");
    const std::vector<double> v = AsDoubles(t);
    Node x = c.In(0);
    const bool has_axis = c.HasAttr("axis");
    const int axis = has_axis ? NormAxis(c, c.Int("axis", 0), t.Rank()) : 0;
    if (!has_axis) x = Reshape(x, {-1});
    const auto dims = x.Shape().Dims();
    const int64_t n = dims.empty() ? 1 : dims[static_cast<size_t>(axis)];
    int64_t inner = 1, outer = 1;
    for (size_t d = 0; d < dims.size(); ++d) {
      if (static_cast<int>(d) < axis) outer *= dims[d];
      if (static_cast<int>(d) > axis) inner *= dims[d];
    }
    // Slice i of the axis, as a vector to compare.
    auto slice = [&](int64_t i) {
      std::vector<double> s;
      for (int64_t o = 0; o < outer; ++o) {
        for (int64_t k = 0; k < inner; ++k) s.push_back(v[static_cast<size_t>((o * n + i) * inner + k)]);
      }
      return s;
    };
    std::vector<std::vector<double>> slices;
    for (int64_t i = 0; i < n; ++i) slices.push_back(slice(i));
    std::vector<int64_t> first;  // first occurrence of each unique slice, in order of appearance
    std::vector<int64_t> inverse(static_cast<size_t>(n));
    std::map<std::vector<double>, int64_t> seen;
    for (int64_t i = 0; i < n; ++i) {
      auto [it, fresh] = seen.emplace(slices[static_cast<size_t>(i)], static_cast<int64_t>(first.size()));
      if (fresh) first.push_back(i);
      inverse[static_cast<size_t>(i)] = it->second;
    }
    std::vector<int64_t> order(first.size());
    std::iota(order.begin(), order.end(), 0);
    if (c.Int("sorted", 1) != 0) {
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        return slices[static_cast<size_t>(first[static_cast<size_t>(a)])] <
               slices[static_cast<size_t>(first[static_cast<size_t>(b)])];
      });
    }
    std::vector<int64_t> rank(order.size()), indices, counts(order.size(), 0);
    for (size_t r = 0; r < order.size(); ++r) {
      rank[static_cast<size_t>(order[r])] = static_cast<int64_t>(r);
      indices.push_back(first[static_cast<size_t>(order[r])]);
    }
    for (auto& i : inverse) {
      i = rank[static_cast<size_t>(i)];
      ++counts[static_cast<size_t>(i)];
    }
    const int64_t u = static_cast<int64_t>(indices.size());
    return {TakeConst(x, indices, axis), Int64s(indices, {u}), Int64s(inverse, {n}), Int64s(counts, {u})};
  });

  RegisterOp("NonMaxSuppression", [](OpContext& c) -> std::vector<Out> {
    const tensors::Tensor bt = c.ConstIn(0, "boxes"), st = c.ConstIn(1, "scores");
    if (bt.Rank() != 3 || bt.Shape().Dim(2) != 4 || st.Rank() != 3 || st.Shape().Dim(0) != bt.Shape().Dim(0) ||
        st.Shape().Dim(2) != bt.Shape().Dim(1)) {
      c.Fail("needs boxes [batch, boxes, 4] and scores [batch, classes, boxes], got " + bt.Shape().ToString() +
             " and " + st.Shape().ToString());
    }
    int64_t max_out = 0;
    double iou_th = 0, score_th = -std::numeric_limits<double>::infinity();
    auto one = [&c](auto v, const char* what) {
      if (v.size() != 1) c.Fail(std::string(what) + " must hold one value");
      return v[0];
    };
    if (c.Has(2)) max_out = one(c.Ints(2, "max_output_boxes_per_class"), "max_output_boxes_per_class");
    if (c.Has(3)) iou_th = one(c.Doubles(3, "iou_threshold"), "iou_threshold");
    const bool has_score_th = c.Has(4);
    if (has_score_th) score_th = one(c.Doubles(4, "score_threshold"), "score_threshold");
    const bool center = c.Int("center_point_box", 0) != 0;
    const auto boxes = AsDoubles(bt), scores = AsDoubles(st);
    const int64_t batches = bt.Shape().Dim(0), nb = bt.Shape().Dim(1), classes = st.Shape().Dim(1);
    // Corners (y1, x1, y2, x2), ordered.
    auto corners = [&](int64_t b, int64_t i) {
      const double* p = &boxes[static_cast<size_t>((b * nb + i) * 4)];
      std::array<double, 4> r;
      if (center) {
        r = {p[1] - p[3] / 2, p[0] - p[2] / 2, p[1] + p[3] / 2, p[0] + p[2] / 2};
      } else {
        r = {std::min(p[0], p[2]), std::min(p[1], p[3]), std::max(p[0], p[2]), std::max(p[1], p[3])};
      }
      return r;
    };
    auto iou = [](const std::array<double, 4>& a, const std::array<double, 4>& b) {
      const double ih = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
      const double iw = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
      const double inter = ih * iw;
      const double uni = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
      return uni <= 0 ? 0.0 : inter / uni;
    };
    std::vector<int64_t> out;
    for (int64_t b = 0; b < batches; ++b) {
      for (int64_t k = 0; k < classes; ++k) {
        const double* s = &scores[static_cast<size_t>((b * classes + k) * nb)];
        std::vector<int64_t> cand;
        for (int64_t i = 0; i < nb; ++i) {
          if (!has_score_th || s[i] > score_th) cand.push_back(i);
        }
        std::stable_sort(cand.begin(), cand.end(), [&](int64_t a, int64_t d) { return s[a] > s[d]; });
        std::vector<int64_t> kept;
        for (int64_t i : cand) {
          if (static_cast<int64_t>(kept.size()) >= max_out) break;
          const auto bi = corners(b, i);
          bool suppressed = false;
          for (int64_t j : kept) suppressed = suppressed || iou(bi, corners(b, j)) > iou_th;
          if (!suppressed) kept.push_back(i);
        }
        for (int64_t i : kept) out.insert(out.end(), {b, k, i});
      }
    }
    return {Int64s(out, {static_cast<int64_t>(out.size() / 3), 3})};
  });

  RegisterOp("RoiAlign", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const tensors::Tensor rt = c.ConstIn(1, "rois");
    const std::vector<int64_t> batch = c.Ints(2, "batch_indices");
    if (x.Rank() != 4 || rt.Rank() != 2 || rt.Shape().Dim(1) != 4 || static_cast<int64_t>(batch.size()) != rt.Shape().Dim(0)) {
      c.Fail("needs X [N, C, H, W], rois [R, 4] and batch_indices [R]");
    }
    const auto rois = AsDoubles(rt);
    const int64_t n = x.Shape().Dim(0), ch = x.Shape().Dim(1), h = x.Shape().Dim(2), w = x.Shape().Dim(3);
    const int64_t r = rt.Shape().Dim(0), ph = c.Int("output_height", 1), pw = c.Int("output_width", 1);
    if (ph <= 0 || pw <= 0 || ph > 4096 || pw > 4096) c.Fail("invalid output_height or output_width");
    const int64_t ratio = c.Int("sampling_ratio", 0);
    const double scale = c.Float("spatial_scale", 1.0f);
    const std::string mode = c.Str("mode", "avg");
    const bool half_pixel = c.Str("coordinate_transformation_mode", c.Opset() >= 16 ? "half_pixel" : "output_half_pixel") ==
                            "half_pixel";
    if (mode != "avg" && mode != "max") c.Fail("mode \"" + mode + "\" is not supported");
    // For each output cell: its samples, each the bilinear blend of 4 pixels
    // (flat index into [N * H * W], weight). Cells get the same number of
    // slots; unused ones have weight 0 and are masked for max.
    struct Tap {
      int64_t index;
      double weight;
    };
    CheckTraceTimeSize(c, CheckedMul(c, CheckedMul(c, r, ph), pw), dtypes::Float64, "the RoiAlign output cells");
    std::vector<std::vector<std::vector<Tap>>> cells(static_cast<size_t>(r * ph * pw));
    int64_t total_samples = 0;
    size_t max_samples = 1;
    for (int64_t i = 0; i < r; ++i) {
      const int64_t b = batch[static_cast<size_t>(i)];
      if (b < 0 || b >= n) c.Fail("batch index " + std::to_string(b) + " is out of range");
      const double off = half_pixel ? 0.5 : 0.0;
      const double x1 = rois[i * 4] * scale - off, y1 = rois[i * 4 + 1] * scale - off;
      const double x2 = rois[i * 4 + 2] * scale - off, y2 = rois[i * 4 + 3] * scale - off;
      double rw = x2 - x1, rh = y2 - y1;
      if (!half_pixel) {
        rw = std::max(rw, 1.0);
        rh = std::max(rh, 1.0);
      }
      const double bh = rh / static_cast<double>(ph), bw = rw / static_cast<double>(pw);
      const int64_t sh = ratio > 0 ? ratio : ToIndex(c, std::ceil(rh / static_cast<double>(ph)), "a sampling count");
      const int64_t sw = ratio > 0 ? ratio : ToIndex(c, std::ceil(rw / static_cast<double>(pw)), "a sampling count");
      if (!(sh >= 0 && sw >= 0 && sh <= 4096 && sw <= 4096)) c.Fail("the sampling grid is too large");
      total_samples += CheckedMul(c, CheckedMul(c, ph * pw, sh), sw);
      CheckTraceTimeSize(c, CheckedMul(c, total_samples, 4), dtypes::Float64, "the RoiAlign sampling table");
      for (int64_t py = 0; py < ph; ++py) {
        for (int64_t px = 0; px < pw; ++px) {
          auto& samples = cells[static_cast<size_t>((i * ph + py) * pw + px)];
          for (int64_t iy = 0; iy < sh; ++iy) {
            for (int64_t ix = 0; ix < sw; ++ix) {
              double yy = y1 + py * bh + (iy + 0.5) * bh / static_cast<double>(sh);
              double xx = x1 + px * bw + (ix + 0.5) * bw / static_cast<double>(sw);
              std::vector<Tap> taps;
              if (std::isfinite(yy) && std::isfinite(xx) && !(yy < -1.0 || yy > h || xx < -1.0 || xx > w)) {
                yy = std::max(yy, 0.0);
                xx = std::max(xx, 0.0);
                int64_t y0 = static_cast<int64_t>(yy), x0 = static_cast<int64_t>(xx), y1i, x1i;
                if (y0 >= h - 1) {
                  y0 = y1i = h - 1;
                  yy = static_cast<double>(y0);
                } else {
                  y1i = y0 + 1;
                }
                if (x0 >= w - 1) {
                  x0 = x1i = w - 1;
                  xx = static_cast<double>(x0);
                } else {
                  x1i = x0 + 1;
                }
                const double ly = yy - y0, lx = xx - x0, hy = 1 - ly, hx = 1 - lx;
                const int64_t base = b * h * w;
                taps = {{base + y0 * w + x0, hy * hx}, {base + y0 * w + x1i, hy * lx},
                        {base + y1i * w + x0, ly * hx}, {base + y1i * w + x1i, ly * lx}};
              } else {
                taps = {{0, 0.0}, {0, 0.0}, {0, 0.0}, {0, 0.0}};
              }
              samples.push_back(taps);
            }
          }
          max_samples = std::max(max_samples, samples.size());
        }
      }
    }
    const int64_t cells_n = r * ph * pw, slots = static_cast<int64_t>(max_samples);
    std::vector<int64_t> idx(static_cast<size_t>(cells_n * slots * 4), 0);
    std::vector<double> wts(idx.size(), 0.0), valid(static_cast<size_t>(cells_n * slots), 0.0), counts(static_cast<size_t>(cells_n));
    for (int64_t k = 0; k < cells_n; ++k) {
      const auto& samples = cells[static_cast<size_t>(k)];
      counts[static_cast<size_t>(k)] = std::max<double>(1.0, static_cast<double>(samples.size()));
      for (size_t s = 0; s < samples.size(); ++s) {
        valid[static_cast<size_t>(k * slots) + s] = 1;
        for (size_t t = 0; t < 4; ++t) {
          const size_t at = (static_cast<size_t>(k * slots) + s) * 4 + t;
          idx[at] = samples[s][t].index;
          wts[at] = samples[s][t].weight;
        }
      }
    }
    // X as [N * H * W, C]; gather the taps: [cells, slots, 4, C].
    Node rows = Reshape(Transpose(x, {0, 2, 3, 1}), {n * h * w, ch});
    Node taps = TakeConst(rows, idx, 0);
    taps = Reshape(taps, {cells_n, slots, 4, ch});
    Node wt = ConvertDType(Const(x.Graph(), tensors::FromFlat<double>(shapes::Shape(dtypes::Float64, {cells_n, slots, 4, 1}), wts)),
                           x.DType());
    Node out;
    if (mode == "avg") {
      Node sample = ReduceSum(taps * wt, {2});  // [cells, slots, C]: the bilinear samples
      Node cnt = ConvertDType(Const(x.Graph(), tensors::FromFlat<double>(shapes::Shape(dtypes::Float64, {cells_n, 1}), counts)),
                              x.DType());
      out = ReduceSum(sample, {1}) / cnt;
    } else {
      Node ok = ConvertDType(Const(x.Graph(), tensors::FromFlat<double>(shapes::Shape(dtypes::Float64, {cells_n, slots, 1}), valid)),
                             dtypes::Bool);
      // ONNX's max mode (its reference, onnxruntime): the largest weighted
      // corner w_k * v_k over the 4 corners of every sample of the cell.
      Node corner = ReduceMax(taps * wt, {2});  // [cells, slots, C]
      out = ReduceMax(Where(ok, corner, ScalarLike(corner, -std::numeric_limits<double>::infinity())), {1});
    }
    return {Transpose(Reshape(out, {r, ph, pw, ch}), {0, 3, 1, 2})};
  });
}

}  // namespace kiln::onnx::internal
