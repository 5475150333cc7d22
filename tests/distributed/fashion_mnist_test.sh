#!/usr/bin/env bash
# The Fashion-MNIST example data-parallel on 2 processes (kiln_run -n 2
# fashion_mnist --distributed) reaches the single-process accuracy: both
# train the MLP for the same epochs on the same global batches; dropout draws
# differ, so the accuracies agree within 1.5 points, not bit for bit.
# Usage: fashion_mnist_test.sh KILN_RUN FASHION_MNIST WORKDIR [EPOCHS]
set -euo pipefail
kiln_run=$1 example=$2 work=$3 epochs=${4:-1}
mkdir -p "$work"
accuracy() { sed -n 's/.*test accuracy: \([0-9.]*\)%.*/\1/p' "$1" | tail -1; }
common=(--model=mlp --epochs="$epochs" --restart)
"$example" "${common[@]}" --checkpoint_dir="$work/single" --plot="$work/single.html" | tee "$work/single.log"
"$kiln_run" -n 2 "$example" "${common[@]}" --distributed --checkpoint_dir="$work/dp" --plot="$work/dp.html" |
  tee "$work/dp.log"
single=$(accuracy "$work/single.log") dp=$(accuracy "$work/dp.log")
[ -n "$single" ] && [ -n "$dp" ] || { echo "FAIL: no accuracy line"; exit 1; }
grep -q "^\[0\] Kiln Fashion-MNIST mlp on .*data-parallel on 2 processes" "$work/dp.log" || { echo "FAIL: banner"; exit 1; }
if grep -q "^\[1\] " "$work/dp.log"; then echo "FAIL: rank 1 printed (only rank 0 reports)"; exit 1; fi
[ -f "$work/dp.html" ] || { echo "FAIL: rank 0 wrote no plot"; exit 1; }
echo "single process: $single%  data-parallel (2 processes): $dp%"
awk -v a="$single" -v b="$dp" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a >= 80 && b >= 80 && d <= 1.5) }' ||
  { echo "FAIL: accuracies differ by more than 1.5 points or are below 80%"; exit 1; }
echo PASS
