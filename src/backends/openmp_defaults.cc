// Copyright 2026 The Kiln Authors.
#include "kiln/backends/openmp_defaults.h"

#include <unistd.h>

#include <cstdlib>

namespace kiln::backends {

namespace internal {

bool SetOpenMpDefaultsInEnvironment() {
  if (std::getenv("GOMP_SPINCOUNT") != nullptr || std::getenv("OMP_WAIT_POLICY") != nullptr) return false;
  return setenv("GOMP_SPINCOUNT", "10000", 0) == 0;
}

}  // namespace internal

void ApplyOpenMpDefaults(char** argv) {
  // The re-executed process finds GOMP_SPINCOUNT set and returns here.
  if (argv != nullptr && internal::SetOpenMpDefaultsInEnvironment()) execv("/proc/self/exe", argv);
}

}  // namespace kiln::backends
