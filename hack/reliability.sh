#!/usr/bin/env bash
# Measures what kompress does with each crafted input of issue 11, as
# docs/reliability.md reports it, and prints the rows of its tables:
#
# - models (runner/onnx/testdata/crafted/*.onnx, written by
#   `go test ./runner/onnx -run TestFuzzSeeds -update-seeds`): the exit
#   code, reason and message of `kompress inspect` and of a one-stage
#   `kompress run` (magnitude pruning, the path a stage pod takes), and
#   the peak RSS of each, from /usr/bin/time -v; then the baseline:
#   inspect of mnist-8.
# - datasets (every crafted .npz of runner/dataset/datasettest, the
#   deflate bombs included, written by `go run ./hack/craftgen DIR`): the
#   same one-stage run of mnist-8 with the file as its dataset; then the
#   baseline: a run whose dataset does not exist.
#
# Environment:
#   KOMPRESS=path         a kompress binary (default: build one)
#   KOMPRESS_BEFORE=path  also run this (older) binary on each dataset,
#                         under `ulimit -v 3000000` so that what ran out
#                         of memory fails fast, for the "before" column
#   PARTS="models datasets"  which tables to measure
set -euo pipefail
cd "$(dirname "$0")/.."

work=$(mktemp -d "${TMPDIR:-/tmp}/kompress-reliability.XXXXXX")
trap 'rm -rf "$work"' EXIT
bin=${KOMPRESS:-}
if [[ -z $bin ]]; then
	bin=$work/kompress
	go build -o "$bin" ./cmd/kompress
fi

# measure LABEL CMD...: runs CMD, sets code, rss (MiB) and out (its output).
measure() {
	local log=$work/time.log
	set +e
	out=$(/usr/bin/time -v -o "$log" "$@" 2>&1)
	code=$?
	set -e
	rss=$(awk '/Maximum resident set size/ {printf "%.0f", $6/1024}' "$log")
}

# measure_capped CMD...: measure, with the address space capped at 3 GB.
measure_capped() {
	measure bash -c 'ulimit -v 3000000; exec "$@"' _ "$@"
}

# job DIR MODEL DATASET: a one-stage CompressionJob (magnitude pruning).
job() {
	local dataset=""
	[[ -n $3 ]] && dataset="  dataset: {uri: \"file://$3\"}"
	cat >"$1/job.yaml" <<YAML
apiVersion: kompress.dev/v1alpha1
kind: CompressionJob
metadata: {name: crafted}
spec:
  source: {uri: "file://$2"}
  output: {uri: "file://$1/out"}
$dataset
  stages:
  - {name: prune, type: Prune, prune: {method: magnitude, sparsity: "0.5"}}
YAML
}

# outcome DIR: the reason of the last run's output, flagged if it published.
outcome() {
	reason=$(grep -o -m1 'reason=[A-Za-z]*' <<<"$out" | cut -d= -f2 || true)
	if find "$1/out" -name model.onnx 2>/dev/null | grep -q .; then
		reason="$reason (published!)"
	fi
}

parts=${PARTS:-models datasets}

if [[ $parts == *models* ]]; then
echo "| input | exit | reason | message (inspect) | peak RSS inspect | peak RSS run |"
echo "| --- | --- | --- | --- | --- | --- |"
for f in runner/onnx/testdata/crafted/*.onnx; do
	name=$(basename "$f" .onnx)
	dir=$work/$name
	mkdir -p "$dir"
	cp "$f" "$dir/model.onnx"
	measure "$bin" inspect "$dir/model.onnx"
	icode=$code irss=$rss
	msg=$(grep -m1 '^kompress: ' <<<"$out" | sed -e "s|^kompress: $dir/model.onnx is not a usable ONNX model: model: ||")
	job "$dir" "$dir/model.onnx" ""
	measure "$bin" run -f "$dir/job.yaml"
	outcome "$dir"
	echo "| \`$name\` | $icode / $code | $reason | $msg | $irss MiB | $rss MiB |"
done
measure "$bin" inspect testdata/models/mnist-8.onnx
echo
echo "baseline: kompress inspect mnist-8.onnx exits $code with a peak RSS of $rss MiB"
echo
fi

if [[ $parts == *datasets* ]]; then
model=$PWD/testdata/models/mnist-8.onnx
go run ./hack/craftgen "$work/npz"
if [[ -n ${KOMPRESS_BEFORE:-} ]]; then
	echo "| input | bytes | exit | reason | message | peak RSS | before: exit, reason, peak RSS (ulimit -v 3 GB) |"
	echo "| --- | --- | --- | --- | --- | --- | --- |"
else
	echo "| input | bytes | exit | reason | message | peak RSS |"
	echo "| --- | --- | --- | --- | --- | --- |"
fi
for f in "$work"/npz/*.npz; do
	name=$(basename "$f" .npz)
	dir=$work/run-$name
	mkdir -p "$dir"
	job "$dir" "$model" "$f"
	measure "$bin" run -f "$dir/job.yaml"
	outcome "$dir"
	msg=$(grep '^kompress: ' <<<"$out" | tail -n 1 | sed -e "s|^kompress: file://$f: ||")
	row="| \`$name\` | $(stat -c %s "$f") | $code | $reason | $msg | $rss MiB |"
	if [[ -n ${KOMPRESS_BEFORE:-} ]]; then
		rm -rf "$dir/out"
		measure_capped "$KOMPRESS_BEFORE" run -f "$dir/job.yaml"
		outcome "$dir"
		why=$({ grep -m1 -E '^(panic: |fatal error: )' <<<"$out" || grep '^kompress: ' <<<"$out" | tail -n 1; } |
			sed -e "s|file://$f: ||" | cut -c1-160)
		row="$row $code, $reason, $rss MiB: $why |"
	fi
	echo "$row"
done
dir=$work/run-missing
mkdir -p "$dir"
job "$dir" "$model" "$dir/missing.npz"
measure "$bin" run -f "$dir/job.yaml"
echo
echo "baseline: a run whose dataset does not exist exits $code with a peak RSS of $rss MiB"
fi
