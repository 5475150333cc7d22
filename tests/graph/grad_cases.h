// Copyright 2026 The Kiln Authors.
// The table of gradient cases: each differentiable op (or a structural
// option of it) with Float64 inputs, checked against central finite
// differences. gradient_test.cc runs them all on every backend and fails if
// a differentiable op of the op table has no case.
#pragma once

#include <string>
#include <vector>

#include "tests/testing/gradcheck.h"

namespace kiln::testing {

struct GradCase {
  ir::OpType op;          // the op whose VJP rule the case exercises
  std::string name;       // unique, e.g. "Pow at 0"
  GraphFn fn;             // builds the output from the parameters
  std::vector<tensors::Tensor> args;
  GradCheckOptions options = {};
};

/// A Float64 tensor of `dims` holding `values` (row-major).
inline tensors::Tensor Values(std::vector<int64_t> dims, const std::vector<double>& values) {
  return FromDoubles(shapes::Shape(dtypes::Float64, std::move(dims)), values);
}

// One function per op family (tests/graph/grad_cases_*.cc).
std::vector<GradCase> ElementwiseGradCases();
std::vector<GradCase> LayoutGradCases();
std::vector<GradCase> ReduceGradCases();
std::vector<GradCase> DotConvGradCases();
std::vector<GradCase> GatherGradCases();
std::vector<GradCase> ControlFlowGradCases();
std::vector<GradCase> LinalgGradCases();
std::vector<GradCase> ComplexGradCases();
std::vector<GradCase> CollectiveGradCases();

/// Ops without a gradient and why (integer/bool results, index outputs...).
struct NonDifferentiable {
  ir::OpType op;
  const char* reason;
};
const std::vector<NonDifferentiable>& NonDifferentiableOps();

}  // namespace kiln::testing
