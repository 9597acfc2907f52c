# mnemo's entry points. `make demo` and `make test` are all a fresh machine
# needs: Go comes with the machine, modules come from the proxy, and the
# targets that need more (bench: redis) install it themselves.

GO      ?= go
BIN     := bin/mnemo
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/mnemo-kv/mnemo/node.Version=$(VERSION)
# Packages are tested two at a time (this machine has 2 cores); the end-to-end
# tests start real processes and must not starve.
TESTFLAGS ?= -race -timeout 20m -p 2

.PHONY: all build test demo bench chaos vet fmt lint clean tools

# Linters, installed from the Go module proxy into a folder of their own
# (never on PATH, so nothing depends on what a machine already has).
LINTBIN := $(abspath bin/lint)
STATICCHECK_VERSION := v0.8.2
GOIMPORTS_VERSION := v0.52.0

all: build

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/mnemo

# The Redis tools (redis-cli, redis-benchmark, redis-server) that the RESP
# tests and the bench drive, from Debian's packages when missing. Without
# root or apt the tests that need them skip, each saying why.
tools:
	@command -v redis-benchmark >/dev/null && command -v redis-server >/dev/null || \
		{ export DEBIAN_FRONTEND=noninteractive; apt-get install -y redis-server redis-tools || { apt-get update && apt-get install -y redis-server redis-tools; }; } || \
		echo "make: could not install redis-server and redis-tools; the tests that drive them will skip"

# The e2e tests use the binary just built (MNEMO_BIN), not a stale one.
test: build tools lint
	MNEMO_BIN=$(abspath $(BIN)) $(GO) test $(TESTFLAGS) ./...

# gofmt, goimports (standard library, then others, then mnemo's own
# packages), go vet and staticcheck; any finding fails.
lint:
	@test -x $(LINTBIN)/staticcheck || GOBIN=$(LINTBIN) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@test -x $(LINTBIN)/goimports || GOBIN=$(LINTBIN) $(GO) install golang.org/x/tools/cmd/goimports@$(GOIMPORTS_VERSION)
	@out=$$(gofmt -l $$(git ls-files '*.go')); test -z "$$out" || { echo "gofmt: these files need gofmt -w:"; echo "$$out"; exit 1; }
	@out=$$($(LINTBIN)/goimports -l -local github.com/mnemo-kv/mnemo $$(git ls-files '*.go')); test -z "$$out" || { echo "goimports: these files need goimports -w -local github.com/mnemo-kv/mnemo:"; echo "$$out"; exit 1; }
	$(GO) vet ./...
	$(LINTBIN)/staticcheck ./...

demo: build
	$(BIN) demo

# make bench: the figures of issues 3, 4, 6, 7 and 12 in one run (~10-15 min
# on 2 cores): SDK latency and throughput, redis-benchmark against mnemo's
# RESP port and a local redis-server, RSS and CPU per 1,000 ops, hint
# replay, anti-entropy and ownership-transfer figures, and the peer
# comparison (mnemo, Olric v0.7.4, redis-server in alternating rounds).
# Installs Debian's redis-server and redis-tools when missing. Olric:
# MNEMO_BENCH_OLRIC=/path/to/olric-server, else the bench go-installs it
# into .bench-tools/ (without it the table says why Olric is missing).
# BENCHFLAGS adds flags, e.g. BENCHFLAGS=--quick or
# BENCHFLAGS="--only ae,transfer,peer". Go microbenchmarks:
# go test -run='^$$' -bench=. -benchmem ./...
BENCHFLAGS ?=
bench: build tools
	@command -v redis-benchmark >/dev/null || { echo "make bench needs redis-benchmark (apt-get install redis-tools)"; exit 1; }
	$(BIN) bench $(BENCHFLAGS)

# A 10-minute seeded chaos run (faults every 5-15 s); partitions need root.
# CHAOS_FLAGS="--seed 42 --conflicts lww" and so on.
CHAOS_FLAGS ?=
chaos: build
	$(BIN) chaos --duration 10m $(CHAOS_FLAGS)

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin .demo .bench .chaos
