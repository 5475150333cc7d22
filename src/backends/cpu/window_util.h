// Copyright 2026 The Kiln Authors.
// Window geometry along one axis, shared by the kernels of ReduceWindow,
// SelectAndScatter and the generic ConvGeneral.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::backends::cpu {

/// How a window slides along one axis (StableHLO reduce_window/convolution):
/// the input is dilated (base_dilation - 1 holes between elements), padded
/// (pad_low may be negative: it crops), and the window, itself dilated, starts
/// at output_index * stride in that padded input.
struct AxisWindow {
  int64_t input_size = 0, window_size = 1, stride = 1, pad_low = 0;
  int64_t base_dilation = 1, window_dilation = 1;
};

/// For each output coordinate of an axis, the window positions that land on
/// real input elements (not on padding or dilation holes), in window order.
struct AxisTaps {
  std::vector<int64_t> starts;        // output o's taps are [starts[o], starts[o + 1])
  std::vector<int64_t> window_index;  // position within the window
  std::vector<int64_t> input_index;   // index into the (undilated) input
};

/// Computes the taps of the `output_size` windows along an axis.
inline AxisTaps MakeAxisTaps(const AxisWindow& w, int64_t output_size) {
  AxisTaps taps;
  taps.starts.reserve(static_cast<size_t>(output_size) + 1);
  taps.starts.push_back(0);
  const int64_t dilated_input = w.input_size == 0 ? 0 : (w.input_size - 1) * w.base_dilation + 1;
  for (int64_t o = 0; o < output_size; ++o) {
    for (int64_t k = 0; k < w.window_size; ++k) {
      const int64_t p = o * w.stride + k * w.window_dilation - w.pad_low;  // position in the dilated input
      if (p < 0 || p >= dilated_input || p % w.base_dilation != 0) continue;
      taps.window_index.push_back(k);
      taps.input_index.push_back(p / w.base_dilation);
    }
    taps.starts.push_back(static_cast<int64_t>(taps.input_index.size()));
  }
  return taps;
}

}  // namespace kiln::backends::cpu
