// Copyright 2026 The Kiln Authors.
// The CPU Sort kernel: permutes several arrays together along one axis, by
// built-in keys (encoded as unsigned integers in the total order of
// ir::SortAttrs, then sorted with the element index as the last key, which
// makes the result stable) or by a comparator callback.
#pragma once

#include <cstddef>
#include <functional>
#include <vector>

#include "kiln/ir/function.h"

namespace kiln::backends::cpu {

/// Whether the element with bytes lhs[i] (one pointer per operand) goes
/// before the element with bytes rhs[i].
using ElementLess = std::function<bool(const std::vector<const std::byte*>& lhs,
                                       const std::vector<const std::byte*>& rhs)>;

/// Sorts `inputs` (arrays of `dims`, dtypes `dtypes`) together along
/// attrs.axis into `outputs` (same shapes, distinct buffers), by attrs.keys
/// or, when `less` is given, by it (then serially: it may run an executable).
/// Only the first `prefix` positions along the axis are written, in order:
/// top-k reads no more, and a partial sort is O(n log k); the rest of the
/// outputs is left as it was. With a comparator the whole axis is sorted.
void SortAlongAxis(const ir::SortAttrs& attrs, const std::vector<int64_t>& dims,
                   const std::vector<dtypes::DType>& dtypes, const std::vector<const void*>& inputs,
                   const std::vector<void*>& outputs, const ElementLess* less, int64_t prefix);

}  // namespace kiln::backends::cpu
