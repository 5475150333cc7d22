// Copyright 2026 The Kiln Authors.
#include "kiln/backends/openmp_defaults.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace kiln::backends {

namespace internal {

bool SetOpenMpDefaultsInEnvironment() {
  if (std::getenv("GOMP_SPINCOUNT") != nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr) return false;
  return setenv("GOMP_SPINCOUNT", "10000", 0) == 0;
}

}  // namespace internal

namespace {

// Whether /proc/self/exe is the program itself, not the dynamic loader (a
// program started as "ld-linux-x86-64.so.2 ./prog args": re-executing the
// loader with the program's argv would run the wrong file).
bool SelfIsTheProgram() {
  std::error_code error;
  const std::string name = std::filesystem::read_symlink("/proc/self/exe", error).filename().string();
  return !error && name.rfind("ld-", 0) != 0 && name.rfind("ld.so", 0) != 0;
}

}  // namespace

void ApplyOpenMpDefaults(char** argv) {
  if (argv == nullptr || argv[0] == nullptr || !SelfIsTheProgram()) return;
  // The re-executed process finds GOMP_SPINCOUNT set and returns here.
  if (!internal::SetOpenMpDefaultsInEnvironment()) return;
  std::fflush(nullptr);  // output already buffered would be lost with this process image
  execv("/proc/self/exe", argv);
}

}  // namespace kiln::backends
