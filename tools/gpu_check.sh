#!/usr/bin/env bash
# Kiln on a GPU machine, in one run of at most about 8 minutes: unpacks the build dependencies
# (no apt there), builds Kiln with the CUDA backend, runs the tests, the Fashion-MNIST main job and
# the GPU benchmarks against PyTorch (interleaved rounds), and writes a Markdown summary to
# $OUT/gpu_check.md (rewritten after every step, printed at the end).
#
# How to run it through the device tool:
#   1. Here (Debian 12), once: tools/gpu_bundle.sh
#      (fills .gpu/, ignored via .git/info/exclude: .gpu/debs/ with the Debian .debs of the build
#      dependencies, .gpu/fashion-mnist/ with a Fashion-MNIST subset; about 22 MiB)
#      Then, as root, tools/gpu_rehearsal.sh: this script in a Debian 12 root without Kiln's packages,
#      as on the GPU machine (no GPU: CPU backend and NVRTC), so the deps and build steps are known to work.
#   2. The device run: command `bash tools/gpu_check.sh`, carry [".gpu"], timeout_s 540.
# Run from the repository root as root; $OUT is the folder whose files come back (default
# ./build-gpu-out). Steps: deps, build, gpu (nvidia-smi), ctest, graphs (four suites with every call
# recorded as a CUDA graph), onnx (ONNX's node tests on the GPU
# backend, from .gpu/onnx-node.tar.xz), main (MLP 2 epochs, then the CNN
# 1 epoch if time is left), bench, profile (KILN_CUDA_PROFILE=1 on the MLP, CNN and GPT-2 block
# steps: where each one's GPU time goes, step by step). Each has its own timeout, cut to the time
# left, so a failure or a hang of one still lets the others run (no build: no later Kiln step).
# Environment (all optional):
#   KILN_PREBUILT_BUILD=DIR    use this already built build folder; skip the build
#   KILN_GPU_BUILD_DIR=DIR     where to build (default build-gpu)
#   KILN_CUDA=ON|AUTO|OFF      passed to CMake (default ON)
#   KILN_CUDA_ARCHITECTURES=X  CMAKE_CUDA_ARCHITECTURES (default 90; set it empty to leave it to CMake)
#   KILN_GPU_BUDGET_S=N        the whole run's budget in seconds (default 470)
#   KILN_GPU_BUILD_S=N         the build's own limit (default 300)
#   KILN_GPU_CTEST_S=N         ctest's own limit (default 150)
#   KILN_GPU_CTEST_J=N         ctest -j (default 8)
#   KILN_GPU_BENCH_ROUNDS=N    interleaved benchmark rounds per side (default 3)
#   KILN_GPU_BENCH_ARGS=...    extra arguments for both benchmark programs (e.g. --only=mlp,cnn)
#   KILN_GPU_STEPS="..."       the steps to run (default "deps build gpu ctest graphs onnx main bench profile")
#   KILN_GPU_PROFILE_ONLY=...  the workloads the profile step runs (default mlp,cnn,gpt2_block)
#   KILN_GPU_BACKEND=NAME      KILN_BACKEND for the main job and kiln_gpu_bench (default: cuda when
#                              nvidia-smi sees a GPU, else unset; set it empty for backends::New()'s pick)
# Files in $OUT (the tool brings back at most 8): gpu_check.md, env.log, build.log, ctest.log,
# onnx.log, main_job.log, bench.log, profile.log.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT="$PWD"
OUT="${OUT:-$ROOT/build-gpu-out}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
START=$(date +%s)
BUDGET="${KILN_GPU_BUDGET_S:-470}"
DEADLINE=$((START + BUDGET))
STEPS=" ${KILN_GPU_STEPS:-deps build gpu ctest graphs onnx main bench profile} "
DEPS=/tmp/kilndeps
MULTIARCH=x86_64-linux-gnu
BUILD="${KILN_PREBUILT_BUILD:-${KILN_GPU_BUILD_DIR:-build-gpu}}"
case "$BUILD" in /*) ;; *) BUILD="$ROOT/$BUILD" ;; esac
ORIG_LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"
SUMMARY="$OUT/gpu_check.md"
ENVLOG="$OUT/env.log"
: >"$ENVLOG"
ROWS=()    # the step table's rows
DETAILS=() # Markdown after the table
HAVE_GPU=0
if command -v nvidia-smi >/dev/null && timeout 30 nvidia-smi -L >/dev/null 2>&1; then HAVE_GPU=1; fi
# The main job and the Kiln benchmark run on this backend (KILN_BACKEND): on a GPU machine "cuda",
# so a CUDA backend that is not available fails loudly instead of running everything on the CPU
# (the GPU-sized benchmarks would not finish there). The tests run on every available backend.
KILN_RUN_BACKEND="${KILN_GPU_BACKEND-$([ $HAVE_GPU = 1 ] && echo cuda)}"

log() { echo "[gpu_check $(($(date +%s) - START))s] $*"; }
left() { echo $((DEADLINE - $(date +%s))); }
# The timeout for a step: its own limit, cut so that `reserve` seconds stay for the later steps.
limit() { local own=$1 reserve=$2 l; l=$(($(left) - reserve)); [ "$l" -gt "$own" ] && l=$own; echo "$l"; }
wants() { case "$STEPS" in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

write_summary() {
  {
    echo "# Kiln GPU check"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'), commit ${COMMIT:-?}, $(($(date +%s) - START)) s in all."
    echo
    echo "| step | status | seconds | key numbers |"
    echo "|---|---|---|---|"
    local r
    for r in "${ROWS[@]}"; do echo "$r"; done
    for r in "${DETAILS[@]}"; do echo; echo "$r"; done
  } >"$SUMMARY"
}

# row STEP STATUS SECONDS NUMBERS
row() {
  ROWS+=("| $1 | $2 | $3 | $(echo "$4" | tr '|\n' '/ ') |")
  log "$1: $2 ($3 s) $4"
  write_summary
}

# run_timed LIMIT LOGFILE CMD...: runs CMD (a program, or a function of this script) under
# `timeout`, appending its output to LOGFILE; sets RC, SECS and STATUS (ok, FAIL rc=N, TIMEOUT
# after Ns, SKIPPED).
run_timed() {
  local lim=$1 logfile=$2
  shift 2
  local t0 ms
  t0=$(date +%s%N)
  if [ "$lim" -lt 5 ]; then
    RC=124 SECS=0 STATUS="SKIPPED (no time left)"
    return
  fi
  if declare -F "$1" >/dev/null; then
    # A function runs in a child bash that gets this script's functions and settings.
    timeout -k 10 "$lim" bash -c "$(declare -p DEPS ROOT BUILD MULTIARCH JOBS CUDA_ARCH 2>/dev/null); $(declare -f); $*" \
      >>"$logfile" 2>&1
  else
    timeout -k 10 "$lim" "$@" >>"$logfile" 2>&1
  fi
  RC=$?
  ms=$((($(date +%s%N) - t0) / 1000000))
  SECS="$((ms / 1000)).$((ms % 1000 / 100))"
  case $RC in
    0) STATUS=ok ;;
    124 | 137) STATUS="TIMEOUT after ${lim}s" ;;
    *) STATUS="FAIL rc=$RC" ;;
  esac
}

if [ -n "${KILN_GPU_COMMIT:-}" ]; then
  COMMIT="$KILN_GPU_COMMIT"  # a copy without .git (tools/gpu_rehearsal.sh)
else
  COMMIT="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then COMMIT="$COMMIT+changes"; fi
fi
write_summary

{
  echo "== machine"; uname -a; nproc; free -g 2>/dev/null | head -2
  echo "== tools"
  for t in c++ g++ gcc nvcc cmake ctest ninja python3 dpkg ar bc; do echo "$t: $(command -v $t || echo MISSING)"; done
  c++ --version 2>&1 | head -1; nvcc --version 2>&1 | tail -2; cmake --version 2>&1 | head -1
  echo "LD_LIBRARY_PATH=$ORIG_LD_LIBRARY_PATH"
} >>"$ENVLOG" 2>&1
export PATH="/usr/local/cuda/bin:$PATH"
if [ -z "${CUDACXX:-}" ] && [ -x /usr/local/cuda/bin/nvcc ]; then export CUDACXX=/usr/local/cuda/bin/nvcc; fi
# CMake >= 4 refuses configs that declare compatibility with CMake < 3.5 unless told otherwise;
# older CMake ignores this.
export CMAKE_POLICY_VERSION_MINIMUM=3.5

# ------------------------------------------------------------------ deps
# Unpacks one .deb into $DEPS: dpkg-deb, else ar + tar, else Python (ar and tar by hand).
unpack_deb() {
  if command -v dpkg-deb >/dev/null; then dpkg-deb -x "$1" "$DEPS" && return 0; fi
  python3 - "$1" "$DEPS" <<'EOF'
import io, sys, tarfile
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"!<arch>\n", "not an ar archive"
pos = 8
while pos + 60 <= len(data):
    name = data[pos:pos + 16].decode().strip().rstrip("/")
    size = int(data[pos + 48:pos + 58].decode().strip())
    body = data[pos + 60:pos + 60 + size]
    if name.startswith("data.tar"):
        tarfile.open(fileobj=io.BytesIO(body)).extractall(sys.argv[2])
        break
    pos += 60 + size + (size & 1)
else:
    sys.exit("no data.tar member")
EOF
}

deps_step() {
  rm -rf "$DEPS"
  mkdir -p "$DEPS"
  local n=0 f l t
  for f in "$ROOT"/.gpu/debs/*.deb; do
    [ -e "$f" ] || { echo "no .deb files in .gpu/debs (run tools/gpu_bundle.sh here first, carry .gpu)"; return 1; }
    unpack_deb "$f" || { echo "cannot unpack $f"; return 1; }
    n=$((n + 1))
  done
  # BLAS and LAPACK are Debian alternatives (their postinst links libblas.so.3 and liblapack.so.3,
  # which dpkg -x does not run): link them where liblapacke looks.
  for f in blas/libblas.so.3 lapack/liblapack.so.3; do
    if [ -e "$DEPS/usr/lib/$MULTIARCH/$f" ]; then ln -sfn "$DEPS/usr/lib/$MULTIARCH/$f" "$DEPS/usr/lib/$MULTIARCH/${f#*/}"; fi
  done
  # Libraries that Debian 12 still ships in /lib (libnl-3, which libibverbs and so Gloo need) join
  # the others in usr/lib, on the loader's path; zlib stays out (the system's is newer).
  for f in "$DEPS"/lib/$MULTIARCH/*.so*; do
    case "$(basename "$f")" in libz.so*) ;; *) [ -e "$DEPS/usr/lib/$MULTIARCH/$(basename "$f")" ] || ln -s "$f" "$DEPS/usr/lib/$MULTIARCH/" ;; esac
  done
  # Absolute symbolic links (libz.so -> /lib/.../libz.so.1.2.13) point into the unpacked tree.
  while IFS= read -r l; do
    t=$(readlink "$l")
    case "$t" in /*) if [ -e "$DEPS$t" ]; then ln -sfn "$DEPS$t" "$l"; fi ;; esac
  done < <(find "$DEPS" -type l)
  # Gloo's CMake targets name the library by its absolute path in /usr/lib: point them into the tree.
  for f in "$DEPS"/usr/share/cmake/Gloo/GlooTargets-*.cmake; do
    [ -e "$f" ] && sed -i "s|\"/usr/lib/libgloo|\"$DEPS/usr/lib/libgloo|g" "$f"
  done
  echo "unpacked $n packages into $DEPS"
}

kiln_env() {
  export CMAKE_PREFIX_PATH="$DEPS/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  export CPATH="$DEPS/usr/include${CPATH:+:$CPATH}"
  export LIBRARY_PATH="$DEPS/usr/lib/$MULTIARCH:$DEPS/usr/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
  # Kiln's programs find libdnnl, libhwy, libbenchmark and the OpenCL loader that libdnnl needs
  # here; zlib comes from the system (its libz.so.1 is newer) unless it has none. PyTorch runs
  # with the original LD_LIBRARY_PATH.
  KILN_LD="$DEPS/usr/lib/$MULTIARCH:$DEPS/usr/lib"  # (Gloo installs into /usr/lib)
  if ! ldconfig -p 2>/dev/null | grep 'libz\.so\.1 ' >/dev/null; then KILN_LD="$KILN_LD:$DEPS/lib/$MULTIARCH"; fi
  export LD_LIBRARY_PATH="$KILN_LD${ORIG_LD_LIBRARY_PATH:+:$ORIG_LD_LIBRARY_PATH}"
}

# PyTorch's cuDNN wheel (site-packages/nvidia/cudnn), if any. Kiln loads cuDNN at run time: where
# neither the loader's path nor the toolkit has libcudnn.so.9, it loads the wheel's.
WHEEL_CUDNN=$(env LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" python3 -c \
  'import nvidia.cudnn as m; print(list(m.__path__)[0])' 2>/dev/null)
if ! ldconfig -p 2>/dev/null | grep -q 'libcudnn\.so\.9 ' && [ ! -e /usr/local/cuda/lib64/libcudnn.so.9 ] &&
  [ -n "$WHEEL_CUDNN" ] && [ -e "$WHEEL_CUDNN/lib/libcudnn.so.9" ]; then
  export KILN_CUDNN_LIBRARY="$WHEEL_CUDNN/lib/libcudnn.so.9"
fi
echo "cuDNN: headers $([ -f /usr/local/cuda/include/cudnn_version.h ] && echo /usr/local/cuda/include || echo "${WHEEL_CUDNN:-none}/include"); KILN_CUDNN_LIBRARY=${KILN_CUDNN_LIBRARY:-unset}" >>"$ENVLOG"

if wants deps; then
  run_timed "$(limit 60 "${KILN_GPU_RESERVE_DEPS:-400}")" "$ENVLOG" deps_step
  row deps "$STATUS" "$SECS" "$(tail -1 "$ENVLOG")"
fi
kiln_env
{ echo "== env"; env | grep -E '^(CMAKE_PREFIX_PATH|CPATH|LIBRARY_PATH|LD_LIBRARY_PATH|CUDACXX|PATH)='; } >>"$ENVLOG"

# ------------------------------------------------------------------ build
BUILT=0
if [ -n "${KILN_PREBUILT_BUILD:-}" ]; then
  [ -f "$BUILD/CMakeCache.txt" ] && BUILT=1
  row build "$([ $BUILT = 1 ] && echo prebuilt || echo "MISSING $BUILD")" 0 "$BUILD"
elif wants build; then
  JOBS="$(nproc)"
  CUDA_ARCH="${KILN_CUDA_ARCHITECTURES-90}"
  # cuDNN's headers: the toolkit's, else those of PyTorch's cuDNN wheel (nvidia/cudnn/include,
  # beside the lib/ that CMake then records as where libcudnn.so.9 is loaded from).
  CUDNN_ARGS=()
  if [ ! -f /usr/local/cuda/include/cudnn_version.h ] && [ -n "$WHEEL_CUDNN" ] &&
    [ -f "$WHEEL_CUDNN/include/cudnn_version.h" ]; then
    CUDNN_ARGS=(-DKILN_CUDNN_INCLUDE_DIR="$WHEEL_CUDNN/include")
  fi
  build_step() {
    local arch=()
    [ -n "$CUDA_ARCH" ] && arch=(-DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH")
    cmake -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKILN_CUDA="${KILN_CUDA:-ON}" \
      -DKILN_BUILD_BENCH=ON -DKILN_NATIVE=ON "${arch[@]}" "${CUDNN_ARGS[@]}" || return 1
    # -k 0: build everything that can be built, so one broken target leaves the others usable.
    cmake --build "$BUILD" --parallel "$JOBS" -- -k 0
  }
  run_timed "$(limit "${KILN_GPU_BUILD_S:-300}" "${KILN_GPU_RESERVE_BUILD:-220}")" "$OUT/build.log" build_step
  [ -f "$BUILD/CMakeCache.txt" ] && [ -n "$(ls "$BUILD"/libkiln.so* 2>/dev/null)" ] && BUILT=1
  errors=$(grep -c -E 'error:|FAILED:' "$OUT/build.log" 2>/dev/null)
  errors=${errors:-0}
  # Where CMake found each dependency: from $DEPS, not from system paths.
  found=$(grep -E '^(dnnl_DIR|hwy_DIR|nlohmann_json_DIR|GTest_DIR|benchmark_DIR|ZLIB_LIBRARY_RELEASE|ZLIB_INCLUDE_DIR|OpenCL_LIBRARY|CMAKE_CUDA_COMPILER|CMAKE_CXX_COMPILER):' \
    "$BUILD/CMakeCache.txt" 2>/dev/null)
  echo "== CMakeCache (dependencies)"$'\n'"$found" >>"$ENVLOG"
  outside=$(echo "$found" | grep -E '^(dnnl|hwy|nlohmann|GTest|benchmark|ZLIB|OpenCL)' | grep -v "$DEPS" | cut -d= -f1 | tr '\n' ' ')
  cudac=$(grep -E '^CMAKE_CUDA_COMPILER:' "$BUILD/CMakeCache.txt" 2>/dev/null | cut -d= -f2)
  cudnn=$(grep -o -E 'Kiln: (convolutions on cuDNN 9 \(headers in [^;]*|no cuDNN 9 headers found)' "$OUT/build.log" | head -1)
  row build "$STATUS" "$SECS" "-j$JOBS, KILN_CUDA=${KILN_CUDA:-ON}, CUDA compiler ${cudac:-none}; ${cudnn:-cuDNN: not reported}; $errors error lines${outside:+; found outside $DEPS: $outside}"
  if [ "$errors" -gt 0 ]; then
    DETAILS+=("### Build errors (first 15 lines; build.log has all)"$'\n\n```\n'"$(grep -E 'error:|FAILED:' "$OUT/build.log" | head -15 | cut -c1-300)"$'\n```')
    write_summary
  fi
fi
if [ $BUILT = 0 ]; then
  DETAILS+=("No Kiln build: the Kiln steps were skipped.")
  write_summary
fi

# ------------------------------------------------------------------ gpu
if wants gpu; then
  if command -v nvidia-smi >/dev/null; then
    run_timed 20 "$ENVLOG" nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,temperature.gpu,power.draw --format=csv,noheader
    GPU_LINE=$(grep -E 'MiB' "$ENVLOG" | tail -1)
    row gpu "$STATUS" "$SECS" "$GPU_LINE"
  else
    row gpu "no nvidia-smi" 0 "benchmarks run with --small (CPU)"
  fi
fi

# ------------------------------------------------------------------ ctest
if wants ctest && [ $BUILT = 1 ]; then
  # check_setup (dpkg-query of the Debian packages) and install_consumers (a second configure
  # against the installed tree) check the Debian set-up, which this machine does not have. The
  # *_cuda_emu entries run the CUDA emulator, which the GPU itself replaces here (and whose first
  # run compiles thousands of host modules).
  rm -f "$BUILD/Testing/Temporary/LastTestsFailed.log"
  run_timed "$(limit "${KILN_GPU_CTEST_S:-150}" "${KILN_GPU_RESERVE_CTEST:-150}")" "$OUT/ctest.log" \
    ctest --test-dir "$BUILD" --output-on-failure -j"${KILN_GPU_CTEST_J:-8}" --timeout 120 \
      -E '^(check_setup|install_consumers)$|_cuda_emu'
  total=$(grep -E 'tests passed, [0-9]+ tests failed out of' "$OUT/ctest.log" | tail -1)
  failed=$(cut -d: -f2- "$BUILD/Testing/Temporary/LastTestsFailed.log" 2>/dev/null | tr '\n' ' ')
  if [ -z "$total" ]; then  # killed: count what the log shows
    failed=$(grep -E '\*\*\*(Failed|Timeout|Exception)|Not Run' "$OUT/ctest.log" | sed -E 's/.*Test +#[0-9]+: ([^ ]+).*/\1/' | tr '\n' ' ')
    total="$(grep -c -E 'Test +#[0-9]+: .* Passed' "$OUT/ctest.log") passed before the limit"
  fi
  row ctest "$STATUS" "$SECS" "$total"
  if [ -n "$failed" ]; then
    DETAILS+=("### Failed tests"$'\n\n'"$(echo "$failed" | tr ' ' '\n' | grep -v '^$' | head -60 | sed 's/^/- /')")
    write_summary
  fi
fi

# ------------------------------------------------------------------ graphs
# Every call of four suites recorded as a CUDA graph and replayed (KILN_CUDA_GRAPHS=always):
# training against the CPU, products and convolutions, the elementwise table, random graphs; then
# the replay tests themselves. ctest above runs the default policy, which records only repeated
# calls. The output goes to ctest.log too.
if wants graphs && [ $BUILT = 1 ]; then
  graphs_step() {
    local t rc=0
    for t in cuda_backend_test dot_conv_test elementwise_test random_graph_test cuda_graph_replay_test; do
      echo "== KILN_CUDA_GRAPHS=always $t"
      KILN_CUDA_GRAPHS=always "$BUILD/tests/$t" --gtest_brief=1 || rc=1
    done
    return $rc
  }
  run_timed "$(limit 90 "${KILN_GPU_RESERVE_CTEST:-150}")" "$OUT/ctest.log" graphs_step
  row graphs "$STATUS" "$SECS" "$(grep -c -E '^\[  (PASSED|FAILED) ' "$OUT/ctest.log") suite results in ctest.log"
fi

# ------------------------------------------------------------------ onnx
# ONNX's node tests through the importer on the GPU backend (ops it lacks are reported as failures or
# "not supported"; the CPU's count is in tests/CMakeLists.txt). The data travels compressed (1.2 MiB).
if wants onnx && [ $BUILT = 1 ] && [ -f "$ROOT/.gpu/onnx-node.tar.xz" ]; then
  onnx_step() {
    rm -rf /tmp/kiln-onnx-node && mkdir -p /tmp/kiln-onnx-node &&
      tar -xJf "$ROOT/.gpu/onnx-node.tar.xz" -C /tmp/kiln-onnx-node &&
      "$BUILD/tools/onnx_suite" --data /tmp/kiln-onnx-node/node --backend "${KILN_RUN_BACKEND:-cpu}"
  }
  run_timed "$(limit 180 "${KILN_GPU_RESERVE_ONNX:-120}")" "$OUT/onnx.log" onnx_step
  row onnx "$STATUS" "$SECS" "$(grep -E '^onnx_suite: [0-9]+ cases' "$OUT/onnx.log" | tail -1 | cut -c13-)"
fi

# ------------------------------------------------------------------ main job
DATA="$ROOT/.gpu/fashion-mnist"
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || DATA=/usr/share/datasets/fashion-mnist
main_job() {  # MODEL EPOCHS LIMIT
  local exe="$BUILD/examples/fashion_mnist"
  echo "=== $1, $2 epochs: $exe" >>"$OUT/main_job.log"
  run_timed "$3" "$OUT/main_job.log" env ${KILN_RUN_BACKEND:+KILN_BACKEND=$KILN_RUN_BACKEND} "$exe" --restart --model="$1" --epochs="$2" --data="$DATA" \
    --checkpoint_dir="/tmp/kiln-gpu-$1" --plot="/tmp/kiln-gpu-$1.html"
  local acc on
  acc=$(grep -E '^test accuracy' "$OUT/main_job.log" | tail -1 | sed 's/  plot: .*//')
  on=$(grep -E '^Kiln Fashion-MNIST' "$OUT/main_job.log" | tail -1 | sed 's/^Kiln Fashion-MNIST //')
  [ "$RC" = 0 ] || acc="$(grep -v '^$' "$OUT/main_job.log" | tail -1 | cut -c1-200)"
  row "main $1 ($2 ep)" "$STATUS" "$SECS" "$acc; $on"
}
if wants main && [ $BUILT = 1 ]; then
  if [ ! -x "$BUILD/examples/fashion_mnist" ]; then
    row main "not built" 0 ""
  elif [ ! -f "$DATA/train-images-idx3-ubyte.gz" ]; then
    row main "no dataset" 0 "run tools/gpu_bundle.sh and carry .gpu"
  else
    echo "dataset: $DATA ($(ls "$DATA" | tr '\n' ' '))" >"$OUT/main_job.log"
    main_job mlp 2 "$(limit 90 110)"
    if [ "$(left)" -gt 170 ]; then main_job cnn 1 "$(limit 60 110)"; fi
  fi
fi

# ------------------------------------------------------------------ bench
if wants bench && [ $BUILT = 1 ]; then
  KB="$BUILD/bench/kiln_gpu_bench"
  ROUNDS="${KILN_GPU_BENCH_ROUNDS:-3}"
  SIZE_ARGS=()
  TORCH_ARGS=()
  if [ $HAVE_GPU = 0 ]; then SIZE_ARGS=(--small); TORCH_ARGS=(--device cpu); fi
  read -r -a EXTRA <<<"${KILN_GPU_BENCH_ARGS:-}"
  ROWS_TSV=/tmp/kiln_gpu_bench_rows.tsv
  : >"$ROWS_TSV"
  : >"$OUT/bench.log"
  rm -f /tmp/kiln_gpu_bench_kiln.header /tmp/kiln_gpu_bench_torch.header
  bench_t0=$(date +%s)
  done_rounds=0
  PROFILE_RESERVE=$(wants profile && echo 35 || echo 0)  # seconds kept for the profile step
  bench_status=ok
  for r in $(seq 1 "$ROUNDS"); do
    for side in kiln torch; do
      # Each run may take what is left, keeping 10 s for the summary (and the profile's time).
      lim=$(limit 120 $((10 + PROFILE_RESERVE)))
      echo "=== $side round $r (limit ${lim}s)" >>"$OUT/bench.log"
      tmp=/tmp/kiln_gpu_bench_$side.out
      : >"$tmp"
      if [ $side = kiln ]; then
        if [ ! -x "$KB" ]; then echo "kiln_gpu_bench not built" >>"$tmp"; RC=1; STATUS="not built"; else
          run_timed "$lim" "$tmp" env ${KILN_RUN_BACKEND:+KILN_BACKEND=$KILN_RUN_BACKEND} "$KB" "${SIZE_ARGS[@]}" "${EXTRA[@]}"
        fi
      else
        run_timed "$lim" "$tmp" env LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" PYTHONUNBUFFERED=1 \
          python3 "$ROOT/bench/gpu/torch_peer.py" "${SIZE_ARGS[@]}" "${TORCH_ARGS[@]}" "${EXTRA[@]}"
      fi
      cat "$tmp" >>"$OUT/bench.log"
      echo "=== $side round $r: $STATUS, ${SECS}s" >>"$OUT/bench.log"
      [ "$STATUS" = ok ] || bench_status="$side: $STATUS"
      awk -v side=$side -v r=$r '$1 == "BENCH" { extra = ""; for (i = 4; i <= NF; ++i) extra = extra " " $i;
        print side "\t" r "\t" $2 "\t" $3 "\t" extra }' "$tmp" >>"$ROWS_TSV"
      h=$(grep -E '^(KILN|TORCH) ' "$tmp" | head -1)
      [ -n "$h" ] && echo "$h" >"/tmp/kiln_gpu_bench_$side.header"
    done
    done_rounds=$r
    # Another round only with time for it, and for the profile after it.
    [ "$(left)" -lt $((40 + PROFILE_RESERVE)) ] && break
  done
  TABLE=$(python3 - "$ROWS_TSV" /tmp/kiln_gpu_bench_kiln.header /tmp/kiln_gpu_bench_torch.header <<'EOF'
import statistics, sys
from collections import defaultdict
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
t = defaultdict(dict)     # (side, name) -> {round: seconds}
ex = defaultdict(lambda: defaultdict(list))  # (side, name) -> key -> values
order = []
for side, r, name, s, extra in rows:
    if name not in order:
        order.append(name)
    t[(side, name)][r] = float(s)
    for kv in extra.split():
        k, _, v = kv.partition("=")
        try:
            ex[(side, name)][k].append(float(v))
        except ValueError:
            pass
def fmt(s):
    if s is None: return "—"
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.2f} ms" if s < 1 else f"{s:.2f} s"
def extras(side, name):
    return ", ".join(f"{k} {statistics.median(v):.4g}" for k, v in ex[(side, name)].items() if k != "n")
def header(path):
    try:
        return open(path).read().strip() or "(no header line)"
    except OSError:
        return "(did not run)"
print("Kiln: " + header(sys.argv[2]))
print()
print("PyTorch: " + header(sys.argv[3]))
print()
print("Times are medians over the rounds of each run's median; the ratio is the median over the rounds of that")
print("round's Kiln / PyTorch (below 1: Kiln faster).")
print()
print("| workload | Kiln | PyTorch | Kiln/PyTorch | Kiln notes | PyTorch notes |")
print("|---|---|---|---|---|---|")
for name in order:
    k, p = t.get(("kiln", name), {}), t.get(("torch", name), {})
    km = statistics.median(k.values()) if k else None
    pm = statistics.median(p.values()) if p else None
    ratios = [k[r] / p[r] for r in k if r in p and p[r] > 0]
    ratio = f"{statistics.median(ratios):.2f}" if ratios else "—"
    print(f"| {name} | {fmt(km)} | {fmt(pm)} | {ratio} | {extras('kiln', name)} | {extras('torch', name)} |")
EOF
  )
  errs=$(grep -h '^BENCHERR' "$OUT/bench.log" | sort -u | head -20 | cut -c1-300)
  DETAILS+=("## Benchmarks ($done_rounds interleaved rounds per side)"$'\n\n'"$TABLE")
  [ -n "$errs" ] && DETAILS+=("### Benchmark errors"$'\n\n```\n'"$errs"$'\n```')
  row bench "$bench_status" "$(($(date +%s) - bench_t0))" "$done_rounds rounds; $(grep -c . "$ROWS_TSV") results; $(echo "$errs" | grep -c BENCHERR) errors"
fi

# ------------------------------------------------------------------ profile
# One run of the train steps with every executable's per-step GPU time printed when it goes
# (KILN_CUDA_PROFILE=1: events around each step, CUDA graphs off, a wait after each call; without a
# GPU, KILN_CPU_PROFILE). The summary keeps the three costliest functions' ten slowest steps. A run
# cut by its timeout loses the tables of the workload it was in (they print when executables go).
if wants profile && [ $BUILT = 1 ]; then
  KB="$BUILD/bench/kiln_gpu_bench"
  SIZE_ARGS=()
  [ $HAVE_GPU = 0 ] && SIZE_ARGS=(--small)
  : >"$OUT/profile.log"
  if [ ! -x "$KB" ]; then
    row profile "not built" 0 ""
  else
    run_timed "$(limit 60 5)" "$OUT/profile.log" env ${KILN_RUN_BACKEND:+KILN_BACKEND=$KILN_RUN_BACKEND} \
      KILN_CUDA_PROFILE=1 KILN_CPU_PROFILE=$((1 - HAVE_GPU)) "$KB" "${SIZE_ARGS[@]}" --rounds=1 \
      --only="${KILN_GPU_PROFILE_ONLY:-mlp,cnn,gpt2_block}"
    TOP=$(python3 - "$OUT/profile.log" <<'EOF'
import re, sys
tables, cur = [], None
for line in open(sys.argv[1], errors="replace"):
    m = re.match(r'kiln \S+ profile of "(.*)": (\d+) executions, ([0-9.]+) ms', line)
    if m:
        cur = [float(m.group(3)) * int(m.group(2)), line.rstrip(), []]
        tables.append(cur)
    elif cur is not None and line.startswith("  "):
        if len(cur[2]) < 10:
            cur[2].append(line.rstrip())
    else:
        cur = None
for total, head, rows in sorted(tables, key=lambda t: -t[0])[:3]:
    print(head)
    for r in rows:
        print(r)
print(f"({len(tables)} profiled functions in profile.log)")
EOF
    )
    DETAILS+=("## Where the time goes (KILN_CUDA_PROFILE=1, one round; the costliest functions)"$'\n\n```\n'"$(echo "$TOP" | cut -c1-220)"$'\n```')
    row profile "$STATUS" "$SECS" "$(echo "$TOP" | tail -1)"
  fi
fi

write_summary
echo
cat "$SUMMARY"
