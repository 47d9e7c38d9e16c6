#!/usr/bin/env bash
# Put promtool (from Debian's prometheus package, unpacked, no daemon) at .tools/bin/promtool,
# for the alert-rule test. Prints its path; exits 1 if it cannot be had (the test then skips).
set -euo pipefail
cd "$(dirname "$0")/../.."
TOOLS="$PWD/.tools"
if command -v promtool >/dev/null 2>&1; then command -v promtool; exit 0; fi
if [ -x "$TOOLS/bin/promtool" ]; then echo "$TOOLS/bin/promtool"; exit 0; fi
command -v apt-get >/dev/null 2>&1 || exit 1
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
( cd "$work" && apt-get download prometheus >/dev/null 2>&1 ) \
  || { as_root apt-get update -qq >/dev/null 2>&1 && ( cd "$work" && apt-get download prometheus >/dev/null 2>&1 ); } \
  || exit 1
dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
mkdir -p "$TOOLS/bin"
cp "$work/root/usr/bin/promtool" "$TOOLS/bin/promtool"
echo "$TOOLS/bin/promtool"
