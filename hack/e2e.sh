#!/usr/bin/env bash
# End-to-end suite on a local cluster (`make e2e`).
#
# Builds bin/manager (CGO off) and bin/kompress, then runs test/e2e with the
# e2e build tag: the suite starts kube-apiserver, etcd, kube-scheduler and
# kube-controller-manager, an S3-compatible server on loopback, installs the
# Helm chart, runs the manager with the chart's flags and a node agent that
# runs every stage pod's runner as a local process, and Kueue's manager (for
# the jobs with spec.scheduling.queueName). The suite stops all of it
# itself; every process it starts is also recorded in a PID file with its
# start time, and whatever is still alive when the suite ends (a crash, a
# timeout, Ctrl-C) is killed here by PID — never by name.
#
# Needs `make tools data` (kube binaries, helm, ONNX Runtime, Kueue, MNIST).
# Environment:
#   E2E_RUN=regexp             run only the matching tests
#   KOMPRESS_E2E_FIXTURES=dir  write the statuses the Argo CD health test reads
#   KOMPRESS_E2E_KEEP=1        keep the work directory (logs of every process)
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(hack/tools.sh env | sed 's/^/export /')"
export KOMPRESS_E2E_BIN=${KOMPRESS_E2E_BIN:-$PWD/bin}
work=$(mktemp -d "${TMPDIR:-/tmp}/kompress-e2e-run.XXXXXX")
export KOMPRESS_E2E_PIDFILE=$work/pids

# teardown kills every recorded process still alive whose start time matches
# the one recorded (so a PID the kernel reused is left alone): SIGTERM, then
# SIGKILL after 10 s.
teardown() {
	local rc=$?
	local alive=()
	if [ -f "$KOMPRESS_E2E_PIDFILE" ]; then
		while read -r pid start; do
			if [ -r "/proc/$pid/stat" ] && [ "$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f20)" = "$start" ]; then
				alive+=("$pid")
			fi
		done <"$KOMPRESS_E2E_PIDFILE"
	fi
	if [ ${#alive[@]} -gt 0 ]; then
		echo "e2e: stopping ${#alive[@]} leftover process(es): ${alive[*]}" >&2
		kill -TERM "${alive[@]}" 2>/dev/null || true
		for _ in $(seq 1 20); do
			local left=()
			for pid in "${alive[@]}"; do
				[ -d "/proc/$pid" ] && left+=("$pid")
			done
			[ ${#left[@]} -eq 0 ] && break
			sleep 0.5
		done
		for pid in "${alive[@]}"; do
			[ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
		done
	fi
	rm -rf "$work"
	exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

make --no-print-directory build
go vet -tags e2e ./test/e2e/...
args=(-tags e2e -count=1 -timeout "${E2E_TIMEOUT:-20m}" -v)
if [ -n "${E2E_RUN:-}" ]; then
	args+=(-run "$E2E_RUN")
fi
if [ -n "${KOMPRESS_E2E_FIXTURES:-}" ]; then
	# It reads the fixtures this run rewrites: make e2e-fixtures runs it after.
	args+=(-skip TestArgoHealthOnRecordedStatuses)
fi
start=$(date +%s)
set +e
go test "${args[@]}" ./test/e2e/... 2>&1 | tee "$work/e2e.log" | grep -E '^(=== RUN|--- |\s+--- |PASS|FAIL|ok |e2e:|\s+\S+_test.go:[0-9]+: )'
rc=${PIPESTATUS[0]}
set -e
echo "e2e: $(($(date +%s) - start))s, exit $rc" >&2
if [ "$rc" -ne 0 ]; then
	tail -n 200 "$work/e2e.log" >&2
fi
exit "$rc"
