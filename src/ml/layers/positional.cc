// Copyright 2026 The Kiln Authors.
// Positional encodings (see kiln/ml/layers/positional.h). Angles are
// computed in Float64 and converted once, so large positions keep their
// precision in Float32 and 16-bit models.
#include "kiln/ml/layers/positional.h"

#include <cmath>
#include <string>
#include <vector>

#include "kiln/context/initializers.h"
#include "kiln/graph/ops.h"
#include "src/ml/layers/layers_internal.h"

namespace kiln::ml::layers {

using internal::LayerError;

namespace {

// base^(-2i/dim) for i < pairs, as a Float64 constant [pairs].
Node InverseFrequencies(graph::Graph* g, int64_t pairs, int64_t dim, double base) {
  std::vector<double> f(static_cast<size_t>(pairs));
  for (int64_t i = 0; i < pairs; ++i) {
    f[static_cast<size_t>(i)] = std::pow(base, -2.0 * static_cast<double>(i) / static_cast<double>(dim));
  }
  return graph::Const(g, f);
}

// Checks a position offset: an integer scalar, or (batch >= 0) an integer
// vector [batch] with one offset per row.
void CheckOffset(const Node& offset, int64_t batch, std::string_view layer) {
  const bool per_row = batch >= 0 && offset.Rank() == 1 && offset.Shape().Dims()[0] == batch;
  if (!dtypes::IsInteger(offset.DType()) || (offset.Rank() != 0 && !per_row)) {
    LayerError(layer, batch >= 0 ? "offset must be an integer scalar or vector [" + std::to_string(batch) + "], got " +
                                       offset.Shape().ToString()
                                 : "offset must be an integer scalar, got " + offset.Shape().ToString());
  }
}

// Positions offset ... offset + length - 1 as Float64: [length] for a scalar
// (or empty) offset, [batch, length] for an offset per row.
Node Positions(graph::Graph* g, int64_t length, const Node& offset, int64_t batch, std::string_view layer) {
  Node p = graph::ConvertDType(graph::Iota(g, shapes::Make(dtypes::Int64, length), 0), dtypes::Float64);
  if (!offset.Ok()) return p;
  CheckOffset(offset, batch, layer);
  Node o = graph::ConvertDType(offset, dtypes::Float64);
  if (offset.Rank() == 0) return p + o;
  return graph::ExpandAxes(o, {1}) + graph::ExpandAxes(p, {0});
}

// angles [length, pairs] (or [batch, length, pairs]) = position * inverse frequency.
Node Angles(graph::Graph* g, int64_t length, int64_t pairs, int64_t dim, double base, const Node& offset,
            int64_t batch, std::string_view layer) {
  if (!(base > 1) || std::isinf(base)) {
    LayerError(layer, "base must be finite and > 1, got " + internal::FormatNumber(base));
  }
  Node p = Positions(g, length, offset, batch, layer);
  return graph::ExpandAxes(p, {p.Rank()}) * InverseFrequencies(g, pairs, dim, base);
}

}  // namespace

Node SinusoidalPositions(graph::Graph* g, int64_t length, int64_t dim, dtypes::DType dtype, Node offset, double base) {
  if (g == nullptr) LayerError("SinusoidalPositions", "needs a graph");
  if (length < 0) LayerError("SinusoidalPositions", "length must be >= 0, got " + std::to_string(length));
  if (dim < 2 || dim % 2 != 0) {
    LayerError("SinusoidalPositions", "dim must be even and >= 2, got " + std::to_string(dim));
  }
  if (!dtypes::IsFloat(dtype)) {
    LayerError("SinusoidalPositions", std::string("dtype must be a float, got ") + dtypes::Name(dtype));
  }
  Node angles = Angles(g, length, dim / 2, dim, base, offset, -1, "SinusoidalPositions");
  // [length, dim/2, 2] -> [length, dim]: sin and cos interleaved.
  Node pe = graph::Reshape(graph::Stack({graph::Sin(angles), graph::Cos(angles)}, 2), {length, dim});
  return graph::ConvertDType(pe, dtype);
}

Node LearnedPositions(Context ctx, Node x, int64_t max_length, Node offset) {
  internal::CheckFloat("LearnedPositions", x);
  if (x.Rank() != 3) LayerError("LearnedPositions", "x must be [batch, time, dim], got " + x.Shape().ToString());
  if (max_length < 1) LayerError("LearnedPositions", "max_length must be >= 1, got " + std::to_string(max_length));
  const int64_t time = x.Shape().Dims()[1], dim = x.Shape().Dims()[2];
  const Context c = ctx.HasInitializer() ? ctx : ctx.WithInitializer(context::initializers::RandomNormal(0, 0.02));
  Node table = internal::GetOrCreate(c, "positions", shapes::Make(x.DType(), max_length, dim))->ValueGraph(x.Graph());
  if (time > max_length) {
    LayerError("LearnedPositions", "x has " + std::to_string(time) + " steps, more than max_length " +
                                       std::to_string(max_length));
  }
  if (!offset.Ok()) return x + graph::Slice(table, {0, 0}, {time, dim});
  const int64_t batch = x.Shape().Dims()[0];
  CheckOffset(offset, batch, "LearnedPositions");
  if (offset.Rank() == 0) return x + graph::DynamicSlice(table, {offset, graph::ScalarLike(offset, 0)}, {time, dim});
  // One offset per row: gather rows offset[b] + t, clamped to the table.
  Node rows = graph::ExpandAxes(graph::ConvertDType(offset, dtypes::Int64), {1}) +
              graph::Iota(x.Graph(), shapes::Make(dtypes::Int64, 1, time), 1);
  rows = graph::Clamp(graph::Const(x.Graph(), int64_t{0}), rows, graph::Const(x.Graph(), max_length - 1));
  ir::GatherAttrs attrs;
  attrs.index_vector_dim = 2;
  attrs.offset_dims = {2};
  attrs.collapsed_slice_dims = {0};
  attrs.start_index_map = {0};
  attrs.slice_sizes = {1, dim};
  return x + graph::Gather(table, rows, attrs);
}

Node ApplyRotary(Node x, const RotaryOptions& o, Node offset) {
  internal::CheckFloat("ApplyRotary", x);
  if (x.Rank() != 3 && x.Rank() != 4) {
    LayerError("ApplyRotary", "x must be [batch, time, heads, head_dim] or [time, heads, head_dim], got " +
                                  x.Shape().ToString());
  }
  const auto& d = x.Shape().Dims();
  const int64_t head_dim = d.back(), time = d[d.size() - 3];
  const int64_t r = o.rotary_dim == 0 ? head_dim : o.rotary_dim;
  if (r < 2 || r % 2 != 0 || r > head_dim) {
    LayerError("ApplyRotary", "rotary_dim must be even, >= 2 and <= head_dim " + std::to_string(head_dim) + ", got " +
                                  std::to_string(r));
  }
  const int last = x.Rank() - 1;
  // [time, r/2], or [batch, time, r/2] with an offset per row.
  Node angles = Angles(x.Graph(), time, r / 2, r, o.base, offset, x.Rank() == 4 ? d[0] : -1, "ApplyRotary");
  // [..., time, 1, r/2]: broadcasts over heads (and the batch).
  const int heads_axis = angles.Rank() - 1;
  Node cos = graph::ConvertDType(graph::ExpandAxes(graph::Cos(angles), {heads_axis}), x.DType());
  Node sin = graph::ConvertDType(graph::ExpandAxes(graph::Sin(angles), {heads_axis}), x.DType());
  Node rotated;
  if (!o.interleaved) {
    Node a = graph::SliceAxis(x, last, 0, r / 2), b = graph::SliceAxis(x, last, r / 2, r);
    rotated = graph::Concatenate({a * cos - b * sin, b * cos + a * sin}, last);
  } else {
    // Pairs (2i, 2i + 1): strided slices, rotated, interleaved back.
    Node a = graph::SliceAxis(x, last, 0, r, 2), b = graph::SliceAxis(x, last, 1, r, 2);
    Node pairs = graph::Stack({a * cos - b * sin, b * cos + a * sin}, x.Rank());  // [..., r/2, 2]
    std::vector<int64_t> dims = d;
    dims.back() = r;
    rotated = graph::Reshape(pairs, dims);
  }
  if (r == head_dim) return rotated;
  return graph::Concatenate({rotated, graph::SliceAxis(x, last, r, head_dim)}, last);
}

std::vector<double> AlibiSlopes(int num_heads) {
  if (num_heads < 1) LayerError("AlibiSlopes", "num_heads must be >= 1, got " + std::to_string(num_heads));
  auto power_of_two = [](int n) {
    std::vector<double> s;
    for (int h = 1; h <= n; ++h) s.push_back(std::pow(2.0, -8.0 * h / n));
    return s;
  };
  int closest = 1;
  while (closest * 2 <= num_heads) closest *= 2;
  std::vector<double> slopes = power_of_two(closest);
  if (closest == num_heads) return slopes;
  const std::vector<double> finer = AlibiSlopes(2 * closest);
  for (size_t i = 0; slopes.size() < static_cast<size_t>(num_heads); i += 2) slopes.push_back(finer[i]);
  return slopes;
}

Node AlibiBias(graph::Graph* g, int num_heads, int64_t q_len, int64_t kv_len, dtypes::DType dtype) {
  if (g == nullptr) LayerError("AlibiBias", "needs a graph");
  if (q_len < 0 || kv_len < q_len) {
    LayerError("AlibiBias", "needs 0 <= q_len <= kv_len, got q_len " + std::to_string(q_len) + " and kv_len " +
                                std::to_string(kv_len));
  }
  const std::vector<double> slopes = AlibiSlopes(num_heads);
  // j - (kv_len - q_len + i): zero on the query's own position, negative before it.
  const shapes::Shape s = shapes::Make(dtypes::Float64, q_len, kv_len);
  Node distance = graph::Iota(g, s, 1) - graph::Iota(g, s, 0) - static_cast<double>(kv_len - q_len);
  Node bias = graph::Reshape(graph::Const(g, slopes), {num_heads, 1, 1}) * graph::ExpandAxes(distance, {0});
  return graph::ConvertDType(bias, dtype);
}

}  // namespace kiln::ml::layers
