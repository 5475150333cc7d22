#!/usr/bin/env bash
# The set-up check: proves that tools/setup.sh installs everything Kiln's CMake configure step uses.
#
#   tools/check_setup.sh
#       Configures Kiln as tools/test.sh does (Release with benchmarks and examples; the sanitizer build,
#       with Clang if tools/test.sh uses Clang) in temporary build directories under a CMake trace, and collects every file and
#       directory outside the checkout that the configure step names: the CMake scripts it runs (package
#       configs, Find modules, CMake's own modules), every existing absolute path in the expanded trace
#       (what find_* found, imported targets' locations and include directories, the compilers) and in
#       the CMake cache (*_DIR, *_LIBRARY, *_INCLUDE_DIR...). It looks up the Debian package of each
#       (dpkg -S; through the merged-/usr twin and symlinks when the path itself is not registered) and
#       fails, naming the file and its package, unless that package is allowed:
#         - a package tools/setup.sh installs (tools/setup.sh --list), or one of those depends on,
#           recursively (Depends and Pre-Depends of the installed packages, virtual packages resolved to
#           their installed providers; Recommends and Suggests do not count: setup installs with
#           --no-install-recommends), or
#         - a package of the base system (Essential: yes or Priority: required), which every Debian
#           system has.
#       A file that no package owns fails too, except the CUDA toolkit's under /usr/local/cuda (NVIDIA's
#       installer, not Debian, provides it; the CUDA backend is built only where it is found). Exception: the binutils CMake's compiler set-up looks for
#       (CMAKE_AR, CMAKE_LINKER, CMAKE_<LANG>_COMPILER_AR...; CMakeFindBinUtils) may come from other
#       packages (llvm, lld for Clang): CMake prefers those when installed and otherwise takes binutils'
#       (build-essential), so they are noted, not failed. A directory passes when no package owns it (the files
#       found in it are checked themselves) or when one of its owners is allowed. libtorch, the
#       benchmarks' optional peer (installed by tools/bench.sh, not by setup), is kept out of the
#       configure (CMAKE_DISABLE_FIND_PACKAGE_Torch).
#
#   tools/check_setup.sh --packages-for PREFIX
#       Configures the consumer project (tests/install/consumer) against the Kiln installed in PREFIX
#       (CMAKE_PREFIX_PATH=PREFIX) the same way and prints, comma-separated, the packages owning the files
#       it uses outside PREFIX and the checkout, less the base system and the tools that read the
#       package (everything build-essential, cmake, ninja-build and pkg-config depend on: the compiler,
#       its libraries such as GCC's OpenMP, the build tools). These are the
#       -dev packages the installed CMake config needs: tools/package.sh puts them in the Debian
#       package's Depends, and tests/install/deb_test.sh checks they are there.
#
# Environment:
#   KILN_SETUP_PACKAGES  space-separated package list used instead of tools/setup.sh --list (the
#                        self-test, tests/install/check_setup_test.sh, removes packages with it)
#   KILN_CHECK_VERBOSE=1 print every path with its package
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)

mode=check
prefix=
case "${1:-}" in
  "") ;;
  --packages-for)
    mode=packages-for
    prefix=$(cd "${2:?usage: $0 --packages-for PREFIX}" && pwd)
    ;;
  *) echo "usage: $0 [--packages-for PREFIX]" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { echo "check_setup: $*" >&2; }

# ------------------------------------------------------------- Allowed packages.
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# closure PKG...: the installed packages PKG... and everything they depend on (Depends, Pre-Depends),
# recursively, one per line, without architecture qualifiers.
closure() {
  apt-cache depends --installed --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
    --no-replaces --no-enhances "$@" | grep -v '^[ <]' | sed 's/:.*//' | sort -u
}

base_packages() {
  dpkg-query -W -f='${db:Status-Abbrev} ${Package} ${Essential} ${Priority}\n' |
    awk '$1 == "ii" && ($3 == "yes" || $4 == "required") { print $2 }' | sort -u
}

if [ "$mode" = check ]; then
  if [ -n "${KILN_SETUP_PACKAGES+set}" ]; then
    read -r -a setup_packages <<< "$KILN_SETUP_PACKAGES"
    log "package list from KILN_SETUP_PACKAGES (${#setup_packages[@]} packages)"
  else
    mapfile -t setup_packages < <(bash "$src/tools/setup.sh" --list)
  fi
  [ ${#setup_packages[@]} -gt 0 ] || { log "empty package list"; exit 1; }
  for p in "${setup_packages[@]}"; do
    installed "$p" || { log "FAIL: $p (listed by tools/setup.sh) is not installed: run tools/setup.sh first"; exit 1; }
  done
  { closure "${setup_packages[@]}"; base_packages; } | sort -u > "$work/allowed"
else
  # Not dependencies of a package that ships a CMake config: the base system and the tools that read it
  # (the compiler and its libraries, cmake, the build tool, pkg-config).
  { closure build-essential cmake ninja-build pkg-config; base_packages; } | sort -u > "$work/allowed"
fi

# ------------------------------------------------------------- The scan: configure with a trace, dpkg -S.
# scan: writes $work/paths (path <TAB> file|directory), $work/resolved (their symlink targets, line by line),
# $work/binutils (what CMake's binutils search found) and $work/dpkg (dpkg -S of every name to try).
scan() {
  generator=()
  if command -v ninja > /dev/null; then generator=(-G Ninja); fi
  : > "$work/mentioned.all"
  : > "$work/cache-paths.all"
  : > "$work/binutils.all"
  # The cache entries CMake's binutils search (CMakeFindBinUtils) fills: it prefers the compiler's own tools
  # (llvm-ar, ld.lld... for Clang) when they are installed and otherwise takes binutils' (ar, ld...).
  binutils_entries='AR|RANLIB|LINKER|NM|OBJCOPY|OBJDUMP|READELF|STRIP|ADDR2LINE|DLLTOOL|[A-Z]+_COMPILER_AR|[A-Z]+_COMPILER_RANLIB'
  # configure NAME PROJECT CMAKE_ARGS...: configures PROJECT in $work/NAME under a trace and collects the
  # files (every existing absolute path in the trace, the scripts run and the expanded arguments, and in the
  # cache) and the directories (those the cache holds outside CMAKE_* entries: dnnl_DIR, *_INCLUDE_DIR...;
  # the others the trace names, search paths and implicit link directories, are where files were looked
  # for, and the files found there are checked themselves).
  configure() {
    local name=$1 project=$2
    shift 2
    if ! cmake -S "$project" -B "$work/$name" "${generator[@]}" "$@" --trace-format=json-v1 --trace-expand \
         "--trace-redirect=$work/$name.trace.json" > "$work/$name.log" 2>&1; then
      cat "$work/$name.log" >&2
      log "FAIL: configuring $project ($name: $*) failed (above)"
      exit 1
    fi
    {
      grep -oE '/[^";[:space:]]+' "$work/$name.trace.json"
      grep -v '^\(//\|#\)' "$work/$name/CMakeCache.txt" | grep -oE '/[^";[:space:]]+'
    } >> "$work/mentioned.all"
    grep -v '^\(//\|#\|CMAKE_\)' "$work/$name/CMakeCache.txt" | grep -oE '/[^";[:space:]]+' >> "$work/cache-paths.all" || true
    grep -E "^CMAKE_($binutils_entries):" "$work/$name/CMakeCache.txt" | sed 's/^[^=]*=//' >> "$work/binutils.all" || true
  }
  if [ "$mode" = check ]; then
    # The configurations tools/test.sh (and so CI) uses: Release with the benchmarks and examples, and the
    # sanitizer build (with Clang when tools/test.sh builds it with Clang).
    configure release "$src" -DCMAKE_BUILD_TYPE=Release -DKILN_BUILD_BENCH=ON -DKILN_BUILD_EXAMPLES=ON \
      -DCMAKE_DISABLE_FIND_PACKAGE_Torch=ON
    local compiler=()
    if grep -q -- '-DCMAKE_CXX_COMPILER=clang++' "$src/tools/test.sh"; then compiler=(-DCMAKE_CXX_COMPILER=clang++); fi
    configure sanitize "$src" -DCMAKE_BUILD_TYPE=None "-DCMAKE_CXX_FLAGS=-O1 -g1" "${compiler[@]}" \
      -DKILN_SANITIZE=ON -DKILN_BUILD_EXAMPLES=ON
  else
    configure consumer "$src/tests/install/consumer" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_PREFIX_PATH=$prefix"
  fi
  sort -u "$work/mentioned.all" > "$work/mentioned"
  sort -u "$work/cache-paths.all" > "$work/cache-paths"
  { xargs -d '\n' realpath -s -e -q < "$work/binutils.all" 2> /dev/null || true; } | sort -u > "$work/binutils"
  keep_path() {  # PATH: outside the checkout, the build directory, PREFIX and the pseudo file systems
    case "$1/" in
      "$src"/* | "$work"/* | /tmp/* | /proc/* | /sys/* | /dev/* | /run/*) return 1 ;;
    esac
    if [ -n "$prefix" ]; then case "$1/" in "$prefix"/*) return 1 ;; esac; fi
    return 0
  }
  {
    { xargs -d "\n" realpath -s -e -q < "$work/mentioned" 2> /dev/null || true; } | sort -u | while IFS= read -r p; do
      if [ -f "$p" ] && keep_path "$p"; then printf '%s\tfile\n' "$p"; fi
    done
    { xargs -d "\n" realpath -s -e -q < "$work/cache-paths" 2> /dev/null || true; } | sort -u | while IFS= read -r p; do
      if [ -d "$p" ] && keep_path "$p"; then printf '%s\tdirectory\n' "$p"; fi
    done
  } > "$work/paths"
  cut -f1 "$work/paths" | xargs -d '\n' realpath -e > "$work/resolved"

  # ------------------------------------------------------------- Owners (dpkg -S).
  # Names tried for each path, first registered one wins: itself, its merged-/usr twin (/lib/x <-> /usr/lib/x),
  # its resolved target (symlinks, /etc/alternatives) and that one's twin.
  paste "$work/paths" "$work/resolved" | awk -F'\t' '
    function twin(p) { return p ~ /^\/usr\// ? substr(p, 5) : "/usr" p }
    { print $1; print twin($1); print $3; print twin($3) }' | sort -u > "$work/queries"
  xargs -d '\n' dpkg -S < "$work/queries" > "$work/dpkg" 2> /dev/null || true
}
# KILN_CHECK_SCAN_DIR=DIR (check mode): save the scan in DIR, or reuse the one saved there. The scan does
# not depend on the package list, so the self-test scans once and checks several lists against it.
scan_dir=
if [ "$mode" = check ]; then scan_dir=${KILN_CHECK_SCAN_DIR:-}; fi
if [ -n "$scan_dir" ] && [ -f "$scan_dir/done" ]; then
  for f in paths resolved binutils dpkg; do cp "$scan_dir/$f" "$work/$f"; done
  log "reusing the scan of the configure step saved in $scan_dir"
else
  scan
  if [ -n "$scan_dir" ]; then
    mkdir -p "$scan_dir"
    for f in paths resolved binutils dpkg; do cp "$work/$f" "$scan_dir/$f"; done
    touch "$scan_dir/done"
  fi
fi

# verdicts: one line per path: ok|bad|unowned <TAB> path <TAB> kind <TAB> owners (comma-separated).
{ sed 's/^/A\t/' "$work/allowed"; sed 's/^/B\t/' "$work/binutils"; sed 's/^/D\t/' "$work/dpkg"; paste "$work/paths" "$work/resolved" | sed 's/^/P\t/'; } |
  awk -F'\t' '
    function twin(p) { return p ~ /^\/usr\// ? substr(p, 5) : "/usr" p }
    $1 == "A" { allowed[$2] = 1; next }
    $1 == "B" { binutils[$2] = 1; next }
    $1 == "D" {
      line = $2
      if (line ~ /^diversion by /) next
      i = index(line, ": /"); pkgs = substr(line, 1, i - 1); path = substr(line, i + 2)
      gsub(/ /, "", pkgs); n = split(pkgs, a, ","); out = ""
      for (k = 1; k <= n; k++) { sub(/:.*/, "", a[k]); out = out (out == "" ? "" : ",") a[k] }
      owners[path] = out; next
    }
    $1 == "P" {
      path = $2; kind = $3; who = ""
      # NVIDIA'"'"'s CUDA toolkit (not a Debian package) comes with the machine where it is installed;
      # KILN_CUDA=AUTO builds the CUDA backend when it is there and skips it when not.
      if (path ~ /^\/usr\/local\/cuda/ || $4 ~ /^\/usr\/local\/cuda/) { print "toolkit\t" path "\t" kind "\t"; next }
      split(path "\t" twin(path) "\t" $4 "\t" twin($4), c, "\t")
      for (k = 1; k <= 4; k++) if (c[k] in owners) { who = owners[c[k]]; break }
      if (who == "") { print "unowned\t" path "\t" kind "\t"; next }
      n = split(who, w, ","); ok = 0
      for (k = 1; k <= n; k++) if (w[k] in allowed) ok = 1
      if (!ok && (path in binutils) && ("binutils" in allowed)) { print "optional\t" path "\t" kind "\t" who; next }
      print (ok ? "ok" : "bad") "\t" path "\t" kind "\t" who
    }' > "$work/verdicts"

if [ "${KILN_CHECK_VERBOSE:-0}" = 1 ]; then
  awk -F'\t' '{ printf "check_setup: %s: %s (%s)\n", $2, ($4 == "" ? "no package" : $4), $1 }' "$work/verdicts" >&2
fi

if [ "$mode" = packages-for ]; then
  # Files only: a directory several packages share says nothing about which one is needed.
  awk -F'\t' '$1 == "bad" && $3 == "file" { n = split($4, w, ","); for (k = 1; k <= n; k++) print w[k] }' \
    "$work/verdicts" | sort -u | paste -sd, - | sed 's/,/, /g'
  exit 0
fi

n=$(wc -l < "$work/paths")
failures=0
while IFS=$'\t' read -r verdict path kind who; do
  case "$verdict" in
    bad)
      log "FAIL: $path ($kind) belongs to ${who//,/, }, which tools/setup.sh does not install (nor anything it depends on)"
      failures=$((failures + 1)) ;;
    unowned)
      if [ "$kind" = file ]; then
        log "FAIL: $path is used by the configure step but belongs to no Debian package"
        failures=$((failures + 1))
      fi ;;
  esac
done < "$work/verdicts"
toolkit=$(awk -F'\t' '$1 == "toolkit"' "$work/verdicts" | wc -l)
if [ "$toolkit" -gt 0 ]; then
  log "note: $toolkit files and directories come from the CUDA toolkit in /usr/local/cuda (the optional CUDA backend)"
fi
optional=$(awk -F'\t' '$1 == "optional" { printf "%s%s (%s)", (n++ ? ", " : ""), $2, $4 }' "$work/verdicts")
if [ -n "$optional" ]; then
  log "note: CMake's binutils search also found tools outside tools/setup.sh's packages, which it prefers" \
      "to binutils' only when they are installed: $optional"
fi
if [ "$failures" -gt 0 ]; then
  log "FAIL: $failures of the $n files and directories the configure step uses outside the checkout are not" \
      "installed by tools/setup.sh; add to its PACKAGES one of: $(awk -F'\t' '$1 == "bad" { print $4 }' "$work/verdicts" | sort -u | paste -sd' ' -)"
  exit 1
fi
log "ok: the $n files and directories outside the checkout that the configure step uses all come from" \
    "packages tools/setup.sh installs ($(wc -l < "$work/allowed") packages with their dependencies and the base system)"
