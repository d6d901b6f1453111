# Fleetgate — the day-to-day commands. `make help` lists them.
SHELL := /bin/bash
GO ?= go
FUZZTIME ?= 10s
BIN ?= bin
PROTOC_GEN_GO_VERSION := v1.36.12
# Packages whose tests need no services, for quick local runs.
CMDS := edge/cmd/edge-agent cloud/cmd/cloud-server firmware-sim/cmd/firmware-sim
# Containers (docker-compose.yml for development, docker-compose.prod.yml for
# production; deploy/PRODUCTION_DEPLOYMENT.md). SERVICE picks the service of
# logs, shell, prod-logs and prod-shell.
COMPOSE ?= docker compose
DEV := $(COMPOSE) --env-file .env.docker -f docker-compose.yml
PROD := $(COMPOSE) --env-file .env.production -f docker-compose.prod.yml
SERVICE ?=
FLEETGATE_VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
EDGE_PLATFORMS := linux/amd64,linux/arm64,linux/arm/v7
# The database of the db-* targets when the development stack is not running
# (cloud-server's default: the local PostgreSQL that deploy/setup.sh starts).
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/fleetgate?sslmode=disable

.DEFAULT_GOAL := help

.PHONY: help
help: ## list the commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  \033[1m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: setup
setup: ## install what the tests and the demo need (Debian/Ubuntu) and start PostgreSQL, Redis and Mosquitto if down
	@./deploy/setup.sh

.PHONY: build
build: ## build the three programs into ./bin
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./edge/cmd/edge-agent ./cloud/cmd/cloud-server ./firmware-sim/cmd/firmware-sim

.PHONY: web
web: ## rebuild the dashboard bundle cloud/web/dist (committed; Go embeds it) from its sources: npm ci, type check, esbuild
	cd cloud/web && npm ci --no-audit --no-fund && npm run --silent check && npm run --silent build

.PHONY: demo
demo: setup build ## three simulated vehicles, three agents and the cloud on localhost; API on :8000; Ctrl-C stops
	BIN=$(BIN) ./deploy/demo.sh

# Packages tested at once: at least 4. Most of the suite's time is spent
# waiting on real programs (agents, brokers, PostgreSQL restarts, a browser),
# so on a 2-core machine go test's default of one package per core leaves
# the CPU idle half the time while the longest packages run alone at the end.
TESTP ?= $(shell n=$$(nproc 2>/dev/null || echo 2); [ $$n -lt 4 ] && n=4; echo $$n)
# Parallel tests run at once within a package: 8, not one per core. The
# OBD tests against the simulated adapters (deploy/e2e/obd) mostly wait on
# slow-adapter timeouts (60 s of wall time, 9 s of CPU).
TESTPAR ?= 8

.PHONY: test
test: setup ## run every test with -race against the local PostgreSQL, Redis and Mosquitto (make setup installs and starts them)
	$(GO) test -race -count=1 -p $(TESTP) -parallel $(TESTPAR) -timeout 30m ./...

.PHONY: fmt-check
fmt-check: ## fail if gofmt would change a file
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: vet
vet: ## go vet (the lint-only tests included)
	$(GO) vet -tags lint ./...

.PHONY: deps
deps: ## the dependency-direction tests (docs/ARCHITECTURE.md)
	$(GO) test -count=1 -run 'TestDependencies' ./shared/ ./edge/ ./cloud/ ./firmware-sim/

.PHONY: lint
lint: fmt-check vet deps ## gofmt, go vet, layout rules, shellcheck on the scripts, caddy validate on the Caddyfile (installs shellcheck and caddy)
	@./deploy/setup.sh --lint
	$(GO) test -tags lint -count=1 -run '^TestLint' ./deploy/dockertest/

.PHONY: build-edge
build-edge: ## cross-compile edge-agent for linux/amd64, linux/arm64 and linux/arm/v7 (static)
	@mkdir -p $(BIN)
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -o $(BIN)/edge-agent-linux-amd64 ./edge/cmd/edge-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -o $(BIN)/edge-agent-linux-arm64 ./edge/cmd/edge-agent
	CGO_ENABLED=0 GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -o $(BIN)/edge-agent-linux-armv7 ./edge/cmd/edge-agent

.PHONY: fuzz
fuzz: ## run every fuzz target for FUZZTIME each (default 10s)
	GO=$(GO) FUZZTIME=$(FUZZTIME) ./deploy/fuzz.sh

.PHONY: bench
bench: setup ## measure the performance figures (docs/BENCHMARKS.md): writes bench-results.json and the table in docs/BENCHMARKS.md
	@mkdir -p $(BIN)
	@# -p 1: one package's benchmarks at a time, so they do not skew each other;
	@# pipefail: a failing benchmark fails the target despite the filter.
	set -o pipefail; $(GO) test -p 1 -run '^$$' -bench . -benchmem -count=1 -timeout 90m ./... | tee $(BIN)/bench.txt | grep -Ev '^(PASS$$|ok |\? )'
	$(GO) run ./deploy/bench/cmd/bench-results -all -json bench-results.json -md docs/BENCHMARKS.md < $(BIN)/bench.txt

.PHONY: bench-quick
bench-quick: setup ## a reduced benchmark set in under 2 minutes: wire bytes, outbox appends, NMEA reading, ingest on a smaller sample (bench-results-quick.json)
	@mkdir -p $(BIN)
	set -o pipefail; FLEETGATE_BENCH_QUICK=1 $(GO) test -p 1 -run '^$$' -benchmem -count=1 -timeout 10m \
	  -bench '^(BenchmarkBytesPerFix|BenchmarkOutboxAppend|BenchmarkReader|BenchmarkIngest)$$' \
	  ./shared/telemetry/ ./edge/bolt/ ./edge/gps/ ./deploy/bench/ | tee $(BIN)/bench-quick.txt | grep -Ev '^(PASS$$|ok |\? )'
	$(GO) run ./deploy/bench/cmd/bench-results -json bench-results-quick.json < $(BIN)/bench-quick.txt

.PHONY: chaos
chaos: ## the full chaos scenarios (50 agent kills, 20 broker restarts, 1,000 connection cuts, the outbox cap) and their table
	@mkdir -p $(BIN)
	@set -o pipefail; FLEETGATE_FULL=1 $(GO) test -count=1 -timeout 90m -run TestChaos -v ./deploy/chaos/ 2>&1 | tee $(BIN)/chaos.log | grep -E '^(=== RUN|--- |\s+--- |\s+chaos_test.go|ok|FAIL|PASS)'; status=$$?; \
	echo; sed -n '/^CHAOS TABLE$$/,/^END CHAOS TABLE$$/p' $(BIN)/chaos.log | grep -v '^END'; exit $$status

# TEST_ARM_TARGETS: the targets test-arm runs (make ci too: both).
TEST_ARM_TARGETS ?= arm64 armv7

.PHONY: test-arm
test-arm: ## the tests of edge/... and shared/... built for linux/arm64 and linux/arm/v7, run under qemu-user (docs/ARCHITECTURE.md#arm)
	@./deploy/setup.sh --arm
	GO=$(GO) TARGETS="$(TEST_ARM_TARGETS)" ./deploy/test-arm.sh

.PHONY: ci
ci: FUZZTIME = 3s
ci: lint test fuzz build-edge test-arm ## what CI runs: lint, all tests with -race, fuzzing (bounded), edge cross-builds, the agent's tests on ARM

.PHONY: proto
proto: ## regenerate shared/telemetry/telemetrypb from telemetry.proto (protoc from Debian's protobuf-compiler)
	@command -v protoc >/dev/null || { echo "protoc not found: apt-get install protobuf-compiler"; exit 1; }
	GOBIN=$(CURDIR)/$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	cd shared/telemetry/telemetrypb && PATH=$(CURDIR)/$(BIN):$$PATH protoc --go_out=. --go_opt=paths=source_relative telemetry.proto

# ---- development stack (docker-compose.yml) ----------------------------------

.PHONY: start
start: ## development stack: build and start every service (docker compose, .env.docker)
	$(DEV) up -d --build
	@echo "API http://localhost:8000  agent http://localhost:9100/metrics  (ports: .env.docker)"

.PHONY: down
down: ## stop and remove the development stack (volumes are kept)
	$(DEV) down --remove-orphans

.PHONY: logs
logs: ## follow the development stack's logs (SERVICE=cloud for one)
	$(DEV) logs -f --tail=200 $(SERVICE)

.PHONY: shell
shell: ## a shell in a development container (SERVICE=cloud by default)
	$(DEV) exec $(or $(SERVICE),cloud) sh

# The db-* targets use the development stack's PostgreSQL when it runs, and
# otherwise the database of DATABASE_URL with local tools (psql, go run).
DEV_DB_UP := $(DEV) ps --status running --quiet postgres 2>/dev/null | grep -q .

.PHONY: db-migrate
db-migrate: ## apply the migrations (the stack's database, else DATABASE_URL's)
	@if $(DEV_DB_UP); then \
	  echo "migrating the development stack's database"; \
	  $(DEV) exec cloud go run ./cloud/cmd/cloud-server migrate; \
	else \
	  DATABASE_URL='$(DATABASE_URL)' $(GO) run ./cloud/cmd/cloud-server migrate; \
	fi

.PHONY: db-reset
db-reset: ## drop and recreate the database, then migrate (asks; FORCE=1 does not)
	@if $(DEV_DB_UP); then where="the development stack's database fleetgate"; else where="$(DATABASE_URL)"; fi; \
	if [ "$(FORCE)" != 1 ]; then \
	  read -r -p "drop $$where and all its data? [y/N] " ok; [ "$$ok" = y ] || { echo "nothing done"; exit 1; }; \
	fi; \
	if $(DEV_DB_UP); then \
	  $(DEV) exec -T postgres psql -U fleetgate -d postgres -v ON_ERROR_STOP=1 -c 'DROP DATABASE IF EXISTS fleetgate WITH (FORCE)' -c 'CREATE DATABASE fleetgate'; \
	else \
	  db=$$(echo '$(DATABASE_URL)' | sed -E 's#^[^/]*//[^/]*/([^?]*).*#\1#'); \
	  admin=$$(echo '$(DATABASE_URL)' | sed -E 's#^([^/]*//[^/]*/)[^?]*#\1postgres#'); \
	  psql "$$admin" -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS \"$$db\" WITH (FORCE)"; \
	fi
	@$(MAKE) --no-print-directory db-migrate

.PHONY: db-shell
db-shell: ## psql on the database (the stack's, else DATABASE_URL's)
	@if $(DEV_DB_UP); then \
	  $(DEV) exec postgres psql -U fleetgate -d fleetgate; \
	else \
	  psql '$(DATABASE_URL)'; \
	fi

# ---- production (docker-compose.prod.yml, .env.production) -------------------

.env.production:
	@echo "no .env.production: cp .env.production.example .env.production, fill it in, chmod 600 (deploy/PRODUCTION_DEPLOYMENT.md)"; exit 1

.PHONY: prod-build
prod-build: .env.production ## build the production images, tagged FLEETGATE_VERSION (default: git describe)
	FLEETGATE_VERSION=$(FLEETGATE_VERSION) $(PROD) build --pull

.PHONY: prod-up
prod-up: .env.production ## create or update the production stack and wait until every service is healthy
	FLEETGATE_VERSION=$(FLEETGATE_VERSION) $(PROD) up -d --remove-orphans --wait

.PHONY: prod-start
prod-start: .env.production ## start the production stack's existing containers again (after prod-stop or a reboot)
	$(PROD) start

.PHONY: prod-stop
prod-stop: .env.production ## stop the production stack without removing it
	$(PROD) stop

.PHONY: prod-logs
prod-logs: .env.production ## follow the production logs (SERVICE=cloud for one)
	$(PROD) logs -f --tail=200 $(SERVICE)

.PHONY: prod-shell
prod-shell: .env.production ## a busybox shell in a production container's network and processes (SERVICE=cloud; the images have no shell)
	@id=$$($(PROD) ps -q $(or $(SERVICE),cloud)); [ -n "$$id" ] || { echo "$(or $(SERVICE),cloud) is not running"; exit 1; }; \
	docker run --rm -it --network container:$$id --pid container:$$id busybox:1.37 sh

.PHONY: edge-image
edge-image: ## build the edge-agent image for linux/amd64, arm64 and arm/v7 (docker buildx; PUSH=1 pushes)
	docker buildx build -f Dockerfile.edge --target production --platform $(EDGE_PLATFORMS) \
	  --build-arg VERSION=$(FLEETGATE_VERSION) -t fleetgate/edge-agent:$(FLEETGATE_VERSION) $(if $(PUSH),--push,) .
