#!/usr/bin/env bash
# The init script's reload and operator commands with [CallControl]
# control_socket set (a documented option): they must reach the daemon.
# Usage: test/initd_control_socket_test.sh [BUILD-DIR]
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/initd_ctl_test.XXXXXX)
out=$tmp/out
# shellcheck source=test/lib.sh
. "$root/test/lib.sh"
cleanup() {
	if [ -s "$tmp/run/callcontrold.pid" ]; then
		kill "$(cat "$tmp/run/callcontrold.pid")" 2>/dev/null || true
	fi
	stop_fake_syslog
	rm -rf "$tmp"
}
trap cleanup EXIT
build=${1:-}
if [ -z "$build" ]; then
	build=$tmp/bin
	(cd "$root" && go build -o "$build/" ./cmd/callcontrold ./cmd/callcontrol) || exit 1
fi
fake_syslog "$tmp/syslog"
mkdir -p "$tmp/etc" "$tmp/state" "$tmp/ctl"
printf '[CallControl]\nstate_dir = %s\ncontrol_socket = %s\n' "$tmp/state" "$tmp/ctl/control" >"$tmp/etc/config.ini"
export DAEMON=$build/callcontrold CLI=$build/callcontrol RUNDIR=$tmp/run CONFDIR=$tmp/etc \
	PIDFILE=$tmp/run/callcontrold.pid DEFAULTS=/dev/null DAEMON_USER=
script=$root/init.d/callcontrol
check 0 "start" "$script" start
truth "control socket where config.ini says" test -S "$tmp/ctl/control"
check 0 "reload reaches the daemon" "$script" reload
check 0 "stats reaches the daemon" "$script" stats
check 0 "stop" "$script" stop
echo "initd control_socket: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
