#!/usr/bin/env bash
# The distributed benchmarks: Kiln against Gloo called directly and against
# PyTorch's torch.distributed (Gloo backend; Debian's python3-torch), 2
# processes x 1 thread on 127.0.0.1, each side run ROUNDS times in turn
# (medians of the per-round figures and ratios):
#   all-reduce bus bandwidth, 4 KB to 64 MB (Kiln's in-place host API and graph op vs
#   Gloo's allreduce in the same processes, interleaved; vs torch.distributed)
#   data-parallel train step of the MLP and the CNN (global batch 128) vs
#   PyTorch DistributedDataParallel.
# Usage: tools/bench_distributed.sh [ROUNDS]   (builds build/ first)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
bash tools/setup.sh >/dev/null
dpkg-query -W -f='${Status}' libtcmalloc-minimal4 2>/dev/null | grep -q "install ok installed" ||
  { echo "bench_distributed: installing libtcmalloc-minimal4 (PyTorch's allocator, as its users run it)";
    apt-get install -y -qq libtcmalloc-minimal4 >/dev/null; }
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_BENCH=ON >/dev/null
ninja -C build kiln_run kiln_dist_bench >/dev/null
run=build/tools/kiln_run
out=$(mktemp -d)
export OMP_NUM_THREADS=1
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
torch_env=(env LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4)
echo "CPU: $(lscpu | sed -n 's/^Model name: *//p' | head -1) (family $(lscpu | sed -n 's/^CPU family: *//p'), model" \
     "$(lscpu | sed -n 's/^Model: *//p')), $(nproc --all) cores; load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
  "$run" -n 2 --no-prefix build/bench/kiln_dist_bench allreduce | sed "s/^/kiln $r /" >>"$out/all"
  "${torch_env[@]}" "$run" -n 2 --no-prefix /usr/bin/python3 bench/distributed_torch.py allreduce |
    sed "s/^/torch $r /" >>"$out/all"
  for m in mlp cnn; do
    "$run" -n 2 --no-prefix build/bench/kiln_dist_bench train --model=$m | sed "s/^/kiln $r /" >>"$out/all"
    "${torch_env[@]}" "$run" -n 2 --no-prefix /usr/bin/python3 bench/distributed_torch.py train --model=$m |
      sed "s/^/torch $r /" >>"$out/all"
  done
done
/usr/bin/python3 - "$out/all" <<'PY'
import statistics, sys
from collections import defaultdict
kiln, torch = defaultdict(dict), defaultdict(dict)  # [key][round] -> values
for line in open(sys.argv[1]):
    who, rnd, kind, *rest = line.split()
    if kind not in ("allreduce", "train"):
        continue
    key = (kind, rest[0])
    (kiln if who == "kiln" else torch)[key][rnd] = [float(v) for v in rest[1:]]
med = statistics.median
def busbw(nbytes, us):  # ring all-reduce bus bandwidth for 2 processes: 2 (n-1)/n bytes / time
    return nbytes / (us * 1e-6) / 1e9
print("\n| all-reduce (2 processes) | Kiln host API | Kiln graph op | Gloo direct | torch.distributed | host API / Gloo | graph op / Gloo | host API / torch |")
print("|---|---:|---:|---:|---:|---:|---:|---:|")
for key in sorted((k for k in kiln if k[0] == "allreduce"), key=lambda k: int(k[1])):
    n = int(key[1]); rounds = sorted(kiln[key])
    k_us = med([kiln[key][r][0] for r in rounds]); g_us = med([kiln[key][r][1] for r in rounds])
    gl_us = med([kiln[key][r][2] for r in rounds])
    t_us = med([torch[key][r][0] for r in rounds if r in torch[key]])
    kg = med([kiln[key][r][0] / kiln[key][r][2] for r in rounds])
    gg = med([kiln[key][r][1] / kiln[key][r][2] for r in rounds])
    kt = med([kiln[key][r][0] / torch[key][r][0] for r in rounds if r in torch[key]])
    size = f"{n >> 20} MB" if n >= 1 << 20 else f"{n >> 10} KB"
    print(f"| {size} | {k_us:.0f} µs ({busbw(n, k_us):.2f} GB/s) | {g_us:.0f} µs | {gl_us:.0f} µs ({busbw(n, gl_us):.2f} GB/s) "
          f"| {t_us:.0f} µs ({busbw(n, t_us):.2f} GB/s) | {kg:.2f}x | {gg:.2f}x | {kt:.2f}x |")
print("\n| data-parallel train step (2 processes x 1 thread, global batch 128) | Kiln | PyTorch DDP | Kiln / DDP |")
print("|---|---:|---:|---:|")
for key in sorted(k for k in kiln if k[0] == "train"):
    rounds = sorted(r for r in kiln[key] if r in torch[key])
    ratio = med([kiln[key][r][0] / torch[key][r][0] for r in rounds])
    print(f"| {key[1]} | {med([kiln[key][r][0] for r in rounds]):.2f} ms | {med([torch[key][r][0] for r in rounds]):.2f} ms | {ratio:.2f}x |")
PY
rm -rf "$out"
