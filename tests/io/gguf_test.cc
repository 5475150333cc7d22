// Copyright 2026 The Kiln Authors.
// The GGUF reader against files assembled byte by byte here from the format's
// specification: metadata of every value type, tensors of every type Kiln
// reads (Q8_0 and Q4_0 blocks dequantized against values worked out by hand),
// GGUF's innermost-first dimensions, listed-but-unread types, malformed
// files, and loading into a context.
#include "kiln/io/gguf.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "tests/testing/testing.h"

namespace kiln {
namespace {

namespace gguf = io::gguf;
namespace fs = std::filesystem;
using testing::AllClose;
using testing::FromDoubles;

// Little-endian byte assembly.
struct Bytes {
  std::string b;
  template <typename T>
  Bytes& Put(T v) {
    b.append(reinterpret_cast<const char*>(&v), sizeof(T));
    return *this;
  }
  Bytes& Str(const std::string& s) {
    Put<uint64_t>(s.size());
    b += s;
    return *this;
  }
};

struct TensorSpec {
  std::string name;
  std::vector<uint64_t> ne;  // innermost first
  uint32_t type;
  std::string data;
};

// A GGUF v3 file: header, metadata `kv` (already encoded: key, type, value),
// tensor infos, padding to `alignment`, data (each tensor padded too).
std::string Gguf(const std::string& kv, uint64_t kv_count, const std::vector<TensorSpec>& tensors,
                 uint64_t alignment = 32, uint32_t version = 3) {
  Bytes f;
  f.Put<uint32_t>(0x46554747).Put<uint32_t>(version).Put<uint64_t>(tensors.size()).Put<uint64_t>(kv_count);
  f.b += kv;
  std::string data;
  for (const TensorSpec& t : tensors) {
    f.Str(t.name).Put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t n : t.ne) f.Put<uint64_t>(n);
    f.Put<uint32_t>(t.type).Put<uint64_t>(data.size());
    data += t.data;
    data.append((alignment - data.size() % alignment) % alignment, '\0');
  }
  f.b.append((alignment - f.b.size() % alignment) % alignment, '\0');
  return f.b + data;
}

template <typename T>
std::string Raw(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));
}

uint16_t HalfBits(float f) { return float16(f).bits; }

class GgufTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_gguf_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  fs::path dir_;
};

TEST_F(GgufTest, MetadataOfEveryValueType) {
  Bytes kv;
  kv.Str("general.architecture").Put<uint32_t>(8).Str("llama");
  kv.Str("llama.block_count").Put<uint32_t>(4).Put<uint32_t>(32);
  kv.Str("a.i8").Put<uint32_t>(1).Put<int8_t>(-5);
  kv.Str("a.u64").Put<uint32_t>(10).Put<uint64_t>(1ull << 40);
  kv.Str("a.f32").Put<uint32_t>(6).Put<float>(0.25f);
  kv.Str("a.f64").Put<uint32_t>(12).Put<double>(-1.5);
  kv.Str("a.bool").Put<uint32_t>(7).Put<uint8_t>(1);
  // An array of strings and an array of arrays of int32.
  kv.Str("tokenizer.ggml.tokens").Put<uint32_t>(9).Put<uint32_t>(8).Put<uint64_t>(2).Str("<s>").Str("hi");
  kv.Str("a.nested").Put<uint32_t>(9).Put<uint32_t>(9).Put<uint64_t>(1).Put<uint32_t>(5).Put<uint64_t>(2);
  kv.Put<int32_t>(7).Put<int32_t>(-8);
  const std::string path = Write("meta.gguf", Gguf(kv.b, 9, {}));
  gguf::File file = gguf::File::Open(path);
  EXPECT_EQ(file.Version(), 3u);
  const auto& m = file.Metadata();
  EXPECT_EQ(m.at("general.architecture").AsString(), "llama");
  EXPECT_EQ(m.at("llama.block_count").AsInt(), 32);
  EXPECT_EQ(m.at("a.i8").AsInt(), -5);
  EXPECT_EQ(m.at("a.u64").AsInt(), int64_t{1} << 40);
  EXPECT_EQ(m.at("a.f32").AsFloat(), 0.25);
  EXPECT_EQ(m.at("a.f64").AsFloat(), -1.5);
  EXPECT_TRUE(m.at("a.bool").AsBool());
  ASSERT_EQ(m.at("tokenizer.ggml.tokens").AsArray().size(), 2u);
  EXPECT_EQ(m.at("tokenizer.ggml.tokens").AsArray()[1].AsString(), "hi");
  EXPECT_EQ(m.at("a.nested").AsArray()[0].AsArray()[1].AsInt(), -8);
  KILN_EXPECT_ERROR(m.at("a.f32").AsString(), "not a string");
  EXPECT_TRUE(file.Names().empty());
}

TEST_F(GgufTest, TensorsOfEveryReadTypeWithDimensionsReversed) {
  // Q8_0: a row of 64 (two blocks of 34 bytes), scales 0.5 and -3, q =
  // -16..15 and 15..-16.
  std::string q8;
  std::vector<double> q8_want;
  for (int b = 0; b < 2; ++b) {
    const float d = b == 0 ? 0.5f : -3.0f;
    q8 += Raw(std::vector<uint16_t>{HalfBits(d)});
    for (int j = 0; j < 32; ++j) {
      const int q = b == 0 ? j - 16 : 15 - j;
      q8 += static_cast<char>(static_cast<int8_t>(q));
      q8_want.push_back(d * q);
    }
  }
  // Q4_0: two blocks (rows of 32 and 2 rows), scales 0.25 and 2; byte j
  // holds value j (low nibble) and value j + 16 (high nibble), minus 8.
  std::string q4;
  std::vector<double> q4_want(64);
  for (int b = 0; b < 2; ++b) {
    const float d = b == 0 ? 0.25f : 2.0f;
    q4 += Raw(std::vector<uint16_t>{HalfBits(d)});
    for (int j = 0; j < 16; ++j) {
      const int lo = j, hi = 15 - j;
      q4 += static_cast<char>(lo | (hi << 4));
      q4_want[static_cast<size_t>(b * 32 + j)] = d * (lo - 8);
      q4_want[static_cast<size_t>(b * 32 + j + 16)] = d * (hi - 8);
    }
  }
  const std::vector<TensorSpec> tensors = {
      {"f32", {3, 2}, 0, Raw(std::vector<float>{1, 2, 3, 4, 5, 6})},
      {"f16", {2}, 1, Raw(std::vector<uint16_t>{HalfBits(1.5f), HalfBits(-2)})},
      {"bf16", {1}, 30, Raw(std::vector<uint16_t>{bfloat16(3.0f).bits})},
      {"i32", {2}, 26, Raw(std::vector<int32_t>{-7, 9})},
      {"f64", {1}, 28, Raw(std::vector<double>{0.125})},
      {"q8", {64}, 8, q8},
      {"q4", {32, 2}, 2, q4},
      {"q5k", {256}, 13, std::string(176, '\0')},
  };
  const std::string path = Write("tensors.gguf", Gguf("", 0, tensors));
  gguf::File file = gguf::File::Open(path);
  EXPECT_EQ(file.Names().size(), tensors.size());
  EXPECT_TRUE(AllClose(file.Get("f32"), shapes::Make(dtypes::Float32, 2, 3), {1, 2, 3, 4, 5, 6}, 0, 0));
  EXPECT_TRUE(AllClose(file.Get("f16"), shapes::Make(dtypes::Float16, 2), {1.5, -2}, 0, 0));
  EXPECT_TRUE(AllClose(file.Get("bf16"), shapes::Make(dtypes::BFloat16, 1), {3}, 0, 0));
  EXPECT_TRUE(AllClose(file.Get("i32"), shapes::Make(dtypes::Int32, 2), {-7, 9}, 0, 0));
  EXPECT_TRUE(AllClose(file.Get("f64"), shapes::Make(dtypes::Float64, 1), {0.125}, 0, 0));
  EXPECT_TRUE(AllClose(file.Get("q8"), shapes::Make(dtypes::Float32, 64), q8_want, 0, 0));
  EXPECT_TRUE(AllClose(file.Get("q4"), shapes::Make(dtypes::Float32, 2, 32), q4_want, 0, 0));
  EXPECT_EQ(file.TypeName("q4"), "Q4_0");
  EXPECT_EQ(file.TypeName("q5k"), "Q5_K");
  KILN_EXPECT_ERROR(file.Get("q5k"), "GGUF file " + path + ": tensor \"q5k\" has ggml type Q5_K, which Kiln does not read");
  KILN_EXPECT_ERROR(file.Get("nope"), "no tensor \"nope\"");
  KILN_EXPECT_ERROR(file.ShapeOf("q5k"), "tensor \"q5k\" has ggml type Q5_K, which Kiln does not read");
}

// The K-quants, encoded here from the layout the format documents (an
// encoder written independently of the reader's decoder): chosen 4-bit and
// 6-bit values, scales and mins must come back as d * scale * q - dmin * min.
TEST_F(GgufTest, KQuantsDecodeWhatTheLayoutEncodes) {
  // Q4_K, two super-blocks: 8 sub-blocks of 32 with 6-bit scales and mins.
  std::string q4k;
  std::vector<double> q4k_want;
  for (int blk = 0; blk < 2; ++blk) {
    const float d = blk == 0 ? 0.5f : 0.25f, dmin = blk == 0 ? 0.125f : 1.0f;
    int scale[8], min[8];
    for (int sub = 0; sub < 8; ++sub) {
      scale[sub] = (7 * sub + 13 * blk + 5) % 64;
      min[sub] = (11 * sub + 3 * blk + 60) % 64;
    }
    uint8_t packed[12] = {};
    for (int sub = 0; sub < 8; ++sub) {
      if (sub < 4) {
        packed[sub] |= static_cast<uint8_t>(scale[sub]);
        packed[sub + 4] |= static_cast<uint8_t>(min[sub]);
      } else {
        packed[sub + 4] = static_cast<uint8_t>((scale[sub] & 15) | ((min[sub] & 15) << 4));
        packed[sub - 4] |= static_cast<uint8_t>((scale[sub] >> 4) << 6);
        packed[sub] |= static_cast<uint8_t>((min[sub] >> 4) << 6);
      }
    }
    uint8_t qs[128] = {};
    std::vector<double> values(256);
    for (int p = 0; p < 256; ++p) {
      const int group = p / 64, nibble = (p / 32) % 2, l = p % 32, sub = p / 32;
      const int q = (p * 7 + blk) % 16;
      qs[32 * group + l] |= static_cast<uint8_t>(q << (4 * nibble));
      values[static_cast<size_t>(p)] = double{d} * scale[sub] * q - double{dmin} * min[sub];
    }
    q4k += Raw(std::vector<uint16_t>{HalfBits(d), HalfBits(dmin)});
    q4k += std::string(reinterpret_cast<const char*>(packed), 12) + std::string(reinterpret_cast<const char*>(qs), 128);
    q4k_want.insert(q4k_want.end(), values.begin(), values.end());
  }
  // Q6_K, one super-block: 6-bit values with int8 scales per 16.
  uint8_t low[128] = {}, high[64] = {};
  int8_t scales[16];
  for (int i = 0; i < 16; ++i) scales[i] = static_cast<int8_t>(i * 9 - 70);
  const float d6 = 0.0625f;
  std::vector<double> q6k_want(256);
  for (int p = 0; p < 256; ++p) {
    const int h = p / 128, k = (p / 32) % 4, l = p % 32;
    const int q = (p * 37 + 11) % 64;
    low[64 * h + l + (k % 2) * 32] |= static_cast<uint8_t>((q & 15) << (k < 2 ? 0 : 4));
    high[32 * h + l] |= static_cast<uint8_t>((q >> 4) << (2 * k));
    q6k_want[static_cast<size_t>(p)] = double{d6} * scales[8 * h + l / 16 + 2 * k] * (q - 32);
  }
  std::string q6k = std::string(reinterpret_cast<const char*>(low), 128) + std::string(reinterpret_cast<const char*>(high), 64) +
                    std::string(reinterpret_cast<const char*>(scales), 16) + Raw(std::vector<uint16_t>{HalfBits(d6)});
  const std::string path = Write("k.gguf", Gguf("", 0, {{"q4k", {256, 2}, 12, q4k}, {"q6k", {256}, 14, q6k}}));
  gguf::File file = gguf::File::Open(path);
  EXPECT_TRUE(AllClose(file.Get("q4k"), shapes::Make(dtypes::Float32, 2, 256), q4k_want, 1e-6, 1e-6));
  EXPECT_TRUE(AllClose(file.Get("q6k"), shapes::Make(dtypes::Float32, 256), q6k_want, 1e-6, 1e-6));
  KILN_EXPECT_ERROR(gguf::File::Open(Write("k_row.gguf", Gguf("", 0, {{"t", {128}, 14, q6k}}))),
                    "Q6_K rows of 128 values are not whole blocks of 256");
}

TEST_F(GgufTest, Version2AndAnotherAlignment) {
  Bytes kv;
  kv.Str("general.alignment").Put<uint32_t>(4).Put<uint32_t>(64);
  const std::string path = Write("v2.gguf", Gguf(kv.b, 1, {{"a", {3}, 0, Raw(std::vector<float>{1, 2, 3})},
                                                          {"b", {2}, 26, Raw(std::vector<int32_t>{5, -6})}},
                                                 64, 2));
  gguf::File file = gguf::File::Open(path);
  EXPECT_EQ(file.Version(), 2u);
  EXPECT_TRUE(AllClose(file.Get("a"), shapes::Make(dtypes::Float32, 3), {1, 2, 3}, 0, 0));
  EXPECT_TRUE(AllClose(file.Get("b"), shapes::Make(dtypes::Int32, 2), {5, -6}, 0, 0));
  // Read as if aligned to 32, the data would start elsewhere: the second
  // tensor's offset (64) is checked against the alignment the file states.
}

TEST_F(GgufTest, MalformedFilesAreErrorsNamingTheProblem) {
  const std::string good_tensor = Raw(std::vector<float>{1, 2});
  struct Case {
    std::string name, bytes, error;
  };
  Bytes bad_bool, big_array, dup, bad_type, bad_align;
  bad_bool.Str("x").Put<uint32_t>(7).Put<uint8_t>(2);
  big_array.Str("x").Put<uint32_t>(9).Put<uint32_t>(4).Put<uint64_t>(1ull << 60);
  dup.Str("x").Put<uint32_t>(4).Put<uint32_t>(1).Str("x").Put<uint32_t>(4).Put<uint32_t>(2);
  bad_type.Str("x").Put<uint32_t>(99).Put<uint32_t>(1);
  bad_align.Str("general.alignment").Put<uint32_t>(4).Put<uint32_t>(24);
  std::string deep_kv;
  {
    Bytes d;  // an array of an array of ... (10 levels) of one uint32
    d.Str("deep").Put<uint32_t>(9);
    for (int i = 0; i < 10; ++i) d.Put<uint32_t>(i < 9 ? 9 : 4).Put<uint64_t>(1);
    d.Put<uint32_t>(7);
    deep_kv = d.b;
  }
  const std::vector<Case> cases = {
      {"magic", "GGML" + std::string(20, '\0'), "not a GGUF file"},
      {"version", Gguf("", 0, {}, 32, 1), "version 1 is not supported (versions 2 and 3 are)"},
      {"short", std::string("GGUF\x03\x00", 6), "truncated: the version needs 4 bytes at offset 4"},
      {"bool", Gguf(bad_bool.b, 1, {}), "metadata \"x\": a bool of value 2"},
      {"array", Gguf(big_array.b, 1, {}), "metadata \"x\": an array of 1152921504606846976 elements"},
      {"dup", Gguf(dup.b, 2, {}), "metadata \"x\" appears twice"},
      {"type", Gguf(bad_type.b, 1, {}), "metadata \"x\": unknown value type 99"},
      {"align", Gguf(bad_align.b, 1, {}), "general.alignment must be a uint32 power of two"},
      {"deep", Gguf(deep_kv, 1, {}), "arrays nested deeper than 8"},
      {"counts", Bytes().Put<uint32_t>(0x46554747).Put<uint32_t>(3).Put<uint64_t>(1ull << 40).Put<uint64_t>(0).b,
       "1099511627776 tensors and 0 metadata entries cannot fit in the file"},
      {"beyond", Gguf("", 0, {{"t", {64}, 0, good_tensor}}), "tensor \"t\": data [0, +256) lies beyond the end"},
      {"q8row", Gguf("", 0, {{"t", {16}, 8, std::string(34, '\0')}}), "Q8_0 rows of 16 values are not whole blocks of 32"},
      {"rank", Gguf("", 0, {{"t", std::vector<uint64_t>(9, 1), 0, good_tensor}}), "tensor \"t\": rank 9 (at most 8)"},
      {"empty", "", "truncated: the magic number needs 4 bytes at offset 0, the file has 0 more"},
      {"twice", Gguf("", 0, {{"t", {2}, 0, good_tensor}, {"t", {2}, 0, good_tensor}}), "tensor \"t\" appears twice"},
      {"string", Bytes().Put<uint32_t>(0x46554747).Put<uint32_t>(3).Put<uint64_t>(0).Put<uint64_t>(1).Put<uint64_t>(99).b,
       "truncated: metadata key #0 needs 99 bytes"},
      {"huge", Gguf("", 0, {{"t", {1ull << 40, 1ull << 40}, 0, good_tensor}}), "tensor \"t\": its element count overflows"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    const std::string path = Write(c.name + ".gguf", c.bytes);
    try {
      gguf::File::Open(path);
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("GGUF file " + path + ": "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(c.error), std::string::npos) << e.what();
    }
  }
  // A misaligned offset (written by hand: the writer above always aligns).
  Bytes f;
  f.Put<uint32_t>(0x46554747).Put<uint32_t>(3).Put<uint64_t>(1).Put<uint64_t>(0);
  f.Str("t").Put<uint32_t>(1).Put<uint64_t>(1).Put<uint32_t>(0).Put<uint64_t>(4);
  KILN_EXPECT_ERROR(gguf::File::Open(Write("misaligned.gguf", f.b)), "offset 4 is not a multiple of the alignment 32");
}

TEST_F(GgufTest, LoadIntoAContext) {
  // A [out=2, in=3] projection (ne = [3, 2]) in Q8_0 would need rows of 32:
  // F32 here, loaded transposed into a Dense-style [in, out] variable.
  const std::string path = Write("model.gguf", Gguf("", 0, {{"blk.0.attn_q.weight", {3, 2}, 0,
                                                             Raw(std::vector<float>{1, 2, 3, 4, 5, 6})}}));
  context::Context ctx = context::New();
  io::LoadReport report = gguf::LoadIntoContext(ctx, gguf::File::Open(path), {.map = [](const std::string& name) {
                                                  return io::Mapping{io::DotsToScopes(name).variable, true};
                                                }});
  ASSERT_EQ(report.pending, (std::vector<std::string>{"/blk/0/attn_q/weight"}));  // created below
  context::Variable* w = ctx.In("blk").In("0").In("attn_q").VariableWithShape("weight", shapes::Make(dtypes::Float32, 3, 2));
  EXPECT_TRUE(AllClose(w->Value(), shapes::Make(dtypes::Float32, 3, 2), {1, 4, 2, 5, 3, 6}, 0, 0));
}

}  // namespace
}  // namespace kiln
