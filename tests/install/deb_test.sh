#!/usr/bin/env bash
# Builds the Debian package (tools/package.sh), unpacks it (dpkg -x) into a temporary root, and checks it:
# its fields and files; the consumer project (tests/install/consumer) builds against the unpacked tree with
# find_package(Kiln) and with pkg-config and runs; the unpacked kiln_checkpoint lists a checkpoint the
# consumer saved; and the Depends line names the package of every shared library libkiln and
# kiln_checkpoint load and every package tools/check_setup.sh finds the installed CMake config using.
# Usage: tests/install/deb_test.sh [BUILD_DIR]   (default build-deb; run from CI after the tests)
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-build-deb}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "deb_test: FAIL: $*" >&2; failures=$((failures + 1)); }

(cd "$src" && bash tools/package.sh "$dir") | tee "$work/package.log"
deb=$(tail -1 "$work/package.log")
[ -f "$deb" ] || { echo "deb_test: FAIL: tools/package.sh did not name a .deb (last line: $deb)" >&2; exit 1; }

# 1. Fields.
arch=$(dpkg --print-architecture)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)
version=$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$src/$dir/CMakeCache.txt")
[ "$(basename "$deb")" = "libkiln-dev_${version}_${arch}.deb" ] || fail "file name $(basename "$deb"), expected libkiln-dev_${version}_${arch}.deb"
[ "$(dpkg-deb -f "$deb" Package)" = libkiln-dev ] || fail "Package is $(dpkg-deb -f "$deb" Package)"
[ "$(dpkg-deb -f "$deb" Version)" = "$version" ] || fail "Version is $(dpkg-deb -f "$deb" Version), expected $version"
[ "$(dpkg-deb -f "$deb" Architecture)" = "$arch" ] || fail "Architecture is $(dpkg-deb -f "$deb" Architecture)"
depends=$(dpkg-deb -f "$deb" Depends)
echo "deb_test: Depends: $depends"

# 2. Files.
root=$work/root
dpkg -x "$deb" "$root"
lib=$root/usr/lib/$multiarch
for f in "$lib/libkiln.so.$version" "$lib/libkiln.so.${version%%.*}" "$lib/libkiln.so" \
         "$root/usr/include/kiln/kiln.h" "$root/usr/include/kiln/version.h" \
         "$lib/cmake/Kiln/KilnConfig.cmake" "$lib/cmake/Kiln/KilnConfigVersion.cmake" \
         "$lib/cmake/Kiln/KilnTargets.cmake" "$lib/pkgconfig/kiln.pc" "$root/usr/bin/kiln_checkpoint"; do
  [ -e "$f" ] || fail "the package has no ${f#"$root"}"
done
grep -q "^#define KILN_VERSION_STRING \"$version\"" "$root/usr/include/kiln/version.h" ||
  fail "usr/include/kiln/version.h does not define KILN_VERSION_STRING \"$version\""
if [ "$failures" -gt 0 ]; then exit 1; fi

# 3. Consumers: find_package(Kiln) and pkg-config, against the unpacked tree.
export LD_LIBRARY_PATH=$lib
cmake -S "$src/tests/install/consumer" -B "$work/cmake-build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="$root/usr" > "$work/configure.log" || { cat "$work/configure.log"; exit 1; }
grep -q "Kiln_DIR:PATH=$lib/cmake/Kiln" "$work/cmake-build/CMakeCache.txt" ||
  fail "find_package(Kiln) did not find the unpacked package: $(grep Kiln_DIR "$work/cmake-build/CMakeCache.txt")"
cmake --build "$work/cmake-build" > "$work/build.log" || { cat "$work/build.log"; exit 1; }
"$work/cmake-build/consumer" "$work/checkpoints" | tee "$work/consumer.log"
grep -q "consumer: Kiln $version (headers $version)" "$work/consumer.log" || fail "the consumer does not report Kiln $version"

[ "$(PKG_CONFIG_PATH=$lib/pkgconfig pkg-config --modversion kiln)" = "$version" ] || fail "pkg-config --modversion kiln"
# shellcheck disable=SC2046
c++ -O1 "$src/tests/install/consumer/main.cc" -o "$work/consumer-pc" $(PKG_CONFIG_PATH=$lib/pkgconfig pkg-config --cflags --libs kiln)
"$work/consumer-pc"
ldd "$work/consumer-pc" | grep -q "libkiln.so.* => $lib/" || fail "the pkg-config consumer does not load the unpacked libkiln"

# 4. The unpacked kiln_checkpoint lists the consumer's checkpoint.
if "$root/usr/bin/kiln_checkpoint" > /dev/null 2> "$work/usage.log" || ! grep -q "usage: kiln_checkpoint" "$work/usage.log"; then
  fail "kiln_checkpoint without arguments does not print its usage and fail"
fi
"$root/usr/bin/kiln_checkpoint" "$work/checkpoints" | tee "$work/checkpoint.log"
grep -q "/consumer/sum" "$work/checkpoint.log" || fail "kiln_checkpoint does not list the variable /consumer/sum"

# 5. Depends.
# has_dep PACKAGE: Depends names PACKAGE (alone or as an alternative, with or without a version).
has_dep() {
  local alternatives d
  IFS=',|' read -ra alternatives <<< "$depends"
  for d in "${alternatives[@]}"; do
    d=${d%%(*}
    d=${d// /}
    [ "$d" = "$1" ] && return 0
  done
  return 1
}
# owner PATH: the package of PATH (tried as is, resolved, and as its merged-/usr twin).
owner() {
  local r c out
  r=$(readlink -f "$1")
  for c in "$1" "$r" "/usr$r" "${r#/usr}" "/usr$1" "${1#/usr}"; do
    if out=$(dpkg -S "$c" 2> /dev/null); then
      out=${out%%: /*}
      out=${out%%,*}
      echo "${out%%:*}"
      return
    fi
  done
}
# 5a. The packages of the shared libraries libkiln and kiln_checkpoint need.
for bin in "$lib/libkiln.so.$version" "$root/usr/bin/kiln_checkpoint"; do
  for needed in $(objdump -p "$bin" | awk '$1 == "NEEDED" { print $2 }'); do
    case "$needed" in libkiln.so*) continue ;; esac
    # "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)", or "/lib64/ld-linux-x86-64.so.2 (0x...)".
    path=$(ldd "$bin" | awk -v n="$needed" '$1 == n { print $3 } $1 ~ "/" n "$" { print $1 }' | head -1)
    [ -n "$path" ] || { fail "$needed (needed by ${bin#"$root"}) is not found"; continue; }
    pkg=$(owner "$path")
    if [ -z "$pkg" ]; then fail "$path ($needed) belongs to no package"; continue; fi
    has_dep "$pkg" || fail "Depends does not name $pkg, the package of $needed (needed by ${bin#"$root"})"
  done
done
# 5b. The packages the installed CMake config uses (the set-up check's scan of the unpacked tree).
config_deps=$(bash "$src/tools/check_setup.sh" --packages-for "$root/usr")
echo "deb_test: the installed CMake config uses: ${config_deps:-(nothing beyond the compiler and cmake)}"
for pkg in ${config_deps//,/ }; do
  has_dep "$pkg" || fail "Depends does not name $pkg, which the installed CMake config uses"
done
# 5c. The scan sees a config's dependencies: with find_dependency(hwy) added to a copy of the unpacked
# config (as a static libkiln would need), it names libhwy-dev, which the package rightly does not depend on.
cp -a "$root" "$work/root-hwy"
echo 'find_dependency(hwy)' >> "$work/root-hwy/usr/lib/$multiarch/cmake/Kiln/KilnConfig.cmake"
hwy_deps=$(bash "$src/tools/check_setup.sh" --packages-for "$work/root-hwy/usr")
if [[ ", $hwy_deps," != *", libhwy-dev,"* ]]; then
  fail "with find_dependency(hwy) in the config, check_setup.sh --packages-for gives '$hwy_deps', not libhwy-dev"
elif has_dep libhwy-dev; then
  fail "Depends names libhwy-dev, which the config does not use"
else
  echo "deb_test: control: with find_dependency(hwy) added, the scan names: $hwy_deps (not in Depends: the check would fail)"
fi

if [ "$failures" -gt 0 ]; then
  echo "deb_test: $failures failures" >&2
  exit 1
fi
echo "deb_test: ok: $(basename "$deb") installs a working library, headers, CMake package, kiln.pc and kiln_checkpoint"
