#!/usr/bin/env bash
# Builds the Debian package libkiln-dev_<version>_<arch>.deb: libkiln, the headers, the CMake package
# (find_package(Kiln)), kiln.pc and kiln_checkpoint, installed under /usr.
#   tools/package.sh [BUILD_DIR]     (default build-deb; the .deb goes to BUILD_DIR/packages/)
# The library is built for any x86-64 (KILN_NATIVE=OFF: no -march=native; Highway and oneDNN pick the
# CPU's instructions at run time), without tests, examples or benchmarks, and without the CUDA backend
# (KILN_CUDA=OFF: its libraries, NVRTC, cuBLAS(Lt), cuSOLVER and cuFFT, come with NVIDIA's toolkit, not as Debian packages
# a Depends line could name; build from source with the toolkit for the GPU). The package's Depends are
# dpkg-shlibdeps' (the shared libraries libkiln and kiln_checkpoint load) plus the -dev packages the
# installed CMake config uses, found by tools/check_setup.sh --packages-for on the staged install tree.
# The last line of the output is the path of the .deb.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
dir=${1:-build-deb}
jobs=${KILN_JOBS:-$(nproc)}
bash tools/setup.sh
export CCACHE_BASEDIR="$src"

cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DKILN_NATIVE=OFF \
  -DKILN_BUILD_TESTS=OFF -DKILN_BUILD_EXAMPLES=OFF -DKILN_BUILD_BENCH=OFF -DKILN_SANITIZE=OFF -DKILN_CUDA=OFF
if grep -q -- '-march=native' "$dir/compile_commands.json"; then
  echo "package: FAIL: $dir compiles with -march=native" >&2
  exit 1
fi
cmake --build "$dir" --parallel "$jobs"

# The install tree as the package will have it, for the dependency scan.
stage=$dir/stage
rm -rf "$stage"
DESTDIR="$PWD/$stage" cmake --install "$dir" > /dev/null
depends=$(bash tools/check_setup.sh --packages-for "$PWD/$stage/usr")
echo "package: the installed CMake config needs: ${depends:-(nothing beyond the compiler and cmake)}"

rm -rf "$dir/packages"
cpack --config "$dir/CPackConfig.cmake" -B "$dir/packages" -D "CPACK_DEBIAN_PACKAGE_DEPENDS=$depends"
rm -rf "$dir/packages/_CPack_Packages"
debs=("$dir"/packages/*.deb)
if [ ${#debs[@]} -ne 1 ] || [ ! -f "${debs[0]}" ]; then
  echo "package: FAIL: expected one .deb in $dir/packages, found: ${debs[*]}" >&2
  exit 1
fi
dpkg-deb --field "${debs[0]}" Package Version Architecture Depends
echo "$PWD/${debs[0]}"
