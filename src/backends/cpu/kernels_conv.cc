// Copyright 2026 The Kiln Authors.
// CPU kernel of ConvGeneral (StableHLO convolution).
//
// Float32 convolutions that oneDNN expresses (1 to 3 spatial axes, no input
// dilation, batch_group_count 1, paddings >= 0, no empty axis) run on
// oneDNN's convolution forward, created once at compile time. The operands'
// layouts (any axis order) are described to oneDNN with strides; oneDNN
// picks its preferred internal layouts and reorders are created for them.
//
// A convolution whose kernel is spatially larger than its output is what a
// kernel gradient looks like (ConvKernelGrad in graph/ops_dot_conv.cc: the
// input convolved with the cotangent, batch and feature axes swapped). Run
// as a forward convolution it has huge windows and tiny outputs, which
// oneDNN's forward kernels handle poorly (4x slower than the forward pass on
// the CNN benchmark); the same sum is exactly oneDNN's backward-weights
// convolution with the roles mapped back (see WeightGradMapping), so such
// convolutions run on that instead.
//
// Everything else (other dtypes, input dilation, batch groups, negative
// padding) runs on the generic direct convolution below, which implements
// the StableHLO definition for any number of spatial axes.
#include <algorithm>
#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>

#include "src/backends/cpu/accumulate.h"
#include "src/backends/cpu/dnnl_util.h"
#include "src/backends/cpu/kernels.h"
#include "src/backends/cpu/window_util.h"

namespace kiln::backends::cpu {

namespace {

// The convolution with every size and stride it needs, resolved from the
// instruction's attributes and shapes.
struct ConvGeometry {
  ir::ConvAttrs attrs;
  shapes::Shape input, kernel, output;
  std::vector<int64_t> in_strides, kernel_strides, out_strides;
  int64_t out_batch = 0, out_features = 0, kernel_in_features = 0;

  int SpatialRank() const { return static_cast<int>(attrs.input_spatial_axes.size()); }
};

ConvGeometry MakeGeometry(const ir::Function& fn, const ir::Instruction& instr) {
  ConvGeometry g;
  g.attrs = ir::Attr<ir::ConvAttrs>(instr);
  g.input = OperandShape(fn, instr, 0);
  g.kernel = OperandShape(fn, instr, 1);
  g.output = instr.shape;
  g.in_strides = shapes::Strides(g.input.Dims());
  g.kernel_strides = shapes::Strides(g.kernel.Dims());
  g.out_strides = shapes::Strides(g.output.Dims());
  g.out_batch = g.output.Dims()[g.attrs.output_batch_axis];
  g.out_features = g.output.Dims()[g.attrs.output_feature_axis];
  g.kernel_in_features = g.kernel.Dims()[g.attrs.kernel_input_feature_axis];
  return g;
}

// ------------------------------------------------------ Generic kernel.

// Per spatial axis and output coordinate, the (input offset, kernel offset)
// pairs of the kernel taps that land on input elements.
struct SpatialTaps {
  std::vector<std::vector<int64_t>> starts, input_offsets, kernel_offsets;  // per spatial axis
};

SpatialTaps MakeSpatialTaps(const ConvGeometry& g) {
  SpatialTaps t;
  const ir::ConvAttrs& a = g.attrs;
  for (int i = 0; i < g.SpatialRank(); ++i) {
    const int64_t in_axis = a.input_spatial_axes[i], k_axis = a.kernel_spatial_axes[i];
    AxisTaps taps = MakeAxisTaps({g.input.Dims()[in_axis], g.kernel.Dims()[k_axis], a.strides[i], a.padding_low[i],
                                  a.input_dilation[i], a.kernel_dilation[i]},
                                 g.output.Dims()[a.output_spatial_axes[i]]);
    for (int64_t& v : taps.input_index) v *= g.in_strides[in_axis];
    for (int64_t& v : taps.window_index) v *= g.kernel_strides[k_axis];
    t.starts.push_back(std::move(taps.starts));
    t.input_offsets.push_back(std::move(taps.input_index));
    t.kernel_offsets.push_back(std::move(taps.window_index));
  }
  return t;
}

// The direct convolution: each output element sums, over the kernel taps
// inside the input and the feature group's input channels, input * kernel.
template <typename T>
class DirectConv {
 public:
  explicit DirectConv(const ConvGeometry& g) : g_(g), taps_(MakeSpatialTaps(g)) {}

  void Run(const T* input, const T* kernel, T* out) const {
    const ir::ConvAttrs& a = g_.attrs;
    const int64_t n = g_.output.Size();
    const int rank = g_.output.Rank();
    // Multiply-adds per output element: the kernel's size per output feature.
    const int64_t work = n * (g_.kernel.Size() / std::max<int64_t>(g_.out_features, 1));
    // Output features per feature group and per batch group.
    const int64_t per_fgroup = g_.out_features / a.feature_group_count;
    const int64_t per_bgroup = g_.out_features / a.batch_group_count;
#pragma omp parallel if (work > kParallelThreshold)
    {
      std::vector<int64_t> coords(static_cast<size_t>(rank) + 1);
#pragma omp for
      for (int64_t i = 0; i < n; ++i) {
        int64_t rem = i;
        for (int d = rank - 1; d >= 0; --d) {
          coords[d] = rem % g_.output.Dims()[d];
          rem /= g_.output.Dims()[d];
        }
        const int64_t o = coords[a.output_feature_axis];
        const int64_t batch = (o / per_bgroup) * g_.out_batch + coords[a.output_batch_axis];
        const int64_t channel0 = (o / per_fgroup) * g_.kernel_in_features;
        const T* in_base =
            input + batch * g_.in_strides[a.input_batch_axis] + channel0 * g_.in_strides[a.input_feature_axis];
        const T* k_base = kernel + o * g_.kernel_strides[a.kernel_output_feature_axis];
        Acc acc{0};
        Accumulate(0, coords.data(), in_base, k_base, acc);
        out[i] = ConvertElement<T>(acc);
      }
    }
  }

 private:
  using Acc = AccType<T>;

  // Walks the taps of spatial axis `axis` (recursing into the next ones);
  // at the innermost level sums over the group's input channels.
  void Accumulate(int axis, const int64_t* coords, const T* in, const T* k, Acc& acc) const {
    if (axis == g_.SpatialRank()) {
      const int64_t in_c = g_.in_strides[g_.attrs.input_feature_axis];
      const int64_t k_c = g_.kernel_strides[g_.attrs.kernel_input_feature_axis];
      for (int64_t c = 0; c < g_.kernel_in_features; ++c) {
        acc += ConvertElement<Acc>(in[c * in_c]) * ConvertElement<Acc>(k[c * k_c]);
      }
      return;
    }
    const int64_t o = coords[g_.attrs.output_spatial_axes[axis]];
    for (int64_t t = taps_.starts[axis][o]; t < taps_.starts[axis][o + 1]; ++t) {
      Accumulate(axis + 1, coords, in + taps_.input_offsets[axis][t], k + taps_.kernel_offsets[axis][t], acc);
    }
  }

  ConvGeometry g_;
  SpatialTaps taps_;
};

template <typename T>
Kernel MakeDirectConv(const ConvGeometry& g) {
  auto conv = std::make_shared<const DirectConv<T>>(g);
  return [conv](const void* const* in, void* out) {
    conv->Run(static_cast<const T*>(in[0]), static_cast<const T*>(in[1]), static_cast<T*>(out));
  };
}

// ------------------------------------------------------- oneDNN kernel.

bool FitsOneDnn(const ConvGeometry& g) {
  const ir::ConvAttrs& a = g.attrs;
  if (g.input.DType() != dtypes::Float32 || a.batch_group_count != 1) return false;
  if (g.SpatialRank() < 1 || g.SpatialRank() > 3) return false;
  if (g.input.Size() == 0 || g.kernel.Size() == 0 || g.output.Size() == 0) return false;
  for (int i = 0; i < g.SpatialRank(); ++i) {
    if (a.input_dilation[i] != 1 || a.padding_low[i] < 0 || a.padding_high[i] < 0) return false;
  }
  return true;
}

// A plain memory descriptor of `shape` whose logical dims are `axes` of it
// (in that order): the operand read in place with its own strides.
dnnl::memory::desc StridedDesc(const shapes::Shape& shape, const std::vector<int64_t>& strides,
                               const std::vector<int64_t>& axes) {
  dnnl::memory::dims dims, dim_strides;
  for (int64_t a : axes) {
    dims.push_back(shape.Dims()[a]);
    dim_strides.push_back(strides[a]);
  }
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, dim_strides);
}

// The kernel as oneDNN weights: {O, I, spatial...}, or with groups
// {G, O/G, I, spatial...} (output feature o = g * O/G + o').
dnnl::memory::desc WeightsDesc(const ConvGeometry& g) {
  const ir::ConvAttrs& a = g.attrs;
  const int64_t groups = a.feature_group_count;
  const int64_t o_stride = g.kernel_strides[a.kernel_output_feature_axis];
  dnnl::memory::dims dims, strides;
  if (groups > 1) {
    dims = {groups, g.out_features / groups};
    strides = {o_stride * (g.out_features / groups), o_stride};
  } else {
    dims = {g.out_features};
    strides = {o_stride};
  }
  dims.push_back(g.kernel_in_features);
  strides.push_back(g.kernel_strides[a.kernel_input_feature_axis]);
  for (int64_t axis : a.kernel_spatial_axes) {
    dims.push_back(g.kernel.Dims()[axis]);
    strides.push_back(g.kernel_strides[axis]);
  }
  return dnnl::memory::desc(dims, dnnl::memory::data_type::f32, strides);
}

// A reorder between two layouts of one tensor (absent when they are equal).
struct Reorder {
  std::optional<dnnl::reorder> primitive;
  dnnl::memory::desc scratchpad;
};

Reorder MakeReorder(const dnnl::memory::desc& from, const dnnl::memory::desc& to) {
  Reorder r;
  if (from == to) return r;
  dnnl::reorder::primitive_desc pd(dnnl_util::Engine(), from, dnnl_util::Engine(), to,
                                   dnnl_util::UserScratchpadAttr());
  r.primitive = dnnl::reorder(pd);
  r.scratchpad = pd.scratchpad_desc();
  return r;
}

// `user` (the operand's memory) in the layout `want`: `user` itself, or a new
// buffer filled by `reorder`.
dnnl::memory InLayout(const Reorder& reorder, const dnnl::memory& user, const dnnl::memory::desc& want) {
  if (!reorder.primitive) return user;
  dnnl::memory converted(want, dnnl_util::Engine());
  dnnl_util::Execute(*reorder.primitive, {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, converted}}, reorder.scratchpad);
  return converted;
}

// A oneDNN convolution primitive (forward, or backward-weights) with its
// two inputs and its output given in the operands' own layouts, reordered
// to and from the layouts the primitive chose where those differ.
struct DnnlConvCall {
  dnnl::primitive primitive;
  std::array<int, 3> args{};                    // oneDNN argument ids: input 0, input 1, output
  std::array<dnnl::memory::desc, 3> user, own;  // the operands' layouts, the primitive's
  std::array<Reorder, 3> reorders;              // inputs: user -> own; output: own -> user
  dnnl::memory::desc scratchpad;
};

DnnlConvCall MakeCall(dnnl::primitive primitive, std::array<int, 3> args, std::array<dnnl::memory::desc, 3> user,
                      std::array<dnnl::memory::desc, 3> own, dnnl::memory::desc scratchpad) {
  DnnlConvCall c{std::move(primitive), args, std::move(user), std::move(own), {}, std::move(scratchpad)};
  c.reorders[0] = MakeReorder(c.user[0], c.own[0]);
  c.reorders[1] = MakeReorder(c.user[1], c.own[1]);
  c.reorders[2] = MakeReorder(c.own[2], c.user[2]);
  return c;
}

Kernel MakeConvKernel(DnnlConvCall call) {
  auto c = std::make_shared<const DnnlConvCall>(std::move(call));
  return [c](const void* const* in, void* out) {
    dnnl::memory a = InLayout(c->reorders[0], dnnl_util::Wrap(c->user[0], in[0]), c->own[0]);
    dnnl::memory b = InLayout(c->reorders[1], dnnl_util::Wrap(c->user[1], in[1]), c->own[1]);
    dnnl::memory user_out = dnnl_util::Wrap(c->user[2], out);
    const Reorder& out_reorder = c->reorders[2];
    dnnl::memory result = out_reorder.primitive ? dnnl::memory(c->own[2], dnnl_util::Engine()) : user_out;
    dnnl_util::Execute(c->primitive, {{c->args[0], a}, {c->args[1], b}, {c->args[2], result}}, c->scratchpad);
    if (out_reorder.primitive) {
      dnnl_util::Execute(*out_reorder.primitive, {{DNNL_ARG_FROM, result}, {DNNL_ARG_TO, user_out}},
                         out_reorder.scratchpad);
    }
  };
}

// `d`'s dims with the layout left to oneDNN.
dnnl::memory::desc AnyLayout(const dnnl::memory::desc& d) {
  return dnnl::memory::desc(d.dims(), dnnl::memory::data_type::f32, dnnl::memory::format_tag::any);
}

// make(true): a primitive descriptor on the activations' own layouts;
// make(false): on the layouts oneDNN prefers, with reorders around the
// call. The first when oneDNN has a JIT kernel for those layouts (it has
// for channels-last, where it saves the reorders), else the second.
template <class Make>
auto PreferOwnLayouts(const Make& make) -> decltype(make(true)) {
  try {
    auto own = make(true);
    if (dnnl_util::IsOptimizedImpl(own.impl_info_str())) return own;
  } catch (const dnnl::error&) {
    // No implementation for these layouts: oneDNN's own below.
  }
  return make(false);
}

DnnlConvCall CreateDnnlConv(const ConvGeometry& g) {
  const ir::ConvAttrs& a = g.attrs;
  std::vector<int64_t> in_axes = {a.input_batch_axis, a.input_feature_axis};
  std::vector<int64_t> out_axes = {a.output_batch_axis, a.output_feature_axis};
  in_axes.insert(in_axes.end(), a.input_spatial_axes.begin(), a.input_spatial_axes.end());
  out_axes.insert(out_axes.end(), a.output_spatial_axes.begin(), a.output_spatial_axes.end());
  const dnnl::memory::desc src = StridedDesc(g.input, g.in_strides, in_axes);
  const dnnl::memory::desc weights = WeightsDesc(g);
  const dnnl::memory::desc dst = StridedDesc(g.output, g.out_strides, out_axes);
  dnnl::memory::dims dilation;  // oneDNN counts the holes: dilation - 1
  for (int64_t d : a.kernel_dilation) dilation.push_back(d - 1);
  const auto pd = PreferOwnLayouts([&](bool own_layouts) {
    dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
        own_layouts ? src : AnyLayout(src), AnyLayout(weights), own_layouts ? dst : AnyLayout(dst), a.strides,
        dilation, a.padding_low, a.padding_high);
    return dnnl::convolution_forward::primitive_desc(desc, dnnl_util::UserScratchpadAttr(), dnnl_util::Engine());
  });
  return MakeCall(dnnl::convolution_forward(pd), {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST}, {src, weights, dst},
                  {pd.src_desc(), pd.weights_desc(), pd.dst_desc()}, pd.scratchpad_desc());
}

// ConvGeneral(x, y) with feature and batch group counts 1 and no input
// dilation computes, for output batch b, output feature f and output
// position p (spatial axes written as one):
//   out[b, f, p] = sum over c, q of x[b, c, p * stride + q * kdil - pad] * y[c, f, q]
// Renaming b -> input channel, c -> batch, p -> kernel tap and q -> output
// position, that is oneDNN's backward-weights convolution
//   diff_w[f, b, p] = sum over c, q of src[c, b, q * kdil + p * stride - pad] * diff_dst[c, f, q]
// with oneDNN strides = our kernel dilation, oneDNN dilation = our strides,
// the same low padding, and a high padding that makes oneDNN's output-size
// rule give y's spatial size (the padding beyond the last window is never
// read, so any such value is exact).
struct WeightGradMapping {
  dnnl::memory::desc src, diff_dst, diff_weights;  // x, y and the output, as oneDNN sees them
  dnnl::memory::dims strides, dilation, padding_low, padding_high;
};

std::optional<WeightGradMapping> MapToWeightGrad(const ConvGeometry& g) {
  const ir::ConvAttrs& a = g.attrs;
  if (a.feature_group_count != 1) return std::nullopt;
  WeightGradMapping m;
  std::vector<int64_t> src_axes = {a.input_feature_axis, a.input_batch_axis};
  std::vector<int64_t> dst_axes = {a.kernel_input_feature_axis, a.kernel_output_feature_axis};
  std::vector<int64_t> w_axes = {a.output_feature_axis, a.output_batch_axis};
  src_axes.insert(src_axes.end(), a.input_spatial_axes.begin(), a.input_spatial_axes.end());
  dst_axes.insert(dst_axes.end(), a.kernel_spatial_axes.begin(), a.kernel_spatial_axes.end());
  w_axes.insert(w_axes.end(), a.output_spatial_axes.begin(), a.output_spatial_axes.end());
  m.src = StridedDesc(g.input, g.in_strides, src_axes);
  m.diff_dst = StridedDesc(g.kernel, g.kernel_strides, dst_axes);
  m.diff_weights = StridedDesc(g.output, g.out_strides, w_axes);
  for (int i = 0; i < g.SpatialRank(); ++i) {
    const int64_t in = g.input.Dims()[a.input_spatial_axes[i]];
    const int64_t taps = g.output.Dims()[a.output_spatial_axes[i]];  // oneDNN's kernel size
    const int64_t out = g.kernel.Dims()[a.kernel_spatial_axes[i]];   // oneDNN's output size
    const int64_t stride = a.kernel_dilation[i], dilation = a.strides[i];
    const int64_t low = a.padding_low[i];
    // oneDNN: out = (in + low + high - ((taps - 1) * dilation + 1)) / stride + 1, rounding down.
    const int64_t min_high = (out - 1) * stride + (taps - 1) * dilation + 1 - in - low;
    const int64_t high = std::max<int64_t>(min_high, 0);
    if (high > min_high + stride - 1) return std::nullopt;
    m.strides.push_back(stride);
    m.dilation.push_back(dilation - 1);
    m.padding_low.push_back(low);
    m.padding_high.push_back(high);
  }
  return m;
}

// Whether the kernel has more spatial positions than the output: the shape
// of a kernel gradient, better run as a backward-weights convolution.
bool LooksLikeWeightGrad(const ConvGeometry& g) {
  int64_t kernel_taps = 1, output_positions = 1;
  for (int64_t axis : g.attrs.kernel_spatial_axes) kernel_taps *= g.kernel.Dims()[axis];
  for (int64_t axis : g.attrs.output_spatial_axes) output_positions *= g.output.Dims()[axis];
  return kernel_taps > output_positions;
}

// The backward-weights primitive for `m`, or nothing if oneDNN would run it
// on its slow reference implementation.
std::optional<DnnlConvCall> CreateDnnlWeightGrad(const WeightGradMapping& m) {
  // oneDNN chooses the backward implementation from a forward one (its hint).
  dnnl::convolution_forward::desc forward(dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
                                          AnyLayout(m.src), AnyLayout(m.diff_weights), AnyLayout(m.diff_dst),
                                          m.strides, m.dilation, m.padding_low, m.padding_high);
  dnnl::convolution_forward::primitive_desc hint(forward, dnnl_util::Engine());
  const auto pd = PreferOwnLayouts([&](bool own_layouts) {
    dnnl::convolution_backward_weights::desc desc(
        dnnl::algorithm::convolution_direct, own_layouts ? m.src : AnyLayout(m.src), AnyLayout(m.diff_weights),
        own_layouts ? m.diff_dst : AnyLayout(m.diff_dst), m.strides, m.dilation, m.padding_low, m.padding_high);
    return dnnl::convolution_backward_weights::primitive_desc(desc, dnnl_util::UserScratchpadAttr(),
                                                              dnnl_util::Engine(), hint);
  });
  if (dnnl_util::IsReferenceImpl(pd.impl_info_str())) return std::nullopt;
  return MakeCall(dnnl::convolution_backward_weights(pd), {DNNL_ARG_SRC, DNNL_ARG_DIFF_DST, DNNL_ARG_DIFF_WEIGHTS},
                  {m.src, m.diff_dst, m.diff_weights}, {pd.src_desc(), pd.diff_dst_desc(), pd.diff_weights_desc()},
                  pd.scratchpad_desc());
}

Kernel MakeDnnlConv(const ConvGeometry& g) {
  if (LooksLikeWeightGrad(g)) {
    if (std::optional<WeightGradMapping> m = MapToWeightGrad(g)) {
      try {
        if (std::optional<DnnlConvCall> grad = CreateDnnlWeightGrad(*m)) return MakeConvKernel(std::move(*grad));
      } catch (const dnnl::error&) {
        // Not expressible this way: the forward convolution below computes it.
      }
    }
  }
  return MakeConvKernel(CreateDnnlConv(g));
}

// ------------------------------------------------------------ Factory.

Kernel MakeConvGeneral(const ir::Function& fn, const ir::Instruction& instr) {
  const ConvGeometry g = MakeGeometry(fn, instr);
  const int64_t out_bytes = g.output.ByteSize();
  if (out_bytes == 0) return [](const void* const*, void*) {};
  if (g.input.Size() == 0 || g.kernel.Size() == 0) {  // every sum is empty
    return [out_bytes](const void* const*, void* out) { std::memset(out, 0, static_cast<size_t>(out_bytes)); };
  }
  if (FitsOneDnn(g)) {
    try {
      return MakeDnnlConv(g);
    } catch (const dnnl::error&) {
      // Unsupported by this oneDNN build or CPU: the direct kernel computes it.
    }
  }
  return DispatchDType(g.output.DType(), [&](auto zero) -> Kernel {
    using T = decltype(zero);
    if constexpr (std::is_same_v<T, bool>) {
      Throw("cpu ConvGeneral: Bool is not supported (" + instr.location + ")");
    } else {
      return MakeDirectConv<T>(g);
    }
  });
}

}  // namespace

void RegisterConvKernels(KernelTable& table) {
  table[static_cast<size_t>(ir::OpType::kConvGeneral)] = MakeConvGeneral;
}

}  // namespace kiln::backends::cpu
