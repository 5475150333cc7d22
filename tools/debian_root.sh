#!/usr/bin/env bash
# Makes a minimal Debian 12 root in DIR (debootstrap --variant=minbase plus PACKAGES), or completes
# the one DIR holds (installs the PACKAGES it lacks); debootstrap is downloaded as a .deb and
# unpacked, not installed. Run as root. Used by tools/gpu_rehearsal.sh and tools/fresh_machine_check.sh.
#
#   tools/debian_root.sh DIR [PACKAGE...]
#
# DIR must be absent, empty, or a root this script made (finished or cut short): any other folder is
# refused, never deleted. Then:
#   tools/debian_root.sh --copy-tree DIR        copies this checkout's tracked files, as they are now,
#       to DIR/root/kiln (a file deleted but not committed is left out). A file whose bytes match the
#       previous copy keeps that copy's time, any other gets the time of now, so a build folder made
#       from the previous copy redoes exactly what changed (the checkout's own times would not do: such
#       a build may be newer than an edit);
#   tools/debian_root.sh --run DIR COMMAND...   runs COMMAND in it, in a clean environment
#       (HOME=/root), with /proc and /dev mounted in a private mount namespace (they end with it), and
#       $KILN_ROOT_BIND_RO, a folder of this machine, mounted read-only at the same path if set;
#   tools/debian_root.sh --remove DIR           deletes it, refusing while anything is mounted under it.
set -euo pipefail
SELF="$(readlink -f "$0")"
usage() { echo "usage: $0 DIR [PACKAGE...] | --copy-tree DIR | --run DIR COMMAND... | --remove DIR" >&2; exit 2; }

# The absolute path of root $1: refused where it is / or has white space (/proc/mounts escapes it).
root_path() {
  local r
  r="$(readlink -f "$1")"
  case "$r" in "" | / | *[[:space:]]*) echo "debian_root: refusing \"$1\" as a root folder" >&2; exit 2 ;; esac
  echo "$r"
}
# Whether root $1 is one this script made: debootstrap's own folder (while unfinished) or the
# marker written once it finished.
ours() { [ -e "$1/debootstrap" ] || [ -e "$1/.kiln-debian-root" ]; }
# Deletes root $1 unless something is mounted under it (a leftover /dev bind would take the host's
# device nodes with it) or it is not one of ours.
remove_root() {
  if awk -v r="$1/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    echo "debian_root: something is still mounted under $1; not removing it" >&2
    return 1
  fi
  if ! ours "$1" && [ -n "$(ls -A "$1" 2>/dev/null)" ]; then
    echo "debian_root: $1 is not a root this script made; not removing it" >&2
    return 1
  fi
  rm -rf --one-file-system "$1"
}

case "${1:-}" in
  "") usage ;;
  --remove)
    [ $# = 2 ] || usage
    remove_root "$(root_path "$2")"
    exit
    ;;
  --copy-tree)
    [ $# = 2 ] || usage
    R="$(root_path "$2")"
    cd "$(dirname "$SELF")/.."
    rm -rf --one-file-system "$R/root/kiln.new"
    mkdir -p "$R/root/kiln.new"
    git ls-files -z --cached | tar --null -T - --ignore-failed-read -cf - 2>/dev/null | tar -xmf - -C "$R/root/kiln.new"
    if [ -d "$R/root/kiln" ]; then
      (cd "$R/root/kiln.new" && find . -type f -print0) | while IFS= read -r -d '' f; do
        if cmp -s "$R/root/kiln.new/$f" "$R/root/kiln/$f"; then touch -r "$R/root/kiln/$f" "$R/root/kiln.new/$f"; fi
      done
    fi
    rm -rf --one-file-system "$R/root/kiln"
    mv "$R/root/kiln.new" "$R/root/kiln"
    exit
    ;;
  --run)
    [ $# -ge 3 ] || usage
    R="$(root_path "$2")"
    shift 2
    [ -e "$R/.kiln-debian-root" ] || { echo "debian_root: $R is not a finished root" >&2; exit 1; }
    BIND="${KILN_ROOT_BIND_RO:+$(readlink -f "$KILN_ROOT_BIND_RO")}"
    [ -z "$BIND" ] || mkdir -p "$R$BIND"
    exec unshare -m bash -c '
      set -e
      R="$1" BIND="$2"; shift 2
      if [ -n "$BIND" ]; then
        mount --bind "$BIND" "$R$BIND"
        mount -o remount,bind,ro "$R$BIND"
      fi
      mount -t proc proc "$R/proc"
      mount --rbind /dev "$R/dev"
      exec chroot "$R" env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
    ' debian_root "$R" "$BIND" "$@"
    ;;
esac
R="$(root_path "$1")"
shift
[ "$(id -u)" = 0 ] || { echo "debian_root: run as root (debootstrap, chroot)" >&2; exit 1; }

if [ -e "$R/.kiln-debian-root" ]; then
  # Finished before: install what was asked for since, if anything.
  missing=()
  for p in "$@"; do
    chroot "$R" dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} = 0 ] && exit 0
  echo "debian_root: installing ${missing[*]} in $R" >&2
  "$SELF" --run "$R" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null' \
    install "${missing[@]}"
  exit
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
get_debootstrap() { (cd "$tmp" && apt-get -o APT::Sandbox::User=root download -q debootstrap >/dev/null && dpkg -x debootstrap_*.deb d); }
get_debootstrap || { apt-get update -qq && get_debootstrap; }
[ ! -e "$R" ] || remove_root "$R"  # absent, empty, or one of ours cut short
echo "debian_root: making a minimal Debian 12 root in $R (about a minute)" >&2
include=()
[ $# -gt 0 ] && include=("--include=$(IFS=,; echo "$*")")
# In a mount namespace of its own, so the /proc and /sys it mounts cannot outlive it.
if ! unshare -m env DEBOOTSTRAP_DIR="$tmp/d/usr/share/debootstrap" "$tmp/d/usr/sbin/debootstrap" --variant=minbase \
  "${include[@]}" bookworm "$R" http://deb.debian.org/debian >"$tmp/log" 2>&1; then
  tail -20 "$tmp/log" >&2
  exit 1
fi
touch "$R/.kiln-debian-root"
