# kompress — common tasks. `make help` lists them.
#
# Tools (controller-gen, helm, protoc-gen-go, kube-apiserver, etcd, ...) and
# ONNX Runtime are built or installed once into $(KOMPRESS_CACHE) by
# hack/tools.sh and reused; nothing is downloaded into the checkout.

SHELL := /usr/bin/env bash -o pipefail
.SHELLFLAGS := -ec

KOMPRESS_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kompress
export KOMPRESS_CACHE

TOOLS_ENV = $(shell hack/tools.sh env)
KUBEBUILDER_ASSETS ?= $(KOMPRESS_CACHE)/k8s-v1.37.2
CONTROLLER_GEN ?= $(KOMPRESS_CACHE)/tools/controller-gen-v0.23.0
HELM ?= $(KOMPRESS_CACHE)/tools/helm-v3.22.0
PROTOC_GEN_GO ?= $(KOMPRESS_CACHE)/tools/protoc-gen-go-v1.36.12
ONNXRUNTIME_LIB ?= $(KOMPRESS_CACHE)/onnxruntime-1.30.0/libonnxruntime.so
export KUBEBUILDER_ASSETS ONNXRUNTIME_LIB

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.1.0-dev)
LDFLAGS := -X github.com/kompress/kompress/pipeline.Version=$(VERSION)
# disable_grpc_modules: cloud.google.com/go/storage's documented tag that
# leaves out its gRPC/DirectPath client (kompress uses the HTTP JSON API):
# 12 MB off the runner binary. hack/images.sh builds the image with it too.
GOTAGS ?= disable_grpc_modules

GO_TEST_FLAGS ?= -count=1 -timeout 40m

.PHONY: help
help: ## List targets.
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

##@ Tools

.PHONY: tools tools-gen tools-k8s tools-kueue ort data
tools: ## Build every pinned tool and install ONNX Runtime into the cache.
	hack/tools.sh all
tools-gen:
	hack/tools.sh gen
tools-k8s:
	hack/tools.sh k8s
tools-kueue:
	hack/tools.sh kueue
ort: ## Install ONNX Runtime 1.30 (from npm onnxruntime-node) into the cache.
	hack/tools.sh ort
data: ## Build the MNIST datasets and the ONNX operator test corpus the tests use.
	hack/data.sh
	hack/corpus.sh

##@ Generate

.PHONY: generate manifests verify
generate: tools-gen ## Regenerate deepcopy and the ONNX protobuf Go code.
	$(CONTROLLER_GEN) object:headerFile=hack/boilerplate.go.txt paths=./api/...
	hack/protoc.sh $(PROTOC_GEN_GO)

manifests: tools-gen ## Regenerate the CRD, RBAC and the chart's CRDs.
	$(CONTROLLER_GEN) crd paths=./api/... output:crd:artifacts:config=config/crd/bases
	$(CONTROLLER_GEN) rbac:roleName=manager-role paths=./controllers/... output:rbac:artifacts:config=config/rbac
	hack/sync-chart.sh
	go run ./hack/apidocs config/crd/bases/kompress.dev_compressionjobs.yaml > docs/api.md

verify: generate manifests ## Regenerate everything and fail if anything changed.
	@if [ -n "$$(git status --porcelain -- api config charts docs/api.md runner/onnx/onnxpb)" ]; then \
		git status --porcelain -- api config charts docs/api.md runner/onnx/onnxpb; \
		git --no-pager diff --stat -- api config charts docs/api.md runner/onnx/onnxpb; \
		echo "verify: generated files are out of date; run 'make generate manifests' and commit"; exit 1; fi

##@ Build

.PHONY: build manager kompress
build: manager kompress ## Build bin/manager (CGO off) and bin/kompress.

manager:
	CGO_ENABLED=0 go build -trimpath -ldflags "$(LDFLAGS)" -o bin/manager ./cmd/manager

kompress:
	go build -trimpath -tags "$(GOTAGS)" -ldflags "$(LDFLAGS)" -o bin/kompress ./cmd/kompress

##@ Images

# The images the chart runs (image.repository, runner.image.repository).
MANAGER_IMAGE ?= ghcr.io/kompress/kompress-manager
RUNNER_IMAGE ?= ghcr.io/kompress/kompress-runner

.PHONY: images images-test
images: ## Build the manager and runner images without a container engine: OCI layouts, digests, SBOMs in out/images/ (hack/images.sh).
	MANAGER_IMAGE=$(MANAGER_IMAGE) RUNNER_IMAGE=$(RUNNER_IMAGE) VERSION=$(VERSION) hack/images.sh

images-test: ## Build the images twice and test them: same digests, sizes, config, SBOM, the runner compressing the sample in its own root fs.
	cd hack/imagebuild && go test -count=1 ./...
	MANAGER_IMAGE=$(MANAGER_IMAGE) RUNNER_IMAGE=$(RUNNER_IMAGE) VERSION=$(VERSION) IMAGES_OUT=$(CURDIR)/out/images hack/images.sh
	MANAGER_IMAGE=$(MANAGER_IMAGE) RUNNER_IMAGE=$(RUNNER_IMAGE) VERSION=$(VERSION) IMAGES_OUT=$(CURDIR)/out/images-rebuild hack/images.sh
	KOMPRESS_IMAGES=$(CURDIR)/out/images:$(CURDIR)/out/images-rebuild go test -count=1 -v -run 'TestBuiltImages' ./test/e2e/

##@ Run

.PHONY: run
run: kompress ort ## Run the bundled sample job locally: MNIST through int8 quantization.
	bin/kompress run -f config/samples/mnist-int8.yaml

##@ Test

.PHONY: test test-unit test-browser lint helm-lint fuzz
test: tools data lint ## Run every test (unit, envtest, ONNX Runtime, object storage).
	go test $(GO_TEST_FLAGS) ./...

FUZZTIME ?= 20s
fuzz: ## Fuzz every target of hack/fuzz.sh for FUZZTIME each (default 20s; CI runs it).
	FUZZTIME=$(FUZZTIME) hack/fuzz.sh

test-browser: ## Render a report.html in headless Chromium (installs Debian's chromium and chromium-driver when missing).
	hack/browser.sh

test-unit: ## Run the tests that need no tools.
	go test $(GO_TEST_FLAGS) -short ./...

lint: ## gofmt and go vet.
	@out=$$(gofmt -l $$(git ls-files '*.go') 2>/dev/null); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	go vet ./...

helm-lint: tools-gen ## Lint the Helm chart.
	$(HELM) lint --strict charts/kompress charts/kompress-crds

##@ End to end

.PHONY: e2e e2e-node e2e-fixtures
e2e: tools data ## End-to-end suite on a local cluster: control plane, node pools, S3, the chart, the manager (hack/e2e.sh).
	hack/e2e.sh

e2e-node: tools ## End-to-end on a real node: kubelet, containerd, runc and CNI run the images make images builds (hack/e2e-node.sh; root).
	hack/e2e-node.sh

e2e-fixtures: tools data ## Run the e2e suite and record the statuses the Argo CD health check test reads.
	mkdir -p test/e2e/testdata/statuses
	KOMPRESS_E2E_FIXTURES=$(CURDIR)/test/e2e/testdata/statuses hack/e2e.sh
	go test -count=1 -run TestArgoHealthOnRecordedStatuses ./test/e2e/

##@ Benchmarks

.PHONY: bench-runner bench-controller bench-scale bench-indexed
bench-indexed: ort data ## A hessian stage (METHOD=gptq: a GPTQ one) as an Indexed Job of 1 and 2 index processes meeting in storage: wall, calibration, the exchange's cost per round.
	hack/bench-indexed.sh
bench-runner: ## Runner steps against plain read+hash+write of the same model: medians, ratios, peak memory.
	hack/bench-runner.sh

bench-scale: ort ## Transformer-sized models (GPT-2 small's shape, a 1.1 B decoder with external data): time against read+hash+write, peak memory, layer error; writes out/bench-scale.json.
	hack/bench-scale.sh

bench-controller: tools-k8s ## 500 three-stage CompressionJobs on a local API server.
	go test -run '^$$' -bench BenchmarkCreate500 -benchtime 1x -timeout 20m ./controllers/...
