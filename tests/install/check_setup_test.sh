#!/usr/bin/env bash
# Self-test of the set-up check (tools/check_setup.sh): the real package list of tools/setup.sh passes,
# and lists with a needed package removed fail, naming a file of that package and the package.
# Usage: check_setup_test.sh [SOURCE_DIR]
set -euo pipefail
src=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
check=$src/tools/check_setup.sh
out=$(mktemp)
# The configure step is scanned once (by the first run) and reused by the others (KILN_CHECK_SCAN_DIR):
# only the package list changes between them.
export KILN_CHECK_SCAN_DIR
KILN_CHECK_SCAN_DIR=$(mktemp -d)
trap 'rm -rf "$out" "$KILN_CHECK_SCAN_DIR"' EXIT
mapfile -t packages < <(bash "$src/tools/setup.sh" --list)
failures=0

fail() { echo "check_setup_test: FAIL: $*" >&2; failures=$((failures + 1)); }

# 1. The real list passes.
if bash "$check" > "$out" 2>&1; then
  echo "check_setup_test: real list passes: $(tail -1 "$out")"
else
  cat "$out" >&2
  fail "the check fails with tools/setup.sh's own package list"
fi

# 2. Without PACKAGE, the check fails and names FILE (a regex) and PACKAGE.
expect_failure() {
  local package=$1 file=$2 rest=()
  for p in "${packages[@]}"; do [ "$p" = "$package" ] || rest+=("$p"); done
  [ ${#rest[@]} -lt ${#packages[@]} ] || { fail "$package is not in tools/setup.sh --list"; return; }
  if KILN_SETUP_PACKAGES="${rest[*]}" bash "$check" > "$out" 2>&1; then
    cat "$out" >&2
    fail "the check passes without $package"
  elif ! grep -qE "FAIL: $file .*belongs to ([^ ]+, )*${package}[, ]" "$out"; then
    cat "$out" >&2
    fail "without $package, the check fails but does not name $file and $package"
  else
    echo "check_setup_test: without $package: $(grep -m1 -E "FAIL: $file " "$out")"
  fi
}
expect_failure ocl-icd-opencl-dev '/usr/lib/x86_64-linux-gnu/libOpenCL\.so'
expect_failure libdnnl-dev '/usr/lib/x86_64-linux-gnu/cmake/dnnl/dnnl-config\.cmake'
expect_failure libhwy-dev '/usr/lib/x86_64-linux-gnu/cmake/hwy/hwy-config\.cmake'
# (zlib1g-dev, which Kiln uses too, is also a dependency of libprotobuf-dev, so
# dropping it alone proves nothing: a header-only package stands in for it.)
expect_failure nlohmann-json3-dev '/usr/share/cmake/nlohmann_json/nlohmann_jsonConfig\.cmake'

# 3. A listed package that is not installed is reported as such.
if KILN_SETUP_PACKAGES="${packages[*]} kiln-no-such-package" bash "$check" > "$out" 2>&1; then
  fail "the check passes with a package that is not installed"
elif ! grep -q "kiln-no-such-package .*is not installed" "$out"; then
  cat "$out" >&2
  fail "a package that is not installed is not named"
fi

if [ "$failures" -gt 0 ]; then
  echo "check_setup_test: $failures failures" >&2
  exit 1
fi
echo "check_setup_test: ok"
