#!/usr/bin/env bash
# Generates the transformer-sized models of the scale benchmarks once into
# the cache (outside the checkout: several GB) and reuses them when present:
#
#   $KOMPRESS_CACHE/scale/v1/gpt2/model.onnx         GPT-2 small's shape, 124 M
#                                                    parameters, weights inline (498 MB)
#   $KOMPRESS_CACHE/scale/v1/gpt2/calib.npz          64 samples of 128 token ids
#   $KOMPRESS_CACHE/scale/v1/gpt2/heldout.npz        16 other samples of 128 token ids
#   $KOMPRESS_CACHE/scale/v1/decoder1b/model.onnx    1.11 B parameters, weights in
#   $KOMPRESS_CACHE/scale/v1/decoder1b/model.onnx.data  the external data file (4.46 GB)
#   $KOMPRESS_CACHE/scale/v1/decoder1b/calib.npz     16 samples of 64 token ids
#   $KOMPRESS_CACHE/scale/v1/decoder1b/heldout.npz   4 other samples of 64 token ids
#   $KOMPRESS_CACHE/scale/v1/llama/model.onnx        SmolLM-135M's shape, LLaMA-style, exported
#                                                    with its KV cache, 135 M parameters (540 MB)
#   $KOMPRESS_CACHE/scale/v1/llama/calib.npz         64 samples of 128 token ids (input_ids and
#   $KOMPRESS_CACHE/scale/v1/llama/heldout.npz       attention_mask only), 16 held out
#
# The models come from hack/modelgen (deterministic from seed 1; v1 names
# the generator's version: bump it when the generator changes). Each model
# is written into a temporary folder and renamed into place, so an
# interrupted run is never taken for a complete one.
#
#   hack/scale.sh          build what is missing
#   hack/scale.sh gpt2     only the 124 M model
#   hack/scale.sh decoder1b only the 1.1 B model
#   hack/scale.sh llama    only the LLaMA-style 135 M model
#   hack/scale.sh dir      print the folder
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KOMPRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kompress}
dir=$cache/scale/v1

log() { echo "scale: $*" >&2; }

# gen NAME MODEL SAMPLES HELDOUT SEQ: write $dir/NAME unless it exists.
gen() {
	local name=$1 model=$2 samples=$3 heldout=$4 seq=$5
	[ -f "$dir/$name/model.onnx" ] && return 0
	log "generating $dir/$name (first time only)"
	local tmp=$dir/$name.tmp.$$ bin
	rm -rf "$tmp"
	mkdir -p "$tmp"
	bin=$tmp/modelgen
	(cd "$root" && go build -o "$bin" ./hack/modelgen/cmd/modelgen)
	"$bin" -model "$model" -out "$tmp/model.onnx" -data "$tmp/calib.npz" -samples "$samples" -seq "$seq" -seed 1 -data-seed 2
	"$bin" -model "$model" -data "$tmp/heldout.npz" -samples "$heldout" -seq "$seq" -data-seed 3
	rm -f "$bin"
	rm -rf "${dir:?}/$name"
	mv "$tmp" "$dir/$name"
}

gpt2() { gen gpt2 gpt2 64 16 128; }
decoder1b() { gen decoder1b decoder1b 16 4 64; }
llama() { gen llama llama135m 64 16 128; }

case ${1:-all} in
all) gpt2; decoder1b; llama ;;
gpt2) gpt2 ;;
decoder1b) decoder1b ;;
llama) llama ;;
dir) echo "$dir" ;;
*) echo "usage: $0 [all|gpt2|decoder1b|llama|dir]" >&2; exit 2 ;;
esac
