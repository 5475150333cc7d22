#!/usr/bin/env bash
# Builds Kiln and runs the main job: trains a model on Fashion-MNIST (from the
# Debian package dataset-fashion-mnist) with a progress bar and reports the
# test accuracy. Extra arguments go to the example, e.g.:
#   tools/main.sh --model=cnn
#   tools/main.sh --params="learning_rate=0.002;batch_size=256" --epochs=3
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup.sh
# Cache compilations by paths relative to the checkout, so clones elsewhere
# (CI) reuse them.
export CCACHE_BASEDIR="$PWD"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build --parallel "$(nproc)" --target fashion_mnist
./build/examples/fashion_mnist --restart "$@"
