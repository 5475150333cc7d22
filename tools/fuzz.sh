#!/usr/bin/env bash
# Fuzzes each libFuzzer target of the sanitizer build (build-asan/, made by
# `KILN_SANITIZE=1 tools/test.sh`) for SECONDS (default 60), starting from its
# seed corpus in tests/fuzz/corpus/<target>/. New inputs go to a scratch
# corpus, not the repository; a crash leaves its input in build-asan/fuzz/ —
# add it to the seed corpus, where it becomes a regression test (ctest runs
# every seed), and fix the bug.
#   tools/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
out=build-asan/fuzz
mkdir -p "$out"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
for target in safetensors_fuzz checkpoint_fuzz idx_fuzz set_params_fuzz gguf_fuzz onnx_fuzz; do
  exe=build-asan/tests/fuzz/$target
  if [ ! -x "$exe" ]; then
    echo "tools/fuzz.sh: $exe is missing: run KILN_SANITIZE=1 tools/test.sh first" >&2
    exit 2
  fi
  scratch=$(mktemp -d)
  cp tests/fuzz/corpus/$target/* "$scratch"/
  echo "--- $target: ${seconds} s"
  status=0
  "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -artifact_prefix="$out/$target-" \
    -print_final_stats=1 "$scratch" > "$out/$target.log" 2>&1 || status=$?
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::new_units_added)" "$out/$target.log" || true
  rm -rf "$scratch"
  if [ "$status" -ne 0 ]; then
    tail -n 60 "$out/$target.log" >&2
    echo "tools/fuzz.sh: $target found a failure (exit $status); the input is in $out/" >&2
    exit 1
  fi
done
echo "fuzz: every target ran ${seconds} s without a finding"
