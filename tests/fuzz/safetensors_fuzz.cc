// Copyright 2026 The Kiln Authors.
// Fuzzes the safetensors readers (header JSON, dtypes, shapes, offsets): the
// streaming one of checkpoints and the memory-mapped io::safetensors::File.
#include "kiln/io/safetensors.h"
#include "src/context/safetensors.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = kiln::fuzz::ScratchDir() / "input.safetensors";
  kiln::fuzz::WriteFile(path, {reinterpret_cast<const char*>(data), size});
  try {
    kiln::context::internal::safetensors::Contents contents = kiln::context::internal::safetensors::Read(path.string());
    // Whatever was accepted must be readable to its last byte.
    for (const auto& t : contents.tensors) {
      const auto bytes = static_cast<size_t>(t.value.Shape().ByteSize());
      volatile uint8_t sink = 0;
      if (bytes > 0) sink = static_cast<uint8_t>(sink ^ static_cast<const uint8_t*>(t.value.HostData())[bytes - 1]);
      (void)sink;
    }
  } catch (const kiln::Error&) {
  }
  try {
    const auto file = kiln::io::safetensors::File::Open(path.string());
    for (const std::string& name : file.Names()) {
      const kiln::tensors::Tensor t = file.Get(name);
      const auto bytes = static_cast<size_t>(t.Shape().ByteSize());
      volatile uint8_t sink = 0;
      if (bytes > 0) sink = static_cast<uint8_t>(sink ^ static_cast<const uint8_t*>(t.HostData())[bytes - 1]);
      (void)sink;
    }
  } catch (const kiln::Error&) {
  }
  return 0;
}
