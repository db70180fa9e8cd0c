#!/usr/bin/env bash
# Measures what kompress does with each crafted model of issue 11
# (runner/onnx/testdata/crafted/*.onnx, written by
# `go test ./runner/onnx -run TestFuzzSeeds -update-seeds`): the exit code,
# reason and message of `kompress inspect` and of a one-stage
# `kompress run` (magnitude pruning, the path a stage pod takes), and the
# peak RSS of each, from /usr/bin/time -v. Prints the rows of the table in
# docs/reliability.md, then the baseline: inspect of mnist-8.
#
# Environment: KOMPRESS=path to a kompress binary (default: build one).
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
	cat >"$dir/job.yaml" <<YAML
apiVersion: kompress.dev/v1alpha1
kind: CompressionJob
metadata: {name: crafted}
spec:
  source: {uri: "file://$dir/model.onnx"}
  output: {uri: "file://$dir/out"}
  stages:
  - {name: prune, type: Prune, prune: {method: magnitude, sparsity: "0.5"}}
YAML
	measure "$bin" run -f "$dir/job.yaml"
	reason=$(grep -o -m1 'reason=[A-Za-z]*' <<<"$out" | cut -d= -f2)
	if find "$dir/out" -name model.onnx 2>/dev/null | grep -q .; then
		reason="$reason (published!)"
	fi
	echo "| \`$name\` | $icode / $code | $reason | $msg | $irss MiB | $rss MiB |"
done
measure "$bin" inspect testdata/models/mnist-8.onnx
echo
echo "baseline: kompress inspect mnist-8.onnx exits $code with a peak RSS of $rss MiB"
