#!/bin/bash
# bench-ab.sh: daemon builds (or settings) side by side on the real socket.
#
# Each round loads the do-nothing server, then each daemon in turn, with
# `ccbench -run load` (1 s warm-up, then the measured run), and prints
# cycles/s and the ratio to the do-nothing server of that round. A daemon
# is given as BINARY or BINARY@CONFIG-LINE, the line added to its
# [CallControl] section (e.g. "build/callcontrold@sync_interval = 20ms").
# It answers "does this change help?" where scripts/bench-breakdown.sh
# answers "where does the time go?".
#
# With PREPAID=1 the calls are prepaid: each load gets a fake rating
# engine process of its own (`ccbench -serve-engine`), and the reference
# is the server making only a prepaid call's engine round trips
# (`ccbench -serve-engine-bound`) instead of the do-nothing server.
#
# Usage: [PREPAID=1] scripts/bench-ab.sh ROUNDS CONNS SECONDS DAEMON...
set -euo pipefail

rounds=$1 conns=$2 secs=$3
shift 3
top=$(cd "$(dirname "$0")/.." && pwd)
ccbench=$top/build/ccbench
(cd "$top" && go build -o build/ccbench ./cmd/ccbench)
work=$(mktemp -d /tmp/cc-ab.XXXXXX)
trap 'rm -rf "$work"' EXIT
prepaid=${PREPAID:-}
loadflags=()
[ -n "$prepaid" ] && loadflags=(-prepaid)
base=nothing
[ -n "$prepaid" ] && base=engine-bound

# run NAME BINARY|nothing|engine-bound [CONFIG-LINE]: prints the cycles/s of one load.
run() {
	local dir=$work/$1 pid addr="" engineini="" enginepid=""
	rm -rf "$dir"
	mkdir -p "$dir"
	if [ -n "$prepaid" ]; then
		mkfifo "$dir/engine"
		"$ccbench" -serve-engine >"$dir/engine" &
		enginepid=$!
		read -r addr <"$dir/engine"
		engineini=$(printf '[CDRTool]\naddress = %s' "$addr")
	fi
	printf '[CallControl]\nsocket = %s/socket\nlimit = 3600\nstate_dir = %s/state\ngroup = nogroup\n%s\n[Kamailio]\nsocket_path = %s/kam.sock\n%s\n' \
		"$dir" "$dir" "${3:-}" "$dir" "$engineini" >"$dir/config.ini"
	case $2 in
	nothing) "$ccbench" -serve-nothing "$dir/socket" & ;;
	engine-bound) "$ccbench" -serve-engine-bound "$dir/socket" -engine "$addr" & ;;
	*) "$2" --no-fork --config-dir "$dir" --runtime-dir "$dir" 2>"$dir/daemon.log" & ;;
	esac
	pid=$!
	for _ in $(seq 200); do [ -S "$dir/socket" ] && break; sleep 0.05; done
	"$ccbench" -run load "${loadflags[@]}" -target "$dir/socket" -conns "$conns" -duration 1s >/dev/null
	"$ccbench" -run load "${loadflags[@]}" -target "$dir/socket" -conns "$conns" -duration "${secs}s" | sed -nE 's/.*: ([0-9.]+) cycles\/s.*/\1/p'
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	if [ -n "$enginepid" ]; then
		kill "$enginepid"
		wait "$enginepid" 2>/dev/null || true
	fi
}

echo "bench-ab: $rounds rounds of ${secs}s, $conns connection(s), $(nproc) CPUs, $(date -u +%FT%TZ)"
for i in $(seq "$#"); do echo "  $((i - 1)): ${!i}"; done
for r in $(seq "$rounds"); do
	ref=$(run ref "$base")
	line="round $r: $base ${ref%.*}"
	i=0
	for d in "$@"; do
		bin=${d%%@*} cfg=
		[ "$bin" != "$d" ] && cfg=${d#*@}
		v=$(run "d$i" "$bin" "$cfg")
		line="$line | $i: ${v%.*} ($(awk -v a="$v" -v b="$ref" 'BEGIN { printf "%.2f", a / b }'))"
		i=$((i + 1))
	done
	echo "$line"
done
