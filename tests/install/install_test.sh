#!/usr/bin/env bash
# Installs the built Kiln into a temporary prefix, then builds and runs a small
# consumer project against it twice: with find_package(Kiln) and with pkg-config.
# Usage: install_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cmake --install "$build" --prefix "$work/prefix" > "$work/install.log"
test -f "$work/prefix/include/kiln/kiln.h"
test -f "$work/prefix/include/kiln/version.h"
test -f "$work/prefix/lib/cmake/Kiln/KilnConfig.cmake"
test -f "$work/prefix/lib/pkgconfig/kiln.pc"

# 1. CMake package.
cmake -S "$src/tests/install/consumer" -B "$work/cmake-build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" \
  -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/cmake-build" > "$work/build.log"
LD_LIBRARY_PATH="$work/prefix/lib" "$work/cmake-build/consumer"

# 2. pkg-config.
export PKG_CONFIG_PATH="$work/prefix/lib/pkgconfig"
# shellcheck disable=SC2046
c++ -O1 "$src/tests/install/consumer/main.cc" -o "$work/consumer-pc" $(pkg-config --cflags --libs kiln)
LD_LIBRARY_PATH="$work/prefix/lib" "$work/consumer-pc"
echo "install test: find_package and pkg-config consumers both work"
