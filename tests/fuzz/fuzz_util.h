// Copyright 2026 The Kiln Authors.
// Helpers shared by the libFuzzer targets: each target feeds bytes to one of
// Kiln's readers and accepts a kiln::Error as the only way to refuse them
// (any other exception, crash, leak or sanitizer report is a finding).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace kiln::fuzz {

/// A directory of this process's own, created once.
inline const std::filesystem::path& ScratchDir() {
  static const std::filesystem::path dir = [] {
    auto d = std::filesystem::temp_directory_path() / ("kiln_fuzz_" + std::to_string(::getpid()));
    std::filesystem::create_directories(d);
    return d;
  }();
  return dir;
}

/// Writes `bytes` to `path` (replacing it).
inline void WriteFile(const std::filesystem::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace kiln::fuzz
