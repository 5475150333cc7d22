// Copyright 2026 The Kiln Authors.
// Definitions (operand checks and shape rules) of DotGeneral, ConvGeneral,
// ReduceWindow and SelectAndScatter.
#include "src/graph/op_builder.h"

namespace kiln::graph {}  // namespace kiln::graph
