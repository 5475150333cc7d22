// Copyright 2026 The Kiln Authors.
// The CPU backend flushes subnormal floats to zero (FTZ/DAZ) while it runs,
// on every thread of a parallel kernel, and leaves the caller's
// floating-point mode as it was.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "kiln/kiln.h"
#include "tests/testing/testing.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace kiln {
namespace {

using graph::Node;
using tensors::Tensor;

std::shared_ptr<backends::Backend> Cpu() { return backends::NewWithName("cpu"); }

TEST(CpuDenormals, SubnormalResultsAndInputsAreZero) {
  // Start the OpenMP workers now, outside any execution, so they do not
  // inherit the executing thread's mode: the backend must set theirs.
#pragma omp parallel
  { [[maybe_unused]] volatile int started = 1; }
  // Large enough that every OpenMP thread computes part of it.
  const int64_t n = int64_t{1} << 20;
  const float tiny = std::numeric_limits<float>::denorm_min() * 1000;  // a subnormal
  Tensor x = tensors::FromFlat(shapes::Make(dtypes::Float32, n), std::vector<float>(n, 1e-30f));
  Tensor s = tensors::FromFlat(shapes::Make(dtypes::Float32, n), std::vector<float>(n, tiny));
  auto outs = testing::Run(
      Cpu(),
      [](const std::vector<Node>& p) {
        return std::vector<Node>{p[0] * 1e-10f,                                  // 1e-40: subnormal result
                                 p[1] + 0.0f,                                    // subnormal input
                                 graph::ConvertDType(graph::GreaterThan(p[1], graph::ScalarLike(p[1], 0)), dtypes::Float32)};
      },
      {x, s});
  for (const Tensor& t : outs) {
    for (float v : t.Flat<float>()) ASSERT_EQ(v, 0.0f);
  }
}

TEST(CpuDenormals, NormalValuesAreUnchanged) {
  Tensor got = testing::Run1(Cpu(), [](const std::vector<Node>& p) { return p[0] * 1e-10f; },
                             {tensors::FromValue(std::vector<float>{1e-20f, 3.0f})});
  EXPECT_TRUE(testing::AllClose(got, got.Shape(), {1e-30, 3e-10}, 1e-6, 0));
}

#if defined(__x86_64__) || defined(__i386__)
TEST(CpuDenormals, CallersFloatingPointModeIsRestored) {
  const unsigned before = _mm_getcsr();
  testing::Run1(Cpu(), [](const std::vector<Node>& p) { return p[0] * 2.0f; },
                {tensors::FromValue(std::vector<float>{1, 2})});
  EXPECT_EQ(_mm_getcsr(), before);
  // And this thread still computes subnormals itself.
  volatile float a = 1e-30f, b = 1e-10f;
  EXPECT_GT(a * b, 0.0f);
}
#endif

}  // namespace
}  // namespace kiln
