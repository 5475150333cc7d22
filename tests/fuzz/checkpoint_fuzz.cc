// Copyright 2026 The Kiln Authors.
// Fuzzes checkpoint restore: the input is split into a JSON metadata file and
// a safetensors file (the first two bytes give the JSON's length), restored
// into a context that has a variable of its own, as a user's program would.
#include "kiln/context/checkpoints.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const size_t json_size = std::min<size_t>(size - 2, size_t{data[0]} | size_t{data[1]} << 8);
  const std::string_view json(reinterpret_cast<const char*>(data) + 2, json_size);
  const std::string_view tensors(reinterpret_cast<const char*>(data) + 2 + json_size, size - 2 - json_size);
  const auto dir = kiln::fuzz::ScratchDir() / "checkpoints";
  std::filesystem::create_directories(dir);
  kiln::fuzz::WriteFile(dir / "checkpoint-0000000001.json", json);
  kiln::fuzz::WriteFile(dir / "checkpoint-0000000001.safetensors", tensors);
  kiln::context::Context ctx = kiln::context::New();
  ctx.In("dense").VariableWithShape("w", kiln::shapes::Make(kiln::dtypes::Float32, 2, 3));
  ctx.SetParam("learning_rate", 0.1);
  try {
    kiln::context::checkpoints::Build(ctx).Dir(dir.string()).Done()->Restore();
    // A restored context must be usable: its values readable, its parameters typed.
    for (auto* v : ctx.Variables()) {
      if (v->HasValue()) (void)v->Value().ToString();
    }
    (void)ctx.Params();
  } catch (const kiln::Error&) {
  }
  return 0;
}
