// Copyright 2026 The Kiln Authors.
// Checkpoints: round trips of every dtype and hyperparameter type, the file
// format (parsed here by hand), keep-N, naming, named and lazy restore,
// exclusions, corruption with fallback, crash safety under SIGKILL, and the
// kiln_checkpoint tool.
#include "kiln/context/checkpoints.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <bit>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "src/context/safetensors.h"
#include "tests/testing/testing.h"

namespace kiln {
namespace {

namespace fs = std::filesystem;
namespace checkpoints = context::checkpoints;
using context::Context;
using context::Param;
using context::Variable;
using Json = nlohmann::json;
using namespace std::string_literals;  // NOLINT(build/namespaces): "\x00"s keeps NULs

// ------------------------------------------------------------------ Helpers.

std::string ReadBytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteBytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << bytes;
}

std::string BytesOf(const tensors::Tensor& t) {
  const auto n = static_cast<size_t>(t.Shape().ByteSize());
  return n == 0 ? std::string() : std::string(static_cast<const char*>(t.HostData()), n);
}

uint32_t ZlibCrc(const std::string& bytes) {
  return static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
}

// Random values, with NaN and +-Inf in float tensors large enough.
tensors::Tensor RandomValue(const shapes::Shape& shape, testing::Rng& rng) {
  tensors::Tensor t = testing::Random(shape, rng, -100, 100);
  if (dtypes::IsFloat(shape.DType()) && shape.Size() >= 3) {
    DispatchDType(shape.DType(), [&](auto zero) {
      using T = decltype(zero);
      if constexpr (!std::is_same_v<T, bool> && !std::is_integral_v<T>) {
        std::span<T> data = t.MutableFlat<T>();
        data[0] = T(std::numeric_limits<float>::quiet_NaN());
        data[1] = T(std::numeric_limits<float>::infinity());
        data[2] = T(-std::numeric_limits<float>::infinity());
      }
    });
  }
  return t;
}

tensors::Tensor Filled(int64_t size, float value) {
  return tensors::FromFlat(shapes::Make(dtypes::Float32, size), std::vector<float>(static_cast<size_t>(size), value));
}

tensors::Tensor Bools(std::initializer_list<bool> values) {
  const std::vector<uint8_t> bytes(values.begin(), values.end());  // std::vector<bool> is bit-packed
  tensors::Tensor t(shapes::Make(dtypes::Bool, static_cast<int64_t>(values.size())));
  if (!bytes.empty()) std::memcpy(t.MutableHostData(), bytes.data(), bytes.size());
  return t;
}

// A handle on `ctx`'s store at `scope` ("/a/b").
Context At(Context ctx, const std::string& scope) {
  std::istringstream parts(scope);
  for (std::string part; std::getline(parts, part, '/');) {
    if (!part.empty()) ctx = ctx.In(part);
  }
  return ctx;
}

void SetStep(Context& ctx, int64_t step) {
  Variable* v = ctx.GetVariableByScopeAndName("/global_step");
  if (v == nullptr) v = ctx.VariableWithShape("global_step", shapes::Make(dtypes::Int64));
  v->SetValue(tensors::FromValue(step));
}

// Exact equality, NaNs included (bitwise for doubles).
bool SameParam(const Param& a, const Param& b) {
  if (a.index() != b.index()) return false;
  auto same_double = [](double x, double y) { return std::bit_cast<uint64_t>(x) == std::bit_cast<uint64_t>(y); };
  if (const auto* x = std::get_if<double>(&a)) return same_double(*x, std::get<double>(b));
  if (const auto* x = std::get_if<std::vector<double>>(&a)) {
    const auto& y = std::get<std::vector<double>>(b);
    return x->size() == y.size() && std::equal(x->begin(), x->end(), y.begin(), same_double);
  }
  return a == b;
}

class CheckpointsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (fs::path(::testing::TempDir()) / ("kiln_ckpt_" + std::to_string(::getpid()) + "_" + info->name())).string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::unique_ptr<checkpoints::Handler> Handler(const Context& ctx) { return checkpoints::Build(ctx).Dir(dir_).Done(); }
  std::string Path(const std::string& file) const { return (fs::path(dir_) / file).string(); }
  std::vector<std::string> Files() const {
    std::vector<std::string> files;
    for (const auto& e : fs::directory_iterator(dir_)) files.push_back(e.path().filename().string());
    std::sort(files.begin(), files.end());
    return files;
  }

  std::string dir_;
};

// ---------------------------------------------------------------- Round trips.

TEST_F(CheckpointsTest, EveryDTypeAndShapeRoundTripsExactly) {
  testing::Rng rng(7);
  const std::vector<std::vector<int64_t>> dims = {{}, {0}, {3, 0, 2}, {5}, {2, 3, 4}};
  Context ctx = context::New();
  std::map<std::string, std::string> saved;  // full name -> bytes
  for (dtypes::DType dt : dtypes::kAll) {
    for (size_t i = 0; i < dims.size(); ++i) {
      std::string name = "v";
      name += std::to_string(i);  // not "v" + ...: GCC 12 warns falsely (-Wrestrict, PR105329)
      Variable* v = ctx.In(dtypes::Name(dt)).VariableWithValue(name, RandomValue(shapes::Make(dt, dims[i]), rng));
      saved[v->ScopeAndName()] = BytesOf(v->Value());
    }
  }
  ctx.VariableWithShape("uninitialized", shapes::Make(dtypes::Float32, 2));  // has no value: not saved
  const std::string name = Handler(ctx)->Save();
  EXPECT_EQ(name, "checkpoint-0000000000");

  // Eager restore: the variables exist (without values) before Restore.
  Context eager = context::New();
  for (Variable* v : ctx.Variables()) At(eager, v->Scope()).VariableWithShape(v->Name(), v->Shape());
  EXPECT_EQ(Handler(eager)->Restore(), name);
  for (const auto& [full, bytes] : saved) {
    Variable* v = eager.GetVariableByScopeAndName(full);
    ASSERT_TRUE(v->HasValue()) << full;
    EXPECT_EQ(BytesOf(v->Value()), bytes) << full;
  }
  EXPECT_FALSE(eager.GetVariableByScopeAndName("/uninitialized")->HasValue());

  // Lazy restore: the variables are created after Restore.
  Context lazy = context::New();
  Handler(lazy)->RestoreNamed(name);
  for (Variable* v : ctx.Variables()) {
    Variable* created = At(lazy, v->Scope()).VariableWithShape(v->Name(), v->Shape());
    if (v->Name() == "uninitialized") {
      EXPECT_FALSE(created->HasValue());
      continue;
    }
    ASSERT_TRUE(created->HasValue()) << v->ScopeAndName();
    EXPECT_EQ(BytesOf(created->Value()), saved[v->ScopeAndName()]) << v->ScopeAndName();
  }
}

TEST_F(CheckpointsTest, HyperparametersOfEveryTypeRoundTripExactly) {
  Context ctx = context::New();
  const double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  ctx.SetParam("flag", true);
  ctx.SetParam("off", false);
  ctx.SetParam("int_min", std::numeric_limits<int64_t>::min());
  ctx.SetParam("int_max", std::numeric_limits<int64_t>::max());
  ctx.SetParam("three_int", int64_t{3});  // stays an int
  ctx.SetParam("three_double", 3.0);      // stays a double
  ctx.SetParam("tenth", 0.1);
  ctx.SetParam("tiny", 4.9406564584124654e-324);  // denormal
  ctx.SetParam("huge", std::numeric_limits<double>::max());
  ctx.SetParam("neg_zero", -0.0);
  ctx.SetParam("nan", nan);
  ctx.SetParam("inf", inf);
  ctx.SetParam("ninf", -inf);
  ctx.SetParam("text", std::string("quote \" backslash \\ newline \n unicode é ✓"));
  ctx.SetParam("empty_text", std::string());
  ctx.SetParam("ints", std::vector<int64_t>{1, -2, std::numeric_limits<int64_t>::max()});
  ctx.SetParam("no_ints", std::vector<int64_t>{});
  ctx.SetParam("doubles", std::vector<double>{0.1, -0.0, nan, inf, -inf, 1e300});
  ctx.SetParam("no_doubles", std::vector<double>{});
  ctx.SetParam("strings", std::vector<std::string>{"a", "", "b c"});
  ctx.In("layer1").SetParam("tenth", 0.25);
  ctx.In("layer1").In("dense").SetParam("units", int64_t{128});
  Handler(ctx)->Save();

  Context restored = context::New();
  restored.SetParam("flag", false);  // overwritten by the restore
  restored.SetParam("extra", int64_t{5});  // not in the checkpoint: kept
  Handler(restored)->Restore();
  auto want = ctx.Params();
  want.emplace_back("/extra", int64_t{5});
  auto got = restored.Params();
  std::sort(want.begin(), want.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::sort(got.begin(), got.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].first, want[i].first);
    EXPECT_TRUE(SameParam(got[i].second, want[i].second)) << got[i].first;
  }
  // Each lands in its scope.
  EXPECT_EQ(restored.In("layer1").GetParam<double>("tenth"), 0.25);
  EXPECT_EQ(restored.GetParam<double>("tenth"), 0.1);
  EXPECT_EQ(restored.In("layer1").In("dense").GetParam<int64_t>("units"), 128);
}

// ------------------------------------------------------------- File format.

TEST_F(CheckpointsTest, FilesFollowTheSafetensorsAndJsonFormats) {
  Context ctx = context::New();
  const std::vector<float> w = {1.5f, -2, 3, 4, 5, 6};
  ctx.In("layer1").VariableWithValue("weights", tensors::FromValue(std::vector<std::vector<float>>{{1.5f, -2, 3}, {4, 5, 6}}));
  ctx.VariableWithValue("flags", Bools({true, false, true}));
  ctx.VariableWithValue("empty", tensors::Zeros(shapes::Make(dtypes::BFloat16, 0, 4)));
  SetStep(ctx, 77);
  ctx.SetParam("learning_rate", 0.001);
  const std::string name = Handler(ctx)->Save();
  ASSERT_EQ(name, "checkpoint-0000000077");
  EXPECT_EQ(Files(), (std::vector<std::string>{name + ".json", name + ".safetensors"}));

  // The safetensors file, parsed by hand.
  const std::string file = ReadBytes(Path(name + ".safetensors"));
  ASSERT_GE(file.size(), 8u);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<uint8_t>(file[i]);
  ASSERT_LE(8 + n, file.size());
  EXPECT_EQ(n % 8, 0u);
  const std::string header_text = file.substr(8, n);
  EXPECT_EQ(header_text.find_last_not_of(' ') + 1, header_text.rfind('}') + 1);  // padded with spaces only
  const Json header = Json::parse(header_text);
  const std::string data = file.substr(8 + n);
  EXPECT_EQ(header["__metadata__"], Json({{"format", "kiln"}}));
  ASSERT_EQ(header.size(), 5u);  // 4 variables + __metadata__
  auto check = [&](const std::string& key, const char* dtype, const std::vector<int64_t>& shape, const std::string& bytes) {
    SCOPED_TRACE(key);
    ASSERT_TRUE(header.contains(key));
    const Json& e = header[key];
    EXPECT_EQ(e["dtype"], dtype);
    EXPECT_EQ(e["shape"].get<std::vector<int64_t>>(), shape);
    const auto begin = e["data_offsets"][0].get<size_t>(), end = e["data_offsets"][1].get<size_t>();
    ASSERT_LE(end, data.size());
    EXPECT_EQ(data.substr(begin, end - begin), bytes);
  };
  check("/layer1/weights", "F32", {2, 3}, std::string(reinterpret_cast<const char*>(w.data()), 24));
  check("/flags", "BOOL", {3}, std::string("\x01\x00\x01", 3));
  check("/empty", "BF16", {0, 4}, "");
  check("/global_step", "I64", {}, std::string("\x4d\0\0\0\0\0\0\0", 8));  // 77 little-endian
  EXPECT_EQ(data.size(), 24u + 3 + 8);  // no holes

  // The JSON file.
  const Json meta = Json::parse(ReadBytes(Path(name + ".json")));
  EXPECT_EQ(meta["format_version"], 1);
  EXPECT_EQ(meta["step"], 77);
  EXPECT_NEAR(meta["time"].get<double>(), static_cast<double>(std::time(nullptr)), 60);
  EXPECT_EQ(meta["safetensors"]["size"], file.size());
  EXPECT_EQ(meta["safetensors"]["crc32"], ZlibCrc(file));
  EXPECT_EQ(meta["hyperparameters"],
            Json::parse(R"([{"key": "/learning_rate", "type": "double", "value": 0.001}])"));
  ASSERT_EQ(meta["variables"].size(), 4u);
  const Json& v0 = meta["variables"][0];
  EXPECT_EQ(v0["scope"], "/layer1");
  EXPECT_EQ(v0["name"], "weights");
  EXPECT_EQ(v0["dtype"], "Float32");
  EXPECT_EQ(v0["shape"], Json::parse("[2, 3]"));
  EXPECT_EQ(v0["crc32"], ZlibCrc(std::string(reinterpret_cast<const char*>(w.data()), 24)));
}

// A file of header `text` (padded) followed by `data`.
std::string SafetensorsFile(std::string text, const std::string& data, int64_t length_delta = 0) {
  text.append((8 - text.size() % 8) % 8, ' ');
  uint64_t n = text.size() + static_cast<uint64_t>(length_delta);
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i, n >>= 8) file[i] = static_cast<char>(n & 0xff);
  return file + text + data;
}

TEST_F(CheckpointsTest, SafetensorsReaderValidatesEverything) {
  fs::create_directories(dir_);
  const std::string path = Path("t.safetensors");
  namespace st = context::internal::safetensors;
  auto expect_error = [&](const std::string& file, const std::string& message) {
    WriteBytes(path, file);
    KILN_EXPECT_ERROR(st::Read(path), message);
    KILN_EXPECT_ERROR(st::Read(path), "safetensors file " + path);
  };
  const std::string ok = R"({"a": {"dtype": "I16", "shape": [2], "data_offsets": [0, 4]}})";
  WriteBytes(path, SafetensorsFile(ok, "\x01\x00\x02\x00"s));
  st::Contents c = st::Read(path);
  ASSERT_EQ(c.tensors.size(), 1u);
  EXPECT_EQ(c.tensors[0].value.Value<std::vector<int16_t>>(), (std::vector<int16_t>{1, 2}));

  expect_error("\x01\x02", "too short for a header");
  expect_error(SafetensorsFile(ok, "\x01\x00\x02\x00"s, 100), "header length 164 exceeds the file size 76");
  expect_error(SafetensorsFile("{nope", ""), "the header is not valid JSON");
  expect_error(SafetensorsFile("[1, 2]", ""), "the header is not a JSON object");
  expect_error(SafetensorsFile(R"({"a": {"dtype": "F8", "shape": [2], "data_offsets": [0, 2]}})", "xx"),
               "tensor \"a\": unknown dtype \"F8\"");
  expect_error(SafetensorsFile(R"({"a": {"dtype": "I16", "shape": [-2], "data_offsets": [0, 4]}})", "xxxx"),
               "dimension -2 is not a non-negative integer");
  expect_error(SafetensorsFile(R"({"a": {"dtype": "I16", "shape": [2], "data_offsets": [0, 6]}})", "xxxxxx"),
               "data_offsets [0,6] do not match Int16[2] (4 bytes)");
  expect_error(SafetensorsFile(R"({"a": {"dtype": "I16", "shape": [2]}})", ""), "expected {\"dtype\", \"shape\", \"data_offsets\"}");
  expect_error(SafetensorsFile(R"({"a": {"dtype": "U8", "shape": [2], "data_offsets": [1, 3]}})", "xxx"),
               "tensor \"a\" starts at data offset 1, expected 0");
  expect_error(SafetensorsFile(ok, "\x01\x00\x02\x00\x03"s), "the tensors cover 4 bytes of data but the file has 5");
  expect_error(SafetensorsFile(ok, "\x01\x00"s), "the tensors cover 4 bytes of data but the file has 2");
  expect_error(SafetensorsFile(R"({"b": {"dtype": "BOOL", "shape": [2], "data_offsets": [0, 2]}})", "\x01\x02"),
               "tensor \"b\" (BOOL) holds bytes other than 0 and 1");
  expect_error(SafetensorsFile(R"({"a": {"dtype": "U64", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", ""),
               "overflowing");
  expect_error(SafetensorsFile(R"({"__metadata__": {"k": 1}})", ""), "__metadata__ value of \"k\" is not a string");
}

// ----------------------------------------------------- Naming, keep, named.

TEST_F(CheckpointsTest, NamesFollowTheGlobalStepWithSuffixes) {
  Context ctx = context::New();
  auto handler = checkpoints::Build(ctx).Dir(dir_).Keep(3).Done();
  std::vector<std::string> names;
  for (int i = 0; i < 12; ++i) names.push_back(handler->Save());  // no global step: 0
  EXPECT_EQ(names[0], "checkpoint-0000000000");
  EXPECT_EQ(names[1], "checkpoint-0000000000-1");
  EXPECT_EQ(names[11], "checkpoint-0000000000-11");
  // Suffixes order numerically ("-10" after "-9").
  EXPECT_EQ(handler->List(), (std::vector<std::string>{names[9], names[10], names[11]}));
  SetStep(ctx, 1234);
  EXPECT_EQ(handler->Save(), "checkpoint-0000001234");
  SetStep(ctx, 12345678901);
  EXPECT_EQ(handler->Save(), "checkpoint-12345678901");
  EXPECT_EQ(handler->List().back(), "checkpoint-12345678901");

  ctx.DeleteVariablesInScope("/global_step");
  ctx.VariableWithValue("global_step", tensors::FromValue(1.0f));
  KILN_EXPECT_ERROR(handler->Save(), "checkpoints: /global_step must be an Int64 scalar, it is Float32");
  ctx.DeleteVariablesInScope("/global_step");
  SetStep(ctx, -5);
  KILN_EXPECT_ERROR(handler->Save(), "checkpoints: /global_step is negative (-5)");
  KILN_EXPECT_ERROR(checkpoints::Build(ctx).Dir(dir_).Keep(0), "Keep: n must be >= 1, got 0");
}

TEST_F(CheckpointsTest, KeepDeletesTheOldestAfterEachSave) {
  Context ctx = context::New();
  Variable* w = ctx.VariableWithValue("w", Filled(10, 0));
  auto handler = checkpoints::Build(ctx).Dir(dir_).Keep(2).Done();
  for (int step = 1; step <= 5; ++step) {
    SetStep(ctx, step);
    w->SetValue(Filled(10, static_cast<float>(step)));
    handler->Save();
    EXPECT_EQ(handler->List().size(), std::min(step, 2));
  }
  EXPECT_EQ(Files(), (std::vector<std::string>{"checkpoint-0000000004.json", "checkpoint-0000000004.safetensors",
                                               "checkpoint-0000000005.json", "checkpoint-0000000005.safetensors"}));
  // Without Keep, nothing is deleted.
  auto keep_all = Handler(ctx);
  SetStep(ctx, 6);
  keep_all->Save();
  EXPECT_EQ(keep_all->List().size(), 3u);
}

TEST_F(CheckpointsTest, RestoreNamedPicksThatCheckpoint) {
  Context ctx = context::New();
  Variable* w = ctx.VariableWithValue("w", Filled(4, 0));
  auto handler = Handler(ctx);
  for (int step : {10, 20, 30}) {
    SetStep(ctx, step);
    w->SetValue(Filled(4, static_cast<float>(step)));
    handler->Save();
  }
  Context fresh = context::New();
  Variable* fw = fresh.VariableWithShape("w", shapes::Make(dtypes::Float32, 4));
  auto fresh_handler = Handler(fresh);
  fresh_handler->RestoreNamed("checkpoint-0000000020");
  EXPECT_EQ(fw->Value().Value<std::vector<float>>(), std::vector<float>(4, 20));
  EXPECT_EQ(fresh.GetVariableByScopeAndName("/global_step"), nullptr);  // lazily restored...
  EXPECT_EQ(fresh.VariableWithShape("global_step", shapes::Make(dtypes::Int64))->Value().Value<int64_t>(), 20);
  EXPECT_EQ(fresh_handler->Restore(), "checkpoint-0000000030");
  EXPECT_EQ(fw->Value().Value<std::vector<float>>(), std::vector<float>(4, 30));
  KILN_EXPECT_ERROR(fresh_handler->RestoreNamed("checkpoint-0000000099"),
                    "cannot open " + Path("checkpoint-0000000099.json"));
}

// ------------------------------------------------------ Lazy restore, exclusions.

TEST_F(CheckpointsTest, LazyRestoreAndShapeMismatches) {
  Context ctx = context::New();
  ctx.In("a").VariableWithValue("w", Filled(2, 7));
  ctx.In("a").VariableWithValue("b", Filled(3, 8));
  const std::string name = Handler(ctx)->Save();

  Context lazy = context::New();
  Handler(lazy)->Restore();
  Variable* w = lazy.In("a").VariableWithShape("w", shapes::Make(dtypes::Float32, 2));
  EXPECT_EQ(w->Value().Value<std::vector<float>>(), (std::vector<float>{7, 7}));
  KILN_EXPECT_ERROR(lazy.In("a").VariableWithShape("b", shapes::Make(dtypes::Float16, 3)),
                    "Context: variable /a/b is created as Float16[3], but checkpoint " + Path(name) +
                        " restored it as Float32[3]");
  EXPECT_EQ(lazy.In("a").GetVariable("b"), nullptr);  // the failed creation left nothing behind
  EXPECT_EQ(lazy.In("a").VariableWithShape("b", shapes::Make(dtypes::Float32, 3))->Value().Value<std::vector<float>>(),
            (std::vector<float>{8, 8, 8}));

  // An existing variable of another shape: an error, and nothing is restored.
  Context eager = context::New();
  Variable* ew = eager.In("a").VariableWithValue("w", Filled(2, 1));
  eager.In("a").VariableWithValue("b", Filled(4, 1));
  eager.SetParam("p", int64_t{1});
  KILN_EXPECT_ERROR(Handler(eager)->Restore(), "checkpoints: variable /a/b is Float32[4] in the context but Float32[3] in checkpoint " +
                                                   Path(name + ".safetensors"));
  EXPECT_EQ(ew->Value().Value<std::vector<float>>(), (std::vector<float>{1, 1}));
}

// Issue 10, finding 1: restored values of variables not created yet are part
// of the state. A save right after a restore (a tool changing a
// hyperparameter, a resumed run saving before its first step) keeps them and
// the restored step; with Keep(1) the trained weights must survive.
TEST_F(CheckpointsTest, SaveRightAfterRestoreKeepsTheRestoredState) {
  {
    Context ctx = context::New();
    ctx.In("dense").VariableWithValue("w", Filled(3, 5));
    ctx.SetParam("learning_rate", 0.1);
    SetStep(ctx, 1000);
    checkpoints::Build(ctx).Dir(dir_).Keep(1).Done()->Save();
  }
  Context tool = context::New();
  auto handler = checkpoints::Build(tool).Dir(dir_).Keep(1).Done();
  EXPECT_EQ(handler->Restore(), "checkpoint-0000001000");
  tool.SetParam("learning_rate", 0.01);  // changed, then saved at once: no variable was created
  const std::string saved = handler->Save();
  EXPECT_EQ(saved, "checkpoint-0000001000-1");  // the restored step, sorting after the old one
  EXPECT_EQ(handler->List(), std::vector<std::string>{saved});

  Context resumed = context::New();
  EXPECT_EQ(checkpoints::Build(resumed).Dir(dir_).Done()->Restore(), saved);
  EXPECT_EQ(resumed.GetParam<double>("learning_rate"), 0.01);
  EXPECT_EQ(resumed.In("dense").VariableWithShape("w", shapes::Make(dtypes::Float32, 3))->Value().Value<std::vector<float>>(),
            std::vector<float>(3, 5));
  EXPECT_EQ(resumed.VariableWithShape("global_step", shapes::Make(dtypes::Int64))->Value().Value<int64_t>(), 1000);
}

// A save that would hold fewer variables than the newest checkpoint is
// refused (nothing is written or deleted), unless the missing ones were
// deleted on purpose or are excluded.
TEST_F(CheckpointsTest, SaveRefusesToLoseVariablesUnlessDeletedOnPurpose) {
  {
    Context ctx = context::New();
    ctx.In("a").VariableWithValue("w", Filled(2, 1));
    ctx.In("b").VariableWithValue("w", Filled(2, 2));
    SetStep(ctx, 10);
    checkpoints::Build(ctx).Dir(dir_).Keep(1).Done()->Save();
  }
  Context other = context::New();  // another model in the same directory, no restore
  other.In("a").VariableWithValue("w", Filled(2, 3));
  SetStep(other, 20);
  auto handler = checkpoints::Build(other).Dir(dir_).Keep(1).Done();
  KILN_EXPECT_ERROR(handler->Save(), "checkpoints: Save() refused: the newest checkpoint " +
                                         Path("checkpoint-0000000010") +
                                         " holds 1 variable(s) this context does not have (/b/w); saving would lose them");
  EXPECT_EQ(handler->List(), std::vector<std::string>{"checkpoint-0000000010"});

  // Excluding them is a decision: the save goes through.
  EXPECT_EQ(checkpoints::Build(other).Dir(dir_).Keep(1).ExcludeVars({"/b/"}).Done()->Save(), "checkpoint-0000000020");

  // So is deleting them: restore everything, delete /b, save a smaller model.
  fs::remove_all(dir_);
  {
    Context ctx = context::New();
    ctx.In("a").VariableWithValue("w", Filled(2, 1));
    ctx.In("b").VariableWithValue("w", Filled(2, 2));
    checkpoints::Build(ctx).Dir(dir_).Done()->Save();
  }
  Context smaller = context::New();
  auto smaller_handler = checkpoints::Build(smaller).Dir(dir_).Keep(1).Done();
  smaller_handler->Restore();
  smaller.DeleteVariablesInScope("/b/");  // still pending (never created): deleted on purpose
  const std::string name = smaller_handler->Save();
  const Json meta = Json::parse(ReadBytes(Path(name + ".json")));
  ASSERT_EQ(meta.at("variables").size(), 1u);
  EXPECT_EQ(meta.at("variables")[0].at("scope"), "/a");
}

TEST_F(CheckpointsTest, ExcludedVariablesAreNeitherSavedNorRestored) {
  Context ctx = context::New();
  ctx.VariableWithValue("keep", Filled(2, 1));
  ctx.VariableWithValue("rng_state", tensors::FromValue(std::vector<uint64_t>{1, 2, 3}));
  ctx.In("opt").VariableWithValue("m", Filled(2, 2));
  ctx.In("optimizer").VariableWithValue("v", Filled(2, 3));  // "/opt/" does not match it
  const std::string name = checkpoints::Build(ctx).Dir(dir_).ExcludeVars({"/rng_state", "/opt/"}).Done()->Save();
  const Json meta = Json::parse(ReadBytes(Path(name + ".json")));
  std::vector<std::string> saved;
  for (const Json& v : meta["variables"]) saved.push_back(v["name"].get<std::string>());
  EXPECT_EQ(saved, (std::vector<std::string>{"keep", "v"}));

  // Restoring with exclusions leaves excluded variables alone, existing or lazy.
  Handler(ctx)->Save();  // everything, as checkpoint-0000000000-1
  Context fresh = context::New();
  Variable* m = fresh.In("opt").VariableWithValue("m", Filled(2, 9));
  checkpoints::Build(fresh).Dir(dir_).ExcludeVars({"/rng_state", "/opt/"}).Done()->Restore();
  EXPECT_EQ(m->Value().Value<std::vector<float>>(), (std::vector<float>{9, 9}));
  EXPECT_FALSE(fresh.VariableWithShape("rng_state", shapes::Make(dtypes::Uint64, 3))->HasValue());
  EXPECT_EQ(fresh.VariableWithShape("keep", shapes::Make(dtypes::Float32, 2))->Value().Value<std::vector<float>>(),
            (std::vector<float>{1, 1}));
}

// ------------------------------------------------------------- Corruption.

class CorruptionTest : public CheckpointsTest {
 protected:
  // Two checkpoints, steps 1 and 2, with w filled with the step.
  void SetUp() override {
    CheckpointsTest::SetUp();
    Context ctx = context::New();
    Variable* w = ctx.VariableWithValue("w", Filled(100, 0));
    auto handler = Handler(ctx);
    for (int step : {1, 2}) {
      SetStep(ctx, step);
      w->SetValue(Filled(100, static_cast<float>(step)));
      handler->Save();
    }
  }

  // Restore() in a fresh context: the name, w's first value and the warnings.
  std::tuple<std::string, float, std::string> RestoreFresh() {
    Context fresh = context::New();
    ::testing::internal::CaptureStderr();
    const std::string name = Handler(fresh)->Restore();
    const std::string warnings = ::testing::internal::GetCapturedStderr();
    const float w = fresh.VariableWithShape("w", shapes::Make(dtypes::Float32, 100))->Value().Value<std::vector<float>>()[0];
    return {name, w, warnings};
  }

  void ExpectFallback(const std::string& bad_file, const std::string& message) {
    auto [name, w, warnings] = RestoreFresh();
    EXPECT_EQ(name, "checkpoint-0000000001");
    EXPECT_EQ(w, 1.0f);
    EXPECT_NE(warnings.find("kiln: warning: skipping unusable checkpoint checkpoint-0000000002"), std::string::npos)
        << warnings;
    EXPECT_NE(warnings.find(Path(bad_file)), std::string::npos) << warnings;
    EXPECT_NE(warnings.find(message), std::string::npos) << warnings;
    Context fresh = context::New();
    KILN_EXPECT_ERROR(Handler(fresh)->RestoreNamed("checkpoint-0000000002"), Path(bad_file));
    KILN_EXPECT_ERROR(Handler(fresh)->RestoreNamed("checkpoint-0000000002"), message);
  }

  const std::string kTensors = "checkpoint-0000000002.safetensors";
  const std::string kJson = "checkpoint-0000000002.json";
};

TEST_F(CorruptionTest, IntactCheckpointRestoresTheNewest) {
  auto [name, w, warnings] = RestoreFresh();
  EXPECT_EQ(name, "checkpoint-0000000002");
  EXPECT_EQ(w, 2.0f);
  EXPECT_EQ(warnings, "");
}

TEST_F(CorruptionTest, FlippedDataByteIsAChecksumError) {
  std::string bytes = ReadBytes(Path(kTensors));
  bytes[bytes.size() - 10] ^= 0x40;
  WriteBytes(Path(kTensors), bytes);
  ExpectFallback(kTensors, "CRC-32 is 0x");
}

TEST_F(CorruptionTest, TruncatedSafetensorsIsDetected) {
  fs::resize_file(Path(kTensors), fs::file_size(Path(kTensors)) - 7);
  ExpectFallback(kTensors, "(truncated or corrupt)");
}

TEST_F(CorruptionTest, GarbageJsonIsDetected) {
  WriteBytes(Path(kJson), "{\"format_version\": 1, garbage");
  ExpectFallback(kJson, "is corrupt");
}

TEST_F(CorruptionTest, WrongJsonFieldsAreDetected) {
  Json meta = Json::parse(ReadBytes(Path(kJson)));
  meta["format_version"] = 7;
  WriteBytes(Path(kJson), meta.dump());
  ExpectFallback(kJson, "unsupported format_version 7");
  meta["format_version"] = 1;
  meta["variables"][0]["crc32"] = meta["variables"][0]["crc32"].get<uint32_t>() ^ 1;
  WriteBytes(Path(kJson), meta.dump());
  ExpectFallback(kTensors, "CRC-32 of tensor \"/w\"");
  meta = Json::parse(ReadBytes(Path("checkpoint-0000000001.json")));
  meta["hyperparameters"] = Json::parse(R"([{"key": "/x", "type": "int", "value": 1.5}])");
  WriteBytes(Path(kJson), meta.dump());
  ExpectFallback(kJson, "value 1.5 is not a int");
}

TEST_F(CorruptionTest, EveryCheckpointCorruptIsAnError) {
  WriteBytes(Path(kJson), "garbage");
  fs::resize_file(Path("checkpoint-0000000001.safetensors"), 3);
  Context fresh = context::New();
  ::testing::internal::CaptureStderr();
  KILN_EXPECT_ERROR(Handler(fresh)->Restore(), "checkpoints: all 2 checkpoints in " + dir_ + " are unusable");
  const std::string warnings = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(warnings.find(Path(kJson)), std::string::npos) << warnings;
  EXPECT_NE(warnings.find(Path("checkpoint-0000000001.safetensors")), std::string::npos) << warnings;
}

TEST_F(CheckpointsTest, LeftoversOfCrashedSavesAreIgnoredThenCleanedUp) {
  Context ctx = context::New();
  ctx.VariableWithValue("w", Filled(3, 5));
  auto handler = Handler(ctx);
  const std::string good = handler->Save();
  WriteBytes(Path("checkpoint-0000000009.json.tmp-12345"), "{");       // crashed while writing a JSON
  WriteBytes(Path("checkpoint-0000000009.safetensors"), "partial");   // crashed before writing its JSON
  WriteBytes(Path("checkpoint-0000000010.safetensors.tmp-777"), "x");  // crashed while writing tensors
  WriteBytes(Path("notes.txt"), "not ours");
  EXPECT_EQ(handler->List(), std::vector<std::string>{good});
  Context fresh = context::New();
  EXPECT_EQ(Handler(fresh)->Restore(), good);
  const std::string next = handler->Save();
  std::vector<std::string> want = {good + ".json", good + ".safetensors", next + ".json", next + ".safetensors", "notes.txt"};
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Files(), want);
}

TEST_F(CheckpointsTest, DirectoryErrors) {
  Context ctx = context::New();
  KILN_EXPECT_ERROR(checkpoints::Build(ctx).Done(), "checkpoints: no directory: call Config::Dir() before Done()");
  fs::create_directories(dir_);
  WriteBytes(Path("file"), "x");
  KILN_EXPECT_ERROR(checkpoints::Build(ctx).Dir(Path("file")).Done(), "checkpoints: " + Path("file") + " is not a directory");
  KILN_EXPECT_ERROR(checkpoints::Build(ctx).Dir(Path("file/sub")).Done(), "checkpoints: cannot create directory " + Path("file/sub"));
  // A directory that disappears after Done().
  auto handler = checkpoints::Build(ctx).Dir(Path("gone")).Done();
  EXPECT_TRUE(fs::is_directory(Path("gone")));  // created
  EXPECT_EQ(handler->Restore(), "");              // empty: nothing to restore
  fs::remove(Path("gone"));
  KILN_EXPECT_ERROR(handler->Restore(), "checkpoints: cannot read directory " + Path("gone"));
  KILN_EXPECT_ERROR(handler->Save(), Path("gone"));
}

// ---------------------------------------------------------------- Crashes.

constexpr int64_t kCrashTensorSize = 64 * 1024;  // 256 KB of Float32

// The child: restores, then saves steps k = restored + 1, ... with w filled
// with k, until killed. Never returns; no gtest machinery here.
[[noreturn]] void SaveUntilKilled(const std::string& dir) {
  try {
    Context ctx = context::New();
    Variable* w = ctx.VariableWithShape("w", shapes::Make(dtypes::Float32, kCrashTensorSize));
    SetStep(ctx, 0);
    auto handler = checkpoints::Build(ctx).Dir(dir).Keep(2).Done();
    handler->Restore();
    for (int64_t k = ctx.GetVariableByScopeAndName("/global_step")->Value().Value<int64_t>() + 1; k < 1'000'000; ++k) {
      w->SetValue(Filled(kCrashTensorSize, static_cast<float>(k)));
      SetStep(ctx, k);
      handler->Save();
    }
    _exit(0);
  } catch (...) {
    _exit(2);
  }
}

TEST_F(CheckpointsTest, SurvivesSigkillAtAnyMoment) {
  {
    Context ctx = context::New();
    ctx.VariableWithValue("w", Filled(kCrashTensorSize, 0));
    SetStep(ctx, 0);
    Handler(ctx)->Save();
  }
  std::mt19937 rng(20260515);
  std::uniform_int_distribution<int> delay_us(2'000, 100'000);
  int64_t last_step = 0;
  int interrupted = 0;  // kills that left a temporary file: in the middle of a write
  for (int iteration = 0; iteration < 10; ++iteration) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0) << std::strerror(errno);
    if (pid == 0) SaveUntilKilled(dir_);
    std::this_thread::sleep_for(std::chrono::microseconds(delay_us(rng)));
    ASSERT_EQ(kill(pid, SIGKILL), 0);
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the saver exited by itself with status " << WEXITSTATUS(status);

    Context ctx = context::New();
    auto handler = Handler(ctx);
    const std::vector<std::string> files = Files();
    interrupted += std::any_of(files.begin(), files.end(), [](const std::string& f) {
      return f.find(".tmp-") != std::string::npos;
    });
    ::testing::internal::CaptureStderr();
    const std::string name = handler->Restore();
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "") << "a checkpoint was corrupt after the kill";
    ASSERT_FALSE(name.empty());
    const int64_t step = ctx.VariableWithShape("global_step", shapes::Make(dtypes::Int64))->Value().Value<int64_t>();
    const auto w = ctx.VariableWithShape("w", shapes::Make(dtypes::Float32, kCrashTensorSize))->Value();
    const std::span<const float> values = w.Flat<float>();
    EXPECT_TRUE(std::all_of(values.begin(), values.end(), [&](float v) { return v == static_cast<float>(step); }))
        << "iteration " << iteration << ": " << name << " holds values of another step than " << step;
    EXPECT_GE(step, last_step);
    last_step = step;
  }
  EXPECT_GT(last_step, 0) << "no save completed: the kill delays are too short for this machine";
  std::printf("[          ] %d of 10 kills interrupted a write; %lld saves in all\n", interrupted,
              static_cast<long long>(last_step));
  // The next save cleans up whatever the kills left behind: temporary files,
  // orphans, and checkpoints beyond Keep(2) when kills hit between writing a
  // JSON file and deleting the old checkpoints.
  Context ctx = context::New();
  auto handler = checkpoints::Build(ctx).Dir(dir_).Keep(2).Done();
  handler->Restore();
  SetStep(ctx, last_step + 1);
  handler->Save();
  for (const std::string& file : Files()) EXPECT_EQ(file.find(".tmp-"), std::string::npos) << file;
  EXPECT_EQ(Files().size(), 4u);
}

// ------------------------------------------------------------------- Tool.

// Runs the tool; returns its exit status and stdout + stderr.
std::pair<int, std::string> RunTool(const std::string& args) {
  std::string output;
  FILE* pipe = popen((std::string(KILN_CHECKPOINT_TOOL) + " " + args + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return {-1, "popen failed"};
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), pipe)) output.append(buf, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

TEST_F(CheckpointsTest, ToolListsAndSummarizes) {
  Context ctx = context::New();
  Variable* w = ctx.In("layer1").VariableWithValue("weights", tensors::FromValue(std::vector<double>{1, 2, 3, 4}));
  ctx.VariableWithValue("mask", Bools({true, false, false, false}));
  ctx.VariableWithValue("half", tensors::FromValue(std::vector<std::vector<float16>>{{float16(-1.0f), float16(0.5f)}}));
  ctx.SetParam("learning_rate", 0.001);
  ctx.In("layer1").SetParam("units", std::vector<int64_t>{128, 64});
  auto handler = Handler(ctx);
  SetStep(ctx, 5);
  handler->Save();
  w->SetValue(tensors::FromValue(std::vector<double>{-1, 0, 1, 8}));
  SetStep(ctx, 6);
  handler->Save();

  auto [status, out] = RunTool(dir_);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("Checkpoints in " + dir_ + " (2):"), std::string::npos) << out;
  EXPECT_NE(out.find("checkpoint-0000000005  5     "), std::string::npos) << out;
  EXPECT_NE(out.find("checkpoint-0000000006: step 6"), std::string::npos) << out;
  EXPECT_NE(out.find("/learning_rate  double    0.001"), std::string::npos) << out;
  EXPECT_NE(out.find("/layer1/units   int list  [128, 64]"), std::string::npos) << out;
  EXPECT_NE(out.find("/layer1/weights  Float64  [4]     -1   8    2      3.53553"), std::string::npos) << out;
  EXPECT_NE(out.find("/mask            Bool     [4]     0    1    0.25   0.433013"), std::string::npos) << out;
  EXPECT_NE(out.find("/half            Float16  [1, 2]  -1   0.5  -0.25  0.75"), std::string::npos) << out;
  EXPECT_NE(out.find("/global_step     Int64    []      6    6    6      0"), std::string::npos) << out;

  std::tie(status, out) = RunTool(dir_ + " checkpoint-0000000005");
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("/layer1/weights  Float64  [4]     1    4    2.5    1.11803"), std::string::npos) << out;

  std::tie(status, out) = RunTool(Path("missing"));
  EXPECT_EQ(status, 1);
  EXPECT_NE(out.find("kiln_checkpoint: " + Path("missing") + " is not a directory"), std::string::npos) << out;

  fs::resize_file(Path("checkpoint-0000000006.safetensors"), 20);
  std::tie(status, out) = RunTool(dir_);
  EXPECT_EQ(status, 1);
  EXPECT_NE(out.find("kiln_checkpoint: checkpoint " + Path("checkpoint-0000000006.safetensors") + " has 20 bytes"),
            std::string::npos)
      << out;
}

}  // namespace
}  // namespace kiln
