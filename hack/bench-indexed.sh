#!/usr/bin/env bash
# make bench-indexed: a stage run as an Indexed Job of N pods against the
# same stage in one pod, on this machine. Each index is a `kompress stage`
# process with JOB_COMPLETION_INDEX set, as the Job controller starts it;
# the indices meet in object storage (file:// here) round by round. Runs
# alternate between the shard counts, RUNS times each, each on a fresh
# output directory; it prints per count the median wall time of the whole
# stage (all indices done), the median hessian calibration time (index 0's
# result.json), the median CPU seconds of the busiest index (what one
# node would spend: the wall time of an index on a node of its own), the
# median of the per-pair ratios against the first count, and the
# exchange's cost per round (write + read of the partials, apart
# from waiting for the other indices), from the indices' logs.
#
# LAYERS ("1 2", say) benchmarks model parallelism instead: the counts
# are spec.parallelism.layers (layerInputs: Original, no shards), index k
# prunes its range of the model's blocks and hands its partial to index
# 0, which assembles; it prints each index's solve time too (index 0's
# from result.json, the others' from their logs), and each index's CPU.
#
# METHOD=gptq benchmarks a GPTQ stage instead (int4, matmulnbits,
# sensitiveLayers int4: no guard) of the test decoder made SIZE (4) times
# as wide and deep (hack/modelgen: SIZE 4 is 8 blocks of width 256, 6.3 M
# parameters, 17 segments) on SAMPLES sequences of 32 tokens, with LAYERS
# its layer pods: GPTQ reports no solve time, so only the CPU of each
# index says how the work split.
#
# Environment: RUNS (3), SHARDS ("1 2"), LAYERS (unset), METHOD (hessian), SIZE (4), SAMPLES calibration samples
# (2000), EVAL evaluation samples (2000), PIN=1 to model pods with a
# 1-CPU limit each: index i runs with GOMAXPROCS=1 on core i mod nproc
# (what the Go runtime does under a 1-CPU cgroup limit), so shards: 1 is
# one pod on one core and shards: 2 two pods on two.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
SHARDS=${SHARDS:-"1 2"}
kind=shards
if [ -n "${LAYERS:-}" ]; then
	SHARDS=$LAYERS
	kind=layers
fi
SAMPLES=${SAMPLES:-2000}
EVAL=${EVAL:-2000}
eval "$(hack/tools.sh env | sed 's/^/export /')"
KOMPRESS_CACHE=${KOMPRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kompress}
METHOD=${METHOD:-hessian}
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
case $METHOD in
hessian)
	model=$PWD/config/samples/models/mnist-8.onnx
	data=$KOMPRESS_CACHE/data/mnist-test-10k.npz
	[ -f "$data" ] || { echo "bench-indexed: $data is missing: make data" >&2; exit 1; }
	what="mnist-8, hessian 60% on $SAMPLES samples"
	stage='{name: prune, type: Prune, prune: {method: hessian, sparsity: "0.6", calibrationSamples: '$SAMPLES'}}'
	;;
gptq)
	model=$work/decoder.onnx data=$work/tokens.npz
	go run ./hack/modelgen/cmd/modelgen -model decoder -size "${SIZE:-4}" -out "$model" -data "$data" -samples "$SAMPLES" -seq 32
	what="decoder of size ${SIZE:-4}, gptq int4 on $SAMPLES samples"
	stage='{name: gptq, type: Quantize, quantize: {method: weightOnly, bits: 4, algorithm: gptq, format: matmulnbits, sensitiveLayers: int4, calibration: {samples: '$SAMPLES'}}}'
	;;
*) echo "bench-indexed: METHOD=$METHOD: want hessian or gptq" >&2; exit 1 ;;
esac

go build -o "$work/kompress" ./cmd/kompress
go build -o "$work/benchindexed" ./hack/benchindexed
for n in $SHARDS; do
	cat >"$work/job-$n.yaml" <<YAML
apiVersion: kompress.dev/v1alpha1
kind: CompressionJob
metadata: {name: bench-indexed}
spec:
  source: {uri: "file://$model"}
  dataset: {uri: "file://$data", format: npz}
  output: {uri: "file://$work/OUT"}
  parallelism: $(if [ $kind = layers ]; then echo "{layers: $n, layerInputs: Original}"; else echo "{shards: $n}"; fi)
  evaluation: {samples: $EVAL, latencyRuns: 5}
  stages:
  - $stage
YAML
	"$work/benchindexed" -f "$work/job-$n.yaml" >"$work/task-$n.json"
done

# once N RUN: the stage's indices as processes, on a fresh output; prints
# "wall calibration" and leaves the indices' logs in $work/log-N-RUN-*.
once() {
	local n=$1 run=$2 out="$work/out-$1-$2" pids=() pods=$1
	mkdir -p "$out"
	sed "s|$work/OUT|$out|g" "$work/task-$n.json" >"$out/task.json"
	[ "$n" -gt 1 ] || pods=1
	local start end
	start=$(date +%s.%N)
	for i in $(seq 0 $((pods - 1))); do
		local pin=()
		[ -z "${PIN:-}" ] || pin=(env GOMAXPROCS=1 taskset -c $((i % $(nproc))))
		"${pin[@]}" env JOB_COMPLETION_INDEX=$i KOMPRESS_SHARD_WAIT=10m /usr/bin/time -f "%U %S" -o "$work/cpu-$n-$run-$i" \
			"$work/kompress" stage --task "$out/task.json" --termination-log "" 2>"$work/log-$n-$run-$i" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do
		wait "$p" || { echo "bench-indexed: an index of $n failed:" >&2; tail -5 "$work"/log-"$n-$run"-* >&2; exit 1; }
	done
	end=$(date +%s.%N)
	local cal solve
	# GPTQ's result has neither: 0.
	cal=$(find "$out" -name result.json -exec cat {} + | { grep -o '"calibrationSeconds": *[0-9.e+-]*' || true; } | head -1 | sed -E 's/.*: *//')
	solve=$(find "$out" -name result.json -exec cat {} + | { grep -o '"solveSeconds": *[0-9.e+-]*' || true; } | head -1 | sed -E 's/.*: *//')
	# CPU seconds (user+sys) of the busiest index.
	local cpu
	cpu=$(cat "$work"/cpu-"$n-$run"-* | awk '{c=$1+$2; if (c>m) m=c} END {print m}')
	echo "$(awk -v s="$start" -v e="$end" 'BEGIN {print e-s}') ${cal:-0} $cpu ${solve:-0}"
	rm -rf "$out"
}

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

first=${SHARDS%% *}
echo "$what, evaluation on $EVAL; $RUNS runs of each $kind count, alternating; $(nproc) cores${PIN:+, each index pinned to one core with GOMAXPROCS=1}, load $(cut -d' ' -f1-3 /proc/loadavg)"
for n in $SHARDS; do once "$n" warmup >/dev/null; done
for run in $(seq "$RUNS"); do
	for n in $SHARDS; do
		once "$n" "$run" >>"$work/times-$n"
	done
done
for n in $SHARDS; do
	wall=$(cut -d' ' -f1 "$work/times-$n" | median)
	cal=$(cut -d' ' -f2 "$work/times-$n" | median)
	cpu=$(cut -d' ' -f3 "$work/times-$n" | median)
	ratio=$(paste -d' ' "$work/times-$first" "$work/times-$n" | awk '{h = NF / 2; print $1/$(h+1), $2/$(h+2)}')
	rw=$(echo "$ratio" | cut -d' ' -f1 | median)
	rc=$(echo "$ratio" | cut -d' ' -f2 | median)
	if [ "$METHOD" = hessian ]; then
		line=$(printf '%s %-2s wall %6.2fs  calibration %6.2fs  CPU of the busiest index %6.2fs  speed-up against %s: wall %.2fx, calibration %.2fx' "$kind" "$n" "$wall" "$cal" "$cpu" "$first" "$rw" "$rc")
	else
		# GPTQ's result has no calibration time.
		line=$(printf '%s %-2s wall %6.2fs  CPU of the busiest index %6.2fs  speed-up against %s: wall %.2fx' "$kind" "$n" "$wall" "$cpu" "$first" "$rw")
	fi
	if grep -qh "shards exchanged" "$work"/log-"$n"-[0-9]*-* 2>/dev/null; then
		ex=$(grep -h "shards exchanged" "$work"/log-"$n"-[0-9]*-* | sed -E 's/.*writeSeconds=([0-9.e+-]+) readSeconds=([0-9.e+-]+).*/\1 \2/' | awk '{print $1+$2}' | median)
		rounds=$(grep -h "shards exchanged" "$work"/log-"$n"-1-0 | wc -l)
		bytes=$(grep -h "shards exchanged" "$work"/log-"$n"-1-0 | sed -E 's/.*bytes=([0-9]+).*/\1/' | sort -n | tail -1)
		line="$line  exchange per round per index: median $(printf '%.3f' "$ex")s write+read ($rounds rounds, largest $bytes bytes)"
	fi
	if [ $kind = layers ]; then
		cpus="index 0 $(cat "$work"/cpu-"$n"-[0-9]*-0 | awk '{print $1+$2}' | median)s"
		for i in $(seq 1 $((n - 1))); do
			cpus="$cpus, index $i $(cat "$work"/cpu-"$n"-[0-9]*-"$i" | awk '{print $1+$2}' | median)s"
		done
		line="$line  CPU (median): $cpus"
	fi
	if [ $kind = layers ] && [ "$METHOD" = hessian ]; then
		solve="index 0 $(printf '%.3f' "$(cut -d' ' -f4 "$work/times-$n" | median)")s"
		for i in $(seq 1 $((n - 1))); do
			s=$(grep -h "layer index pruned its blocks" "$work"/log-"$n"-[0-9]*-"$i" | sed -E 's/.*solveSeconds=([0-9.e+-]+).*/\1/' | median)
			solve="$solve, index $i $(printf '%.3f' "$s")s"
		done
		line="$line  solve (median): $solve"
	fi
	echo "$line"
done
