#!/usr/bin/env bash
# Runs init.d/callcontrol against the built binaries, in a temporary runtime,
# config and state directory: start, status, operator commands, reload,
# restart, stop.
#
# Usage: test/initd_test.sh [BUILD-DIR]
#   BUILD-DIR holds callcontrold and callcontrol (make initd passes build/);
#   without it both are built into a temporary directory.
# Needs start-stop-daemon (dpkg) and python3 when there is no /dev/log.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/initd_test.XXXXXX)
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
for b in callcontrold callcontrol; do
	[ -x "$build/$b" ] || { echo "initd_test: $build/$b not found (run make build)"; exit 1; }
done

# The forked daemon on a host without syslog (no /dev/log: containers,
# minimal hosts) starts, logs to the stderr it was started with, says once
# that syslog was unavailable, and stops cleanly. Where /dev/log exists it
# is hidden in a private mount namespace.
without_devlog() {
	if [ -e /dev/log ]; then
		unshare -m sh -c 'mount --bind /dev/null /dev/log && exec "$@"' sh "$@"
	else
		"$@"
	fi
}
mkdir -p "$tmp/nolog/etc" "$tmp/nolog/state"
printf '[CallControl]\nstate_dir = %s\n' "$tmp/nolog/state" >"$tmp/nolog/etc/config.ini"
start_without_devlog() {
	without_devlog "$build/callcontrold" --config-dir "$tmp/nolog/etc" \
		--runtime-dir "$tmp/nolog/run" --pid-file "$tmp/nolog/run/pid" 2>"$tmp/nolog/stderr"
}
check 0 "forked daemon starts without /dev/log" start_without_devlog
nolog_pid=$(cat "$tmp/nolog/run/pid" 2>/dev/null)
check 0 "it serves (stats)" "$build/callcontrol" --runtime-dir "$tmp/nolog/run" stats
[ -n "$nolog_pid" ] && kill "$nolog_pid"
for _ in $(seq 100); do
	if [ -z "$nolog_pid" ] || ! kill -0 "$nolog_pid" 2>/dev/null; then break; fi
	sleep 0.1
done
cp "$tmp/nolog/stderr" "$out"
contains "it said syslog was unavailable" "syslog unavailable: logging to stderr"
truth "... once" test "$(grep -c 'syslog unavailable' "$tmp/nolog/stderr")" = 1
contains "its lines went to stderr" "callcontrold ready"
contains "it stopped cleanly" "callcontrold stopped"

truth "one version for both binaries" test "$("$build/callcontrol" --version | cut -d' ' -f2)" = "$("$build/callcontrold" --version | cut -d' ' -f2)"
# The whole output first: grep -q stops reading at its match, and the
# daemon, still writing, would die of SIGPIPE (exit 141).
help_on_stdout() {
	local out
	out=$("$build/callcontrold" --help 2>/dev/null) && grep -q -- --check-config <<<"$out"
}
check 0 "callcontrold --help: stdout, exit 0" help_on_stdout

syslog=$tmp/syslog
fake_syslog "$syslog"

mkdir -p "$tmp/etc" "$tmp/state"
cat >"$tmp/etc/config.ini" <<INI
[CallControl]
state_dir = $tmp/state
INI

export DAEMON=$build/callcontrold CLI=$build/callcontrol RUNDIR=$tmp/run CONFDIR=$tmp/etc \
	PIDFILE=$tmp/run/callcontrold.pid DEFAULTS=/dev/null DAEMON_USER=
script=$root/init.d/callcontrol

alive() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

# logged PATTERN: the daemon's syslog has the line, within a few seconds.
logged() {
	for _ in $(seq 100); do
		grep -q -- "$1" "$syslog" && return 0
		sleep 0.1
	done
	return 1
}

check 3 "status before start: not running" "$script" status
contains "status says not running" "not running"
check 0 "start" "$script" start
truth "pid file written and daemon alive" alive
truth "control socket created" test -S "$RUNDIR/control"
pid=$(cat "$PIDFILE")
check 0 "start again is harmless" "$script" start
truth "same daemon after second start" test "$(cat "$PIDFILE")" = "$pid"
contains "start again says it was already running" "already running"
# A second daemon started by hand with the same files is refused and
# leaves the first's pid file: status and stop must still find the first.
check 1 "a second daemon by hand is refused" "$DAEMON" --config-dir "$CONFDIR" --runtime-dir "$RUNDIR" --pid-file "$PIDFILE"
contains "it says the socket is in use" "in use by another running callcontrold"
truth "the first daemon's pid file is left alone" test "$(cat "$PIDFILE" 2>/dev/null)" = "$pid"
truth "the first daemon still runs" alive
check 0 "status" "$script" status
contains "status names the pid" "running (pid $pid)"
check 0 "sessions" "$script" sessions
contains "sessions: none yet" "No sessions."
check 0 "sessions USER-PREFIX" "$script" sessions sip:alice
check 1 "session of an unknown call" "$script" session no-such-call
contains "session: says it does not exist" "does not exist"
check 1 "terminate of an unknown call" "$script" terminate no-such-call
check 2 "session without a Call-ID: usage" "$script" session
check 0 "stats" "$script" stats
contains "stats shows the version" "Version:"
check 0 "reload" "$script" reload
if [ -n "$own_devlog" ]; then
	truth "reload reached the daemon (logged)" logged "configuration reloaded"
fi
truth "same daemon after reload" test "$(cat "$PIDFILE")" = "$pid"

# A broken config.ini: reload and restart refuse, with the reason, and the
# running daemon keeps serving with the configuration in force.
cp "$tmp/etc/config.ini" "$tmp/config.good"
printf '[CallControl]\nstate_dir = %s\nlimit = soon\n' "$tmp/state" >"$tmp/etc/config.ini"
check 1 "reload of an invalid config.ini is refused" "$script" reload
contains "reload refusal names the bad option" 'limit = "soon"'
check 1 "restart with an invalid config.ini is refused" "$script" restart
contains "restart refusal names the bad option" 'limit = "soon"'
truth "the daemon was not touched (same pid)" test "$(cat "$PIDFILE")" = "$pid"
check 0 "the daemon keeps serving" "$script" stats
# A change that applies only at a restart: reload says so, exit 150.
printf '[CallControl]\nstate_dir = %s\ncheck_interval = 7\n' "$tmp/state" >"$tmp/etc/config.ini"
check 150 "reload of a restart-only option: applied except it" "$script" reload
contains "reload names the option that needs a restart" "check_interval"
cp "$tmp/config.good" "$tmp/etc/config.ini"
check 0 "check-config of the good file" "$DAEMON" --check-config --config-dir "$CONFDIR" --runtime-dir "$RUNDIR"
contains "check-config lists what differs from the defaults" "state_dir = $tmp/state"
check 1 "session ID --json of an unknown call" "$script" session no-such-call --json
contains "JSON error for --json" '"code"'
check 0 "restart" "$script" restart
truth "a new daemon after restart" sh -c "alive() { [ -s '$PIDFILE' ] && kill -0 \"\$(cat '$PIDFILE')\"; }; alive && [ \"\$(cat '$PIDFILE')\" != '$pid' ]"
check 0 "stop" "$script" stop
truth "daemon gone, pid file removed" sh -c "! kill -0 $pid 2>/dev/null && [ ! -e '$PIDFILE' ]"
truth "control socket removed" test ! -e "$RUNDIR/control"
check 3 "status after stop" "$script" status
check 0 "stop when stopped is harmless" "$script" stop
contains "stop when stopped says it was not running" "was not running"
check 2 "sessions with the daemon down: unreachable" "$script" sessions
contains "unreachable message names the socket" "$RUNDIR/control"
check 7 "reload with the daemon down" "$script" reload
check 2 "unknown action: usage" "$script" frobnicate

# With [CallControl] control_socket set (a documented option) the script's
# reload and operator commands must reach the daemon there.
mkdir -p "$tmp/ctl"
printf '[CallControl]\nstate_dir = %s\ncontrol_socket = %s\n' "$tmp/state" "$tmp/ctl/control" >"$tmp/etc/config.ini"
check 0 "start with control_socket set" "$script" start
truth "control socket where config.ini says" test -S "$tmp/ctl/control"
check 0 "reload reaches the daemon at control_socket" "$script" reload
check 0 "stats reaches the daemon at control_socket" "$script" stats
check 0 "stop with control_socket set" "$script" stop

echo "initd: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
