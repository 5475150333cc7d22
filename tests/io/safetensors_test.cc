// Copyright 2026 The Kiln Authors.
// The public safetensors API: a file written byte by byte from the format's
// specification reads back; every dtype round-trips; the reader maps the file
// and copies only what is asked; malformed files are errors naming what is
// wrong; loading into a context maps names, transposes, converts float dtypes,
// creates variables lazily and checks shapes before setting anything.
#include "kiln/io/safetensors.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "src/context/store.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

namespace st = io::safetensors;
namespace fs = std::filesystem;
using tensors::Tensor;
using testing::AllClose;
using testing::FromDoubles;

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("kiln_safetensors_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  // Writes a file: the 8-byte little-endian header length, the header, data.
  std::string WriteRaw(const std::string& name, const std::string& header, const std::string& data) {
    std::string bytes;
    uint64_t n = header.size();
    for (int i = 0; i < 8; ++i, n >>= 8) bytes.push_back(static_cast<char>(n & 0xff));
    bytes += header + data;
    std::ofstream(Path(name), std::ios::binary) << bytes;
    return Path(name);
  }
  fs::path dir_;
};

std::string FloatBytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

TEST_F(SafetensorsTest, ReadsAFileWrittenFromTheSpecification) {
  // Two tensors, data in the order b then a, and metadata.
  const std::string path = WriteRaw(
      "spec.safetensors",
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[12,20]},)"
      R"("b":{"dtype":"F32","shape":[3,1],"data_offsets":[0,12]},"__metadata__":{"format":"pt"}})",
      FloatBytes({1, 2, 3}) + FloatBytes({-1.5f, 4}));
  st::File file = st::File::Open(path);
  EXPECT_EQ(file.Names(), (std::vector<std::string>{"b", "a"}));  // data order
  EXPECT_EQ(file.ShapeOf("b"), shapes::Make(dtypes::Float32, 3, 1));
  EXPECT_TRUE(AllClose(file.Get("a"), shapes::Make(dtypes::Float32, 2), {-1.5, 4}, 0, 0));
  EXPECT_TRUE(AllClose(file.Get("b"), shapes::Make(dtypes::Float32, 3, 1), {1, 2, 3}, 0, 0));
  EXPECT_EQ(file.Metadata().at("format"), "pt");
  EXPECT_FALSE(file.Contains("c"));
  KILN_EXPECT_ERROR(file.Get("c"), "safetensors file " + path + ": no tensor \"c\"");
  auto all = st::Load(path);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_TRUE(AllClose(all.at("a"), file.Get("a"), 0, 0));
}

TEST_F(SafetensorsTest, EveryDTypeRoundTripsAndTheFileOutlivesNothing) {
  testing::Rng rng(9);
  std::map<std::string, Tensor> saved;
  for (dtypes::DType dt : dtypes::kAll) {
    saved["t_" + std::string(dtypes::Name(dt))] = testing::Random(shapes::Make(dt, 3, 2), rng, -50, 50);
  }
  saved["empty"] = Tensor(shapes::Make(dtypes::Float32, 0, 4));
  saved["scalar"] = FromDoubles(shapes::Make(dtypes::BFloat16), {0.15625});
  const std::string path = Path("all.safetensors");
  st::Save(path, saved, {{"who", "kiln"}});
  std::map<std::string, Tensor> loaded;
  {
    st::File file = st::File::Open(path);
    for (const std::string& name : file.Names()) loaded.emplace(name, file.Get(name));
    EXPECT_EQ(file.Metadata().at("who"), "kiln");
  }  // unmapped here: the tensors own their bytes
  ASSERT_EQ(loaded.size(), saved.size());
  for (const auto& [name, value] : saved) {
    SCOPED_TRACE(name);
    ASSERT_EQ(loaded.at(name).Shape(), value.Shape());
    EXPECT_EQ(0, std::memcmp(loaded.at(name).HostData(), value.HostData(), static_cast<size_t>(value.Shape().ByteSize())));
  }
}

TEST_F(SafetensorsTest, MalformedFilesAreErrorsNamingTheProblem) {
  const std::string ok = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  struct Case {
    std::string header, data, error;
  };
  const std::vector<Case> cases = {
      {"{not json", "", "the header is not valid JSON"},
      {R"([1,2])", "", "the header is not a JSON object"},
      {R"({"a":{"dtype":"F99","shape":[2],"data_offsets":[0,8]}})", FloatBytes({1, 2}), "tensor \"a\": unknown dtype \"F99\""},
      {R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", FloatBytes({1, 2}),
       "tensor \"a\": data_offsets [0,8] do not match Float32[3] (12 bytes)"},
      {R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", FloatBytes({1, 2}), "is not a non-negative integer"},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", FloatBytes({1, 2}),
       "tensor \"a\" starts at data offset 4, expected 0 (data must be contiguous"},
      {ok, FloatBytes({1}), "the tensors cover 8 bytes of data but the file has 4 (truncated or corrupt)"},
      {R"({"a":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}})", std::string("\x01\x07", 2),
       "tensor \"a\" (BOOL) holds bytes other than 0 and 1"},
      {R"({"__metadata__":{"k":3}})", "", "__metadata__ value of \"k\" is not a string"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    SCOPED_TRACE(cases[i].header);
    const std::string path = WriteRaw("bad" + std::to_string(i) + ".safetensors", cases[i].header, cases[i].data);
    try {
      st::File file = st::File::Open(path);
      for (const std::string& name : file.Names()) file.Get(name);  // BOOL bytes are checked on read
      ADD_FAILURE() << "accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("safetensors file " + path + ": "), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(cases[i].error), std::string::npos) << e.what();
    }
  }
  // A header length beyond the file, a file too short for one, no file.
  std::ofstream(Path("short.safetensors"), std::ios::binary) << std::string("\xff\x00\x00\x00\x00\x00\x00\x00{}", 10);
  KILN_EXPECT_ERROR(st::File::Open(Path("short.safetensors")), "header length 255 exceeds the file size 10");
  std::ofstream(Path("tiny.safetensors"), std::ios::binary) << "abc";
  KILN_EXPECT_ERROR(st::File::Open(Path("tiny.safetensors")), "the file has 3 bytes, too short for a header");
  KILN_EXPECT_ERROR(st::File::Open(Path("missing.safetensors")), "cannot open: No such file or directory");
  KILN_EXPECT_ERROR(st::File::Open(dir_.string()), "not a regular file");
}

TEST_F(SafetensorsTest, LoadIntoAContextMapsTransposesAndConverts) {
  // A "PyTorch" file: Linear weights [out, in] in BF16, a bias, a buffer to skip.
  const std::string path = Path("model.safetensors");
  st::Save(path, {{"layers.0.dense.weight", FromDoubles(shapes::Make(dtypes::BFloat16, 2, 3), {1, 2, 3, 4, 5, 6})},
                  {"layers.0.dense.bias", FromDoubles(shapes::Make(dtypes::Float32, 2), {0.5, -0.5})},
                  {"layers.0.rotary.inv_freq", FromDoubles(shapes::Make(dtypes::Float32, 1), {1})}});
  context::Context ctx = context::New();
  // The bias exists (Float64): set and converted. The weight does not: it is
  // created lazily, in Float32, when the model asks for it.
  context::Variable* bias =
      ctx.In("model").In("layers").In("0").In("dense").VariableWithShape("biases", shapes::Make(dtypes::Float64, 2));
  io::LoadOptions options;
  options.float_dtype = dtypes::Float32;
  options.map = [](const std::string& name) -> io::Mapping {
    if (name.ends_with("inv_freq")) return {};
    std::string v = io::DotsToScopes(name).variable;
    if (v.ends_with("/weight")) return {v.substr(0, v.size() - 6) + "weights", true};
    return {v.substr(0, v.size() - 4) + "biases", false};
  };
  io::LoadReport report = st::LoadIntoContext(ctx.In("model"), path, options);
  EXPECT_EQ(report.skipped, (std::vector<std::string>{"layers.0.rotary.inv_freq"}));
  EXPECT_EQ(report.loaded, (std::vector<std::string>{"/model/layers/0/dense/biases"}));
  EXPECT_EQ(report.pending, (std::vector<std::string>{"/model/layers/0/dense/weights"}));
  EXPECT_TRUE(AllClose(bias->Value(), shapes::Make(dtypes::Float64, 2), {0.5, -0.5}, 0, 0));
  context::Variable* w = ctx.In("model").In("layers").In("0").In("dense").VariableWithShape(
      "weights", shapes::Make(dtypes::Float32, 3, 2));
  EXPECT_TRUE(AllClose(w->Value(), shapes::Make(dtypes::Float32, 3, 2), {1, 4, 2, 5, 3, 6}, 0, 0));
  EXPECT_TRUE(w->Trainable());

  // Written back, named relative to the scope, and read back into another
  // context's same scope with the default map.
  EXPECT_EQ(st::SaveContext(ctx.In("model"), Path("out.safetensors")), 2);
  st::File out = st::File::Open(Path("out.safetensors"));
  EXPECT_EQ(out.ShapeOf("layers/0/dense/weights"), shapes::Make(dtypes::Float32, 3, 2));
  context::Context again = context::New();
  context::Variable* w2 = again.In("model").In("layers").In("0").In("dense").VariableWithShape(
      "weights", shapes::Make(dtypes::Float32, 3, 2));
  io::LoadReport back = st::LoadIntoContext(again.In("model"), out);
  EXPECT_EQ(back.loaded, (std::vector<std::string>{"/model/layers/0/dense/weights"}));
  EXPECT_EQ(back.pending, (std::vector<std::string>{"/model/layers/0/dense/biases"}));
  EXPECT_TRUE(AllClose(w2->Value(), w->Value(), 0, 0));
  KILN_EXPECT_ERROR(st::SaveContext(ctx.In("model"), Path("dup.safetensors"), [](const std::string&) { return "w"; }),
                    "safetensors SaveContext " + Path("dup.safetensors") + ": two variables are named \"w\"");
}

TEST_F(SafetensorsTest, LoadIntoAContextChecksEverythingFirst) {
  const std::string path = Path("w.safetensors");
  st::Save(path, {{"a", FromDoubles(shapes::Make(dtypes::Float32, 2), {1, 2})},
                  {"b", FromDoubles(shapes::Make(dtypes::Float32, 3), {1, 2, 3})},
                  {"v", FromDoubles(shapes::Make(dtypes::Float32, 3), {1, 2, 3})}});
  context::Context ctx = context::New();
  context::Variable* a = ctx.VariableWithValue("a", FromDoubles(shapes::Make(dtypes::Float32, 2), {7, 7}));
  ctx.VariableWithShape("b", shapes::Make(dtypes::Float32, 4));
  KILN_EXPECT_ERROR(st::LoadIntoContext(ctx, path),
                    "safetensors file " + path + ": tensor \"b\" Float32[3] does not fit variable /b Float32[4]");
  EXPECT_TRUE(AllClose(a->Value(), shapes::Make(dtypes::Float32, 2), {7, 7}, 0, 0));  // untouched
  EXPECT_TRUE(ctx.GetStore().pending_restore.empty());                                // nothing left pending
  KILN_EXPECT_ERROR(st::LoadIntoContext(ctx, path, {.map = [](const std::string& n) {
                                                      return io::Mapping{n == "v" ? "/b2" : "/" + n + "2"};
                                                    }}),
                    "tensors \"b\" and \"v\" both map to variable /b2");
  KILN_EXPECT_ERROR(st::LoadIntoContext(ctx, path, {.map = [](const std::string&) { return io::Mapping{"/x//y"}; }}),
                    "tensor \"a\" maps to an invalid variable name \"/x//y\"");
  KILN_EXPECT_ERROR(
      st::LoadIntoContext(ctx, path, {.map = [](const std::string& n) { return io::Mapping{"/t/" + n, true}; }}),
      "tensor \"a\" Float32[2] cannot be transposed (rank < 2)");
  KILN_EXPECT_ERROR(st::LoadIntoContext(ctx, path, {.float_dtype = dtypes::Int32}),
                    "loading safetensors file " + path + ": float_dtype must be a float dtype, got Int32");
  // A lazily loaded value of another shape fails when the model creates it.
  st::LoadIntoContext(ctx.In("lazy"), path);
  KILN_EXPECT_ERROR(ctx.In("lazy").VariableWithShape("v", shapes::Make(dtypes::Float32, 5)), "Float32[3]");
}

}  // namespace
}  // namespace kiln
