#!/usr/bin/env bash
# Builds and runs Kiln's benchmarks (bench/) in build-bench/: the Google
# Benchmark micro-benchmarks (kiln_micro), then the side-by-side driver
# (kiln_compare: Kiln against libtorch, oneDNN's sgemm, hand-fused loops and
# the memory bandwidth), which ends with a Markdown table. Arguments go to
# kiln_compare, e.g.:
#   tools/bench.sh --rounds=10 --filter=gemm
# Environment: JOBS (build parallelism, default nproc), KILN_BENCH_MICRO=0
# skips the micro-benchmarks. Installs what it needs with apt-get first.
# Timings are only meaningful on an otherwise idle machine: it prints the load.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh

# The peers: libtorch's C++ frontend, and an optimized BLAS for it (with only
# the reference libblas3, which libtorch-dev pulls in, its matmuls would be
# several times slower). The OpenMP build of OpenBLAS follows the thread
# count the benchmark sets.
# tcmalloc is preloaded for the run, as libtorch's users do: glibc's malloc
# returns libtorch's large blocks to the OS, and the page faults of taking
# them back (about 10 us each on some VMs) cripple it.
PEERS=(libtorch-dev libopenblas0-openmp libtcmalloc-minimal4)
missing=()
for p in "${PEERS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then missing+=("$p"); fi
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  echo "bench: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

export CCACHE_BASEDIR="$PWD"
cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_BENCH=ON -DKILN_BUILD_TESTS=OFF \
  -DKILN_BUILD_EXAMPLES=OFF
cmake --build build-bench --parallel "${JOBS:-$(nproc)}" --target kiln_micro kiln_compare

echo "bench: $(uptime)"
if [ "${KILN_BENCH_MICRO:-1}" != 0 ]; then
  ./build-bench/bench/kiln_micro
  echo
fi
# OpenBLAS picks its own kernels for this CPU (some machines pin them).
tcmalloc=$(ls /usr/lib/*/libtcmalloc_minimal.so.4 2>/dev/null | head -n 1 || true)
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE ${tcmalloc:+LD_PRELOAD="$tcmalloc"} \
  ./build-bench/bench/kiln_compare "$@" | tee build-bench/bench/compare.txt
echo "bench: table saved in build-bench/bench/compare.txt"
