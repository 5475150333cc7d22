#!/usr/bin/env bash
# Rehearses tools/gpu_check.sh here, before a GPU lease is spent on it: in a minimal Debian 12 root
# that, like the GPU machine, has none of Kiln's packages (only a compiler, CMake, Ninja, Python and
# git), with this machine's CUDA toolkit mounted at /usr/local/cuda. gpu_check.sh then unpacks the
# bundle (.gpu/, from tools/gpu_bundle.sh), builds Kiln with the CUDA backend and runs the tests,
# the ONNX node tests and the main job, on the CPU (no GPU here; NVRTC needs none). What the bundle
# lacks, or what only works because this machine has the packages installed, fails here.
#
#   tools/gpu_rehearsal.sh [STEPS]    (as root; STEPS default "deps build ctest onnx main")
#
# The root is made once by tools/debian_root.sh (debootstrap, downloaded, not installed) in
# $KILN_REHEARSAL_ROOT (default /tmp/kiln-gpu-root, kept: later runs reuse it and its ccache, which
# Kiln's build uses where it finds one). Each run copies the working tree's tracked files (uncommitted changes included) and .gpu/
# into it. Mounts live in a private mount namespace (unshare), so they end with the run.
# gpu_check.sh's files land in build-gpu-rehearsal/ (gpu_check.md, build.log, ctest.log, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
R="${KILN_REHEARSAL_ROOT:-/tmp/kiln-gpu-root}"
STEPS="${1:-deps build ctest onnx main}"
CUDA="$(readlink -f /usr/local/cuda 2>/dev/null || true)"
[ "$(id -u)" = 0 ] || { echo "gpu_rehearsal: run as root (debootstrap, chroot, mounts)" >&2; exit 1; }
[ -n "$CUDA" ] && [ -x "$CUDA/bin/nvcc" ] || { echo "gpu_rehearsal: no CUDA toolkit in /usr/local/cuda" >&2; exit 1; }
bash tools/gpu_bundle.sh >/dev/null  # a few seconds: the .debs are cached

bash tools/debian_root.sh "$R" g++ make cmake ninja-build python3 git xz-utils ccache

# The tracked files as they are now (tar keeps their times: an unchanged file is not rebuilt; the
# build folder is outside the tree, which is copied afresh so no deleted file lingers).
rm -rf "$R/root/kiln"
mkdir -p "$R/root/kiln" "$R/usr/local/$(basename "$CUDA")"
ln -sfn "/usr/local/$(basename "$CUDA")" "$R/usr/local/cuda"
git ls-files -z | tar --null -T - -cf - | tar -xf - -C "$R/root/kiln"
rm -rf "$R/root/kiln/.gpu" && cp -a .gpu "$R/root/kiln/.gpu"
rm -rf "$R/root/out"
COMMIT="$(git rev-parse --short HEAD)"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then COMMIT="$COMMIT+changes"; fi

# A clean environment, as on a machine of its own; the build folder stays outside the tree.
unshare -m bash -c '
  set -e
  mount --bind "$1" "$2/usr/local/$(basename "$1")"
  mount -t proc proc "$2/proc"
  mount --rbind /dev "$2/dev"
  chroot "$2" env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    KILN_GPU_STEPS="$3" KILN_GPU_BUILD_DIR=/root/kiln-build KILN_GPU_BUILD_S=5400 KILN_GPU_CTEST_S=3600 \
    KILN_GPU_CTEST_J="$(nproc)" KILN_GPU_BUDGET_S=10800 KILN_GPU_RESERVE_BUILD=0 KILN_GPU_RESERVE_CTEST=0 \
    KILN_GPU_COMMIT="$4" OUT=/root/out bash /root/kiln/tools/gpu_check.sh
' rehearsal "$CUDA" "$R" "$STEPS" "$COMMIT" >/dev/null
rm -rf build-gpu-rehearsal && cp -r "$R/root/out" build-gpu-rehearsal
cat build-gpu-rehearsal/gpu_check.md
# Fails unless every step it ran is ok.
bad=$(awk -F'|' '/^\| step / { t = 1; next } t && /^$/ { exit } t && /^\| / && $3 != " ok " { print $2 ":" $3 }' \
  build-gpu-rehearsal/gpu_check.md)
[ -z "$bad" ] || { echo "gpu_rehearsal: not ok:$bad" >&2; exit 1; }
