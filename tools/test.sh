#!/usr/bin/env bash
# Builds Kiln and runs the whole test suite (ctest). Usage:
#   tools/test.sh                      # Release build in build/, every test
#   KILN_SANITIZE=1 tools/test.sh      # Clang, ASan+UBSan+LSan build in build-asan/, every test
#   KILN_SANITIZE=thread tools/test.sh # ThreadSanitizer build in build-tsan/, the concurrency tests
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
# Cache compilations by paths relative to the checkout, so clones elsewhere
# (CI) reuse them.
export CCACHE_BASEDIR="$PWD"
# The sanitizer builds carry line tables (-g1); by default ccache then keys
# each object on the build directory too, so a clone elsewhere (CI) would
# recompile everything. Debug info may then name the first clone's directory.
export CCACHE_NOHASHDIR=1
# -O1 with line tables: readable sanitizer reports, and a build much faster
# than -O2 -g on two cores.
sanitizer_flags=(-DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-O1 -g1")
case "${KILN_SANITIZE:-0}" in
  1)
    dir=build-asan
    # Built with Clang: this also proves the library, its public headers, the
    # tests, the examples and the benchmarks compile with Clang (>= 14) as well
    # as with GCC.
    # The libFuzzer targets are built here too (their seed corpora run as tests).
    flags=("${sanitizer_flags[@]}" -DCMAKE_CXX_COMPILER=clang++ -DKILN_SANITIZE=ON -DKILN_FUZZ=ON -DKILN_BUILD_BENCH=ON)
    # LeakSanitizer included: every test process must end without leaks.
    export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
    export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
    ;;
  thread)
    dir=build-tsan
    flags=("${sanitizer_flags[@]}" -DKILN_TSAN=ON)
    ;;
  0)
    dir=build
    # The benchmarks are built (not run) so they keep compiling against the API.
    flags=(-DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_BENCH=ON)
    ;;
  *)
    echo "tools/test.sh: KILN_SANITIZE must be 1 or thread, got '${KILN_SANITIZE}'" >&2
    exit 2
    ;;
esac
cmake -S . -B "$dir" -G Ninja "${flags[@]}" -DKILN_BUILD_EXAMPLES=ON

if [ "${KILN_SANITIZE:-0}" = "thread" ]; then
  # The tests whose code runs on several host threads: graph executables
  # called concurrently, one context trained and read from two threads,
  # dataset prefetching, fused kernels, the CUDA backend's staging slots. OpenMP is kept to one thread: libgomp
  # is not instrumented, so its own synchronization would be reported as races.
  tsan_tests=(graph_test context_test datasets_test fusion_test cuda_staging_test)
  # The CUDA backend's parallel NVRTC compilation and its disk cache's writers, where the toolkit is there.
  cuda_tsan_tests=()
  if grep -q '^build tests/cuda_codegen_test ' "$dir/build.ninja"; then cuda_tsan_tests=(cuda_codegen_test cuda_kernel_cache_test); fi
  cmake --build "$dir" --parallel "$(nproc)" --target "${tsan_tests[@]}" "${cuda_tsan_tests[@]}" distributed_test
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1"
  export OMP_NUM_THREADS=1
  failed=0
  for t in "${tsan_tests[@]}"; do
    echo "--- $t under ThreadSanitizer"
    "$dir/tests/$t" --gtest_brief=1 || failed=1
  done
  if [ ${#cuda_tsan_tests[@]} -gt 0 ]; then
    echo "--- cuda_codegen_test (parallel compilation) under ThreadSanitizer"
    "$dir/tests/cuda_codegen_test" --gtest_brief=1 \
      --gtest_filter='*KernelsAreSplitIntoModules*:*ParallelCompile*:*DiskCacheIsReused*' || failed=1
    echo "--- cuda_kernel_cache_test (concurrent writers) under ThreadSanitizer"
    "$dir/tests/cuda_kernel_cache_test" --gtest_brief=1 || failed=1
  fi
  # The distributed store's server and client threads (in one process; the
  # multi-process tests run Gloo, which is not instrumented).
  echo "--- distributed_test (the store) under ThreadSanitizer"
  "$dir/tests/distributed_test" --gtest_brief=1 --gtest_filter='Store.*' || failed=1
  exit $failed
fi

cmake --build "$dir" --parallel "$(nproc)"
# LLVM's OpenMP (the Clang build's) registers each process in
# /dev/shm/__KMP_REGISTERED_LIB_<pid>_<uid>; a process that aborted leaves its
# file behind, and a later process reusing that pid refuses to start ("OMP:
# Error #15 ... unknown library already initialized"). Remove the files of
# processes that no longer run.
for f in /dev/shm/__KMP_REGISTERED_LIB_*; do
  [ -e "$f" ] || continue
  pid=${f#/dev/shm/__KMP_REGISTERED_LIB_}
  pid=${pid%%_*}
  kill -0 "$pid" 2>/dev/null || rm -f "$f" 2>/dev/null || true
done
ctest --test-dir "$dir" --output-on-failure --parallel "$(nproc)"
