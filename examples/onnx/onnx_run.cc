// Copyright 2026 The Kiln Authors.
// Loads any ONNX model, runs it on the CPU (or the best backend) and prints
// its inputs, outputs and timing.
//
//   onnx_run MODEL.onnx [--repeat=N] [--data=DIR]
//
// Inputs come from DIR/input_K.pb (ONNX TensorProto files; by default the
// model's folder's test_data_set_0/, as in ONNX's test data), else random
// values of the declared shapes (dynamic dimensions 1). Where DIR also holds
// output_K.pb, the largest difference from it is printed.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "kiln/backends/openmp_defaults.h"
#include "kiln/kiln.h"
#include "kiln/onnx/onnx.h"

namespace {

using namespace kiln;  // NOLINT(build/namespaces): an example reads better this way.
namespace fs = std::filesystem;

std::string DimsText(const onnx::ValueInfo& v) {
  if (!v.has_shape) return "(unknown shape)";
  std::string s = "[";
  for (size_t i = 0; i < v.dims.size(); ++i) {
    s += (i ? ", " : "") + (v.dims[i] >= 0 ? std::to_string(v.dims[i]) : v.dim_names[i].empty() ? "?" : v.dim_names[i]);
  }
  return s + "]";
}

tensors::Tensor RandomInput(const onnx::ValueInfo& v, std::mt19937& rng) {
  std::vector<int64_t> dims;
  for (int64_t d : v.dims) dims.push_back(d < 0 ? 1 : d);
  tensors::Tensor t(shapes::Shape(v.dtype, dims));
  std::uniform_real_distribution<double> u(0, 1);
  DispatchDType(v.dtype, [&]<typename T>(T) {
    auto flat = t.MutableFlat<T>();
    for (auto& x : flat) {
      if constexpr (std::is_floating_point_v<T>) x = static_cast<T>(u(rng));
      else if constexpr (std::is_same_v<T, bool>) x = u(rng) < 0.5;
      else if constexpr (std::is_integral_v<T>) x = static_cast<T>(0);
      else x = T(static_cast<float>(u(rng)));
    }
  });
  return t;
}

double MaxAbsDiff(const tensors::Tensor& a, const tensors::Tensor& b) {
  if (a.Shape() != b.Shape() || dtypes::IsComplex(a.DType())) return std::nan("");
  double worst = 0;
  DispatchDType(a.DType(), [&]<typename T>(T) {
    auto x = a.Flat<T>();
    auto y = b.Flat<T>();
    for (size_t i = 0; i < x.size(); ++i) worst = std::max(worst, std::abs(static_cast<double>(x[i]) - static_cast<double>(y[i])));
  });
  return worst;
}

int Run(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: onnx_run MODEL.onnx [--repeat=N] [--data=DIR]\n";
    return 2;
  }
  const fs::path path = argv[1];
  int repeat = 10;
  fs::path data = path.parent_path() / "test_data_set_0";
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--repeat=", 0) == 0) repeat = std::max(1, std::stoi(a.substr(9)));
    else if (a.rfind("--data=", 0) == 0) data = a.substr(7);
    else {
      std::cerr << "unknown flag " << a << "\n";
      return 2;
    }
  }
  onnx::Model model = onnx::Model::Import(path);
  auto backend = backends::New();
  std::cout << path.string() << ": producer " << model.Producer() << ", opset " << model.Opset() << ", "
            << model.Initializers().size() << " initializers; running on " << backend->Description() << "\n";
  std::vector<tensors::Tensor> inputs;
  std::mt19937 rng(1);
  for (size_t i = 0; i < model.Inputs().size(); ++i) {
    const auto& v = model.Inputs()[i];
    const fs::path file = data / ("input_" + std::to_string(i) + ".pb");
    if (fs::exists(file)) {
      inputs.push_back(onnx::ReadTensor(file));
    } else {
      if (v.dtype == dtypes::Invalid) throw Error("input '" + v.name + "' has type " + v.type + ", not supported");
      inputs.push_back(RandomInput(v, rng));
    }
    std::cout << "  input  " << v.name << ": " << v.type << " " << DimsText(v) << " <- "
              << inputs.back().Shape().ToString() << (fs::exists(file) ? " from " + file.string() : " random") << "\n";
  }
  auto ctx = context::New();
  onnx::Exec exec = model.NewExec(backend, ctx);
  auto t0 = std::chrono::steady_clock::now();
  std::vector<tensors::Tensor> outputs = exec.Call(inputs);
  const double first_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::vector<double> times;
  for (int r = 0; r < repeat; ++r) {
    t0 = std::chrono::steady_clock::now();
    outputs = exec.Call(inputs);
    times.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(times.begin(), times.end());
  for (size_t i = 0; i < outputs.size(); ++i) {
    std::string text = outputs[i].ToString();
    if (text.size() > 160) text = text.substr(0, 160) + "...";
    std::cout << "  output " << model.Outputs()[i].name << ": " << text << "\n";
    const fs::path want = data / ("output_" + std::to_string(i) + ".pb");
    if (fs::exists(want)) std::printf("    max |difference| from %s: %.3g\n", want.c_str(), MaxAbsDiff(outputs[i], onnx::ReadTensor(want)));
  }
  std::printf("first call (trace, compile, run): %.2f ms; then median of %d runs: %.3f ms\n", first_ms, repeat,
              times[times.size() / 2]);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  kiln::backends::ApplyOpenMpDefaults(argv);
  try {
    return Run(argc, argv);
  } catch (const kiln::Error& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
