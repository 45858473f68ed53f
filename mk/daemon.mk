# holdmetricsd: the daemon (proto/, server/, cmd/holdmetricsd, cmd/holdmetrics-load).
#
#   make build        bin/holdmetricsd and bin/holdmetrics-load
#   make run          build, then start the daemon on the embedded store in $(DAEMON_DATA)
#   make proto        regenerate proto/pohpb from proto/hold.proto and the seed stubs of
#                     poh_holdmetrics.protocols (pinned generators)
#   make test-daemon  process-level tests: the real binary, a Python grpcio client, kill -9, SIGTERM
#   make bench-daemon load generator against the daemon (separate processes, loopback)

DAEMON_VENV       ?= .venv-daemon
DAEMON_PY         := $(DAEMON_VENV)/bin/python
DAEMON_DATA       ?= build/holdmetricsd-data
# Pinned code generators. protoc itself comes from grpcio-tools (a PyPI wheel
# that bundles protoc and the well-known types), so no system protoc is needed.
PROTOC_GEN_GO     := google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
PROTOC_GEN_GO_GRPC:= google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.2
GRPCIO_TOOLS      := grpcio-tools==1.85.1

RUN_TARGET    := run-daemon
TEST_TARGETS  += test-daemon
BENCH_TARGETS += bench-daemon
DEPS_TARGETS  += deps-daemon

.PHONY: build run-daemon proto test-daemon bench-daemon deps-daemon

build:
	$(GO) build -o bin/holdmetricsd ./cmd/holdmetricsd
	$(GO) build -o bin/holdmetrics-load ./cmd/holdmetrics-load

run-daemon: build
	@mkdir -p $(DAEMON_DATA)
	bin/holdmetricsd --data-dir $(DAEMON_DATA)

DAEMON_STAMP := $(DAEMON_VENV)/.requirements

# The venv is (re)filled whenever tests/daemon/requirements.txt changes.
$(DAEMON_STAMP): tests/daemon/requirements.txt
	test -x $(DAEMON_PY) || $(PYTHON) -m venv $(DAEMON_VENV)
	$(DAEMON_PY) -m pip install -q --upgrade pip
	$(DAEMON_PY) -m pip install -q -r tests/daemon/requirements.txt
	touch $@

$(DAEMON_PY): $(DAEMON_STAMP)

deps-daemon: $(DAEMON_STAMP)

proto: $(DAEMON_STAMP)
	GOBIN=$(CURDIR)/bin $(GO) install $(PROTOC_GEN_GO)
	GOBIN=$(CURDIR)/bin $(GO) install $(PROTOC_GEN_GO_GRPC)
	$(DAEMON_PY) -m grpc_tools.protoc -Iproto \
	  --plugin=protoc-gen-go=bin/protoc-gen-go --plugin=protoc-gen-go-grpc=bin/protoc-gen-go-grpc \
	  --go_out=proto/pohpb --go_opt=paths=source_relative \
	  --go-grpc_out=proto/pohpb --go-grpc_opt=paths=source_relative \
	  proto/hold.proto
	$(DAEMON_PY) scripts/gen_seed_stubs.py   # poh_holdmetrics.protocols, from testdata/seed/hold.proto

test-daemon: build $(DAEMON_STAMP)
	HOLDMETRICSD=$(CURDIR)/bin/holdmetricsd $(DAEMON_PY) -m pytest -q tests/daemon

bench-daemon: build
	scripts/bench-daemon.sh
