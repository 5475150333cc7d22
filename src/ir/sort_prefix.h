// Copyright 2026 The Kiln Authors.
// How much of a Sort its users read: TopK and BottomK slice the first k
// positions of a full Sort, so backends sort only that prefix.
#pragma once

#include <cstdint>

#include "kiln/ir/function.h"

namespace kiln::ir {

/// How many leading positions along its axis the users of Sort instruction
/// `sort` read: the largest limit of the Slices that are the only users of
/// its elements, or the whole axis.
int64_t SortPrefixNeeded(const Function& fn, int sort);

}  // namespace kiln::ir
