// Copyright 2026 The Kiln Authors.
// One representative case per op of the op set, buildable for any dtype:
// the op-coverage test runs every (op, dtype) pair the graph layer accepts
// on every backend, and the op_coverage tool (op_coverage_main.cc) prints the coverage table.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "kiln/kiln.h"

namespace kiln::testing {

/// Builds one instance of an op on inputs of `dtype` (inputs are constants
/// made inside the graph). Throws kiln::Error if the op rejects the dtype.
struct OpCase {
  ir::OpType op;
  std::function<graph::Node(graph::Graph* g, dtypes::DType dtype)> build;
};

/// One case for every op except Parameter and Constant (present in every graph).
const std::vector<OpCase>& OpCases();

/// Outcome of building and running one case.
enum class Coverage { kRuns, kRejectedByGraph, kFails };

/// Builds the case for `dtype`, compiles it on `backend` and runs it.
/// `detail` receives the error message when not kRuns.
Coverage TryCase(const OpCase& c, dtypes::DType dtype, const std::shared_ptr<backends::Backend>& backend,
                 std::string* detail);

}  // namespace kiln::testing
