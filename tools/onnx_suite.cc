// Copyright 2026 The Kiln Authors.
// onnx_suite: runs ONNX's backend node tests (Debian's libonnx-testdata) on
// Kiln's importer and writes what passed, failed and is unsupported.
//
//   onnx_suite [--data DIR] [--filter TEXT] [--table FILE.md] [--min-pass N] [--backend NAME] [--verbose]
//   onnx_suite --list-ops      (the operators the importer converts)
//
// Each case is a folder with model.onnx and test_data_set_*/{input,output}_K.pb.
// Outputs are compared with ONNX's own tolerances (rtol 1e-3, atol 1e-7;
// integers and bools exactly; NaN matches NaN). A case is "unsupported" when
// the importer refuses it with a reason (an operator, attribute or type it
// does not support), "failed" when it runs but differs or errs otherwise.
// With --min-pass N the exit status is 1 if fewer than N cases pass (CI
// keeps the recorded count from dropping).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "kiln/kiln.h"
#include "kiln/onnx/onnx.h"

namespace fs = std::filesystem;
using namespace kiln;  // NOLINT

namespace {

struct Result {
  std::string name;
  std::string outcome;  // "pass", "fail", "unsupported"
  std::string detail;
};

std::string FirstLine(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  if (line.size() > 240) line = line.substr(0, 240) + "...";
  return line;
}

// Returns "" when `got` matches `want`, else what differs.
std::string Compare(const tensors::Tensor& got, const tensors::Tensor& want) {
  if (got.DType() != want.DType()) {
    return std::string("dtype ") + dtypes::Name(got.DType()) + ", expected " + dtypes::Name(want.DType());
  }
  if (got.Shape().Dims() != want.Shape().Dims()) return "shape " + got.Shape().ToString() + ", expected " + want.Shape().ToString();
  const tensors::Tensor g = got;
  std::string diff;
  auto check = [&](double a, double b, int64_t i, bool exact) {
    if (!diff.empty()) return;
    if (std::isnan(a) && std::isnan(b)) return;
    if (exact ? a == b : (a == b || std::abs(a - b) <= 1e-7 + 1e-3 * std::abs(b))) return;
    char buf[160];
    std::snprintf(buf, sizeof(buf), "element %lld is %.9g, expected %.9g", static_cast<long long>(i), a, b);
    diff = buf;
  };
  if (dtypes::IsComplex(want.DType())) {
    DispatchDTypeWithComplex(want.DType(), [&]<typename T>(T) {
      if constexpr (std::is_same_v<T, dtypes::complex64> || std::is_same_v<T, dtypes::complex128>) {
        auto a = g.Flat<T>();
        auto b = want.Flat<T>();
        for (size_t i = 0; i < a.size(); ++i) {
          check(a[i].real(), b[i].real(), static_cast<int64_t>(i), false);
          check(a[i].imag(), b[i].imag(), static_cast<int64_t>(i), false);
        }
      }
    });
    return diff;
  }
  DispatchDType(want.DType(), [&]<typename T>(T) {
    auto a = g.Flat<T>();
    auto b = want.Flat<T>();
    const bool exact = !dtypes::IsFloat(want.DType());
    for (size_t i = 0; i < a.size(); ++i) {
      check(static_cast<double>(a[i]), static_cast<double>(b[i]), static_cast<int64_t>(i), exact);
    }
  });
  return diff;
}

// ONNX 1.12's test data stores bfloat16 tensors as uint16 (numpy has no
// bfloat16): the same bits, relabeled for a bfloat16 input or output.
tensors::Tensor BFloat16Bits(const tensors::Tensor& t, dtypes::DType want) {
  if (t.DType() != dtypes::Uint16 || want != dtypes::BFloat16) return t;
  tensors::Tensor r(shapes::Shape(dtypes::BFloat16, t.Shape().Dims()));
  std::memcpy(r.MutableHostData(), t.HostData(), static_cast<size_t>(t.Shape().ByteSize()));
  return r;
}

Result RunCase(const fs::path& dir, const std::shared_ptr<backends::Backend>& backend) {
  Result r{dir.filename().string(), "pass", ""};
  try {
    onnx::Model model = onnx::Model::Import(dir / "model.onnx");
    for (const auto& in : model.Inputs()) {
      if (in.dtype == dtypes::Invalid) {
        return {r.name, "unsupported", "input '" + in.name + "' of type " + in.type};
      }
    }
    for (const auto& out : model.Outputs()) {
      if (out.dtype == dtypes::Invalid) {
        return {r.name, "unsupported", "output '" + out.name + "' of type " + out.type};
      }
    }
    std::vector<fs::path> sets;
    for (const auto& e : fs::directory_iterator(dir)) {
      if (e.is_directory() && e.path().filename().string().starts_with("test_data_set_")) sets.push_back(e.path());
    }
    std::sort(sets.begin(), sets.end());
    if (sets.empty()) return {r.name, "fail", "no test data"};
    auto ctx = context::New();
    onnx::Exec exec = model.NewExec(backend, ctx);
    for (const auto& set : sets) {
      std::vector<tensors::Tensor> inputs;
      for (size_t i = 0; i < model.Inputs().size(); ++i) {
        inputs.push_back(BFloat16Bits(onnx::ReadTensor(set / ("input_" + std::to_string(i) + ".pb")),
                                      model.Inputs()[i].dtype));
      }
      std::vector<tensors::Tensor> outs = exec.Call(inputs);
      for (size_t i = 0; i < model.Outputs().size(); ++i) {
        const fs::path want_path = set / ("output_" + std::to_string(i) + ".pb");
        if (!fs::exists(want_path)) continue;
        const std::string d = Compare(outs.at(i), BFloat16Bits(onnx::ReadTensor(want_path), model.Outputs()[i].dtype));
        if (!d.empty()) return {r.name, "fail", "output " + std::to_string(i) + ": " + d};
      }
    }
  } catch (const std::exception& e) {
    const std::string full = e.what();
    const std::string msg = FirstLine(full);
    const bool unsupported = full.find("not supported") != std::string::npos ||
                             full.find("is not defined on") != std::string::npos;
    return {r.name, unsupported ? "unsupported" : "fail", msg};
  }
  return r;
}

}  // namespace

int Run(int argc, char** argv);

int main(int argc, char** argv) {
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "onnx_suite: " << e.what() << "\n";
    return 2;
  }
}

int Run(int argc, char** argv) {
  fs::path data = "/usr/share/libonnx-testdata/data/node";
  std::string filter, table, backend_name = "cpu";
  long min_pass = -1;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << "onnx_suite: " << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--data") data = next();
    else if (a == "--filter") filter = next();
    else if (a == "--table") table = next();
    else if (a == "--backend") backend_name = next();
    else if (a == "--min-pass") min_pass = std::stol(next());
    else if (a == "--verbose") verbose = true;
    else if (a == "--list-ops") {
      for (const auto& op : onnx::SupportedOperators()) std::cout << op << "\n";
      return 0;
    }
    else {
      std::cerr << "usage: onnx_suite [--data DIR] [--filter TEXT] [--table FILE.md] [--min-pass N] [--backend NAME] "
                   "[--verbose]\n";
      return 2;
    }
  }
  if (!fs::is_directory(data)) {
    std::cerr << "onnx_suite: " << data << " is not a folder (install libonnx-testdata: tools/setup.sh)\n";
    return 2;
  }
  std::vector<fs::path> cases;
  for (const auto& e : fs::directory_iterator(data)) {
    if (e.is_directory() && fs::exists(e.path() / "model.onnx") &&
        (filter.empty() || e.path().filename().string().find(filter) != std::string::npos)) {
      cases.push_back(e.path());
    }
  }
  std::sort(cases.begin(), cases.end());
  auto backend = backends::NewWithName(backend_name);
  std::printf("onnx_suite: %s on %s\n", data.c_str(), backend->Description().c_str());
  std::map<std::string, int> counts;
  std::vector<Result> results;
  const auto start = std::chrono::steady_clock::now();
  for (const auto& dir : cases) {
    Result r = RunCase(dir, backend);
    ++counts[r.outcome];
    if (verbose || r.outcome != "pass") {
      std::cout << (r.outcome == "pass" ? "PASS " : r.outcome == "fail" ? "FAIL " : "UNSUP ") << r.name
                << (r.detail.empty() ? "" : ": " + r.detail) << "\n";
    }
    results.push_back(std::move(r));
  }
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const int total = static_cast<int>(cases.size());
  std::printf("onnx_suite: %d cases: %d passed (%.1f%%), %d failed, %d unsupported (%.1f s)\n", total, counts["pass"],
              total ? 100.0 * counts["pass"] / total : 0.0, counts["fail"], counts["unsupported"], secs);
  if (!table.empty()) {
    std::ofstream out(table);
    out << "| case | outcome | detail |\n|---|---|---|\n";
    for (const auto& r : results) {
      std::string d = r.detail;
      std::replace(d.begin(), d.end(), '|', '/');
      out << "| " << r.name << " | " << r.outcome << " | " << d << " |\n";
    }
  }
  if (min_pass >= 0 && counts["pass"] < min_pass) {
    std::printf("onnx_suite: %d passed, fewer than the %ld recorded: a regression\n", counts["pass"], min_pass);
    return 1;
  }
  return 0;
}
