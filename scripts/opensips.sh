#!/usr/bin/env bash
# Builds the OpenSIPS releases the end-to-end tests run (OpenSIPS is not
# packaged for Debian 12) from their source archives, with only the modules
# the tests load, into a cache outside the clone keyed by the archive's
# sha256: a second run on the same machine finds the build and does nothing.
#
#   opensips.sh build [VERSION...]   build what is not cached yet (default:
#                                    every version below); print each
#                                    version's directory
#   opensips.sh dir VERSION          build if need be, print the directory
#                                    (it holds sbin/opensips and modules/)
#
# Environment: OPENSIPS_PEERS, the folder with opensips-VERSION.tar.gz
# (default ../shared/peers from the project root); OPENSIPS_CACHE, the cache
# (default /var/cache/callcontrol-test if writable, else
# ~/.cache/callcontrol-test).
# Needs gcc, make, bison and flex (scripts/deps.sh installs them).
# Exit status 3 (with one line on stderr saying what is missing) when an
# archive is absent, so callers can tell "nothing to build from" apart from
# a failed build (1).
set -euo pipefail

VERSIONS=(3.4.18 3.6.8)
# call_control() needs dialog (which needs tm, rr and signaling); sl, maxfwd,
# sipmsgops and textops are for the script; mi_datagram is how the daemon
# ends dialogs. proto_udp is in the core but still loaded by name.
MODULES="signaling sl tm rr maxfwd sipmsgops textops dialog call_control mi_datagram"

root=$(cd "$(dirname "$0")/.." && pwd)
peers=${OPENSIPS_PEERS:-$root/../shared/peers}

usage() { echo "usage: $0 build [VERSION...] | dir VERSION" >&2; exit 64; }

cache_root() {
	if [ -n "${OPENSIPS_CACHE:-}" ]; then
		echo "$OPENSIPS_CACHE"
	elif mkdir -p /var/cache/callcontrol-test 2>/dev/null && [ -w /var/cache/callcontrol-test ]; then
		echo /var/cache/callcontrol-test
	else
		echo "${XDG_CACHE_HOME:-$HOME/.cache}/callcontrol-test"
	fi
}

# complete DIR: DIR holds the binary and every module of MODULES (a build
# made before a module was added to the list lacks it: rebuild then).
complete() {
	[ -x "$1/sbin/opensips" ] || return 1
	for m in $MODULES; do
		[ -f "$1/modules/$m.so" ] || return 1
	done
}

# build VERSION prints the directory of a complete build of VERSION.
build() {
	local version=$1 tarball sha cache dir tmp start
	tarball=$peers/opensips-$version.tar.gz
	if [ ! -f "$tarball" ]; then
		echo "OpenSIPS $version: $tarball is missing (the tests build OpenSIPS from it)" >&2
		return 3
	fi
	sha=$(sha256sum "$tarball" | cut -d' ' -f1)
	cache=$(cache_root)
	dir=$cache/opensips-$version-$sha
	# A finished build is renamed into place whole; the lock keeps parallel
	# test runs from building it twice.
	if complete "$dir"; then
		echo "$dir"
		return
	fi
	mkdir -p "$cache"
	exec 9>"$cache/opensips-$version.lock"
	flock 9
	if ! complete "$dir"; then
		rm -rf "$dir"
		for tool in gcc make bison flex; do
			command -v "$tool" >/dev/null || {
				echo "OpenSIPS $version: $tool not found: run scripts/deps.sh (Debian package $tool)" >&2
				exit 1
			}
		done
		start=$(date +%s)
		tmp=$(mktemp -d "$cache/.build-$version.XXXXXX")
		# shellcheck disable=SC2064 # expand $tmp now: it is local
		trap "rm -rf '$tmp'" EXIT
		echo "OpenSIPS $version: building in $tmp (log: $tmp/build.log)" >&2
		tar -xzf "$tarball" -C "$tmp"
		if ! (
			cd "$tmp/opensips-$version"
			make -j2 app
			make -j2 FASTER=1 module="$MODULES" modules
		) >"$tmp/build.log" 2>&1; then
			tail -n 40 "$tmp/build.log" >&2
			echo "OpenSIPS $version: build failed" >&2
			exit 1
		fi
		mkdir -p "$tmp/out/sbin" "$tmp/out/modules"
		cp "$tmp/opensips-$version/opensips" "$tmp/out/sbin/"
		for m in $MODULES; do
			cp "$tmp/opensips-$version/modules/$m/$m.so" "$tmp/out/modules/"
		done
		mv "$tmp/out" "$dir"
		rm -rf "$tmp"
		trap - EXIT
		echo "OpenSIPS $version: built in $(($(date +%s) - start)) s into $dir" >&2
	fi
	exec 9>&-
	echo "$dir"
}

[ $# -ge 1 ] || usage
case $1 in
build)
	shift
	[ $# -gt 0 ] || set -- "${VERSIONS[@]}"
	# One after the other: each build uses both cores.
	status=0
	for v in "$@"; do build "$v" || status=$?; done
	exit "$status"
	;;
dir)
	[ $# -eq 2 ] || usage
	build "$2" || exit
	;;
*)
	usage
	;;
esac
