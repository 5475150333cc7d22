// Copyright 2026 The Kiln Authors.
#include "kiln/core/dtypes.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <sstream>

#include "kiln/core/error.h"

namespace kiln {
namespace {

TEST(DTypes, NamesRoundTrip) {
  for (dtypes::DType d : dtypes::kAll) EXPECT_EQ(dtypes::FromName(dtypes::Name(d)), d);
  std::ostringstream os;
  os << dtypes::Float32 << " " << dtypes::BFloat16 << " " << dtypes::Uint64;
  EXPECT_EQ(os.str(), "Float32 BFloat16 Uint64");
}

TEST(DTypes, UnknownNameListsKnownOnes) {
  try {
    dtypes::FromName("Float128");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown dtype \"Float128\""), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("Float32"), std::string::npos) << e.what();
  }
}

TEST(DTypes, SizesAndClasses) {
  EXPECT_EQ(dtypes::SizeOf(dtypes::Bool), 1u);
  EXPECT_EQ(dtypes::SizeOf(dtypes::BFloat16), 2u);
  EXPECT_EQ(dtypes::SizeOf(dtypes::Int64), 8u);
  EXPECT_TRUE(dtypes::IsFloat(dtypes::Float16));
  EXPECT_FALSE(dtypes::IsFloat(dtypes::Int32));
  EXPECT_TRUE(dtypes::IsUnsignedInteger(dtypes::Uint16));
  EXPECT_FALSE(dtypes::IsInteger(dtypes::Bool));
  EXPECT_EQ(dtypes::DTypeOf<float>(), dtypes::Float32);
  EXPECT_EQ(dtypes::DTypeOf<uint8_t>(), dtypes::Uint8);
  EXPECT_EQ(dtypes::DTypeOf<bfloat16>(), dtypes::BFloat16);
}

TEST(Float16, RoundTripsExactValuesAndRoundsToNearestEven) {
  for (float f : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f /* min normal */, 5.960464477539063e-08f}) {
    EXPECT_EQ(static_cast<float>(float16(f)), f) << f;
  }
  // 1 + 2^-11 is halfway between 1 and 1 + 2^-10: rounds to even (1).
  EXPECT_EQ(static_cast<float>(float16(1.0f + std::ldexp(1.0f, -11))), 1.0f);
  EXPECT_EQ(static_cast<float>(float16(1.0f + 3 * std::ldexp(1.0f, -11))), 1.0f + std::ldexp(1.0f, -9));
  EXPECT_TRUE(std::isinf(static_cast<float>(float16(70000.0f))));
  EXPECT_TRUE(std::isnan(static_cast<float>(float16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_EQ(static_cast<float>(float16(1e-9f)), 0.0f);
}

TEST(BFloat16, RoundsToNearestEven) {
  EXPECT_EQ(static_cast<float>(bfloat16(1.0f)), 1.0f);
  EXPECT_EQ(static_cast<float>(bfloat16(3.140625f)), 3.140625f);
  // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: rounds to even (1).
  EXPECT_EQ(static_cast<float>(bfloat16(1.0f + std::ldexp(1.0f, -8))), 1.0f);
  EXPECT_TRUE(std::isnan(static_cast<float>(bfloat16(std::numeric_limits<float>::quiet_NaN()))));
  EXPECT_TRUE(std::isinf(static_cast<float>(bfloat16(std::numeric_limits<float>::infinity()))));
}

}  // namespace
}  // namespace kiln

namespace kiln {
namespace {

// The inline (F16C where available) and portable conversions agree on every
// half value and on rounding of floats between half values.
TEST(Float16, HardwareAndSoftwareConversionsAgree) {
  for (uint32_t bits = 0; bits <= 0xffff; ++bits) {
    const auto h = static_cast<uint16_t>(bits);
    float a = internal::HalfBitsToFloat(h), b = internal::HalfBitsToFloatSoftware(h);
    if (std::isnan(a)) {
      EXPECT_TRUE(std::isnan(b)) << bits;
      continue;
    }
    ASSERT_EQ(std::bit_cast<uint32_t>(a), std::bit_cast<uint32_t>(b)) << bits;
    // Halfway between this value and the next: both must round the same way.
    float next = internal::HalfBitsToFloatSoftware(static_cast<uint16_t>(h + 1));
    if (!std::isfinite(a) || !std::isfinite(next) || (h & 0x7fff) == 0x7bff) continue;
    for (float f : {a, (a + next) / 2, std::nextafter((a + next) / 2, next)}) {
      ASSERT_EQ(internal::FloatToHalfBits(f), internal::FloatToHalfBitsSoftware(f)) << f;
    }
  }
  EXPECT_EQ(internal::FloatToHalfBits(1e6f), internal::FloatToHalfBitsSoftware(1e6f));
}

}  // namespace
}  // namespace kiln
