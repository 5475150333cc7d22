// Copyright 2026 The Kiln Authors.
// Walks the whole op table: every op has a case, and every (op, dtype) pair
// the graph layer accepts compiles and runs on every backend.
#include <set>

#include "tests/testing/op_cases.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

TEST(OpCoverage, EveryOpHasACase) {
  std::set<ir::OpType> covered;
  for (const auto& c : testing::OpCases()) covered.insert(c.op);
  for (int i = 0; i < ir::kNumOpTypes; ++i) {
    auto op = static_cast<ir::OpType>(i);
    if (op == ir::OpType::kParameter || op == ir::OpType::kConstant) continue;
    EXPECT_TRUE(covered.contains(op)) << "no coverage case for op " << ir::OpName(op);
  }
}

class OpCoverage : public ::testing::TestWithParam<std::string> {};

// The ops a backend declares it lacks (Capabilities), each listed here on
// purpose: none. The CUDA backend (and "cuda-emu", its programs on the
// host) has every op, Attention and AttentionGrad as fused kernels and the
// collectives staged through the host.
bool KnownGap(const std::string&, ir::OpType) { return false; }

// The dtypes a backend declares it lacks: none (every backend has them all).
bool KnownDTypeGap(const std::string&, dtypes::DType) { return false; }

TEST_P(OpCoverage, EveryAcceptedDTypeRuns) {
  auto backend = backends::NewWithName(GetParam());
  for (const auto& c : testing::OpCases()) {
    const bool supported = backend->GetCapabilities().SupportsOp(c.op);
    EXPECT_EQ(supported, !KnownGap(GetParam(), c.op))
        << GetParam() << (supported ? " now implements " : " lacks ") << ir::OpName(c.op)
        << ": update KnownGap in this test";
    if (!supported) continue;
    int runs = 0;
    for (dtypes::DType dt : dtypes::kAll) {
      const bool has_dtype = backend->GetCapabilities().SupportsDType(dt);
      EXPECT_EQ(has_dtype, !KnownDTypeGap(GetParam(), dt))
          << GetParam() << (has_dtype ? " now supports " : " lacks ") << dtypes::Name(dt)
          << ": update KnownDTypeGap in this test";
      if (!has_dtype) continue;
      std::string detail;
      switch (testing::TryCase(c, dt, backend, &detail)) {
        case testing::Coverage::kRuns: ++runs; break;
        case testing::Coverage::kRejectedByGraph: break;
        case testing::Coverage::kFails:
          ADD_FAILURE() << ir::OpName(c.op) << " x " << dtypes::Name(dt) << " is accepted by the graph layer but fails on "
                        << GetParam() << ": " << detail;
          break;
      }
    }
    EXPECT_GT(runs, 0) << ir::OpName(c.op) << " runs for no dtype";
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, OpCoverage, ::testing::ValuesIn(testing::BackendNames()));

}  // namespace
}  // namespace kiln
