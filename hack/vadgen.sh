#!/usr/bin/env bash
# Rebuilds testdata/models/silero-vad/speech.npz: a sentence spoken by
# espeak-ng (Debian package espeak-ng), framed for Silero VAD by
# hack/vadgen. The committed file is what the tests read; this script
# says how it was made.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v espeak-ng >/dev/null || { echo "vadgen: install espeak-ng (apt-get install espeak-ng)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en -s 150 -w "$tmp/speech.wav" "Compress the model, then measure every output against the source."
go run ./hack/vadgen -wav "$tmp/speech.wav" -silence 0.5 -out testdata/models/silero-vad/speech.npz
