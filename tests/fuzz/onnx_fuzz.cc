// Copyright 2026 The Kiln Authors.
// Fuzzes the ONNX importer: parsing and checking a ModelProto, then tracing
// its graph on parameters of the declared input shapes (every converter,
// trace-time folding on the CPU, sub-graphs), and the TensorProto reader.
// Tracing builds the graph without running it; folding runs only values of
// at most kMaxFoldBytes. The seeds (corpus/onnx_fuzz/) are small models
// built with ONNX's protobuf classes: dense, conv/pool, shape arithmetic,
// If, Loop, LSTM, Resize, gathers, Einsum.
#include "kiln/context/context.h"
#include "kiln/graph/graph.h"
#include "kiln/onnx/onnx.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kiln;  // NOLINT
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    const tensors::Tensor t = onnx::ParseTensor(bytes);
    volatile size_t sink = static_cast<size_t>(t.Shape().ByteSize());
    (void)sink;
  } catch (const Error&) {
  }
  try {
    const onnx::Model model = onnx::Model::ImportBytes(bytes, {}, {.trainable = false});
    graph::Graph g("onnx_fuzz");
    std::vector<graph::Node> inputs;
    for (const onnx::ValueInfo& in : model.Inputs()) {
      if (in.dtype == dtypes::Invalid || in.dims.size() > 6) return 0;
      std::vector<int64_t> dims;
      int64_t elements = 1;
      for (int64_t d : in.dims) {
        dims.push_back(d < 0 ? 1 : d);
        if (dims.back() > 64) return 0;
        elements *= dims.back();
      }
      if (elements > 4096) return 0;
      inputs.push_back(graph::Parameter(&g, "in" + std::to_string(inputs.size()), shapes::Shape(in.dtype, dims)));
    }
    model.Call(context::New(), inputs, {}, &g);
  } catch (const Error&) {
  }
  return 0;
}
