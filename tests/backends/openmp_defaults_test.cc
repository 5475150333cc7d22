// Copyright 2026 The Kiln Authors.
// ApplyOpenMpDefaults' decision: set GOMP_SPINCOUNT=10000 only when the user
// chose no OpenMP wait policy.
#include "kiln/backends/openmp_defaults.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

namespace kiln {
namespace {

TEST(OpenMpDefaults, SetsTheSpinCountOnlyWithoutAUserChoice) {
  unsetenv("GOMP_SPINCOUNT");
  unsetenv("OMP_WAIT_POLICY");
  EXPECT_TRUE(backends::internal::SetOpenMpDefaultsInEnvironment());
  ASSERT_NE(std::getenv("GOMP_SPINCOUNT"), nullptr);
  EXPECT_EQ(std::string(std::getenv("GOMP_SPINCOUNT")), "10000");
  // Already set (by us or the user): nothing to do, no restart.
  EXPECT_FALSE(backends::internal::SetOpenMpDefaultsInEnvironment());

  setenv("GOMP_SPINCOUNT", "5", 1);
  EXPECT_FALSE(backends::internal::SetOpenMpDefaultsInEnvironment());
  EXPECT_EQ(std::string(std::getenv("GOMP_SPINCOUNT")), "5");

  unsetenv("GOMP_SPINCOUNT");
  setenv("OMP_WAIT_POLICY", "passive", 1);
  EXPECT_FALSE(backends::internal::SetOpenMpDefaultsInEnvironment());
  EXPECT_EQ(std::getenv("GOMP_SPINCOUNT"), nullptr);
  unsetenv("OMP_WAIT_POLICY");
}

}  // namespace
}  // namespace kiln
