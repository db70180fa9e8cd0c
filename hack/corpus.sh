#!/usr/bin/env bash
# Installs the ONNX operator test corpus (Debian package libonnx-testdata:
# about a thousand small models with reference inputs and outputs) that the
# runner/onnx tests load, save, upgrade and run. Idempotent.
#
#   hack/corpus.sh        install if missing, print the corpus directory
set -euo pipefail

dir=${KOMPRESS_ONNX_CORPUS:-/usr/share/libonnx-testdata/data}

if [ ! -d "$dir/node" ]; then
	echo "corpus: installing Debian package libonnx-testdata (first time only)" >&2
	sudo=""
	[ "$(id -u)" = 0 ] || sudo=sudo
	$sudo apt-get install -y -qq libonnx-testdata >/dev/null 2>&1 ||
		{ $sudo apt-get update -qq >/dev/null && $sudo apt-get install -y -qq libonnx-testdata >/dev/null; }
fi
[ -d "$dir/node" ] || { echo "corpus: $dir/node is still missing after installing libonnx-testdata" >&2; exit 1; }
echo "$dir"
