#!/usr/bin/env bash
# Fills .gpu/ (ignored by git) with what tools/gpu_check.sh needs on a GPU machine that has no
# Debian packages and no network: Kiln's build dependencies as Debian 12 .deb files (.gpu/debs/,
# unpacked there with dpkg -x into /tmp/kilndeps, never into /) and a Fashion-MNIST subset
# (.gpu/fashion-mnist/: the whole test set and the first KILN_GPU_TRAIN_EXAMPLES training examples,
# default 20000; 60000 = the whole set, about 17 MiB more). Run here (Debian 12), once:
#   tools/gpu_bundle.sh
# The full dataset-fashion-mnist package is 30 MiB (the already-gzipped IDX files), too much
# beside the 10 MiB of libraries under the device tool's 64 MiB limit for the whole tree.
set -euo pipefail
cd "$(dirname "$0")/.."

# Kiln's configure and build (CMakeLists.txt, tests/, bench/) need: oneDNN (+ the OpenCL loader
# and headers its CMake config finds and libdnnl.so.2 links), Highway, nlohmann-json, zlib
# (headers + library, whose libz.so link points at zlib1g's file), GoogleTest/GoogleMock (static
# libraries and CMake config; the googletest source package is not needed), Google Benchmark.
# OpenMP comes with the compiler there. Runtime libraries travel too: that image has none of them.
# (ONNX's test data, 40 MiB, stays behind: the onnx_suite ctests are registered only where it is.)
PACKAGES=(
  libdnnl-dev libdnnl2
  ocl-icd-opencl-dev ocl-icd-libopencl1 opencl-c-headers opencl-clhpp-headers
  libhwy-dev libhwy1
  nlohmann-json3-dev
  zlib1g-dev zlib1g
  libgtest-dev libgmock-dev
  libbenchmark-dev libbenchmark1debian
  # LAPACKE over the reference LAPACK/BLAS (the CPU linear-algebra kernels; OpenBLAS is larger),
  # FFTW (the FFT kernels), ONNX's protobuf classes (the ONNX importer), Gloo.
  liblapacke-dev liblapacke liblapack3 libblas3 libgfortran5 libtmglib3
  libfftw3-dev libfftw3-single3 libfftw3-double3
  # (libonnxifi: ONNX's CMake targets name its libonnxifi_dummy.so and stop the configure without it)
  libonnx-dev libonnx1 libonnxifi libprotobuf-dev libprotobuf32 libprotobuf-lite32
  # Gloo (distributed collectives) and the libraries libgloo.so.0 loads.
  libgloo-dev libgloo0 libhiredis0.14 libibverbs1 libnl-3-200 libnl-route-3-200
)

mkdir -p .gpu
grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info; echo '/.gpu/' >>.git/info/exclude; }

# The .debs are downloaded once into a cache ($KILN_GPU_DEB_CACHE, default ~/.cache/kiln/gpu-debs) and
# copied from there: apt names each file by package, version and architecture, so a file already in
# the cache is the one apt would download (CI's GPU check rehearsal runs this on every clean clone).
cache="${KILN_GPU_DEB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kiln/gpu-debs}"
mkdir -p "$cache"
# "FILE SHA256" per package, from apt's lists (no download).
deb_files() {
  apt-get -o APT::Sandbox::User=root download --print-uris -q "${PACKAGES[@]}" | awk '{ sub(/^SHA256:/, "", $4); print $2, $4 }'
}
# Downloads into the cache the packages of $files whose file is missing there or whose checksum is not
# the one apt expects (cut short, replaced).
fetch_missing() {
  local missing
  missing=$(while read -r f sum; do echo "$sum  $cache/$f" | sha256sum -c --status 2>/dev/null || echo "${f%%_*}"; done <<<"$files")
  # shellcheck disable=SC2086  # one package name per word
  [ -z "$missing" ] || (cd "$cache" && apt-get -o APT::Sandbox::User=root download -q $missing >/dev/null)
}
if ! { files=$(deb_files) && [ -n "$files" ] && fetch_missing; }; then
  # Lists missing, or stale (naming versions the mirror no longer has): update, then name and fetch again.
  echo "gpu_bundle: apt cannot name or download the packages; running apt-get update once and retrying" >&2
  apt-get update -qq
  files=$(deb_files)
  fetch_missing
fi
rm -rf .gpu/debs
mkdir -p .gpu/debs
while read -r f sum; do
  echo "$sum  $cache/$f" | sha256sum -c --status || { echo "gpu_bundle: $f does not match apt's checksum" >&2; exit 1; }
  cp "$cache/$f" .gpu/debs/
done <<<"$files"

# ONNX's node tests (libonnx-testdata's data/node, 27 MiB, 1.2 MiB as .tar.xz) for the onnx step.
onnx_src=/usr/share/libonnx-testdata/data
onnx_tmp=""
if [ ! -d "$onnx_src/node" ]; then
  onnx_tmp="$(mktemp -d)"
  (cd "$onnx_tmp" && apt-get -o APT::Sandbox::User=root download -q libonnx-testdata >/dev/null && dpkg -x libonnx-testdata_*.deb root)
  onnx_src="$onnx_tmp/root/usr/share/libonnx-testdata/data"
fi
tar -cf - -C "$onnx_src" node | xz -T2 -6 > .gpu/onnx-node.tar.xz
[ -z "$onnx_tmp" ] || rm -rf "$onnx_tmp"

# The Fashion-MNIST subset, from the installed package or else from its downloaded .deb.
n="${KILN_GPU_TRAIN_EXAMPLES:-20000}"
src=/usr/share/datasets/fashion-mnist
tmp=""
if [ ! -f "$src/train-images-idx3-ubyte.gz" ]; then
  tmp="$(mktemp -d)"
  (cd "$tmp" && apt-get -o APT::Sandbox::User=root download -q dataset-fashion-mnist >/dev/null && dpkg -x dataset-fashion-mnist_*.deb root)
  src="$tmp/root/usr/share/datasets/fashion-mnist"
fi
rm -rf .gpu/fashion-mnist
mkdir -p .gpu/fashion-mnist
cp "$src"/t10k-images-idx3-ubyte.gz "$src"/t10k-labels-idx1-ubyte.gz .gpu/fashion-mnist/
python3 - "$src" .gpu/fashion-mnist "$n" <<'EOF'
# Writes the first n examples of the IDX training files (header count rewritten).
import gzip, struct, sys
src, dst, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
for name, item in (("train-images-idx3-ubyte.gz", 28 * 28), ("train-labels-idx1-ubyte.gz", 1)):
    data = gzip.open(f"{src}/{name}").read()
    ndim = data[3]
    header = 4 + 4 * ndim
    count = struct.unpack(">I", data[4:8])[0]
    n = min(n, count)
    out = data[:4] + struct.pack(">I", n) + data[8:header] + data[header:header + n * item]
    with open(f"{dst}/{name}", "wb") as f, gzip.GzipFile(fileobj=f, mode="wb", compresslevel=9, mtime=0) as g:
        g.write(out)
print(f"gpu_bundle: Fashion-MNIST: {n} training examples, 10000 test examples")
EOF
[ -n "$tmp" ] && rm -rf "$tmp"

ls -1 .gpu/debs
echo "gpu_bundle: $(ls .gpu/debs | wc -l) packages, $(du -sh .gpu/debs | cut -f1); dataset $(du -sh .gpu/fashion-mnist | cut -f1);" \
  "all of .gpu: $(du -sh .gpu | cut -f1) (tracked tree: $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes)"
