#!/usr/bin/env bash
# Builds Kiln and runs the whole test suite (ctest). Usage:
#   tools/test.sh                 # Release build in build/
#   KILN_SANITIZE=1 tools/test.sh # ASan+UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
if [ "${KILN_SANITIZE:-0}" = "1" ]; then
  dir=build-asan
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DKILN_SANITIZE=ON)
  # oneDNN's JIT and OpenMP runtime keep process-lifetime allocations: leak
  # checking is done by the Release run under valgrind-free LSan elsewhere.
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
else
  dir=build
  flags=(-DCMAKE_BUILD_TYPE=Release)
fi
cmake -S . -B "$dir" -G Ninja "${flags[@]}" -DKILN_BUILD_EXAMPLES=ON
cmake --build "$dir" --parallel "$(nproc)"
ctest --test-dir "$dir" --output-on-failure --parallel "$(nproc)"
