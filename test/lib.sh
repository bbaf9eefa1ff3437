# shellcheck shell=bash
# Helpers shared by the shell tests (test/initd_test.sh, test/deb_test.sh).
# Source it after setting $out, the file each checked command's output goes
# to. The counters feed the closing "N passed, N failed" line.

: "${out:?set out before sourcing test/lib.sh}"
passed=0
failed=0
syslog_pid=
own_devlog=

# check WANT-STATUS DESCRIPTION COMMAND...: run, compare the exit status.
check() {
	local want=$1 desc=$2 got
	shift 2
	"$@" >"$out" 2>&1
	got=$?
	if [ "$got" -eq "$want" ]; then
		passed=$((passed + 1))
		echo "ok   $desc"
	else
		failed=$((failed + 1))
		echo "FAIL $desc: exit $got, want $want; output:"
		tail -40 "$out" | sed 's/^/     /'
	fi
}

# contains DESCRIPTION PATTERN: the last command's output matches.
contains() {
	if grep -q -- "$2" "$out"; then
		passed=$((passed + 1))
		echo "ok   $1"
	else
		failed=$((failed + 1))
		echo "FAIL $1: output lacks '$2':"
		sed 's/^/     /' "$out"
	fi
}

# truth DESCRIPTION COMMAND...: the command succeeds.
truth() {
	local desc=$1
	shift
	if "$@"; then
		passed=$((passed + 1))
		echo "ok   $desc"
	else
		failed=$((failed + 1))
		echo "FAIL $desc"
	fi
}

# fake_syslog FILE: the forked daemon logs to syslog and will not start
# without it; a bare machine or container has no syslog daemon. Stand in
# for one on /dev/log, keeping the lines in FILE. stop_fake_syslog undoes it.
fake_syslog() {
	touch "$1"
	[ -S /dev/log ] && return
	own_devlog=1
	python3 -c '
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("/dev/log")
os.chmod("/dev/log", 0o666)
with open(sys.argv[1], "ab", buffering=0) as out:
    while True:
        out.write(s.recv(65536).rstrip(b"\0\n") + b"\n")
' "$1" &
	syslog_pid=$!
	for _ in $(seq 50); do [ -S /dev/log ] && break; sleep 0.1; done
}

stop_fake_syslog() {
	if [ -n "$syslog_pid" ]; then
		kill "$syslog_pid" 2>/dev/null || true
		wait "$syslog_pid" 2>/dev/null || true
	fi
	if [ -n "$own_devlog" ]; then
		rm -f /dev/log
	fi
}
