// Copyright 2026 The Kiln Authors.
// KILN_CPU_PROFILE=1: a CPU executable prints its per-step times when it is
// destroyed, naming each step's op, shape and the caller's line; nothing
// is printed without the variable.
#include <gtest/gtest.h>

#include <string>

#include "kiln/kiln.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

// Compiles and runs (twice) a small graph on the CPU backend, destroys the
// executable, and returns what was printed to stderr meanwhile.
std::string RunAndCaptureProfile() {
  ::testing::internal::CaptureStderr();
  {
    auto backend = backends::NewWithName("cpu");
    auto shape = shapes::Make(dtypes::Float32, 64, 32);
    auto exec = graph::Compile(backend, [&](graph::Graph* g) {
      graph::Node x = graph::Parameter(g, "x", shape);
      return graph::ReduceSum(graph::Exp(x) * 2.0f, -1);
    });
    tensors::Tensor x(shape);
    exec.Call(x);
    exec.Call(x);
  }
  return ::testing::internal::GetCapturedStderr();
}

TEST(CpuProfile, PrintsEachStepWithOpShapeAndCaller) {
  std::string out;
  {
    testing::ScopedEnv env("KILN_CPU_PROFILE", "1");
    out = RunAndCaptureProfile();
  }
  EXPECT_NE(out.find("kiln cpu profile of"), std::string::npos) << out;
  EXPECT_NE(out.find("2 executions"), std::string::npos) << out;
  EXPECT_NE(out.find("ReduceSum -> Float32[64] of Float32[64, 32] (profile_test.cc:"), std::string::npos) << out;
  EXPECT_NE(out.find("fused 2 ops -> Float32[64, 32]: Exp Mul"), std::string::npos) << out;
}

TEST(CpuProfile, SilentByDefault) {
  testing::ScopedEnv env("KILN_CPU_PROFILE", "0");
  EXPECT_EQ(RunAndCaptureProfile().find("kiln cpu profile"), std::string::npos);
}

}  // namespace
}  // namespace kiln
