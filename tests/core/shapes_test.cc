// Copyright 2026 The Kiln Authors.
#include "kiln/core/shapes.h"

#include <gtest/gtest.h>

#include <sstream>

#include "kiln/core/error.h"

namespace kiln {
namespace {

TEST(Shapes, MakeAndAccessors) {
  auto s = shapes::Make(dtypes::Float32, 32, 224, 224, 3);
  EXPECT_EQ(s.Rank(), 4);
  EXPECT_EQ(s.Dim(0), 32);
  EXPECT_EQ(s.Dim(-1), 3);
  EXPECT_EQ(s.Dim(-4), 32);
  EXPECT_EQ(s.Size(), 32 * 224 * 224 * 3);
  EXPECT_EQ(s.DType(), dtypes::Float32);
  EXPECT_EQ(s.ByteSize(), 4 * s.Size());
  std::ostringstream os;
  os << s;
  EXPECT_EQ(os.str(), "Float32[32, 224, 224, 3]");
}

TEST(Shapes, ScalarAndEmpty) {
  auto scalar = shapes::Make(dtypes::Float64);
  EXPECT_EQ(scalar.ToString(), "Float64");
  EXPECT_EQ(scalar.Rank(), 0);
  EXPECT_EQ(scalar.Size(), 1);
  auto empty = shapes::Make(dtypes::Int32, 3, 0);
  EXPECT_EQ(empty.Size(), 0);
  EXPECT_EQ(empty.ToString(), "Int32[3, 0]");
}

TEST(Shapes, Equality) {
  EXPECT_EQ(shapes::Make(dtypes::Float32, 2, 3), shapes::Make(dtypes::Float32, {2, 3}));
  EXPECT_NE(shapes::Make(dtypes::Float32, 2, 3), shapes::Make(dtypes::Float64, 2, 3));
  EXPECT_NE(shapes::Make(dtypes::Float32, 2, 3), shapes::Make(dtypes::Float32, 3, 2));
}

TEST(Shapes, Errors) {
  auto s = shapes::Make(dtypes::Float32, 2, 3);
  try {
    s.Dim(2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "axis 2 is out of range for shape Float32[2, 3] of rank 2");
  }
  EXPECT_THROW(s.Dim(-3), Error);
  try {
    shapes::Make(dtypes::Float32, 2, -1);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "Shape: dimension 1 is negative (-1)");
  }
}

}  // namespace
}  // namespace kiln
