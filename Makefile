# Fleetgate — the day-to-day commands. `make help` lists them.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 10s
BIN ?= bin
PROTOC_GEN_GO_VERSION := v1.36.12
# Packages whose tests need no services, for quick local runs.
CMDS := edge/cmd/edge-agent cloud/cmd/cloud-server firmware-sim/cmd/firmware-sim

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## build the three programs into ./bin
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./edge/cmd/edge-agent ./cloud/cmd/cloud-server ./firmware-sim/cmd/firmware-sim

.PHONY: demo
demo: build ## three simulated vehicles, three agents and the cloud on localhost; API on :8000; Ctrl-C stops
	BIN=$(BIN) ./deploy/demo.sh

.PHONY: test
test: ## run every test (needs PostgreSQL, Redis and Mosquitto on localhost; see README)
	$(GO) test -race -count=1 -timeout 20m ./...

.PHONY: fmt-check
fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## go vet
	$(GO) vet ./...

.PHONY: deps
deps: ## the dependency-direction tests (DESIGN.md §2)
	$(GO) test -count=1 -run 'TestDependencies' ./shared/ ./edge/ ./cloud/ ./firmware-sim/

.PHONY: build-edge
build-edge: ## cross-compile edge-agent for linux/amd64, linux/arm64 and linux/arm/v7 (static)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -o $(BIN)/edge-agent-linux-amd64 ./edge/cmd/edge-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -o $(BIN)/edge-agent-linux-arm64 ./edge/cmd/edge-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -o $(BIN)/edge-agent-linux-armv7 ./edge/cmd/edge-agent

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 10s)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; \
	    $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg >/dev/null || { $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime 1x $$pkg; exit 1; }; \
	  done; \
	done

.PHONY: bench
bench: ## measure the performance targets of DESIGN.md §9 (Go benchmarks with custom metrics)
	$(GO) test -run '^$$' -bench . -benchmem -count=1 -timeout 60m ./... | grep -Ev '^(PASS$$|ok |\? )'

.PHONY: chaos
chaos: ## the full chaos scenarios (50 agent kills, 20 broker restarts, 1,000 connection cuts, the outbox cap) and their table
	@mkdir -p $(BIN)
	@set -o pipefail; FLEETGATE_FULL=1 $(GO) test -count=1 -timeout 90m -run TestChaos -v ./deploy/chaos/ 2>&1 | tee $(BIN)/chaos.log | grep -E '^(=== RUN|--- |\s+--- |\s+chaos_test.go|ok|FAIL|PASS)'; status=$$?; \
	echo; sed -n '/^CHAOS TABLE$$/,/^END CHAOS TABLE$$/p' $(BIN)/chaos.log | grep -v '^END'; exit $$status

.PHONY: ci
ci: fmt-check vet deps test fuzz build-edge ## what CI runs: format, vet, dependency rules, all tests with -race, fuzzing (bounded), edge cross-builds

.PHONY: proto
proto: ## regenerate shared/telemetry/telemetrypb from telemetry.proto (protoc from Debian's protobuf-compiler)
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler"; exit 1; }
	GOBIN=$(CURDIR)/$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	cd shared/telemetry/telemetrypb && PATH=$(CURDIR)/$(BIN):$$PATH protoc --go_out=. --go_opt=paths=source_relative telemetry.proto
