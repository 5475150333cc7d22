// Copyright 2026 The Kiln Authors.
// Copying rows (axis-0 slices) of host tensors, for the datasets (internal).
#pragma once

#include <cstdint>
#include <vector>

#include "kiln/core/tensors.h"

namespace kiln::ml::datasets::internal {

/// A new tensor with rows [first, first + count) of `source`, or the rows
/// order[first..first + count) when `order` is not empty. Rows are copied as
/// raw bytes, so every dtype works.
tensors::Tensor GatherRows(const tensors::Tensor& source, const std::vector<int64_t>& order, int64_t first,
                           int64_t count);

}  // namespace kiln::ml::datasets::internal
