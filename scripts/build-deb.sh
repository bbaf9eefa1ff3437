#!/usr/bin/env bash
# Builds the Debian package from the work tree and leaves it in OUT-DIR
# (default build/). The build runs in a temporary copy, so the tree stays
# clean. Installs nothing.
#
# Usage: scripts/build-deb.sh [OUT-DIR]     (make deb)
# Needs dpkg-dev, debhelper and fakeroot (scripts/deps.sh installs them),
# Go 1.26 or later (the go.dev tarball in /usr/local/go, or Debian's
# golang-1.26-go in /usr/lib/go-1.26) and a module cache filled by
# `go mod download` (the package builds offline).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=$(mkdir -p "${1:-$root/build}" && cd "${1:-$root/build}" && pwd)

for tool in dpkg-buildpackage dh fakeroot; do
	command -v "$tool" >/dev/null || { echo "build-deb: $tool missing: run scripts/deps.sh (or apt install dpkg-dev debhelper fakeroot)" >&2; exit 1; }
done
gobin=
for d in /usr/local/go/bin /usr/lib/go-1.26/bin; do
	[ -x "$d/go" ] && { gobin=$d; break; }
done
[ -n "$gobin" ] || { echo "build-deb: Go 1.26 not found in /usr/local/go or /usr/lib/go-1.26 (see README, Install)" >&2; exit 1; }
minor=$("$gobin/go" env GOVERSION | sed -n 's/^go1\.\([0-9]*\).*/\1/p')
if [ -z "$minor" ] || [ "$minor" -lt 26 ]; then
	echo "build-deb: $("$gobin/go" env GOVERSION) in $gobin is too old: Go 1.26 or later is needed" >&2
	exit 1
fi

tmp=$(mktemp -d /tmp/build-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/src"
tar -C "$root" --exclude=./.git --exclude=./build --exclude=./.team -cf - . | tar -C "$tmp/src" -xf -
# -d: Build-Depends names Debian's Go packages, but the go.dev toolchain in
# /usr/local/go, which is not a Debian package, serves as well; the check
# above stands in for dpkg's.
if ! (cd "$tmp/src" && PATH="$gobin:$PATH" dpkg-buildpackage -us -uc -b -d) >"$tmp/build.log" 2>&1; then
	tail -40 "$tmp/build.log" >&2
	echo "build-deb: dpkg-buildpackage failed (last lines above)" >&2
	exit 1
fi
for f in "$tmp"/callcontrol_*; do
	cp "$f" "$out/"
done
ls "$out"/callcontrol_*.deb
