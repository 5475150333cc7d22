#!/usr/bin/env bash
# Installs every Debian package Kiln needs (build, tests, benchmarks, datasets).
# Idempotent: packages already installed are skipped. Run as root (or with sudo) on Debian 12.
#   tools/setup.sh          install what is missing
#   tools/setup.sh --list   print the package list, one per line, and exit (read by tools/check_setup.sh)
set -euo pipefail

PACKAGES=(
  build-essential cmake ninja-build pkg-config ccache
  libdnnl-dev        # oneDNN: DotGeneral and ConvGeneral kernels
  ocl-icd-opencl-dev # oneDNN's CMake config finds OpenCL (libdnnl-dev only recommends it)
  libhwy-dev         # Highway: portable SIMD for elementwise kernels
  nlohmann-json3-dev # JSON: checkpoint metadata
  zlib1g-dev         # gzip: IDX dataset files
  libfftw3-dev       # FFTW: the FFT kernels (float and double)
  liblapacke-dev     # LAPACKE: the linear-algebra kernels (Cholesky, LU, QR, Eigh, SVD, solves)
  libopenblas0-openmp # the LAPACK and BLAS liblapacke loads: OpenBLAS on the OpenMP pool
  libonnx-dev libprotobuf-dev # ONNX's protobuf classes: the ONNX importer parses models with them
  libonnx-testdata   # ONNX's backend node tests: tools/onnx_suite runs them (a ctest)
  python3-torch      # PyTorch exports the CNN of examples/onnx (and the ONNX benchmark's TorchScript peer)
  libgloo-dev        # Gloo: the collectives of data-parallel training on CPUs (TCP transport)
  libgtest-dev libgmock-dev googletest
  libbenchmark-dev
  # Clang (>= 14), its sanitizer runtimes and its OpenMP: the sanitizer build
  # (KILN_SANITIZE=1 tools/test.sh) is a Clang build.
  clang libclang-rt-14-dev libomp-14-dev
  dataset-fashion-mnist
  fortunes           # English text for examples/char_gpt (a GPT trained byte by byte)
)

if [ "${1:-}" = "--list" ]; then
  printf '%s\n' "${PACKAGES[@]}"
  exit 0
elif [ $# -gt 0 ]; then
  echo "usage: $0 [--list]" >&2
  exit 2
fi

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
