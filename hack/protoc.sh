#!/usr/bin/env bash
# Regenerates the Go code for the ONNX protobuf schema.
#
#   hack/protoc.sh PROTOC_GEN_GO_PATH
#
# protoc runs from the repository root so the schema registers under its
# repository path (runner/onnx/onnxpb/onnx.proto), a name no other library
# uses. Output is deterministic for a given protoc and protoc-gen-go, which
# `make verify` relies on.
set -euo pipefail

plugin=${1:?usage: hack/protoc.sh PROTOC_GEN_GO_PATH (see hack/tools.sh env)}
root=$(cd "$(dirname "$0")/.." && pwd)

if ! command -v protoc >/dev/null; then
	echo "protoc: not found; install it with 'make tools-gen' (Debian package protobuf-compiler)" >&2
	exit 1
fi
if [ ! -x "$plugin" ]; then
	echo "protoc-gen-go: $plugin is not an executable; build it with 'make tools-gen'" >&2
	exit 1
fi

cd "$root"
protoc --plugin=protoc-gen-go="$plugin" \
	--proto_path=. \
	--go_out=. --go_opt=module=github.com/kompress/kompress \
	runner/onnx/onnxpb/onnx.proto
