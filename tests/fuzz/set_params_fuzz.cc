// Copyright 2026 The Kiln Authors.
// Fuzzes Context::SetParams ("key=value;/scope/key=value") over parameters of
// every type.
#include "kiln/context/context.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kiln::context::Context ctx = kiln::context::New();
  ctx.SetParam("flag", true);
  ctx.SetParam("batch_size", int64_t{64});
  ctx.SetParam("learning_rate", 0.001);
  ctx.SetParam("name", std::string("mlp"));
  ctx.In("layer").SetParam("hidden", std::vector<int64_t>{256, 128});
  ctx.In("layer").SetParam("dropout", std::vector<double>{0.1, 0.2});
  ctx.SetParam("activations", std::vector<std::string>{"relu", "tanh"});
  try {
    ctx.SetParams(std::string(reinterpret_cast<const char*>(data), size));
    (void)ctx.In("layer").GetParam<std::vector<int64_t>>("hidden");
  } catch (const kiln::Error&) {
  }
  return 0;
}
