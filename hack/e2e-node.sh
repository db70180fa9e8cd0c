#!/usr/bin/env bash
# End-to-end suite on a real node (`make e2e-node`): the control plane of
# make e2e plus a kubelet (k8s.io/kubernetes v1.37.2), containerd 2.x, runc
# (Debian) and the CNI bridge, running the images `make images` builds,
# loaded with `ctr images import`. Stage pods are real containers.
#
# The suite runs in namespaces of its own (unshare): a network namespace
# (the pod bridge, the API server and the S3 server on its gateway; no route
# out of the machine), a PID namespace (every process it starts, containers
# and shims included, dies with it), a mount namespace (the kubelet's and
# containerd's mounts vanish with it) and a cgroup namespace whose cgroup
# file systems are mounted anew, so the kubelet's /kubepods hierarchy is
# nested under this process's own cgroups.
#
# Needs `make tools` (control plane, helm, ONNX Runtime) and builds the rest:
# hack/tools.sh node, the images, the pause image.
# Environment: E2E_RUN=regexp, KOMPRESS_E2E_KEEP=1, E2E_TIMEOUT (20m).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if [ "$(id -u)" != 0 ]; then
	echo "e2e-node: the kubelet, containerd and runc need root" >&2
	exit 1
fi
hack/tools.sh node
eval "$(hack/tools.sh env | sed 's/^/export /')"
export IMAGES_OUT=${IMAGES_OUT:-$root/out/images}
hack/images.sh
work=$(mktemp -d "${TMPDIR:-/tmp}/kompress-e2e-node.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The sandbox image (registry.k8s.io/pause cannot be pulled here).
(cd hack/imagebuild && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/pause" ./pause &&
	go build -trimpath -o "$work/imagebuild" .)
"$work/imagebuild" -config build/pause.image.json -var PAUSE_IMAGE=localhost/kompress/pause -var PAUSE_TAG=1 \
	-var "PAUSE_BIN=$work/pause" -epoch 0 -out "$work/pause-image" >/dev/null

go vet -tags e2enode ./test/e2enode/
go test -c -tags e2enode -o "$work/e2enode.test" ./test/e2enode/
args=(-test.v -test.count=1 -test.timeout "${E2E_TIMEOUT:-20m}")
if [ -n "${E2E_RUN:-}" ]; then
	args+=(-test.run "$E2E_RUN")
fi

cat >"$work/inside.sh" <<'INSIDE'
set -euo pipefail
# Cgroup file systems as this cgroup namespace sees them: its root is the
# cgroup this suite was started in.
mount -t tmpfs cgroup /sys/fs/cgroup
while IFS=: read -r _ subsys _; do
	case "$subsys" in
	"") mkdir -p /sys/fs/cgroup/unified && mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified ;;
	name=*) d=${subsys#name=}; mkdir -p "/sys/fs/cgroup/$d" && mount -t cgroup -o "none,$subsys" cgroup "/sys/fs/cgroup/$d" ;;
	*) mkdir -p "/sys/fs/cgroup/$subsys" && mount -t cgroup -o "$subsys" cgroup "/sys/fs/cgroup/$subsys" ;;
	esac
done </proc/self/cgroup
ip link set lo up
cd "$KOMPRESS_REPO/test/e2enode"
exec "$@"
INSIDE

start=$(date +%s)
set +e
KOMPRESS_E2E_NODE=1 KOMPRESS_REPO=$root KOMPRESS_IMAGES=$IMAGES_OUT KOMPRESS_PAUSE_IMAGE=$work/pause-image \
	KOMPRESS_NODE_BIN=$KOMPRESS_NODE_BIN \
	unshare --pid --fork --mount-proc --net --cgroup --mount --propagation private \
	bash "$work/inside.sh" "$work/e2enode.test" "${args[@]}" 2>&1 | tee "$work/e2e-node.log" |
	grep -E '^(=== RUN|--- |\s+--- |PASS|FAIL|ok |e2enode:|\s+\S+_test.go:[0-9]+: )'
rc=${PIPESTATUS[0]}
set -e
echo "e2e-node: $(($(date +%s) - start))s, exit $rc" >&2
if [ "$rc" -ne 0 ]; then
	tail -n 150 "$work/e2e-node.log" >&2
fi
exit "$rc"
