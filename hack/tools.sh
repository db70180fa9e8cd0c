#!/usr/bin/env bash
# Builds the pinned tools into a cache outside the checkout and reuses them
# when present. Prints nothing but progress on stderr; `hack/tools.sh env`
# prints the variables the Makefile and the tests read.
#
#   hack/tools.sh gen    controller-gen, helm, protoc-gen-go (+ protoc from apt)
#   hack/tools.sh k8s    kube-apiserver, kube-scheduler, kube-controller-manager, etcd
#   hack/tools.sh ort    ONNX Runtime shared library from the onnxruntime-node npm package
#   hack/tools.sh node   make e2e-node's node: kubelet, containerd 2.x (+ runc shim, ctr),
#                        CNI bridge/host-local/loopback plugins, crictl; runc from apt
#   hack/tools.sh kueue  Kueue's manager and its CRDs (the e2e suite runs Kueue against its cluster)
#   hack/tools.sh all    gen, k8s, ort and kueue (not node: only make e2e-node needs it)
#   hack/tools.sh env    KUBEBUILDER_ASSETS=... KOMPRESS_TOOLS=... ONNXRUNTIME_LIB=... KOMPRESS_KUEUE=...
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${KOMPRESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kompress}

K8S_VERSION=v1.37.2
ETCD_VERSION=v3.6.16
CONTROLLER_GEN_VERSION=v0.23.0
HELM_VERSION=v3.22.0
PROTOC_GEN_GO_VERSION=v1.36.12
ORT_VERSION=1.30.0
# hack/tools/kueue/go.mod pins the same version.
KUEUE_VERSION=v0.17.0
# The node of make e2e-node (hack/tools/node/go.mod pins the same versions).
CONTAINERD_VERSION=v2.4.2
CNI_PLUGINS_VERSION=v1.9.1
CRICTL_VERSION=v1.37.0

assets=$cache/k8s-$K8S_VERSION
tools=$cache/tools
ortdir=$cache/onnxruntime-$ORT_VERSION
ortlib=$ortdir/libonnxruntime.so
kueuedir=$cache/kueue-$KUEUE_VERSION
nodedir=$cache/node-containerd-$CONTAINERD_VERSION-cni-$CNI_PLUGINS_VERSION-crictl-$CRICTL_VERSION

log() { echo "tools: $*" >&2; }

# build MODULE_DIR PKG OUT [LDFLAGS]: go build (with the build tags in $TAGS)
# into a temp file, then rename, so an interrupted build never leaves a
# half-written binary in the cache.
build() {
	local dir=$1 pkg=$2 out=$3 ldflags=${4:-}
	[ -x "$out" ] && return 0
	mkdir -p "$(dirname "$out")"
	log "building $(basename "$out") (first time only; cached in $(dirname "$out"))"
	(cd "$root/$dir" && CGO_ENABLED=0 go build -trimpath -tags "${TAGS:-}" -ldflags "$ldflags" -o "$out.tmp.$$" "$pkg")
	mv "$out.tmp.$$" "$out"
}

k8s_ldflags() {
	local v=${K8S_VERSION#v} f=""
	local major=${v%%.*} rest=${v#*.}
	local minor=${rest%%.*}
	for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
		f+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
		f+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
	done
	echo "-s -w$f"
}

k8s() {
	local lf
	lf=$(k8s_ldflags)
	build hack/tools/k8s k8s.io/kubernetes/cmd/kube-apiserver "$assets/kube-apiserver" "$lf"
	build hack/tools/k8s k8s.io/kubernetes/cmd/kube-controller-manager "$assets/kube-controller-manager" "$lf"
	build hack/tools/k8s k8s.io/kubernetes/cmd/kube-scheduler "$assets/kube-scheduler" "$lf"
	build hack/tools/etcd go.etcd.io/etcd/server/v3 "$assets/etcd" "-s -w"
}

# node builds what make e2e-node runs besides the control plane. containerd
# and the CNI plugins build with CGO off (no btrfs/devmapper/zfs
# snapshotters: overlayfs is used); runc is Debian's.
node() {
	build hack/tools/k8s k8s.io/kubernetes/cmd/kubelet "$assets/kubelet" "$(k8s_ldflags)"
	local lf="-s -w -X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
	for p in containerd containerd-shim-runc-v2 ctr; do
		TAGS="no_btrfs no_devmapper no_zfs" build hack/tools/node "github.com/containerd/containerd/v2/cmd/$p" "$nodedir/$p" "$lf"
	done
	for p in main/bridge main/loopback ipam/host-local; do
		build hack/tools/node "github.com/containernetworking/plugins/plugins/$p" "$nodedir/cni/$(basename $p)" \
			"-s -w -X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION"
	done
	build hack/tools/node sigs.k8s.io/cri-tools/cmd/crictl "$nodedir/crictl" "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION"
	if ! command -v runc >/dev/null; then
		log "installing runc (Debian)"
		local sudo=""
		[ "$(id -u)" = 0 ] || sudo=sudo
		$sudo apt-get install -y -qq runc >/dev/null 2>&1 ||
			{ $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq runc >/dev/null; }
	fi
}

gen() {
	build hack/tools sigs.k8s.io/controller-tools/cmd/controller-gen "$tools/controller-gen-$CONTROLLER_GEN_VERSION" "-s -w"
	build hack/tools helm.sh/helm/v3/cmd/helm "$tools/helm-$HELM_VERSION" \
		"-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
	build hack/tools google.golang.org/protobuf/cmd/protoc-gen-go "$tools/protoc-gen-go-$PROTOC_GEN_GO_VERSION" "-s -w"
	if ! command -v protoc >/dev/null; then
		log "installing protoc (Debian protobuf-compiler)"
		local sudo=""
		[ "$(id -u)" = 0 ] || sudo=sudo
		$sudo apt-get install -y -qq protobuf-compiler >/dev/null 2>&1 ||
			{ $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq protobuf-compiler >/dev/null; }
	fi
}

# kueue builds Kueue's manager and copies the CRDs of its release (the
# bases, without the conversion-webhook patches: the e2e suite adds those
# itself) from the module the build used, so both are the same version.
kueue() {
	build hack/tools/kueue sigs.k8s.io/kueue/cmd/kueue "$kueuedir/kueue" \
		"-s -w -X sigs.k8s.io/kueue/pkg/version.GitVersion=$KUEUE_VERSION"
	[ -d "$kueuedir/crd" ] && return 0
	local src
	src=$(cd "$root/hack/tools/kueue" && go list -m -f '{{.Dir}}' sigs.k8s.io/kueue)
	mkdir -p "$kueuedir/crd.tmp.$$"
	cp "$src"/config/components/crd/bases/*.yaml "$kueuedir/crd.tmp.$$/"
	chmod 0644 "$kueuedir/crd.tmp.$$"/*.yaml
	mv "$kueuedir/crd.tmp.$$" "$kueuedir/crd"
}

ort() {
	[ -f "$ortlib" ] && return 0
	log "installing ONNX Runtime $ORT_VERSION from npm onnxruntime-node (first time only; cached in $ortdir)"
	local tmp
	tmp=$(mktemp -d)
	(cd "$tmp" && ONNXRUNTIME_NODE_INSTALL=skip npm install --silent --no-audit --no-fund \
		"onnxruntime-node@$ORT_VERSION" --ignore-scripts >/dev/null)
	mkdir -p "$ortdir"
	cp "$tmp/node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$ortlib.tmp"
	mv "$ortlib.tmp" "$ortlib"
	rm -rf "$tmp"
}

env_out() {
	echo "KUBEBUILDER_ASSETS=$assets"
	echo "CONTROLLER_GEN=$tools/controller-gen-$CONTROLLER_GEN_VERSION"
	echo "HELM=$tools/helm-$HELM_VERSION"
	echo "PROTOC_GEN_GO=$tools/protoc-gen-go-$PROTOC_GEN_GO_VERSION"
	echo "ONNXRUNTIME_LIB=$ortlib"
	echo "KOMPRESS_NODE_BIN=$nodedir"
	echo "KOMPRESS_KUEUE=$kueuedir"
}

case "${1:-all}" in
gen) gen ;;
k8s) k8s ;;
ort) ort ;;
node) node ;;
kueue) kueue ;;
all) gen; k8s; ort; kueue ;;
env) env_out ;;
*) echo "usage: $0 [gen|k8s|ort|node|kueue|all|env]" >&2; exit 2 ;;
esac
