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
# Usage: scripts/bench-ab.sh ROUNDS CONNS SECONDS DAEMON...
set -euo pipefail

rounds=$1 conns=$2 secs=$3
shift 3
top=$(cd "$(dirname "$0")/.." && pwd)
ccbench=$top/build/ccbench
(cd "$top" && go build -o build/ccbench ./cmd/ccbench)
work=$(mktemp -d /tmp/cc-ab.XXXXXX)
trap 'rm -rf "$work"' EXIT

# run NAME BINARY|nothing [CONFIG-LINE]: prints the cycles/s of one load.
run() {
	local dir=$work/$1 pid
	rm -rf "$dir"
	mkdir -p "$dir"
	printf '[CallControl]\nsocket = %s/socket\nlimit = 3600\nstate_dir = %s/state\ngroup = nogroup\n%s\n[Kamailio]\nsocket_path = %s/kam.sock\n' \
		"$dir" "$dir" "${3:-}" "$dir" >"$dir/config.ini"
	if [ "$2" = nothing ]; then
		"$ccbench" -serve-nothing "$dir/socket" &
	else
		"$2" --no-fork --config-dir "$dir" --runtime-dir "$dir" 2>"$dir/daemon.log" &
	fi
	pid=$!
	for _ in $(seq 200); do [ -S "$dir/socket" ] && break; sleep 0.05; done
	"$ccbench" -run load -target "$dir/socket" -conns "$conns" -duration 1s >/dev/null
	"$ccbench" -run load -target "$dir/socket" -conns "$conns" -duration "${secs}s" | sed -nE 's/.*: ([0-9.]+) cycles\/s.*/\1/p'
	kill "$pid"
	wait "$pid" 2>/dev/null || true
}

echo "bench-ab: $rounds rounds of ${secs}s, $conns connection(s), $(nproc) CPUs, $(date -u +%FT%TZ)"
for i in $(seq "$#"); do echo "  $((i - 1)): ${!i}"; done
for r in $(seq "$rounds"); do
	base=$(run nothing nothing)
	line="round $r: do-nothing ${base%.*}"
	i=0
	for d in "$@"; do
		bin=${d%%@*} cfg=
		[ "$bin" != "$d" ] && cfg=${d#*@}
		v=$(run "d$i" "$bin" "$cfg")
		line="$line | $i: ${v%.*} ($(awk -v a="$v" -v b="$base" 'BEGIN { printf "%.2f", a / b }'))"
		i=$((i + 1))
	done
	echo "$line"
done
