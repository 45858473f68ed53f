# The reference libraries the Go tests compare with (tests/npm/oracle.mjs):
# @openzeppelin/merkle-tree for StandardMerkleTree roots, proofs and dumps, and
# ethereum-cryptography's keccak for the merkle-distributor check. Installed
# from the lock file; `make test` needs node and npm (Node 20).
NPM ?= npm
NPM_STAMP := tests/npm/node_modules/.installed

DEPS_TARGETS += npm-deps

.PHONY: npm-deps
npm-deps: $(NPM_STAMP)

$(NPM_STAMP): tests/npm/package.json tests/npm/package-lock.json
	$(NPM) ci --prefix tests/npm --no-audit --no-fund --loglevel=error
	touch $@

# The Go tests that use the oracle fail (instead of skipping) when it is missing.
export POH_REQUIRE_ORACLE := 1

# bench-merkle: a StandardMerkleTree (root + every proof), ours and the npm library's, same
# values, same run. The npm side takes about 2 ms a leaf here, so the shared size is 20k
# (1M leaves would take it the better part of an hour a run); Go alone at 1M is
# BenchmarkStandardTree / BenchmarkAirdrop in bench-go.
BENCH_TARGETS += bench-merkle
TEST_TARGETS += test-bench-merkle
MERKLE_LEAVES ?= 20000
.PHONY: bench-merkle test-bench-merkle
bench-merkle: npm-deps
	$(PYTHON) scripts/bench-merkle.py $(MERKLE_LEAVES) 3

# make test runs it once at a tiny size, so it does not rot.
test-bench-merkle: npm-deps
	$(PYTHON) scripts/bench-merkle.py 300 1
