// Copyright 2026 The Kiln Authors.
// Runs every gradient case against central finite differences in float64 and
// walks the op table: every op is either covered by a case or listed as
// non-differentiable with a reason.
#include <algorithm>
#include <iostream>
#include <map>
#include <set>

#include "tests/graph/grad_cases.h"

namespace kiln::testing {
namespace {

std::vector<GradCase> AllCases() {
  std::vector<GradCase> all;
  for (auto cases : {ElementwiseGradCases(), LayoutGradCases(), ReduceGradCases(), DotConvGradCases(),
                     GatherGradCases(), ControlFlowGradCases(), LinalgGradCases(), ComplexGradCases(),
                     CollectiveGradCases()}) {
    all.insert(all.end(), cases.begin(), cases.end());
  }
  return all;
}

TEST(GradientTable, EveryOpHasAGradientCaseOrAReason) {
  std::set<ir::OpType> covered;
  for (const auto& c : AllCases()) covered.insert(c.op);
  std::map<ir::OpType, std::string> excused;
  for (const auto& n : NonDifferentiableOps()) excused[n.op] = n.reason;
  for (int i = 0; i < ir::kNumOpTypes; ++i) {
    auto op = static_cast<ir::OpType>(i);
    EXPECT_TRUE(covered.contains(op) || excused.contains(op))
        << ir::OpName(op) << " has neither a gradient case nor a reason to have none";
    EXPECT_FALSE(covered.contains(op) && excused.contains(op))
        << ir::OpName(op) << " is both tested and listed as non-differentiable";
  }
}

TEST(GradientTable, CaseNamesAreUnique) {
  std::set<std::string> names;
  for (const auto& c : AllCases()) EXPECT_TRUE(names.insert(c.name).second) << "duplicate case " << c.name;
}

class GradientCases : public ::testing::TestWithParam<std::string> {};

TEST_P(GradientCases, MatchFiniteDifferences) {
  auto backend = backends::NewWithName(GetParam());
  int checked = 0;
  const std::vector<GradCase> cases = AllCases();
  for (const auto& c : cases) {
    // A declared gap (see op_coverage_test): the op, or the dtype of an
    // argument (complex numbers on CUDA).
    const backends::Capabilities& caps = backend->GetCapabilities();
    if (!caps.SupportsOp(c.op) ||
        std::any_of(c.args.begin(), c.args.end(), [&](const tensors::Tensor& a) { return !caps.SupportsDType(a.DType()); })) {
      continue;
    }
    SCOPED_TRACE(c.name);
    EXPECT_TRUE(CheckGradients(backend, c.fn, c.args, c.options)) << c.name;
    ++checked;
  }
  // Gaps are the exception: at least half the cases run on every backend
  // (CUDA lacks linear algebra, complex numbers and the collectives).
  std::cout << GetParam() << ": checked " << checked << " of " << cases.size() << " cases\n";
  EXPECT_GE(checked, static_cast<int>(cases.size()) / 2) << "of " << cases.size() << " cases";
}

INSTANTIATE_TEST_SUITE_P(Backends, GradientCases, ::testing::ValuesIn(BackendNames()));

}  // namespace
}  // namespace kiln::testing
