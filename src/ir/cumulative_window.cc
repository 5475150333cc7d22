// Copyright 2026 The Kiln Authors.
// AsCumulativeWindow (see cumulative_window.h).
#include "src/ir/cumulative_window.h"

namespace kiln::ir {

std::optional<CumulativeWindow> AsCumulativeWindow(const WindowAttrs& attrs, const std::vector<int64_t>& operand_dims) {
  const size_t rank = operand_dims.size();
  for (const auto* v : {&attrs.window_dimensions, &attrs.strides, &attrs.base_dilations, &attrs.window_dilations,
                        &attrs.padding_low, &attrs.padding_high}) {
    if (v->size() != rank) return std::nullopt;
  }
  std::optional<CumulativeWindow> found;
  for (size_t a = 0; a < rank; ++a) {
    if (attrs.strides[a] != 1 || attrs.base_dilations[a] != 1 || attrs.window_dilations[a] != 1) return std::nullopt;
    const int64_t w = attrs.window_dimensions[a], low = attrs.padding_low[a], high = attrs.padding_high[a];
    if (w == 1 && low == 0 && high == 0) continue;  // a unit window
    const int64_t n = operand_dims[a];
    if (found || w != n || n < 1) return std::nullopt;
    CumulativeWindow c{.axis = static_cast<int>(a)};
    if (low == n - 1 && high == 0) c = {static_cast<int>(a), false, false};
    else if (low == n && high == -1) c = {static_cast<int>(a), true, false};
    else if (low == 0 && high == n - 1) c = {static_cast<int>(a), false, true};
    else if (low == -1 && high == n) c = {static_cast<int>(a), true, true};
    else return std::nullopt;
    found = c;
  }
  return found;
}

}  // namespace kiln::ir
