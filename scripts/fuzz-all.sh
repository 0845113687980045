#!/usr/bin/env bash
# Runs every `func FuzzXxx` in the module for a short time each ($1, e.g. 10s).
#
# `go test -fuzz` links a fresh instrumented test binary for every target
# (~4 s each, 120 targets); instead each package's binary is built once with
# `go test -c -fuzz=.` (-fuzz is what turns on the compiler's coverage
# instrumentation), all of them before any fuzzing and one per CPU at a
# time, and every target of the package runs from it, the way
# `go test -fuzz` runs it: in the package's directory (testdata/fuzz is read
# there and a failing input is written there), with cmd/go's fuzz cache
# (GOCACHE/fuzz/<import path>), paniconexit0 and go test's 10m timeout.
set -euo pipefail
fuzztime=${1:-10s}
module=$(go list -m)
fuzzcache=$(go env GOCACHE)/fuzz
bindir=$(mktemp -d)
log=$bindir/fuzz.log
trap 'rm -rf "$bindir"' EXIT

dirs=$(grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | xargs -n1 dirname | sed 's|^\./||' | sort -u)

# Every binary first, as many at once as there are CPUs (linking is
# mostly one thread): a package that does not build fails the run before
# minutes of fuzzing.
echo "fuzz: building $(echo "$dirs" | wc -l) fuzz-instrumented test binaries"
echo "$dirs" | xargs -P "$(nproc)" -I{} sh -c 'b=$1/$(echo "$2" | tr / _); go test -c -fuzz=. -o "$b.test" "./$2" >"$b.log" 2>&1 || echo "$2" >>"$1/failed"' sh "$bindir" {}
if [ -s "$bindir/failed" ]; then
	while read -r dir; do
		cat "$bindir/$(echo "$dir" | tr / _).log"
		echo "fuzz: ./$dir: build failed"
	done <"$bindir/failed"
	exit 1
fi

for dir in $dirs; do
	pkg=./$dir
	bin=$bindir/$(echo "$dir" | tr / _).test
	for fn in $(cat "$dir"/*_test.go | grep -oE '^func Fuzz[A-Za-z0-9_]+' | cut -d' ' -f2); do
		echo "fuzz: $pkg $fn ($fuzztime)"
		# The minimizer's default budget is 60 s per new input, during which
		# no executions are reported; a target doing real file I/O (~1 ms an
		# input, like neutral.FuzzRead) then looks stalled. Bound it by count.
		if ! (cd "$dir" && "$bin" -test.paniconexit0 -test.timeout=10m -test.run='^$' \
			-test.fuzz="^${fn}\$" -test.fuzztime="$fuzztime" \
			-test.fuzzminimizetime="${FUZZ_MINIMIZE:-500x}" \
			-test.fuzzcachedir="$fuzzcache/$module/$dir") >"$log" 2>&1; then
			# Go's fuzzer can report "context deadline exceeded" when -fuzztime
			# ends during a slow input; only a written failing input or a
			# panic is a real failure.
			if grep -q "context deadline exceeded" "$log" && ! grep -qE "Failing input written|panic:" "$log"; then
				echo "fuzz: $fn stopped at the deadline mid-input (Go fuzzer quirk); no failure found"
				continue
			fi
			cat "$log"
			echo "FAIL $pkg $fn"
			exit 1
		fi
	done
done
