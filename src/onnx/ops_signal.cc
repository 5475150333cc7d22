// Copyright 2026 The Kiln Authors.
// ONNX signal operators: DFT and STFT on Kiln's FFT (complex values stored
// as a trailing [re, im] axis, as ONNX does), the Hann/Hamming/Blackman
// windows and the mel filter bank matrix.
#include <cmath>
#include <numbers>

#include "kiln/graph/fft.h"
#include "kiln/graph/ops.h"
#include "kiln/graph/sort.h"
#include "src/onnx/converter.h"

namespace kiln::onnx::internal {
namespace {

using graph::Node;

// [..., 1] (real) or [..., 2] (re, im) -> a complex value without the last axis.
Node ToComplex(const OpContext& c, Node x) {
  if (!dtypes::IsFloat(x.DType())) c.Fail("the signal must be a float tensor");
  if (x.DType() != dtypes::Float32 && x.DType() != dtypes::Float64) x = graph::ConvertDType(x, dtypes::Float32);
  const int64_t parts = x.Shape().Dim(-1);
  const int last = x.Rank() - 1;
  if (parts == 1) {
    Node re = graph::Squeeze(x, {last});
    return graph::Complex(re, graph::ZerosLike(re));
  }
  if (parts != 2) c.Fail("the last axis must hold 1 (real) or 2 (complex) values, got " + x.Shape().ToString());
  return graph::Complex(graph::Squeeze(graph::SliceAxis(x, last, 0, 1), {last}),
                        graph::Squeeze(graph::SliceAxis(x, last, 1, 2), {last}));
}

// A complex value -> [..., 2] of `dtype`.
Node FromComplex(Node z, dtypes::DType dtype) {
  Node out = graph::Stack({graph::Real(z), graph::Imag(z)}, z.Rank());
  return out.DType() == dtype ? out : graph::ConvertDType(out, dtype);
}

// Swaps `axis` with the last axis (its own inverse).
Node SwapLast(Node x, int axis) {
  const int last = x.Rank() - 1;
  return axis == last ? x : graph::TransposeAxes(x, axis, last);
}

int64_t ScalarInt(OpContext& c, int i, const std::string& what) {
  const auto v = c.Ints(i, what);
  if (v.size() != 1) c.Fail(what + " must be a scalar");
  return v[0];
}

tensors::Tensor Window(OpContext& c, const std::function<double(double, double)>& fn) {
  const int64_t size = ScalarInt(c, 0, "size");
  if (size < 0) c.Fail("negative size");
  CheckTraceTimeSize(c, size, dtypes::Float64, "a window");
  const bool periodic = c.Int("periodic", 1) != 0;
  const double n = static_cast<double>(periodic ? size : size - 1);
  std::vector<double> w(static_cast<size_t>(size));
  for (int64_t k = 0; k < size; ++k) w[static_cast<size_t>(k)] = fn(static_cast<double>(k), n);
  return tensors::FromFlat<double>(shapes::Shape(dtypes::Float64, {size}), w);
}

dtypes::DType OutputDType(const OpContext& c) {
  const dtypes::DType d = DTypeFromOnnx(static_cast<int32_t>(c.Int("output_datatype", 1)));
  if (d == dtypes::Invalid) c.Fail("unsupported output_datatype");
  return d;
}

}  // namespace

void RegisterSignalOps() {
  using namespace graph;  // NOLINT
  constexpr double kPi = std::numbers::pi;

  RegisterOp("DFT", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    const int rank = x.Rank();
    // The axis counts in the input's rank r; valid: [-r, -2] and [0, r - 2].
    int64_t axis_attr = c.Int("axis", 1);
    if (axis_attr < 0) axis_attr += rank;
    if (axis_attr < 0 || axis_attr > rank - 2) c.Fail("axis " + std::to_string(c.Int("axis", 1)) + " is out of range");
    const int axis = static_cast<int>(axis_attr);
    const bool inverse = c.Int("inverse", 0) != 0, onesided = c.Int("onesided", 0) != 0;
    Node z = SwapLast(ToComplex(c, x), axis);
    const int last = z.Rank() - 1;
    const int64_t n = z.Shape().Dim(last);
    int64_t length = n;
    if (c.Has(1)) length = ScalarInt(c, 1, "dft_length");
    if (length <= 0) c.Fail("dft_length must be positive");
    if (length < n) z = SliceAxis(z, last, 0, length);
    if (length > n) {
      std::vector<int64_t> lo(static_cast<size_t>(z.Rank()), 0), hi(lo);
      hi.back() = length - n;
      z = Pad(z, ScalarLike(z, 0), lo, hi);
    }
    Node y = inverse ? IFFT(z, 1) : FFT(z, 1);
    if (onesided) y = SliceAxis(y, last, 0, length / 2 + 1);
    return {FromComplex(SwapLast(y, axis), x.DType())};
  });
  RegisterOp("STFT", [](OpContext& c) -> std::vector<Out> {
    Node x = c.In(0);
    if (x.Rank() != 3) c.Fail("the signal must be [batch, length, 1 or 2]");
    const int64_t step = ScalarInt(c, 1, "frame_step");
    Node window = c.InOr(2);
    int64_t frame = -1;
    if (c.Has(3)) frame = ScalarInt(c, 3, "frame_length");
    if (window.Ok()) {
      if (window.Rank() != 1) c.Fail("window must be 1-D");
      if (frame < 0) frame = window.Shape().Dim(0);
      if (frame != window.Shape().Dim(0)) c.Fail("window and frame_length disagree");
    }
    const int64_t len = x.Shape().Dim(1);
    if (frame < 0) frame = len;  // neither window nor frame_length: one frame of the whole signal
    if (frame <= 0 || step <= 0) c.Fail("frame_length and frame_step must be positive");
    if (frame > len) c.Fail("frame_length is longer than the signal");
    const int64_t frames = 1 + (len - frame) / step;
    CheckTraceTimeSize(c, CheckedMul(c, frames, frame), dtypes::Int64, "the STFT's frame indices");
    Node z = ToComplex(c, x);  // [batch, len]
    std::vector<int64_t> idx(static_cast<size_t>(frames * frame));
    for (int64_t f = 0; f < frames; ++f) {
      for (int64_t k = 0; k < frame; ++k) idx[static_cast<size_t>(f * frame + k)] = f * step + k;
    }
    Node id = Const(z.Graph(), tensors::FromFlat<int64_t>(shapes::Shape(dtypes::Int64, {frames * frame}), idx));
    ir::GatherAttrs a;
    a.index_vector_dim = 1;
    a.start_index_map = {1};
    a.collapsed_slice_dims = {1};
    a.slice_sizes = {z.Shape().Dim(0), 1};
    a.offset_dims = {0};
    Node framed = Reshape(Gather(z, id, a), {z.Shape().Dim(0), frames, frame});
    if (window.Ok()) {
      Node w = ConvertDType(window, RealPart(z.DType()));
      framed = framed * Complex(w, ZerosLike(w));
    }
    Node y = FFT(framed, 1);
    const bool onesided = c.Int("onesided", 1) != 0;
    if (onesided) y = SliceAxis(y, 2, 0, frame / 2 + 1);
    return {FromComplex(y, x.DType())};
  });
  RegisterOp("HannWindow", [](OpContext& c) -> std::vector<Out> {
    return {ConvertDType(Const(c.G(), Window(c, [](double k, double n) { return 0.5 - 0.5 * std::cos(2 * kPi * k / n); })),
                         OutputDType(c))};
  });
  RegisterOp("HammingWindow", [](OpContext& c) -> std::vector<Out> {
    const double a0 = 25.0 / 46.0;
    return {ConvertDType(
        Const(c.G(), Window(c, [a0](double k, double n) { return a0 - (1 - a0) * std::cos(2 * kPi * k / n); })),
        OutputDType(c))};
  });
  RegisterOp("BlackmanWindow", [](OpContext& c) -> std::vector<Out> {
    return {ConvertDType(Const(c.G(), Window(c, [](double k, double n) {
                                 return 0.42 - 0.5 * std::cos(2 * kPi * k / n) + 0.08 * std::cos(4 * kPi * k / n);
                               })),
                         OutputDType(c))};
  });
  RegisterOp("MelWeightMatrix", [](OpContext& c) -> std::vector<Out> {
    const int64_t mels = ScalarInt(c, 0, "num_mel_bins"), dft = ScalarInt(c, 1, "dft_length");
    const int64_t rate = ScalarInt(c, 2, "sample_rate");
    const auto lo = c.Doubles(3, "lower_edge_hertz"), hi = c.Doubles(4, "upper_edge_hertz");
    if (mels <= 0 || dft <= 0 || rate <= 0 || lo.size() != 1 || hi.size() != 1) c.Fail("invalid arguments");
    const int64_t bins = dft / 2 + 1;
    if (mels > (int64_t{1} << 20) || bins > (int64_t{1} << 20)) c.Fail("num_mel_bins or dft_length is too large");
    CheckTraceTimeSize(c, bins * mels, dtypes::Float64, "a mel weight matrix");
    const double lo_mel = 2595 * std::log10(1 + lo[0] / 700), hi_mel = 2595 * std::log10(1 + hi[0] / 700);
    const double step = (hi_mel - lo_mel) / static_cast<double>(mels + 2);
    std::vector<int64_t> f(static_cast<size_t>(mels + 2));
    for (int64_t i = 0; i < mels + 2; ++i) {
      const double hz = 700 * (std::pow(10.0, (static_cast<double>(i) * step + lo_mel) / 2595) - 1);
      f[static_cast<size_t>(i)] = ToIndex(c, std::floor(static_cast<double>(dft + 1) * hz / static_cast<double>(rate)), "a mel band edge");
    }
    std::vector<double> w(static_cast<size_t>(bins * mels), 0.0);
    auto at = [&](int64_t j, int64_t i) -> double& {
      if (j < 0 || j >= bins) c.Fail("the mel bands exceed the spectrum (upper_edge_hertz above sample_rate / 2)");
      return w[static_cast<size_t>(j * mels + i)];
    };
    for (int64_t i = 0; i < mels; ++i) {
      const int64_t left = f[i], center = f[i + 1], right = f[i + 2];
      if (center == left) {
        at(center, i) = 1;
      } else {
        for (int64_t j = left; j <= center; ++j) at(j, i) = static_cast<double>(j - left) / static_cast<double>(center - left);
      }
      if (right > center) {
        for (int64_t j = center; j < right; ++j) at(j, i) = static_cast<double>(right - j) / static_cast<double>(right - center);
      }
    }
    return {ConvertDType(Const(c.G(), tensors::FromFlat<double>(shapes::Shape(dtypes::Float64, {bins, mels}), w)),
                         OutputDType(c))};
  });
}

}  // namespace kiln::onnx::internal
