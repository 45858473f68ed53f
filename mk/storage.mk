# storage: the daemon's other stores, tested against real servers on loopback, never mocks.
# store/mongostore (MongoDB) and audit/ (immudb) are tested by `go test` here (without -race,
# see DB_PKGS in the Makefile) and in test-go-bench; FerretDB is embedded in those test
# binaries, immudb runs as a process.
# The process tests (tests/daemon/test_storage.py, in test-daemon) and the seed's Python
# MongoStorage (test-storage) start the FerretDB and immudb binaries. Both servers are built
# from their Go module sources by scripts/build-dbserver.sh, once, into build/dbservers/.
#
#   make dbservers      build the FerretDB v1.24.2 and immudb v1.10.0 binaries (~4.5 min cold, cached)
#   make test-storage   python/tests/test_storage_mongodb.py in a venv with the 'mongodb' extra (pymongo)
#   make bench-storage  ingest throughput per store in one run (store/storebench)

STORAGE_VENV ?= .venv-storage
FERRETDB_BIN := build/dbservers/ferretdb-v1.24.2/ferretdb

DEPS_TARGETS  += dbservers
TEST_TARGETS  += test-storage
BENCH_TARGETS += bench-storage

.PHONY: dbservers test-storage bench-storage

# A server that cannot be built here does not stop `make test`: the tests that need it
# skip, each saying why.
dbservers:
	@for s in ferretdb immudb; do \
	  scripts/build-dbserver.sh $$s >/dev/null || echo "!!!!!! $$s cannot be built: the tests that need it will skip, saying why !!!!!!"; \
	done

test-storage: wheel dbservers
	$(GOTEST) $(DB_PKGS)
	test -x $(STORAGE_VENV)/bin/python || $(PYTHON) -m venv $(STORAGE_VENV)
	$(STORAGE_VENV)/bin/pip install -q --disable-pip-version-check cffi pytest pytest-asyncio 'pymongo>=4.13'
	$(STORAGE_VENV)/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall dist/*.whl
	cd python/tests && FERRETDB=$(CURDIR)/$(FERRETDB_BIN) ../../$(STORAGE_VENV)/bin/python -m pytest $(PYTEST_ARGS) \
	  test_storage_mongodb.py

bench-storage: dbservers
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 5s ./store/storebench
