// Copyright 2026 The Kiln Authors.
// Inspects a directory of Kiln checkpoints:
//   kiln_checkpoint <dir>          lists the checkpoints, details the newest
//   kiln_checkpoint <dir> <name>   lists the checkpoints, details <name>
// The details are the hyperparameters and a table of the variables: full
// name, dtype, shape and, in double precision, min, max, mean and standard
// deviation (population); min and max skip NaNs, mean and std are NaN if any
// value is. Bool counts as 0/1. The detailed checkpoint is fully verified
// (sizes and checksums). Errors print a message and exit with status 1.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <limits>
#include <string>
#include <vector>

#include "kiln/backends/openmp_defaults.h"
#include "src/context/checkpoints_internal.h"

namespace {

using namespace kiln;  // NOLINT(build/namespaces)
namespace internal = kiln::context::internal;
namespace fs = std::filesystem;

using Row = std::vector<std::string>;

// Prints rows as left-aligned columns, indented by two spaces.
void PrintTable(const std::vector<Row>& rows) {
  std::vector<size_t> widths;
  for (const Row& row : rows) {
    widths.resize(std::max(widths.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const Row& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += "  " + row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size(), ' ');
    }
    std::cout << line << "\n";
  }
}

std::string Format(const char* format, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), format, v);
  return buf;
}

std::string HumanSize(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int unit = 0;
  while (v >= 1024 && unit < 4) {
    v /= 1024;
    ++unit;
  }
  return unit == 0 ? std::to_string(bytes) + " B" : Format("%.1f", v) + " " + units[unit];
}

std::string LocalTime(int64_t unix_seconds) {
  const auto t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

std::string ParamToString(const context::Param& p) {
  return std::visit(
      [](const auto& v) -> std::string {
        using V = std::decay_t<decltype(v)>;
        auto one = [](const auto& x) -> std::string {
          using X = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<X, std::string>) return "\"" + x + "\"";
          else if constexpr (std::is_same_v<X, double>) return Format("%.17g", x);
          else if constexpr (std::is_same_v<X, bool>) return x ? "true" : "false";
          else return std::to_string(x);
        };
        if constexpr (std::is_same_v<V, bool> || std::is_same_v<V, int64_t> || std::is_same_v<V, double> ||
                      std::is_same_v<V, std::string>) {
          return one(v);
        } else {
          std::string s = "[";
          for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + one(v[i]);
          return s + "]";
        }
      },
      p);
}

const char* ParamTypeName(const context::Param& p) {
  static const char* kNames[] = {"bool", "int", "double", "string", "int list", "double list", "string list"};
  return kNames[p.index()];
}

// min, max, mean, std of a tensor's values, computed in double.
Row Statistics(const tensors::Tensor& t) {
  if (t.Size() == 0) return {"-", "-", "-", "-"};
  std::vector<double> values(static_cast<size_t>(t.Size()));
  DispatchDType(t.DType(), [&](auto zero) {
    using T = decltype(zero);
    const T* data = static_cast<const T*>(t.HostData());
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<double>(data[i]);
  });
  double lo = std::numeric_limits<double>::quiet_NaN(), hi = lo, sum = 0;
  for (double v : values) {
    sum += v;
    if (std::isnan(v)) continue;
    lo = std::isnan(lo) ? v : std::min(lo, v);
    hi = std::isnan(hi) ? v : std::max(hi, v);
  }
  const double mean = sum / static_cast<double>(values.size());
  double squares = 0;
  for (double v : values) squares += (v - mean) * (v - mean);
  const double std_dev = std::sqrt(squares / static_cast<double>(values.size()));
  return {Format("%.6g", lo), Format("%.6g", hi), Format("%.6g", mean), Format("%.6g", std_dev)};
}

std::string DimsToString(const std::vector<int64_t>& dims) {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

// Lists the checkpoints of `dir`; a checkpoint whose JSON file cannot be read
// is listed as corrupt rather than ending the listing.
void PrintList(const std::string& dir, const std::vector<std::string>& names) {
  std::cout << "Checkpoints in " << dir << " (" << names.size() << "):\n";
  std::vector<Row> rows = {{"NAME", "STEP", "TIME", "SIZE"}};
  for (const std::string& name : names) {
    std::error_code e1, e2;
    const uint64_t size = fs::file_size(internal::JsonPath(dir, name), e1) +
                          fs::file_size(internal::SafetensorsPath(dir, name), e2);
    try {
      const internal::CheckpointMetadata m = internal::ReadCheckpointMetadata(dir, name);
      rows.push_back({name, std::to_string(m.step), LocalTime(m.time), e1 || e2 ? "?" : HumanSize(size)});
    } catch (const Error&) {
      rows.push_back({name, "?", "(corrupt JSON file)", e1 || e2 ? "?" : HumanSize(size)});
    }
  }
  PrintTable(rows);
}

void PrintDetails(const std::string& dir, const std::string& name) {
  const internal::LoadedCheckpoint c = internal::LoadCheckpoint(dir, name);
  const internal::CheckpointMetadata& m = c.metadata;
  std::cout << "\n" << name << ": step " << m.step << ", saved " << LocalTime(m.time) << "\n";
  std::cout << "\nHyperparameters (" << m.params.size() << "):\n";
  std::vector<Row> params;
  for (const auto& [key, value] : m.params) params.push_back({key, ParamTypeName(value), ParamToString(value)});
  PrintTable(params);
  std::cout << "\nVariables (" << c.values.size() << ", " << HumanSize(m.safetensors.size) << "):\n";
  std::vector<Row> vars = {{"NAME", "DTYPE", "SHAPE", "MIN", "MAX", "MEAN", "STD"}};
  for (const auto& [full, value] : c.values) {
    Row row = {full, dtypes::Name(value.DType()), DimsToString(value.Shape().Dims())};
    for (std::string& s : Statistics(value)) row.push_back(std::move(s));
    vars.push_back(std::move(row));
  }
  PrintTable(vars);
}

int Run(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: kiln_checkpoint <dir> [<checkpoint name>]\n";
    return 1;
  }
  const std::string dir = argv[1];
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    std::cerr << "kiln_checkpoint: " << dir << " is not a directory\n";
    return 1;
  }
  const std::vector<std::string> names = internal::ListCheckpoints(dir);
  PrintList(dir, names);
  if (argc == 3) {
    PrintDetails(dir, argv[2]);
  } else if (!names.empty()) {
    PrintDetails(dir, names.back());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  kiln::backends::ApplyOpenMpDefaults(argv);  // short OpenMP spin-waits (see the header)
  try {
    return Run(argc, argv);
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "kiln_checkpoint: " << e.what() << "\n";
    return 1;
  }
}
