#!/usr/bin/env bash
# Rehearses tools/gpu_check.sh here, before a GPU lease is spent on it: in a minimal Debian 12 root
# that, like the GPU machine, has none of Kiln's packages (only a compiler, CMake, Ninja, Python, git,
# xz and ccache), with this machine's CUDA toolkit mounted read-only at the same path. gpu_check.sh
# then unpacks the bundle (.gpu/, from tools/gpu_bundle.sh), builds Kiln with the CUDA backend and
# runs the tests, the ONNX node tests and the main job, on the CPU (no GPU here; NVRTC needs none).
# What the bundle lacks, or what only works because this machine has the packages installed, fails here.
#
#   tools/gpu_rehearsal.sh [STEPS]    (as root; STEPS default "deps build ctest onnx main")
#
# The root is made once by tools/debian_root.sh in $KILN_REHEARSAL_ROOT (default /tmp/kiln-gpu-root,
# kept: later runs reuse it, its build folder and its ccache, which Kiln's build uses where it finds
# one). Each run copies the working tree's tracked files (uncommitted changes included) and .gpu/ into
# it. gpu_check.sh's files land in build-gpu-rehearsal/ (gpu_check.md, build.log, ctest.log, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
R="${KILN_REHEARSAL_ROOT:-/tmp/kiln-gpu-root}"
STEPS="${1:-deps build ctest onnx main}"
CUDA="$(readlink -f /usr/local/cuda 2>/dev/null || true)"
[ "$(id -u)" = 0 ] || { echo "gpu_rehearsal: run as root (debootstrap, chroot, mounts)" >&2; exit 1; }
[ -n "$CUDA" ] && [ -x "$CUDA/bin/nvcc" ] || { echo "gpu_rehearsal: no CUDA toolkit in /usr/local/cuda" >&2; exit 1; }
bash tools/gpu_bundle.sh >/dev/null  # a few seconds: the .debs are cached

bash tools/debian_root.sh "$R" g++ make cmake ninja-build python3 git xz-utils ccache

rm -rf --one-file-system "$R/root/out" build-gpu-rehearsal
bash tools/debian_root.sh --copy-tree "$R"
cp -a .gpu "$R/root/kiln/.gpu"
# The toolkit at the same path as here (/usr/local/cuda, or the versioned folder it links to).
NAME="$(basename "$CUDA")"
[ ! -L "$R/usr/local/cuda" ] || rm -f "$R/usr/local/cuda"
[ "$NAME" = cuda ] || ln -s "/usr/local/$NAME" "$R/usr/local/cuda"
COMMIT="$(git rev-parse --short HEAD)"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then COMMIT="$COMMIT+changes"; fi
# Without the build step, the tests use the build folder of an earlier run.
PREBUILT=/root/kiln-build
case " $STEPS " in *" build "*) PREBUILT="" ;; esac

rc=0
KILN_ROOT_BIND_RO="$CUDA" bash tools/debian_root.sh --run "$R" env KILN_GPU_STEPS="$STEPS" \
  KILN_GPU_BUILD_DIR=/root/kiln-build KILN_PREBUILT_BUILD="$PREBUILT" KILN_GPU_BUILD_S=5400 KILN_GPU_CTEST_S=3600 \
  KILN_GPU_CTEST_J="$(nproc)" KILN_GPU_BUDGET_S=10800 KILN_GPU_RESERVE_BUILD=0 KILN_GPU_RESERVE_CTEST=0 \
  KILN_GPU_COMMIT="$COMMIT" OUT=/root/out bash /root/kiln/tools/gpu_check.sh >/dev/null || rc=$?
[ -d "$R/root/out" ] && cp -r "$R/root/out" build-gpu-rehearsal
[ -f build-gpu-rehearsal/gpu_check.md ] || { echo "gpu_rehearsal: gpu_check.sh wrote no summary (exit $rc)" >&2; exit 1; }
cat build-gpu-rehearsal/gpu_check.md
[ "$rc" = 0 ] || { echo "gpu_rehearsal: the run in the root failed (exit $rc)" >&2; exit 1; }
# Fails unless each step asked for has a row and every row is ok ("prebuilt": the build reused).
rows=$(awk -F'|' '/^\| step / { t = 1; next } t && /^$/ { exit } t && /^\| / { print $2 "|" $3 }' build-gpu-rehearsal/gpu_check.md)
bad=$(echo "$rows" | awk -F'|' '$2 != " ok " && $2 != " prebuilt " { print $1 ":" $2 }')
for step in $STEPS; do
  echo "$rows" | grep -q "^ $step[ |]" || bad="$bad $step: no row"
done
[ -z "$bad" ] || { echo "gpu_rehearsal: not ok:$bad" >&2; exit 1; }
