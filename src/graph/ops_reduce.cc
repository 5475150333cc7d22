// Copyright 2026 The Kiln Authors.
// Definitions (operand checks and shape rules) of the reductions: Reduce*
// and ArgMinMax.
#include "src/graph/op_builder.h"

namespace kiln::graph {}  // namespace kiln::graph
