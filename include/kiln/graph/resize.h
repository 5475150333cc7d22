// Copyright 2026 The Kiln Authors.
// Resizing along any axes with PyTorch's interpolation rules
// (torch.nn.functional.interpolate): nearest, linear (bilinear, trilinear
// when several axes are resized) and cubic (bicubic), with or without
// align_corners. Differentiable; runs on every backend.
#pragma once

#include <vector>

#include "kiln/graph/graph.h"

namespace kiln::graph {

/// How Resize computes a value between input samples.
enum class Interpolation {
  kNearest,  // the input sample at floor(o * in / out) (PyTorch's "nearest")
  kLinear,   // 2 taps per axis
  kCubic,    // 4 taps per axis, Keys' kernel with a = -0.75, border samples repeated
};

/// Options of Resize.
struct ResizeOptions {
  Interpolation method = Interpolation::kLinear;
  /// Linear and cubic only: the corner samples of input and output are
  /// aligned (source position o * (in - 1) / (out - 1)) rather than their
  /// areas ((o + 0.5) * in / out - 0.5).
  bool align_corners = false;
};

/// `x` resized along `axes` (negative count from the end) to `sizes`, one per
/// axis; other axes are unchanged. For an NHWC image batch:
///   Resize(images, {1, 2}, {224, 224}, {.method = Interpolation::kCubic}).
/// Nearest works on every dtype, linear and cubic on floats. Each axis is
/// resized by gathering its taps and adding them with constant weights, so
/// the cost is 1, 2 or 4 reads per output element and axis.
Node Resize(Node x, const std::vector<int>& axes, const std::vector<int64_t>& sizes, ResizeOptions options = {},
            Loc loc = Loc::current());

}  // namespace kiln::graph
