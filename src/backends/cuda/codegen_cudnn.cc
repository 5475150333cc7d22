// Copyright 2026 The Kiln Authors.
// The CUDA code generator (see generator.h): ConvGeneral on cuDNN. Each
// convolution is matched to the one of cuDNN's three convolution calls that
// computes it as it stands (ConvSpec in codegen.h):
//   - no input dilation, and an output at least as large as the kernel:
//     the forward convolution;
//   - no input dilation, and a kernel spatially larger than the output (the
//     shape of a kernel gradient, ops_dot_conv.cc's ConvKernelGrad): the
//     backward-filter call, with the operand's batch and feature axes as
//     cuDNN's feature and batch axes; its strides become cuDNN's dilation
//     and its kernel dilation cuDNN's strides;
//   - input dilation and unit strides (an input gradient, ConvInputGrad, or
//     a transposed convolution): the backward-data call of the forward
//     convolution whose strides are the input dilation, with the kernel
//     spatially reversed (packed so by a kernel) and padding
//     dilated kernel - 1 - padding_low.
// Each call needs its tensors' extents to satisfy cuDNN's forward formula
// with symmetric padding; padding_high only shortens or lengthens the
// output, so the formula's agreement with the output's extents is the test.
// Images must be packed NCHW or NHWC (both the same); filters are packed
// into that format by a kernel unless they already are.
#include <algorithm>
#include <limits>
#include <optional>

#include "src/backends/cuda/generator.h"

namespace kiln::backends::cuda {

namespace {

// A value's dims and strides (elements) in cuDNN's axis order [n, c,
// spatial...]; a single spatial axis gets a leading unit axis.
struct CudnnView {
  std::vector<int64_t> dims, strides;
};

CudnnView ViewOf(const std::vector<int64_t>& dims, int64_t n, int64_t c, const std::vector<int64_t>& spatial) {
  const std::vector<int64_t> st = gen::StridesOf(dims);
  CudnnView v;
  const auto add = [&](int64_t axis) {
    v.dims.push_back(dims[static_cast<size_t>(axis)]);
    v.strides.push_back(st[static_cast<size_t>(axis)]);
  };
  add(n);
  add(c);
  if (spatial.size() == 1) {
    v.dims.push_back(1);
    v.strides.push_back(0);  // a unit axis's stride addresses nothing
  }
  for (int64_t s : spatial) add(s);
  return v;
}

// The axes of a rank-`rank` value in cuDNN's order, outermost in memory
// first: NCHW (KCRS), or NHWC (KRSC) when `channels_last`.
std::vector<size_t> MemoryOrder(size_t rank, bool channels_last) {
  std::vector<size_t> order = {0};
  if (!channels_last) order.push_back(1);
  for (size_t i = 2; i < rank; ++i) order.push_back(i);
  if (channels_last) order.push_back(1);
  return order;
}

// Whether `v`'s memory is packed in that format (unit axes' strides do not
// matter).
bool IsPacked(const CudnnView& v, bool channels_last) {
  const std::vector<int64_t> want = CudnnPackedStrides(v.dims, channels_last);
  for (size_t i = 0; i < v.dims.size(); ++i) {
    if (v.dims[i] != 1 && v.strides[i] != want[i]) return false;
  }
  return true;
}

int64_t Product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t d : v) p *= d;
  return p;
}

// The per-spatial-axis parameters with the unit axis of a 1-d convolution
// in front.
std::vector<int64_t> Spatial(const std::vector<int64_t>& v, int64_t unit_value) {
  std::vector<int64_t> out;
  if (v.size() == 1) out.push_back(unit_value);
  out.insert(out.end(), v.begin(), v.end());
  return out;
}

}  // namespace

std::vector<int64_t> CudnnPackedStrides(const std::vector<int64_t>& dims, bool channels_last) {
  const std::vector<size_t> order = MemoryOrder(dims.size(), channels_last);
  std::vector<int64_t> strides(dims.size());
  int64_t s = 1;
  for (size_t i = order.size(); i-- > 0;) {
    strides[order[i]] = s;
    s *= dims[order[i]];
  }
  return strides;
}

std::vector<int64_t> ConvSpec::FilterStrides() const { return CudnnPackedStrides(w_dims, channels_last); }

bool ConvSpecIsConsistent(const ConvSpec& s) {
  const size_t r = s.x_dims.size();
  if (r < 4 || r > 5 || s.y_dims.size() != r || s.w_dims.size() != r || s.padding.size() != r - 2 ||
      s.strides.size() != r - 2 || s.dilation.size() != r - 2 || s.groups < 1) {
    return false;
  }
  if (s.x_dims[0] != s.y_dims[0] || s.y_dims[1] != s.w_dims[0] || s.x_dims[1] != s.w_dims[1] * s.groups ||
      s.w_dims[0] % s.groups != 0) {
    return false;
  }
  for (size_t j = 0; j < r - 2; ++j) {
    const int64_t eff = (s.w_dims[j + 2] - 1) * s.dilation[j] + 1;
    const int64_t room = s.x_dims[j + 2] + 2 * s.padding[j] - eff;
    if (s.padding[j] < 0 || s.strides[j] < 1 || s.dilation[j] < 1 || room < 0) return false;
    if (s.y_dims[j + 2] != room / s.strides[j] + 1) return false;
  }
  return true;
}

namespace gen {

bool Generator::CudnnConv(int id) {
  if (!options_.cudnn) return false;
  const std::vector<int>& refused = options_.cudnn_refused;
  if (std::find(refused.begin(), refused.end(), id) != refused.end()) return false;
  const ir::Instruction& in = I(id);
  const ir::ConvAttrs a = ir::Attr<ir::ConvAttrs>(in);
  const int lhs = in.operands[0], rhs = in.operands[1];
  const shapes::Shape xs = I(lhs).shape, ks = I(rhs).shape, os = in.shape;
  const dtypes::DType dt = os.DType();
  if (dt != dtypes::Float32 && dt != dtypes::Float16 && dt != dtypes::BFloat16) return false;
  const size_t ns = a.input_spatial_axes.size();
  if (ns < 1 || ns > 3 || a.batch_group_count != 1) return false;
  // cuDNN's sizes are ints, and its tensors hold fewer than 2^31 elements.
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
  if (xs.Size() == 0 || ks.Size() == 0 || os.Size() == 0 || xs.Size() > kMax || ks.Size() > kMax ||
      os.Size() > kMax) {
    return false;
  }
  const auto spatial_of = [](const shapes::Shape& s, const std::vector<int64_t>& axes) {
    std::vector<int64_t> d;
    for (int64_t ax : axes) d.push_back(s.Dims()[static_cast<size_t>(ax)]);
    return d;
  };
  // The spec of `kind` with the image, response and filter as Kiln holds
  // them; none where cuDNN cannot take them.
  struct Plan {
    ConvSpec spec;
    CudnnView x, y, w;
  };
  const auto plan = [&](ConvSpec::Kind kind) -> std::optional<Plan> {
    Plan p;
    ConvSpec& s = p.spec;
    s.kind = kind;
    s.dtype = dt;
    s.deterministic = options_.deterministic;
    std::vector<int64_t> padding;
    switch (kind) {
      case ConvSpec::Kind::kBackwardData: {
        p.y = ViewOf(xs.Dims(), a.input_batch_axis, a.input_feature_axis, a.input_spatial_axes);
        p.x = ViewOf(os.Dims(), a.output_batch_axis, a.output_feature_axis, a.output_spatial_axes);
        p.w = ViewOf(ks.Dims(), a.kernel_input_feature_axis, a.kernel_output_feature_axis, a.kernel_spatial_axes);
        s.strides = a.input_dilation;
        s.dilation = a.kernel_dilation;
        const std::vector<int64_t> kd = spatial_of(ks, a.kernel_spatial_axes);
        for (size_t j = 0; j < ns; ++j) padding.push_back((kd[j] - 1) * a.kernel_dilation[j] - a.padding_low[j]);
        break;
      }
      case ConvSpec::Kind::kBackwardFilter:
        p.x = ViewOf(xs.Dims(), a.input_feature_axis, a.input_batch_axis, a.input_spatial_axes);
        p.y = ViewOf(ks.Dims(), a.kernel_input_feature_axis, a.kernel_output_feature_axis, a.kernel_spatial_axes);
        p.w = ViewOf(os.Dims(), a.output_feature_axis, a.output_batch_axis, a.output_spatial_axes);
        s.strides = a.kernel_dilation;
        s.dilation = a.strides;
        padding = a.padding_low;
        break;
      case ConvSpec::Kind::kForward:
        p.x = ViewOf(xs.Dims(), a.input_batch_axis, a.input_feature_axis, a.input_spatial_axes);
        p.w = ViewOf(ks.Dims(), a.kernel_output_feature_axis, a.kernel_input_feature_axis, a.kernel_spatial_axes);
        p.y = ViewOf(os.Dims(), a.output_batch_axis, a.output_feature_axis, a.output_spatial_axes);
        s.strides = a.strides;
        s.dilation = a.kernel_dilation;
        padding = a.padding_low;
        s.groups = a.feature_group_count;
        break;
    }
    s.padding = Spatial(padding, 0);
    s.strides = Spatial(s.strides, 1);
    s.dilation = Spatial(s.dilation, 1);
    // One format for both images (NHWC preferred: tensor cores' layout).
    s.channels_last = IsPacked(p.x, true) && IsPacked(p.y, true);
    if (!s.channels_last && (!IsPacked(p.x, false) || !IsPacked(p.y, false))) return std::nullopt;
    s.x_dims = p.x.dims;
    s.y_dims = p.y.dims;
    s.w_dims = p.w.dims;
    s.x_strides = CudnnPackedStrides(p.x.dims, s.channels_last);
    s.y_strides = CudnnPackedStrides(p.y.dims, s.channels_last);
    if (!ConvSpecIsConsistent(s)) return std::nullopt;
    return p;
  };
  std::optional<Plan> chosen;
  const auto ones = [](const std::vector<int64_t>& v) {
    return std::all_of(v.begin(), v.end(), [](int64_t d) { return d == 1; });
  };
  if (!ones(a.input_dilation)) {
    if (a.feature_group_count == 1 && ones(a.strides)) chosen = plan(ConvSpec::Kind::kBackwardData);
  } else {
    if (a.feature_group_count == 1 &&
        Product(spatial_of(os, a.output_spatial_axes)) < Product(spatial_of(ks, a.kernel_spatial_axes))) {
      chosen = plan(ConvSpec::Kind::kBackwardFilter);
    }
    if (!chosen) chosen = plan(ConvSpec::Kind::kForward);
  }
  if (!chosen) return false;
  ConvSpec& s = chosen->spec;
  const CudnnView& w = chosen->w;
  const bool channels_last = s.channels_last;
  const std::vector<int64_t> packed = CudnnPackedStrides(w.dims, channels_last);
  // The filter's axes in memory order: the order a pack kernel walks.
  const std::vector<size_t> order = MemoryOrder(w.dims.size(), channels_last);
  const int64_t w_size = Product(w.dims);
  const int out_value = [&] {
    if (s.kind != ConvSpec::Kind::kBackwardFilter || IsPacked(w, channels_last)) return id;
    return AddScratch(shapes::Shape(dt, {w_size}));
  }();
  const int x_value = s.kind == ConvSpec::Kind::kBackwardData ? id : lhs;
  const int y_value = s.kind == ConvSpec::Kind::kBackwardFilter ? rhs : s.kind == ConvSpec::Kind::kForward ? id : lhs;
  int w_value = s.kind == ConvSpec::Kind::kBackwardFilter ? out_value : rhs;
  // 1. The filter packed (and, for the backward-data call, spatially
  // reversed) into cuDNN's format, unless it already is.
  const bool reverse = s.kind == ConvSpec::Kind::kBackwardData;
  if (s.kind != ConvSpec::Kind::kBackwardFilter && (reverse || !IsPacked(w, channels_last))) {
    w_value = AddScratch(shapes::Shape(dt, {w_size}));
    KernelBuilder b(fn_, p_.materialized);
    const std::string W = b.Input(rhs);
    std::vector<int64_t> memory_dims;
    for (size_t axis : order) memory_dims.push_back(w.dims[axis]);
    const std::vector<std::string> coords = b.Axes(LinearIdx("i"), memory_dims);
    std::string body = b.TakeBody();
    std::string off = "0LL";
    for (size_t m = 0; m < order.size(); ++m) {
      const size_t axis = order[m];
      if (w.dims[axis] == 1) continue;
      const std::string c = reverse && axis >= 2 ? "(" + Str(w.dims[axis] - 1) + " - " + coords[m] + ")" : coords[m];
      off += " + " + c + " * " + Str(w.strides[axis]);
    }
    body += "    out[i] = " + W + "[" + off + "];\n";
    p_.steps.push_back(
        {StepKind::kKernel, w_value, Add(FinishScratch(b, w_value, "cudnn_filter", ThreadLoop("i", w_size, body), w_size))});
  }
  // 2. The call.
  s.a = s.kind == ConvSpec::Kind::kBackwardData ? y_value : x_value;
  s.b = s.kind == ConvSpec::Kind::kBackwardFilter ? y_value : w_value;
  s.id = id;
  p_.convs.push_back(s);
  p_.steps.push_back({StepKind::kConv, out_value, static_cast<int>(p_.convs.size()) - 1});
  // 3. A filter gradient out of cuDNN's format into the output's layout.
  if (out_value != id) {
    KernelBuilder b(fn_, p_.materialized);
    const std::string G = b.Input(out_value);
    const std::vector<int64_t>& od = os.Dims();
    const std::vector<std::string> oax = b.Axes(LinearIdx("i"), od);
    std::string body = b.TakeBody();
    // The output's axis for each of the filter's cuDNN axes (-1: the unit axis).
    std::vector<int64_t> axis_of = {a.output_feature_axis, a.output_batch_axis};
    if (ns == 1) axis_of.push_back(-1);
    axis_of.insert(axis_of.end(), a.output_spatial_axes.begin(), a.output_spatial_axes.end());
    std::string off = "0LL";
    for (size_t k = 0; k < axis_of.size(); ++k) {
      if (axis_of[k] >= 0) off += " + " + oax[static_cast<size_t>(axis_of[k])] + " * " + Str(packed[k]);
    }
    body += "    out[i] = " + G + "[" + off + "];\n";
    KernelSpec spec = Finish(b, id, "cudnn_filter_out", ThreadLoop("i", os.Size(), body), os.Size(), false);
    std::fill(spec.elementwise_input.begin(), spec.elementwise_input.end(), false);
    p_.steps.push_back({StepKind::kKernel, id, Add(std::move(spec))});
  }
  return true;
}

}  // namespace gen
}  // namespace kiln::backends::cuda
