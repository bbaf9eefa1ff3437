#!/bin/sh
# Runs every fuzz target of the module for FUZZTIME (default 50000x: that
# many executions, 1 to 10 s a target here).
#
# A count, not a duration: with a duration, Go's fuzzing coordinator
# (before Go 1.27) can report the end of its own time limit as a failure,
# "context deadline exceeded" with no failing input (go.dev/issue/75804);
# CI saw it once or twice a run.
#
# A failure prints the fuzzer's output. An input that makes a target fail
# is written by Go under the package's testdata/fuzz/ and fails the run.
# A failure that left no such input is retried once, and fails the run if
# it happens again.
set -eu

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-50000x}
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# corpus_count DIR TARGET: how many failing inputs Go saved for TARGET.
corpus_count() {
	if [ -d "$1/testdata/fuzz/$2" ]; then
		find "$1/testdata/fuzz/$2" -type f | wc -l
	else
		echo 0
	fi
}

# An assignment, not the for list: a failing go list must fail the run,
# not leave it with nothing to fuzz and "all targets ran".
pkgs=$("$GO" list ./...) || { echo "fuzz: $GO list ./... failed"; exit 1; }
ran=0
for pkg in $pkgs; do
	dir=$("$GO" list -f '{{.Dir}}' "$pkg")
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/func //' || true)
	for f in $targets; do
		echo "fuzz $pkg $f"
		ran=$((ran + 1))
		for attempt in 1 2; do
			before=$(corpus_count "$dir" "$f")
			if "$GO" test -run '^$' -fuzz "^$f\$" -fuzztime "$FUZZTIME" "$pkg" >"$out" 2>&1; then
				break
			fi
			cat "$out"
			if [ "$(corpus_count "$dir" "$f")" != "$before" ]; then
				echo "fuzz: $f found a failing input (saved under $dir/testdata/fuzz/$f)"
				exit 1
			fi
			if [ "$attempt" = 2 ]; then
				echo "fuzz: $f failed twice"
				exit 1
			fi
			echo "fuzz: $f failed without a failing input; running it again"
		done
	done
done
if [ "$ran" -eq 0 ]; then
	echo "fuzz: no fuzz target found: nothing was fuzzed"
	exit 1
fi
echo "fuzz: all $ran targets ran for $FUZZTIME each"
