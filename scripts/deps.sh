#!/usr/bin/env bash
# Installs everything the build and the tests need on Debian 12 (run as root):
# the real peers the end-to-end tests talk to, the linters, the Go modules.
set -euo pipefail

packages=(
	kamailio            # the real SIP proxy, with call_control, dialog, jsonrpcs
	sip-tester          # sipp: real SIP endpoints
	mariadb-server      # radacct for accounting tests
	freeradius-utils    # radclient for RADIUS tests
	shellcheck          # the init script
	dpkg-dev debhelper fakeroot lintian  # the Debian package
	python3             # test helpers
)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# Debian starts services on install; the tests run their own on loopback.
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
	rm -f /usr/sbin/policy-rc.d
fi

export PATH="$PATH:/usr/local/go/bin:$(go env GOPATH)/bin"
go mod download
if ! command -v staticcheck >/dev/null; then
	go install honnef.co/go/tools/cmd/staticcheck@2025.1.1
fi
