#!/usr/bin/env bash
# Checks the Debian package with lintian, installs it, runs the daemon
# through /etc/init.d/callcontrol, purges it and checks nothing is left.
#
# Usage: test/deb_test.sh [DEB]    (as root; make deb-test builds the
#                                   package into build/ and passes it;
#                                   without DEB it is built into a temp dir)
# Needs dpkg-dev, debhelper, fakeroot, lintian (scripts/deps.sh installs
# them), Go in /usr/local/go and a module cache filled by `go mod download`.
# It refuses to touch a machine where the package is already installed.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)

if [ "$(id -u)" -ne 0 ]; then
	echo "deb_test: must run as root (it installs and purges the package)"
	exit 1
fi
for tool in lintian start-stop-daemon; do
	command -v "$tool" >/dev/null || { echo "deb_test: $tool missing: run scripts/deps.sh"; exit 1; }
done
if dpkg-query -W -f='${Status}' callcontrol 2>/dev/null | grep -q installed; then
	echo "deb_test: callcontrol is already installed here; not touching it"
	exit 1
fi
# Installed from source (README): the package would start, restart and
# stop that daemon, and purge its state and configuration. (Not
# /var/lib/callcontrol or /run/callcontrol: a daemon run by hand with the
# defaults makes them.)
for f in /usr/sbin/callcontrold /usr/bin/callcontrol /etc/init.d/callcontrol /etc/callcontrol/config.ini; do
	if [ -e "$f" ]; then
		echo "deb_test: $f exists: callcontrol is installed here from source; not touching it"
		exit 1
	fi
done

tmp=$(mktemp -d /tmp/deb_test.XXXXXX)
out=$tmp/out
# shellcheck source=test/lib.sh
. "$(dirname "$0")/lib.sh"
installed=

cleanup() {
	if [ -n "$installed" ]; then
		/etc/init.d/callcontrol stop >/dev/null 2>&1 || true
		dpkg --purge callcontrol >/dev/null 2>&1 || true
	fi
	stop_fake_syslog
	rm -rf "$tmp"
}
trap cleanup EXIT

deb=${1:-}
if [ -z "$deb" ]; then
	"$root/scripts/build-deb.sh" "$tmp/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; echo "deb: 0 passed, 1 failed"; exit 1; }
	deb=$(ls "$tmp"/build/callcontrol_*.deb)
fi
[ -f "$deb" ] || { echo "deb_test: $deb: no such package (make deb builds it)"; exit 1; }
echo "ok   package $deb"

check 0 "lintian: no errors" lintian --fail-on error "$deb"
grep -E '^[EW]:' "$out" | sed 's/^/     /'

fake_syslog "$tmp/syslog"

installed=1
check 0 "dpkg -i" dpkg -i "$deb"
files=(/usr/sbin/callcontrold /usr/bin/callcontrol /etc/init.d/callcontrol
	/lib/systemd/system/callcontrol.service /etc/callcontrol/config.ini
	/usr/share/man/man8/callcontrold.8.gz /usr/share/man/man1/callcontrol.1.gz
	/usr/share/doc/callcontrol/examples/config.ini.sample
	/usr/sbin/call-control /usr/bin/call-control-cli
	/usr/share/bash-completion/completions/callcontrol
	/usr/share/doc/callcontrol/proxy-wiring.md)
for f in "${files[@]}"; do
	truth "installed $f" test -e "$f"
done
truth "state directory /var/lib/callcontrol" test -d /var/lib/callcontrol
check 0 "config.ini is a conffile" grep -qx /etc/callcontrol/config.ini /var/lib/dpkg/info/callcontrol.conffiles
check 0 "callcontrol --version" callcontrol --version
contains "version from debian/changelog" "callcontrol $(dpkg-query -W -f='${Version}' callcontrol)"
check 0 "callcontrold --version" callcontrold --version
contains "one version for both" "callcontrold $(dpkg-query -W -f='${Version}' callcontrol)"
truth "version 5.0.0 or later (above the original's 4.1.0)" dpkg --compare-versions "$(dpkg-query -W -f='${Version}' callcontrol)" gt 4.1.0
check 0 "system user callcontrol created" getent passwd callcontrol
mode() { stat -c '%a %U:%G' "$1"; }
truth "state directory 0700 callcontrol:callcontrol" test "$(mode /var/lib/callcontrol)" = "700 callcontrol:callcontrol"
truth "config.ini 0640 root:callcontrol" test "$(mode /etc/callcontrol/config.ini)" = "640 root:callcontrol"
truth "binaries 0755 root:root" test "$(mode /usr/sbin/callcontrold) $(mode /usr/bin/callcontrol)" = "755 root:root 755 root:root"
check 0 "callcontrold --check-config of the shipped config" callcontrold --check-config
contains "check-config says valid" "is valid"
check 0 "call-control --version (compat name)" call-control --version

check 0 "/etc/init.d/callcontrol start" /etc/init.d/callcontrol start
check 0 "/etc/init.d/callcontrol status" /etc/init.d/callcontrol status
contains "status: running" "is running"
pid=$(cat /run/callcontrol/callcontrold.pid 2>/dev/null)
truth "proxy socket in /run/callcontrol" test -S /run/callcontrol/socket
truth "the daemon runs as callcontrol" test "$(ps -o user= -p "$pid" | tr -d ' ')" = callcontrol
truth "control socket 0600, the daemon's" test "$(mode /run/callcontrol/control)" = "600 callcontrol:callcontrol"
check 0 "call-control-cli list (the original's names)" call-control-cli list
contains "list: none" "No sessions."
check 1 "call-control-cli show of an unknown call" call-control-cli show nope
check 0 "/etc/init.d/callcontrol debits" /etc/init.d/callcontrol debits
contains "debits: none owed" "No debits owed."
check 0 "/etc/init.d/callcontrol stats --json" /etc/init.d/callcontrol stats --json
contains "stats as JSON" '"version"'

# A broken config.ini: reload and restart refuse with the reason and leave
# the running daemon serving.
cp /etc/callcontrol/config.ini "$tmp/config.ini.good"
printf '[CallControl]\nlimit = soon\n' >/etc/callcontrol/config.ini
check 1 "reload of an invalid config.ini is refused" /etc/init.d/callcontrol reload
contains "reload names the error" 'limit = "soon"'
check 1 "restart with an invalid config.ini is refused" /etc/init.d/callcontrol restart
contains "restart names the error" 'limit = "soon"'
truth "the same daemon still runs" test "$(cat /run/callcontrol/callcontrold.pid)" = "$pid"
check 0 "and serves" callcontrol stats
# An upgrade (here the same package again) restarts the daemon; with a
# config.ini the new version refuses, the configure fails with the reason
# and the running daemon is left as it is. Under systemd the restart
# would stop it first, so the check comes before it (debian/postinst).
check 1 "an upgrade with a config.ini the new version refuses fails to configure" dpkg -i "$deb"
contains "the upgrade names the error" 'limit = "soon"'
contains "the upgrade says the daemon was not restarted" "callcontrold was not (re)started"
truth "the same daemon still runs after the refused upgrade" test "$(cat /run/callcontrol/callcontrold.pid)" = "$pid"
truth "its process is alive" kill -0 "$pid"
check 0 "and serves" callcontrol stats
cp "$tmp/config.ini.good" /etc/callcontrol/config.ini
check 0 "dpkg --configure -a, the file fixed, finishes the upgrade" dpkg --configure -a
newpid=$(cat /run/callcontrol/callcontrold.pid 2>/dev/null)
# A container's /usr/sbin/policy-rc.d (exit 101) forbids maintainer
# scripts to start or restart services: then the daemon is left running.
if [ -x /usr/sbin/policy-rc.d ] && { /usr/sbin/policy-rc.d callcontrol restart >/dev/null 2>&1; [ $? -eq 101 ]; }; then
	truth "policy-rc.d forbids the restart: the same daemon runs on" sh -c "[ '$newpid' = '$pid' ] && kill -0 '$pid'"
else
	truth "the upgrade restarted the daemon" sh -c "[ -n '$newpid' ] && [ '$newpid' != '$pid' ] && ! kill -0 '$pid' 2>/dev/null && kill -0 '$newpid'"
	pid=$newpid
fi
check 0 "the daemon serves after the upgrade" callcontrol stats
check 0 "/etc/init.d/callcontrol sessions" /etc/init.d/callcontrol sessions
contains "sessions: none" "No sessions."
check 1 "/etc/init.d/callcontrol session of an unknown call" /etc/init.d/callcontrol session nope
check 0 "callcontrol stats" callcontrol stats
check 0 "/etc/init.d/callcontrol reload" /etc/init.d/callcontrol reload

# A debit owed to a rating engine that a reload then removes: listed with
# its error, moved to the party's current engine, dropped by the operator.
# The engine is a few lines of Python answering MaxSessionTime as CDRTool
# does (../shared/spec/rating-protocol.md); it is stopped before the call
# ends, so the debit stays owed.
engine_py='
import socket, sys
ln = socket.socket(); ln.bind(("127.0.0.1", 0)); ln.listen(8)
print(ln.getsockname()[1], flush=True)
while True:
    c, _ = ln.accept()
    while True:
        req = c.recv(65536)
        if not req:
            break
        c.sendall(b"600\ntype=prepaid\n\n" if req.startswith(b"MaxSessionTime") else b"Failed\n\n")
'
python3 -c "$engine_py" >"$tmp/engine.port" &
engine_pid=$!
for _ in $(seq 50); do [ -s "$tmp/engine.port" ] && break; sleep 0.1; done
port=$(cat "$tmp/engine.port")
free_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
printf '[CDRTool]\naddress = 127.0.0.1:%s\n' "$port" >/etc/callcontrol/config.ini
check 0 "restart with a rating engine" /etc/init.d/callcontrol restart
proxy_call() { # proxy_call REQUEST...: one request per argument, replies on stdout
	python3 - "$@" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect("/run/callcontrol/socket"); f = s.makefile("rb")
for req in sys.argv[1:]:
    if req == "sleep":
        time.sleep(1.1); continue
    s.sendall(req.replace("\n", "\r\n").encode() + b"\r\n\r\n")
    print(f.readline().decode().strip())
PY
}
call_init=$'init\nruri: sip:0031650@example.com\ndiverter: None\nsourceip: 10.0.0.1\ncallid: owed@deb\nfrom: <sip:alice@example.com>;tag=x\nfromtag: ft\nsip_application: audio'
check 0 "a prepaid call is set up and answered" proxy_call "$call_init" $'start\ncallid: owed@deb\ndialogid: 1:1' sleep
contains "the engine limited it" "Limited"
kill "$engine_pid"; wait "$engine_pid" 2>/dev/null
check 0 "the call ends while the engine is down" proxy_call $'stop\ncallid: owed@deb'
# owed_listed PATTERN: within 10 s, callcontrol debits shows a line for
# owed@deb matching PATTERN, with a last error (not "-").
owed_listed() {
	for _ in $(seq 100); do
		callcontrol debits >"$out" 2>&1
		grep "owed@deb" "$out" | grep -q -- "$1" && ! grep "owed@deb" "$out" | grep -q ' -$' && return 0
		sleep 0.1
	done
	cat "$out"
	return 1
}
truth "callcontrol debits lists it, owed to the engine, with its error" owed_listed "127.0.0.1:$port "
printf '[CDRTool]\naddress = 127.0.0.1:%s\n' "$free_port" >/etc/callcontrol/config.ini
check 0 "reload removes the engine" /etc/init.d/callcontrol reload
check 0 "callcontrol debits retry" callcontrol debits retry
truth "the debit moves to the party's current engine" owed_listed "owed@deb .*127.0.0.1:$free_port "
check 64 "debits drop without --yes is refused" callcontrol debits drop owed@deb
drop_owed() { # a send in flight at that moment is refused: try again
	for _ in $(seq 20); do
		call-control-cli debits drop owed@deb --yes && return 0
		sleep 0.2
	done
	return 1
}
check 0 "debits drop --yes (through call-control-cli)" drop_owed
check 0 "nothing owed any more" callcontrol debits
contains "debits: none owed" "No debits owed."
cp "$tmp/config.ini.good" /etc/callcontrol/config.ini
check 0 "/etc/init.d/callcontrol stop" /etc/init.d/callcontrol stop
check 3 "status after stop" /etc/init.d/callcontrol status

check 0 "dpkg --purge" dpkg --purge callcontrol
installed=
for f in "${files[@]}" /etc/callcontrol /var/lib/callcontrol /run/callcontrol; do
	truth "purged $f" test ! -e "$f"
done
truth "the daemon is gone" sh -c "[ -n '$pid' ] && ! kill -0 '$pid' 2>/dev/null"

echo "deb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
