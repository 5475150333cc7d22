#!/usr/bin/env bash
# Builds Kiln and runs the whole test suite (ctest). Usage:
#   tools/test.sh                 # Release build in build/
#   KILN_SANITIZE=1 tools/test.sh # ASan+UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
# Cache compilations by paths relative to the checkout, so clones elsewhere
# (CI) reuse them.
export CCACHE_BASEDIR="$PWD"
if [ "${KILN_SANITIZE:-0}" = "1" ]; then
  dir=build-asan
  # -O1 with line tables: readable sanitizer reports, and a build much
  # faster than -O2 -g on two cores.
  flags=(-DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-O1 -g1" -DKILN_SANITIZE=ON)
  # LeakSanitizer included: every test process must end without leaks.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
else
  dir=build
  # The benchmarks are built (not run) so they keep compiling against the API.
  flags=(-DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_BENCH=ON)
fi
cmake -S . -B "$dir" -G Ninja "${flags[@]}" -DKILN_BUILD_EXAMPLES=ON
cmake --build "$dir" --parallel "$(nproc)"
ctest --test-dir "$dir" --output-on-failure --parallel "$(nproc)"
