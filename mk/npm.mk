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
