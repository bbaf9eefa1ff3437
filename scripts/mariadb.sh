#!/usr/bin/env bash
# Throwaway MariaDB for tests: its own data directory, reached only through
# its Unix socket DIR/mysqld.sock (no TCP: parallel test packages cannot
# collide on a port; PORT is kept for compatibility and unused), no grant
# tables (anyone who can reach the socket may connect: never point this at
# real data).
#
#   mariadb.sh init  DIR         create DIR/data if missing
#   mariadb.sh run   DIR PORT    init, then exec mariadbd in the foreground
#                                (for a caller that owns it as a child process)
#   mariadb.sh start DIR PORT    init, start in the background, wait until it answers
#   mariadb.sh stop  DIR         stop what start started, wait until it is gone
set -eu
# Debian puts mariadbd in /usr/sbin, often missing from a user's PATH.
PATH=$PATH:/usr/sbin:/sbin

usage() { echo "usage: $0 init DIR | run DIR PORT | start DIR PORT | stop DIR" >&2; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)

need() {
	command -v "$1" >/dev/null 2>&1 || { echo "$0: $1 not found: install the Debian package mariadb-server" >&2; exit 127; }
}

init() {
	need mariadb-install-db
	[ -d "$dir/data/mysql" ] && return 0
	mariadb-install-db --no-defaults --datadir="$dir/data" --skip-test-db \
		--auth-root-authentication-method=normal >"$dir/install.log" 2>&1 ||
		{ cat "$dir/install.log" >&2; exit 1; }
}

# args sets the array mariadbd_args; --user=root is only needed (and allowed) as root.
args() {
	set -- --no-defaults --datadir="$dir/data" --socket="$dir/mysqld.sock" \
		--pid-file="$dir/mysqld.pid" --log-error="$dir/error.log" \
		--port="$1" --skip-networking --skip-grant-tables \
		--skip-log-bin --innodb-buffer-pool-size=16M --max-connections=50
	if [ "$(id -u)" = 0 ]; then set -- "$@" --user=root; fi
	mariadbd_args=("$@")
}

case $cmd in
init)
	init
	;;
run)
	[ $# -eq 3 ] || usage
	need mariadbd
	init
	args "$3"
	exec mariadbd "${mariadbd_args[@]}"
	;;
start)
	[ $# -eq 3 ] || usage
	need mariadbd
	init
	args "$3"
	mariadbd "${mariadbd_args[@]}" </dev/null >>"$dir/error.log" 2>&1 &
	echo $! >"$dir/run.pid"
	i=0
	until mariadb-admin --no-defaults --socket="$dir/mysqld.sock" -uroot ping >/dev/null 2>&1; do
		kill -0 "$(cat "$dir/run.pid")" 2>/dev/null || { echo "$0: mariadbd exited, see $dir/error.log" >&2; tail -20 "$dir/error.log" >&2; exit 1; }
		i=$((i + 1))
		[ $i -lt 600 ] || { echo "$0: mariadbd did not answer in 60s" >&2; exit 1; }
		sleep 0.1
	done
	cat "$dir/run.pid"
	;;
stop)
	[ -f "$dir/run.pid" ] || exit 0
	pid=$(cat "$dir/run.pid")
	kill "$pid" 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		[ $i -lt 600 ] || { kill -9 "$pid" 2>/dev/null || true; break; }
		sleep 0.1
	done
	rm -f "$dir/run.pid"
	;;
*)
	usage
	;;
esac
