#!/usr/bin/env bash
# Installs what the build and every test need on Debian 12, as root: the real
# peers the tests talk to (Kamailio, sipp, MariaDB, radclient), the linters,
# the packaging tools and the Go modules. Safe to run again: what is there is
# kept, nothing is started that outlives the run, and no running service is
# stopped or changed. `make deps` and .ci/run
# call it.
set -euo pipefail

cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
export PATH="/usr/local/go/bin:$PATH:/usr/sbin:/sbin"

STATICCHECK_VERSION=v0.8.2 # staticcheck 2026.2.2, built for Go 1.26

packages=(
	kamailio         # the real SIP proxy: call_control, dialog, jsonrpcs modules
	sip-tester       # sipp: real SIP endpoints for test/e2e
	mariadb-server   # throwaway radacct database for accounting tests
	freeradius-utils # radclient for RADIUS accounting tests
	shellcheck       # lint of the shell scripts
	dpkg-dev debhelper fakeroot lintian # the Debian package test
	gcc libc6-dev    # cgo, needed by go test -race
	bison flex       # building OpenSIPS for test/e2e (scripts/opensips.sh)
	make git ca-certificates python3
	chromium         # headless browser for the live calls page test (internal/daemon)
	prometheus       # promtool, which checks the sample alert rules (docs/prometheus)
)

log() { printf '== %s\n' "$*"; }

if [ "$(id -u)" != 0 ]; then
	echo "scripts/deps.sh: must run as root (apt-get install)" >&2
	exit 1
fi
command -v go >/dev/null || {
	echo "scripts/deps.sh: go not found (expected in /usr/local/go/bin)" >&2
	exit 1
}

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	log "apt-get install ${missing[*]}"
	# Debian starts the services it installs (kamailio on 5060, mariadb):
	# the tests run their own on loopback, so keep them from starting.
	made_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		made_policy=1
	fi
	trap '[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
	apt-get update -qq
	# --no-remove: a package the user has (a MySQL server that
	# mariadb-server would replace, say) is never removed to make room;
	# apt stops instead, and so does this script.
	if ! apt-get install -y -qq --no-remove --no-install-recommends "${missing[@]}"; then
		echo "scripts/deps.sh: apt-get install ${missing[*]} failed (its error is above). It never removes an installed package here: if one is in the way, decide yourself." >&2
		exit 1
	fi
	[ -n "$made_policy" ] && rm -f /usr/sbin/policy-rc.d
	trap - EXIT
fi

# A proxy service already running here (Kamailio, OpenSIPS, MariaDB) is
# the user's: it is never stopped, disabled or reconfigured. The tests run
# their own peers on free loopback ports and say which port is taken if
# they cannot get one.

GOBIN="$(go env GOPATH)/bin"
export PATH="$PATH:$GOBIN"
if ! "$GOBIN/staticcheck" -version 2>/dev/null | grep -q "(${STATICCHECK_VERSION#v})"; then
	log "go install staticcheck@$STATICCHECK_VERSION"
	go install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
go mod download

# OpenSIPS is not packaged for Debian 12: build the releases the tests run
# (cached; status 3: no source archives here, the tests then say so).
scripts/opensips.sh build || [ $? -eq 3 ]

log "versions"
go version
kamailio -v | head -1
sipp -v 2>&1 | grep -m1 SIPp || true
"$GOBIN/staticcheck" -version
