#!/usr/bin/env bash
# make bench-runner: each runner step against a plain read+sha256+write of
# the same model, in the same run. Every measurement is a fresh process
# (hack/benchrunner), alternating baseline and step, RUNS times each; it
# prints the median time of each, the median of the per-pair ratios, and
# the step's peak memory against the model's size.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-5}
PARAMS=${PARAMS:-12000000}
MODES=${MODES:-quantize-weightonly-int8}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

go build -o "$work/benchrunner" ./hack/benchrunner
"$work/benchrunner" gen -params "$PARAMS" "$work/model.onnx"
size=$(stat -c %s "$work/model.onnx")
# The process itself (Go runtime, the storage SDKs' code and init) takes
# memory whatever the model: measure it on a tiny model to report what a
# step adds on top.
"$work/benchrunner" gen -params 1000 "$work/tiny.onnx"
base_rss=$("$work/benchrunner" copy "$work/tiny.onnx" "$work/tiny-out.onnx" | sed -E 's/.*"maxRSSBytes":([0-9]+).*/\1/')
echo "model: $PARAMS parameters, $size bytes; $RUNS runs each, alternating; process baseline RSS $((base_rss / 1048576)) MiB"

measure() { # MODE N -> one JSON line
	rm -f "$work/out-$1-$2.onnx"
	"$work/benchrunner" "$1" "$work/model.onnx" "$work/out-$1-$2.onnx"
	rm -f "$work/out-$1-$2.onnx"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
field() { sed -E "s/.*\"$1\":([0-9.e+-]+).*/\1/"; }

for mode in $MODES; do
	: >"$work/base" >"$work/step" >"$work/ratio" >"$work/rss"
	for i in $(seq "$RUNS"); do
		b=$(measure copy "$i" | field seconds)
		line=$(measure "$mode" "$i")
		s=$(echo "$line" | field seconds)
		echo "$b" >>"$work/base"
		echo "$s" >>"$work/step"
		echo "$line" | field maxRSSBytes >>"$work/rss"
		awk -v s="$s" -v b="$b" 'BEGIN {print s/b}' >>"$work/ratio"
	done
	bm=$(median <"$work/base")
	sm=$(median <"$work/step")
	rm_=$(median <"$work/ratio")
	rss=$(median <"$work/rss")
	printf '%-26s step %.3fs  read+hash+write %.3fs  ratio %.2fx (median of pairs)  median peak RSS %.0f MiB, %.2fx the model above the process baseline\n' \
		"$mode" "$sm" "$bm" "$rm_" "$(awk -v r="$rss" 'BEGIN {print r/1048576}')" "$(awk -v r="$rss" -v b="$base_rss" -v s="$size" 'BEGIN {print (r-b)/s}')"
done
