#!/usr/bin/env bash
# Builds the manager and runner images without a container engine (`make
# images`): OCI image layouts under out/images/ (IMAGES_OUT), each with a
# summary (digest, sizes) and an SPDX SBOM, assembled by hack/imagebuild
# from build/manager.image.json and build/runner.image.json:
#   manager  cmd/manager (CGO off) + CA certificates, user 65532
#   runner   cmd/kompress (cgo) + ONNX Runtime's libonnxruntime.so (npm
#            onnxruntime-node, as `make ort`) + glibc, libgcc, libstdc++ and
#            CA certificates from the Debian packages build/debian.lock pins
#            (apt-get download, no base image), user 65532, WORKDIR its home
# Two builds of one commit give the same digests: binaries built with
# -trimpath, every file and the image dated SOURCE_DATE_EPOCH (the commit's
# time), sorted tar entries.
#
#   hack/images.sh          build both, print their digests
#   hack/images.sh lock     pin the Debian packages apt offers now
#   hack/images.sh load NS  import both into containerd (ctr, CONTAINERD_ADDRESS)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KOMPRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kompress}
out=${IMAGES_OUT:-$root/out/images}
lock=$root/build/debian.lock
debs=$cache/debs
MANAGER_IMAGE=${MANAGER_IMAGE:-ghcr.io/kompress/kompress-manager}
RUNNER_IMAGE=${RUNNER_IMAGE:-ghcr.io/kompress/kompress-runner}
VERSION=${VERSION:-$(cd "$root" && git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev)}
REVISION=$(cd "$root" && git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(cd "$root" && git log -1 --format=%ct 2>/dev/null || echo 0)}
ORT_VERSION=$(sed -n 's/^ORT_VERSION=//p' "$root/hack/tools.sh")

log() { echo "images: $*" >&2; }

apt_get() {
	local sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get "$@"
}

# fetch_debs downloads every package of the lock into the cache once,
# checking its sha256.
fetch_debs() {
	mkdir -p "$debs"
	local pkg ver arch sum file tmp
	while read -r pkg ver arch sum; do
		case "$pkg" in '' | '#'*) continue ;; esac
		file=$debs/${pkg}_${ver//:/%3a}_${arch}.deb
		if [ ! -f "$file" ]; then
			log "downloading $pkg $ver (first time only; cached in $debs)"
			tmp=$(mktemp -d "$debs/.dl.XXXXXX")
			if ! (cd "$tmp" && apt-get download -q "$pkg=$ver" >/dev/null 2>&1); then
				apt_get update -qq >/dev/null
				(cd "$tmp" && apt-get download -q "$pkg=$ver" >/dev/null) ||
					{ rm -rf "$tmp"; log "$pkg $ver is not offered by apt any more: run 'hack/images.sh lock' and commit build/debian.lock"; exit 1; }
			fi
			mv "$tmp"/*.deb "$file.tmp" && rm -rf "$tmp"
			mv "$file.tmp" "$file"
		fi
		if [ "$(sha256sum "$file" | cut -c1-64)" != "$sum" ]; then
			log "$file does not have the sha256 build/debian.lock pins ($sum)"
			exit 1
		fi
	done <"$lock"
}

# relock pins the version of every package of the lock that apt offers now.
relock() {
	apt_get update -qq >/dev/null
	local tmp pkgs
	tmp=$(mktemp -d)
	pkgs=$(awk '!/^#/ && NF {print $1}' "$lock")
	# shellcheck disable=SC2086
	(cd "$tmp" && apt-get download -q $pkgs >/dev/null 2>&1)
	{
		sed -n '/^#/p' "$lock"
		for f in "$tmp"/*.deb; do
			echo "$(dpkg-deb -f "$f" Package) $(dpkg-deb -f "$f" Version) $(dpkg-deb -f "$f" Architecture) $(sha256sum "$f" | cut -c1-64)"
		done | sort
	} >"$lock.tmp"
	mv "$lock.tmp" "$lock"
	rm -rf "$tmp"
	cat "$lock"
}

build() {
	"$root/hack/tools.sh" ort
	fetch_debs
	local bin=$out/.bin ldflags="-s -w -X github.com/kompress/kompress/pipeline.Version=$VERSION"
	mkdir -p "$bin"
	log "building manager (CGO off), kompress (cgo) and the image builder"
	(cd "$root" && CGO_ENABLED=0 go build -trimpath -buildvcs=false -ldflags "$ldflags" -o "$bin/manager" ./cmd/manager)
	(cd "$root" && CGO_ENABLED=1 go build -trimpath -buildvcs=false -tags disable_grpc_modules -ldflags "$ldflags" -o "$bin/kompress" ./cmd/kompress)
	(cd "$root/hack/imagebuild" && go build -trimpath -o "$bin/imagebuild" .)
	local common=(-lock "$lock" -debs "$debs" -epoch "$SOURCE_DATE_EPOCH"
		-var "VERSION=$VERSION" -var "REVISION=$REVISION" -var "ORT_VERSION=$ORT_VERSION"
		-var "MANAGER_IMAGE=$MANAGER_IMAGE" -var "RUNNER_IMAGE=$RUNNER_IMAGE"
		-var "MANAGER_BIN=$bin/manager" -var "KOMPRESS_BIN=$bin/kompress"
		-var "ONNXRUNTIME_LIB=$("$root/hack/tools.sh" env | sed -n 's/^ONNXRUNTIME_LIB=//p')")
	for name in manager runner; do
		"$bin/imagebuild" -config "$root/build/$name.image.json" "${common[@]}" \
			-out "$out/$name" -summary "$out/$name.json" -sbom "$out/$name.spdx.json"
	done
	# Chart values pinning both images by digest: helm install -f out/images/values.yaml
	{
		echo "# Written by make images: the images just built, pinned by digest."
		echo "image:"
		echo "  repository: $MANAGER_IMAGE"
		echo "  digest: $(field "$out/manager.json" digest)"
		echo "runner:"
		echo "  image:"
		echo "    repository: $RUNNER_IMAGE"
		echo "    digest: $(field "$out/runner.json" digest)"
		echo "  version: \"$VERSION\"" # quoted: a short commit hash may be all digits
	} >"$out/values.yaml"
}

# field FILE NAME: a string field of an image summary.
field() { sed -n "s/^  \"$2\": \"\(.*\)\",\$/\1/p" "$1"; }

# load imports both layouts into containerd's namespace NS (k8s.io for the
# kubelet) with ctr; CTR names the ctr binary.
load() {
	local ns=${1:-k8s.io} ctr=${CTR:-ctr}
	local ref digest
	for name in manager runner; do
		tar -C "$out/$name" -cf - . | "$ctr" -n "$ns" images import --all-platforms -
		# The chart pins by digest (image.digest): name repository@digest too,
		# as a pull by digest would.
		ref=$(field "$out/$name.json" repository)
		digest=$(field "$out/$name.json" digest)
		"$ctr" -n "$ns" images tag "$ref:$(field "$out/$name.json" tag)" "$ref@$digest"
	done
}

case "${1:-build}" in
build) build ;;
lock) relock ;;
load) shift; load "$@" ;;
*) echo "usage: $0 [build|lock|load NS]" >&2; exit 2 ;;
esac
