#!/usr/bin/env bash
# Makes a minimal Debian 12 root in DIR (debootstrap --variant=minbase plus PACKAGES), unless DIR
# already has one; debootstrap is downloaded as a .deb and unpacked, not installed. Run as root.
# Used by tools/gpu_rehearsal.sh and tools/fresh_machine_check.sh.
#
#   tools/debian_root.sh DIR [PACKAGE...]
#
# Then tools/debian_root.sh --run DIR COMMAND... runs COMMAND in it, in a clean environment (HOME=/root),
# with /proc and /dev mounted in a private mount namespace (the mounts end with the command), and
# tools/debian_root.sh --remove DIR deletes it, refusing while anything is mounted under it.
set -euo pipefail
# Deletes root $1 unless something is mounted under it (a leftover /dev bind would take the host's
# device nodes with it).
remove_root() {
  if awk -v r="$1/" 'index($2, r) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    echo "debian_root: something is still mounted under $1; not removing it" >&2
    return 1
  fi
  rm -rf "$1"
}
if [ "${1:-}" = --remove ]; then
  remove_root "$(readlink -f "${2:?usage: $0 --remove DIR}")"
  exit
fi
if [ "${1:-}" = --run ]; then
  R="${2:?usage: $0 --run DIR COMMAND...}"
  shift 2
  exec unshare -m bash -c '
    set -e
    R="$1"; shift
    mount -t proc proc "$R/proc"
    mount --rbind /dev "$R/dev"
    exec chroot "$R" env -i HOME=/root TERM=dumb PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
  ' debian_root "$R" "$@"
fi
R="$(readlink -f "${1:?usage: $0 DIR [PACKAGE...]}")"
shift
[ "$(id -u)" = 0 ] || { echo "debian_root: run as root (debootstrap, chroot)" >&2; exit 1; }
[ -x "$R/usr/bin/apt-get" ] && exit 0
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get -o APT::Sandbox::User=root download -q debootstrap >/dev/null && dpkg -x debootstrap_*.deb d)
[ ! -e "$R" ] || remove_root "$R"
echo "debian_root: making a minimal Debian 12 root in $R (about a minute)" >&2
include=()
[ $# -gt 0 ] && include=("--include=$(IFS=,; echo "$*")")
if ! DEBOOTSTRAP_DIR="$tmp/d/usr/share/debootstrap" "$tmp/d/usr/sbin/debootstrap" --variant=minbase "${include[@]}" \
  bookworm "$R" http://deb.debian.org/debian >"$tmp/log" 2>&1; then
  tail -20 "$tmp/log" >&2
  remove_root "$R" || true
  exit 1
fi
