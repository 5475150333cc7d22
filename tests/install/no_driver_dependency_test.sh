#!/usr/bin/env bash
# libkiln built with the CUDA backend must load where there is no NVIDIA driver: it may need the CUDA
# toolkit's NVRTC and cuBLASLt, but never the driver library (libcuda.so.1), which the statically linked
# CUDA runtime opens itself when first called.
#   no_driver_dependency_test.sh LIBKILN
set -euo pipefail
lib=${1:?usage: $0 LIBKILN}
needed=$(readelf -d "$lib" | awk '/NEEDED/ { gsub(/[\[\]]/, "", $5); print $5 }')
echo "$lib needs: $(echo $needed)"
if grep -q '^libcuda\.so' <<< "$needed"; then
  echo "FAIL: $lib needs the NVIDIA driver library" >&2
  exit 1
fi
grep -q '^libnvrtc\.so' <<< "$needed" || { echo "FAIL: $lib was not built with the CUDA backend (no libnvrtc)" >&2; exit 1; }
echo "ok: no driver dependency"
