#!/bin/sh
# Runs every fuzz target of the module for FUZZTIME (default 5s).
#
# A failure prints the fuzzer's output. An input that makes a target fail
# is written by Go under the package's testdata/fuzz/ and fails the run.
# A failure that left no such input (the fuzzing engine losing a worker on
# a loaded machine, which happens on shared 2-core CI) is retried once,
# and fails the run if it happens again.
set -eu

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-5s}
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

for pkg in $("$GO" list ./...); do
	dir=$("$GO" list -f '{{.Dir}}' "$pkg")
	targets=$(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/func //' || true)
	for f in $targets; do
		echo "fuzz $pkg $f"
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
echo "fuzz: all targets ran $FUZZTIME each"
