// Copyright 2026 The Kiln Authors.
// Fuzzes the GGUF reader (header, metadata values and arrays, tensor infos,
// offsets) and dequantization of whatever it accepts.
#include "kiln/io/gguf.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = kiln::fuzz::ScratchDir() / "input.gguf";
  kiln::fuzz::WriteFile(path, {reinterpret_cast<const char*>(data), size});
  try {
    const auto file = kiln::io::gguf::File::Open(path.string());
    for (const std::string& name : file.Names()) {
      try {
        const kiln::tensors::Tensor t = file.Get(name);
        const auto bytes = static_cast<size_t>(t.Shape().ByteSize());
        volatile uint8_t sink = 0;
        if (bytes > 0) sink = static_cast<uint8_t>(sink ^ static_cast<const uint8_t*>(t.HostData())[bytes - 1]);
        (void)sink;
      } catch (const kiln::Error&) {  // a type Kiln does not read
      }
    }
  } catch (const kiln::Error&) {
  }
  return 0;
}
