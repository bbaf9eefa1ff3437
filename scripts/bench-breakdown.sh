#!/bin/bash
# bench-breakdown.sh: where the daemon's time per call cycle goes, against
# the do-nothing server, on the real binary and the real socket.
#
# It builds a variant of callcontrold with scripts/bench-breakdown.patch
# (a throwaway patch, never shipped: CC_EXP=null answers without the
# session manager, CC_EXP=nolog drops the per-call log lines,
# CC_EXP=nofmt makes their records but neither formats nor writes them,
# CC_EXP=nostore replaces the state log with a journal that writes
# nothing), then loads each variant in turn, round after round, with
# `ccbench -run load`, and prints the median ratio of cycles/s to the
# do-nothing server and the median server CPU per cycle.
#
# Usage: scripts/bench-breakdown.sh [rounds] [seconds] [conns...]
#        (default: 5 rounds of 3 s, 1 and 32 connections)
set -euo pipefail

rounds=${1:-5}
secs=${2:-3}
shift 2 2>/dev/null || shift $#
conns=("$@")
[ ${#conns[@]} -gt 0 ] || conns=(1 32)

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
go build -o build/ccbench ./cmd/ccbench
work=$(mktemp -d /tmp/cc-breakdown.XXXXXX)
trap 'git worktree remove --force "$work/src" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/src" HEAD
(cd "$work/src" && git apply "$top/scripts/bench-breakdown.patch" && go build -o "$work/callcontrold" ./cmd/callcontrold)

# run NAME ENV CONNS: one load of one variant; prints "cycles/s cpu-µs-per-cycle".
run() {
	local name=$1 env=$2 n=$3 dir="$work/$1" pid t0 t1 rate
	rm -rf "$dir"
	mkdir -p "$dir"
	printf '[CallControl]\nsocket = %s/socket\nlimit = 3600\nstate_dir = %s/state\ngroup = nogroup\n[Kamailio]\nsocket_path = %s/kam.sock\n' \
		"$dir" "$dir" "$dir" >"$dir/config.ini"
	if [ "$name" = nothing ]; then
		build/ccbench -serve-nothing "$dir/socket" &
	else
		env "CC_EXP=$env" "$work/callcontrold" --no-fork --config-dir "$dir" --runtime-dir "$dir" 2>"$dir/daemon.log" &
	fi
	pid=$!
	for _ in $(seq 200); do [ -S "$dir/socket" ] && break; sleep 0.05; done
	build/ccbench -run load -target "$dir/socket" -conns "$n" -duration 1s >/dev/null
	t0=$(awk '{print $14+$15}' "/proc/$pid/stat")
	rate=$(build/ccbench -run load -target "$dir/socket" -conns "$n" -duration "${secs}s" | sed -nE 's/.*: ([0-9.]+) cycles\/s.*/\1/p')
	t1=$(awk '{print $14+$15}' "/proc/$pid/stat")
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	# clock ticks are 10 ms: µs per cycle = ticks * 10000 / cycles
	echo "$rate $(((t1 - t0) * 10000 / (${rate%.*} * secs)))"
}

variants=(nothing null both nolog nofmt nostore full)
envs=(- null "nolog,nostore" nolog nofmt nostore -)
echo "bench-breakdown: $rounds rounds of ${secs}s, $(nproc) CPUs, $(date -u +%FT%TZ)"
echo "  null: answers without the session manager; both: table and timers only (no log lines, no state log);"
echo "  nolog: no log lines; nofmt: log records made, not formatted or written; nostore: no state log;"
echo "  full: the daemon as shipped (sync = interval, info log lines)"
for n in "${conns[@]}"; do
	out="$work/results-$n"
	: >"$out"
	for _ in $(seq "$rounds"); do
		for i in "${!variants[@]}"; do
			echo "${variants[$i]} $(run "${variants[$i]}" "${envs[$i]}" "$n")" >>"$out"
		done
	done
	python3 - "$out" "$n" "${#variants[@]}" <<'EOF'
import statistics as st, sys
rows = [l.split() for l in open(sys.argv[1])]
k = int(sys.argv[3])
rounds = [rows[i:i + k] for i in range(0, len(rows), k)]
print(f"-- {sys.argv[2]} connection(s)")
for j, name in enumerate(r[0] for r in rounds[0]):
    ratios = [float(rd[j][1]) / float(rd[0][1]) for rd in rounds]
    print("%-8s %7.0f cycles/s  %.2f of do-nothing (rounds %s)  CPU %3d µs/cycle" % (
        name, st.median(float(rd[j][1]) for rd in rounds), st.median(ratios),
        " ".join("%.2f" % r for r in ratios), st.median(int(rd[j][2]) for rd in rounds)))
EOF
done
