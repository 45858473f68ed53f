# poh-holdmetrics: the two commands a user needs are `make run` and `make test`.
# Each component adds its own targets from mk/*.mk (capi + python, daemon, ...)
# by appending to DEPS_TARGETS, TEST_TARGETS and BENCH_TARGETS, so this file
# stays the one entry point.

GO      ?= go
PYTHON  ?= python3
# -count=1: never serve a cached result; benchmarks run once at a tiny size so
# none of them rots (real runs: make bench).
GOTEST  ?= $(GO) test -count=1
BENCHCOUNT ?= 6

DEPS_TARGETS  :=
TEST_TARGETS  :=
BENCH_TARGETS :=
RUN_TARGET    :=

include $(sort $(wildcard mk/*.mk))

.PHONY: all deps test test-go test-go-race test-go-purego test-go-bench bench bench-go run fmt vet fuzz pgo clean

all: test

deps: go-deps $(DEPS_TARGETS)

go-deps:
	$(GO) mod download

## test: every suite (Go with -race, fuzz seeds, benchmarks once, then each component's suite).
## A failing suite does not stop the others; the command fails at the end, naming them.
TEST_SUITES = vet test-go-race test-go-purego test-go-bench $(TEST_TARGETS)

test: deps
	@failed=""; for t in $(TEST_SUITES); do 	  echo "==== suite $$t"; $(MAKE) --no-print-directory $$t || failed="$$failed $$t"; 	done; 	if [ -n "$$failed" ]; then echo "==== FAILED suites:$$failed"; exit 1; fi; 	echo "==== every suite passed: $(TEST_SUITES)"

test-go: vet test-go-race test-go-purego test-go-bench

# The packages that embed a database server in their test binaries (FerretDB's pure-Go
# SQLite, the immudb client) run without -race in test-storage: their race build alone took
# about 14 minutes on a cold 2-core machine.
DB_PKGS := ./store/mongostore ./store/storebench ./audit

test-go-race:
	$(GOTEST) -race $$($(GO) list ./... | grep -v -e /store/mongostore -e /store/storebench -e /audit$$ -e /internal/dbtest$$)

test-go-purego:
	$(GOTEST) -tags purego ./core # the portable scoring path, without the amd64 kernel

test-go-bench:
	$(GOTEST) -short -run '^$$' -bench . -benchtime 1x ./...

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }
	$(GO) vet ./...
	$(GO) vet -tags purego ./core

## bench: Go benchmarks repeated $(BENCHCOUNT) times (benchstat-style), then each component's
bench: deps bench-go $(BENCH_TARGETS)

bench-go:
	COUNT=$(BENCHCOUNT) scripts/bench-go.sh ./...

## pgo: regenerate cmd/holdmetricsd/default.pgo (capi/default.pgo links to it) from the daemon under load
pgo:
	scripts/pgo.sh

## fuzz: run each Go fuzz target for FUZZTIME (default 30s)
FUZZTIME ?= 30s
fuzz:
	for f in FuzzValidate FuzzScore FuzzScoreKernel FuzzColumns; do $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) ./core || exit 1; done

## run: the main job (the daemon once it is built)
run: $(if $(RUN_TARGET),$(RUN_TARGET),run-placeholder)

run-placeholder:
	@echo "holdmetricsd (the daemon) is not built yet; 'make test' exercises the Go core."

clean:
	rm -rf bin build dist .venv* *.egg-info
