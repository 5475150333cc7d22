#!/usr/bin/env bash
# The char-GPT example end to end, briefly. By steps (the schedule in the
# graph, independent of the machine's speed): 40 steps bring the validation
# loss below 5 bits per byte (a uniform guess is 8), with samples and the
# plot, and the sliding-window score. By time (the schedule over the wall time): 18 seconds of training
# bring it below 6.5 bits per byte even on a loaded machine, then a second
# run resumes from the checkpoint, finds the time spent and trains no more.
# Bad settings give their error.
# Usage: char_gpt_test.sh CHAR_GPT WORKDIR
set -euo pipefail
example=$1 work=$2
rm -rf "$work" && mkdir -p "$work"
fail() { echo "FAIL: $1"; [ -z "${2:-}" ] || cat "$2"; exit 1; }
bits() { sed -n 's/^validation: \([0-9.]*\) bits per byte.*/\1/p' "$1"; }
"$example" --restart --checkpoint_dir="$work/steps" --plot="$work/steps.html" --samples=1 \
  --params="steps=40;eval_every=20;schedule=wsd;warmup_steps=10" | tr '\r' '\n' > "$work/steps.log"
grep -q "^validation: .* after 40 steps" "$work/steps.log" || fail "not 40 steps" "$work/steps.log"
trained=$(bits "$work/steps.log")
awk -v b="$trained" 'BEGIN { exit !(b < 5) }' || fail "$trained bits per byte after 40 steps"
grep -q "^sliding: [0-9.]* bits per byte, each byte predicted from at least 129 bytes" "$work/steps.log" ||
  fail "no sliding-window evaluation" "$work/steps.log"
grep -q "^---- sample 1.1" "$work/steps.log" || fail "no sample"
grep -q "^generation: [0-9]* tokens/s" "$work/steps.log" || fail "no generation speed"
[ -s "$work/steps.html" ] || fail "no plot"

common=(--checkpoint_dir="$work/time" --plot="$work/time.html" --samples=0 --minutes=0.3
        --params="warmup_steps=0;eval_every=1000")
"$example" --restart "${common[@]}" | tr '\r' '\n' > "$work/time.log"
grep -q "^training for 18 s (cosine schedule over the time)" "$work/time.log" || fail "no time budget" "$work/time.log"
first=$(bits "$work/time.log")
[ -n "$first" ] || fail "no validation line" "$work/time.log"
awk -v b="$first" 'BEGIN { exit !(b < 6.5) }' || fail "$first bits per byte after 18 s" "$work/time.log"
"$example" "${common[@]}" | tr '\r' '\n' > "$work/resumed.log"
grep -q "^resumed from $work/time/checkpoint-" "$work/resumed.log" || fail "did not resume" "$work/resumed.log"
grep -q "^already trained for 18 s" "$work/resumed.log" || fail "trained again after the time was spent" "$work/resumed.log"
[ "$(bits "$work/resumed.log")" = "$first" ] || fail "resumed model differs: $(bits "$work/resumed.log") vs $first"
# Bad settings are refused before any training, with their reason.
if "$example" --params="schedule=step" > "$work/bad.log" 2>&1; then fail "schedule=step accepted"; fi
grep -q 'schedule="step": must be cosine, wsd, linear or constant' "$work/bad.log" || fail "message" "$work/bad.log"
if "$example" --params="cooldown_fraction=0" > "$work/bad.log" 2>&1; then fail "cooldown_fraction=0 accepted"; fi
grep -q "cooldown_fraction=0: must be in (0, 1\]" "$work/bad.log" || fail "message" "$work/bad.log"
if "$example" --params="eval_stride=300" > "$work/bad.log" 2>&1; then fail "eval_stride=300 accepted"; fi
grep -q "eval_stride=300: must be in \[0, context\] (0: half the context), context is 256" "$work/bad.log" ||
  fail "message" "$work/bad.log"
if "$example" --minutes=0 > "$work/bad.log" 2>&1; then fail "--minutes=0 accepted"; fi
grep -q "^--minutes must be a positive number" "$work/bad.log" || fail "message" "$work/bad.log"
echo "PASS: $trained bits per byte after 40 steps; $first after 18 s"
