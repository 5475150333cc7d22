// Copyright 2026 The Kiln Authors.
// Umbrella header: everything a Kiln user needs.
#pragma once

#include "kiln/backends/backend.h"
#include "kiln/backends/openmp_defaults.h"
#include "kiln/context/checkpoints.h"
#include "kiln/context/context.h"
#include "kiln/context/exec.h"
#include "kiln/context/initializers.h"
#include "kiln/core/dtypes.h"
#include "kiln/core/error.h"
#include "kiln/core/shapes.h"
#include "kiln/core/tensors.h"
#include "kiln/graph/exec.h"
#include "kiln/graph/graph.h"
#include "kiln/graph/masked.h"
#include "kiln/graph/autodiff.h"
#include "kiln/graph/cumulative.h"
#include "kiln/graph/ops.h"
#include "kiln/graph/random.h"
#include "kiln/graph/resize.h"
#include "kiln/ir/function.h"
#include "kiln/version.h"
