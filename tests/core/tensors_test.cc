// Copyright 2026 The Kiln Authors.
#include "kiln/core/tensors.h"

#include <gtest/gtest.h>

#include "kiln/backends/backend.h"

namespace kiln {
namespace {

using tensors::Tensor;

TEST(Tensors, ScalarRoundTrip) {
  Tensor t = tensors::FromValue(3.5f);
  EXPECT_EQ(t.Shape(), shapes::Make(dtypes::Float32));
  EXPECT_EQ(t.Value<float>(), 3.5f);
  EXPECT_EQ(tensors::FromValue(int64_t{-7}).Value<int64_t>(), -7);
  EXPECT_EQ(tensors::FromValue(true).Value<bool>(), true);
}

TEST(Tensors, VectorsAndNestedVectors) {
  Tensor v = tensors::FromValue(std::vector<float>{1, 2, 3});
  EXPECT_EQ(v.Shape(), shapes::Make(dtypes::Float32, 3));
  EXPECT_EQ(v.Value<std::vector<float>>(), (std::vector<float>{1, 2, 3}));
  std::vector<std::vector<int32_t>> m = {{1, 2, 3}, {4, 5, 6}};
  Tensor t = tensors::FromValue(m);
  EXPECT_EQ(t.Shape(), shapes::Make(dtypes::Int32, 2, 3));
  EXPECT_EQ(t.Value<std::vector<std::vector<int32_t>>>(), m);
  EXPECT_EQ(t.ToString(), "Int32[2, 3]{{1, 2, 3}, {4, 5, 6}}");
  Tensor b = tensors::FromValue(std::vector<bool>{true, false});
  EXPECT_EQ(b.Value<std::vector<bool>>(), (std::vector<bool>{true, false}));
}

TEST(Tensors, EmptyVector) {
  Tensor t = tensors::FromValue(std::vector<std::vector<double>>{});
  EXPECT_EQ(t.Shape(), shapes::Make(dtypes::Float64, 0, 0));
  EXPECT_TRUE(t.Value<std::vector<std::vector<double>>>().empty());
}

TEST(Tensors, FromFlat) {
  std::vector<double> data = {1, 2, 3, 4, 5, 6};
  Tensor t = tensors::FromFlat(shapes::Make(dtypes::Float64, 3, 2), data);
  EXPECT_EQ(t.Value<std::vector<std::vector<double>>>(),
            (std::vector<std::vector<double>>{{1, 2}, {3, 4}, {5, 6}}));
  EXPECT_EQ(t.Flat<double>()[5], 6.0);
}

TEST(Tensors, Errors) {
  Tensor t = tensors::FromValue(std::vector<float>{1, 2});
  try {
    t.Value<double>();
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "Tensor::Value: tensor Float32[2] holds Float32, not Float64");
  }
  try {
    t.Value<std::vector<std::vector<float>>>();
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "Value: tensor Float32[2] has rank 1 but the requested C++ type has rank 2");
  }
  try {
    tensors::FromValue(std::vector<std::vector<float>>{{1, 2}, {3}});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "FromValue: ragged nested vector: axis 1 has length 1 where an earlier row has 2");
  }
  try {
    tensors::FromFlat(shapes::Make(dtypes::Float32, 3), std::vector<float>{1, 2});
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "FromFlat: 2 values for shape Float32[3] which holds 3");
  }
  EXPECT_THROW(Tensor().Shape(), Error);
}

// Issue 10, finding 5: printing an empty tensor with huge dimensions printed
// one "{}" per empty row (67 MB for [2^24, 0]) or never returned.
TEST(Tensors, EmptyTensorsWithHugeDimensionsPrintAtOnce) {
  EXPECT_EQ(Tensor(shapes::Make(dtypes::Float32, int64_t{1} << 24, 0)).ToString(), "Float32[16777216, 0]{}");
  EXPECT_EQ(Tensor(shapes::Make(dtypes::Float32, int64_t{1} << 32, int64_t{1} << 32, 0)).ToString(),
            "Float32[4294967296, 4294967296, 0]{}");
  EXPECT_EQ(Tensor(shapes::Make(dtypes::Int32, 0)).ToString(), "Int32[0]{}");
  // Non-empty tensors still print their first elements, then "...".
  const std::string big = Tensor(shapes::Make(dtypes::Int8, 1000, 1000)).ToString();
  EXPECT_LT(big.size(), 1000u);
  EXPECT_NE(big.find("..."), std::string::npos);
}

// Issue 10, finding 4: a tensor whose byte size overflows cannot be made.
TEST(Tensors, OverflowingShapesCannotBeAllocated) {
  EXPECT_THROW(Tensor(shapes::Make(dtypes::Float32, int64_t{1} << 62)), Error);
}

TEST(Tensors, CopyOnWrite) {
  Tensor a = tensors::FromValue(std::vector<int32_t>{1, 2, 3});
  Tensor b = a;  // shares the value
  EXPECT_TRUE(a.SameAs(b));
  b.MutableFlat<int32_t>()[0] = 100;  // both handles see it: same value
  EXPECT_EQ(a.Value<std::vector<int32_t>>()[0], 100);
}

TEST(Tensors, MovesToBackendLazilyAndBack) {
  auto backend = backends::NewWithName("cpu");
  Tensor t = tensors::FromValue(std::vector<float>{1, 2, 3});
  EXPECT_TRUE(t.IsOnHost());
  EXPECT_FALSE(t.IsOn(*backend));
  auto buffer = t.BufferFor(*backend);
  EXPECT_TRUE(t.IsOn(*backend));
  EXPECT_EQ(buffer, t.BufferFor(*backend));  // cached
  Tensor u = Tensor::FromBuffer(buffer);
  EXPECT_EQ(u.Value<std::vector<float>>(), (std::vector<float>{1, 2, 3}));
  // Writing to the host drops the device copy.
  t.MutableFlat<float>()[1] = 5;
  EXPECT_FALSE(t.IsOn(*backend));
  EXPECT_EQ(u.Value<std::vector<float>>()[1], 2.0f);  // the buffer was not changed
}

}  // namespace
}  // namespace kiln
