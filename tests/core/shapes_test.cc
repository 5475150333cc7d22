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

// Issue 10, finding 4: sizes that overflow int64 used to wrap (a 2^62-float
// tensor had ByteSize() 0 and a heap overflow behind it).
TEST(Shapes, SizesThatOverflowInt64AreErrors) {
  constexpr int64_t k2p32 = int64_t{1} << 32, k2p62 = int64_t{1} << 62;
  try {
    shapes::Make(dtypes::Float32, k2p62);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "Shape Float32[4611686018427387904]: its size in bytes overflows int64 (at most 2^63 - 1 bytes)");
  }
  EXPECT_THROW(shapes::Make(dtypes::Float32, k2p32, k2p32), Error);
  EXPECT_THROW(shapes::Make(dtypes::Int8, k2p32, k2p32), Error);  // 2^64 elements
  // The largest that fit.
  EXPECT_EQ(shapes::Make(dtypes::Int8, k2p62, 1).ByteSize(), k2p62);
  EXPECT_EQ(shapes::Make(dtypes::Float32, k2p32, int64_t{1} << 28).ByteSize(), k2p62);
  EXPECT_THROW(shapes::Make(dtypes::Float32, k2p32, int64_t{1} << 29), Error);  // exactly 2^63 bytes
  // Empty shapes are fine whatever their other dimensions, and exact.
  auto empty = shapes::Make(dtypes::Float32, k2p32, k2p32, 0);
  EXPECT_EQ(empty.Size(), 0);
  EXPECT_EQ(empty.ByteSize(), 0);
  EXPECT_EQ(shapes::Make(dtypes::Float32, 0, k2p32, k2p32).Size(), 0);
  EXPECT_EQ(shapes::Strides({0, k2p32, k2p32}).back(), 1);  // no signed overflow (UBSan checks)
}

}  // namespace
}  // namespace kiln
