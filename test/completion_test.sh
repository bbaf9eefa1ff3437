#!/usr/bin/env bash
# Checks completion/callcontrol.bash: the commands, the options the CLI
# takes (every one of `callcontrol --help`'s), and an option's value not
# taken for the command.
#
# Usage: test/completion_test.sh [BUILD-DIR]   (make completion passes build/)
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tmp=$(mktemp -d /tmp/completion_test.XXXXXX)
out=$tmp/out
trap 'rm -rf "$tmp"' EXIT
# shellcheck source=test/lib.sh
. "$root/test/lib.sh"
# shellcheck source=/dev/null # bash completion, not held to the scripts' lint
. "$root/completion/callcontrol.bash"

build=${1:-}
if [ -z "$build" ]; then
	build=$tmp/bin
	(cd "$root" && go build -o "$build/" ./cmd/callcontrol) || exit 1
fi

# complete WORD...: the completions for the last word of "callcontrol WORD...".
complete_words() {
	COMP_WORDS=(callcontrol "$@")
	COMP_CWORD=$#
	COMPREPLY=()
	_callcontrol
	printf '%s\n' "${COMPREPLY[@]}"
}

check 0 "the commands" complete_words ""
for c in sessions session terminate parties stats debits reload; do
	contains "offers $c" "^$c\$"
done
# Every long option in callcontrol --help's Options is offered.
"$build/callcontrol" --help | sed -n '/^Options:/,/^$/p' >"$tmp/help"
grep -o -- '^ *\(-j, \)\?--[a-z][a-z-]*' "$tmp/help" | grep -o -- '--[a-z-]*' >"$tmp/options"
truth "callcontrol --help lists its options" grep -q -- --runtime-dir "$tmp/options"
while read -r opt; do
	check 0 "completion of $opt" complete_words "${opt%?}"
	contains "offers $opt" "^$opt\$"
done <"$tmp/options"
check 0 "the command after --config-dir DIR" complete_words --config-dir /etc/callcontrol ses
contains "DIR is not taken for the command" "^sessions\$"
check 0 "--state after sessions" complete_words --runtime-dir /run/callcontrol sessions --st
contains "offers --state" "^--state\$"

echo "completion: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
