# syntax=docker/dockerfile:1
# The runner image (RUNNER_IMAGE in the Makefile, runner.image.repository in
# the chart): `kompress` on the PATH, which every stage pod runs, with ONNX
# Runtime from the onnxruntime-node npm package (the same file `make ort`
# installs), on a distroless base with glibc and libstdc++, as the nonroot
# user. Build it from the repository root with `make images`.
ARG GO_VERSION=1.26

# ONNX Runtime: the shared library inside onnxruntime-node, without its
# install script (it would download a CUDA add-on).
FROM node:22-bookworm-slim AS ort
ARG ORT_VERSION=1.30.0
ARG TARGETARCH
WORKDIR /ort
RUN ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund --ignore-scripts onnxruntime-node@${ORT_VERSION} && \
    case "${TARGETARCH:-amd64}" in amd64) arch=x64 ;; arm64) arch=arm64 ;; *) echo "no ONNX Runtime for ${TARGETARCH}" >&2; exit 1 ;; esac && \
    cp node_modules/onnxruntime-node/bin/napi-v6/linux/${arch}/libonnxruntime.so.1 /ort/libonnxruntime.so

# kompress, with cgo: ONNX Runtime is loaded at run time through
# github.com/yalue/onnxruntime_go.
FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY pipeline/ pipeline/
COPY config/crd/ config/crd/
COPY runner/ runner/
COPY cmd/kompress/ cmd/kompress/
ARG VERSION=v0.1.0
RUN CGO_ENABLED=1 go build -trimpath -ldflags "-X github.com/kompress/kompress/pipeline.Version=${VERSION}" -o /out/kompress ./cmd/kompress

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=ort /ort/libonnxruntime.so /usr/lib/kompress/libonnxruntime.so
COPY --from=build /out/kompress /usr/local/bin/kompress
ENV ONNXRUNTIME_LIB=/usr/lib/kompress/libonnxruntime.so
USER 65532:65532
ENTRYPOINT ["kompress"]
