#!/usr/bin/env bash
# The README's two commands on a fresh Debian 12 machine: a minimal root made by tools/debian_root.sh
# (Debian's minbase, nothing more), the working tree's tracked files copied in, then tools/main.sh
# (which installs the packages through tools/setup.sh, builds and trains) and tools/test.sh there.
# It downloads every package Kiln needs (about 450 MiB), so CI does not run it; tools/check_setup.sh
# is CI's offline check of the same promise. Run it (as root) after changing the set-up:
#
#   tools/fresh_machine_check.sh [ARGS FOR tools/main.sh...]    (default --epochs=2)
#
# About 10 minutes on 2 cores. The root (under /tmp) is removed at the end unless KILN_KEEP_ROOT=1.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "fresh_machine_check: run as root (debootstrap, chroot)" >&2; exit 1; }
R="$(mktemp -d /tmp/kiln-fresh-XXXXXX)"
# The check's own exit status stands even where the root cannot be removed (the message says why).
trap 'rc=$?; [ "${KILN_KEEP_ROOT:-0}" = 1 ] || bash tools/debian_root.sh --remove "$R" || true; exit $rc' EXIT
rmdir "$R"
bash tools/debian_root.sh "$R"
bash tools/debian_root.sh --copy-tree "$R"
[ $# -gt 0 ] || set -- --epochs=2
bash tools/debian_root.sh --run "$R" bash -c 'cd /root/kiln && time bash tools/main.sh "$@" && time bash tools/test.sh' \
  fresh_machine_check "$@"
echo "fresh_machine_check: both README commands passed on a fresh Debian 12 root"
