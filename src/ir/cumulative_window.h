// Copyright 2026 The Kiln Authors.
// Recognizes the windows of cumulative ops (CumSum, CumProd, CumMax, CumMin
// build ReduceWindows whose window spans a whole axis), so that backends run
// them as O(n) scans and autodiff uses O(n) gradients instead of treating
// them as n windows of n taps each.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "kiln/ir/function.h"

namespace kiln::ir {

/// A cumulative window along `axis`: output i combines the operand's
/// elements [0, i] (inclusive), [0, i) (exclusive), [i, n) (reverse) or
/// (i, n) (reverse exclusive), in increasing index order.
struct CumulativeWindow {
  int axis = 0;
  bool exclusive = false;
  bool reverse = false;
};

/// The cumulative form of a ReduceWindow or SelectAndScatter with `attrs`
/// (every field filled in) over an operand of `operand_dims`, or nullopt:
/// exactly one axis of n elements has a window of n with stride 1, no
/// dilation and padding (n - 1, 0), (n, -1), (0, n - 1) or (-1, n); every
/// other axis has a unit window (1, stride 1, no padding or dilation).
std::optional<CumulativeWindow> AsCumulativeWindow(const WindowAttrs& attrs, const std::vector<int64_t>& operand_dims);

}  // namespace kiln::ir
