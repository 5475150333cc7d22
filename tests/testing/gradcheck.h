// Copyright 2026 The Kiln Authors.
// Gradient checking against central finite differences in float64.
#pragma once

#include <functional>
#include <vector>

#include "tests/testing/testing.h"

namespace kiln::testing {

/// A function of graph nodes with one (float) output.
using GraphFn = std::function<graph::Node(const std::vector<graph::Node>&)>;

struct GradCheckOptions {
  double epsilon = 1e-6;  // finite-difference step
  double rtol = 1e-6;     // |analytic - numeric| <= atol + rtol * |numeric|
  double atol = 1e-8;
  /// Inputs (by index) not differentiated (e.g. integer indices).
  std::vector<int> skip = {};
};

/// Checks the gradients of L(args) = sum(Re(fn(args) * R)), R a fixed random
/// tensor (complex for a complex output), with respect to every Float64 and
/// Complex128 argument, against central finite differences of L (for complex
/// arguments, of each part). Returns a failure describing the worst element.
::testing::AssertionResult CheckGradients(const std::shared_ptr<backends::Backend>& backend, const GraphFn& fn,
                                          const std::vector<tensors::Tensor>& args, const GradCheckOptions& options = {});

}  // namespace kiln::testing
