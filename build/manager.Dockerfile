# syntax=docker/dockerfile:1
# The manager image (MANAGER_IMAGE in the Makefile, image.repository in the
# chart): cmd/manager built with CGO off, on a distroless static base, as the
# nonroot user. Build it from the repository root with `make images`.
ARG GO_VERSION=1.26

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY pipeline/ pipeline/
COPY controllers/ controllers/
COPY cmd/manager/ cmd/manager/
ARG VERSION=v0.1.0
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/kompress/kompress/pipeline.Version=${VERSION}" -o /out/manager ./cmd/manager

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/manager /manager
USER 65532:65532
ENTRYPOINT ["/manager"]
