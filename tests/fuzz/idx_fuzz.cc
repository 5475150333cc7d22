// Copyright 2026 The Kiln Authors.
// Fuzzes the IDX (MNIST format) reader (zlib reads plain and gzip files alike).
#include "kiln/ml/datasets/datasets.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path = kiln::fuzz::ScratchDir() / "input-idx";
  kiln::fuzz::WriteFile(path, {reinterpret_cast<const char*>(data), size});
  try {
    kiln::tensors::Tensor t = kiln::ml::datasets::ReadIdx(path.string());
    (void)t.ToString();
  } catch (const kiln::Error&) {
  }
  return 0;
}
