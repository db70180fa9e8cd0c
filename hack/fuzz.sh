#!/usr/bin/env bash
# Fuzz every fuzz target for a fixed time (`make fuzz`, CI).
#
# Each target's committed seed corpus (<package>/testdata/fuzz/<target>/)
# runs with every `go test`; this script also mutates inputs for FUZZTIME
# per target, one target after the other (go test fuzzes one target per
# run), with every core. A target that fails (a panic, an out-of-memory
# crash, a broken property) fails the script: go test writes the input to
# <package>/testdata/fuzz/<target>/<hash>, and the script prints it so
# the CI log alone reproduces it. Fix the bug and commit that file: it
# then runs as a regression test with every `go test`.
#
# Environment:
#   FUZZTIME=20s          how long each target is fuzzed (a duration, or Nx
#                         for N executions)
#   FUZZMINIMIZETIME=2s   how long the fuzzer may spend shrinking an input;
#                         go's default (60s) lets one large seed stall a
#                         short run
#   FUZZ_RUN=regexp       fuzz only the targets whose name matches
set -euo pipefail
cd "$(dirname "$0")/.."

# One line per target: package, then the fuzz function. Every func Fuzz...
# in the repository must be listed (checked below).
targets=(
	"./runner/onnx FuzzLoad"
	"./runner/onnx FuzzStats"
	"./runner/onnx FuzzTensorFromProto"
	"./runner/onnx FuzzSparseToDense"
	"./runner/dataset FuzzNPZ"
	"./runner/dataset FuzzNPY"
)

fuzztime=${FUZZTIME:-20s}
minimize=${FUZZMINIMIZETIME:-2s}

# A fuzz function that is not listed would never be fuzzed in CI.
listed=" ${targets[*]} "
missing=0
while IFS=: read -r file _ line; do
	name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/' <<<"$line")
	pkg=./$(dirname "$file")
	if [[ $listed != *" $pkg $name "* ]]; then
		echo "fuzz: $file: $name is not listed in hack/fuzz.sh targets" >&2
		missing=1
	fi
done < <(git grep --untracked -n -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' -- '*_test.go')
[[ $missing == 0 ]] || exit 1

log=$(mktemp)
trap 'rm -f "$log"' EXIT

# fuzz_once PKG NAME fuzzes one target for fuzztime, its output in $log.
fuzz_once() {
	local rc=0
	go test -run '^$' -fuzz "^$2\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" "$1" >"$log" 2>&1 || rc=$?
	tail -n 40 "$log"
	return $rc
}

failed=()
start=$SECONDS
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	if [[ -n ${FUZZ_RUN:-} && ! $name =~ $FUZZ_RUN ]]; then
		continue
	fi
	echo "== fuzz $pkg $name for $fuzztime"
	before=$(ls "$pkg/testdata/fuzz/$name" 2>/dev/null | sort || true)
	if ! fuzz_once "$pkg" "$name"; then
		after=$(ls "$pkg/testdata/fuzz/$name" 2>/dev/null | sort || true)
		# go's fuzzing engine fails a run with "context deadline exceeded"
		# and no input when a worker is still inside a slow input (a large
		# dense expansion) as the time runs out: no bug found, so that
		# target is fuzzed once more; a second such end fails.
		if [[ $before == "$after" ]] && grep -q "context deadline exceeded" "$log" && fuzz_once "$pkg" "$name"; then
			continue
		fi
		failed+=("$pkg $name")
		after=$(ls "$pkg/testdata/fuzz/$name" 2>/dev/null | sort || true)
		for f in $(comm -13 <(echo "$before") <(echo "$after")); do
			echo "-- failing input $pkg/testdata/fuzz/$name/$f (commit it once fixed):"
			cat "$pkg/testdata/fuzz/$name/$f"
		done
	fi
done
echo "== fuzzing took $((SECONDS - start)) s"
if ((${#failed[@]})); then
	printf 'fuzz: FAILED %s\n' "${failed[@]}" >&2
	exit 1
fi
