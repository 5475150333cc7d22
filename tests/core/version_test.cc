// Copyright 2026 The Kiln Authors.
#include "kiln/version.h"

#include <gtest/gtest.h>

#include <string>

#include "kiln/kiln.h"

namespace kiln {
namespace {

// The library (Version(), compiled into libkiln) and the headers (the macros) carry the same version.
TEST(Version, LibraryMatchesHeaders) {
  EXPECT_STREQ(Version(), KILN_VERSION_STRING);
  EXPECT_EQ(std::string(KILN_VERSION_STRING), std::to_string(KILN_VERSION_MAJOR) + "." +
                                                  std::to_string(KILN_VERSION_MINOR) + "." +
                                                  std::to_string(KILN_VERSION_PATCH));
}

// The generated header carries project()'s version (passed by tests/CMakeLists.txt).
TEST(Version, IsTheProjectVersion) { EXPECT_STREQ(KILN_VERSION_STRING, KILN_PROJECT_VERSION); }

}  // namespace
}  // namespace kiln
