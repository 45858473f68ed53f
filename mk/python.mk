# python: the poh_holdmetrics wheel (Go .so + cffi abi3 extension inside), tested on every
# supported CPython in fresh venvs against the *installed* wheel, native and fallback-only.
#
#   make wheel         build dist/*.whl (and the sdist it is built from)
#   make test-python   for each of PY_VERSIONS: fresh venv, install the wheel, pytest twice
#   make bench-python  python/bench/bench.py, then python/bench/peers.py (our kernel and aggregator
#                      against pandas, polars and DuckDB; PEERS_ROWS / PEERS_HOLDERS for the size)
#                      in the newest venv; the python suite runs peers.py once at a tiny size

PYENV_ROOT   ?= $(HOME)/.pyenv
PY_VERSIONS  ?= 3.11 3.12 3.13
PY_BUILD     ?= 3.11
PY_TEST_DEPS := cffi pytest pytest-asyncio hypothesis numpy pandas pyarrow polars duckdb mypy prometheus_client opentelemetry-sdk opentelemetry-exporter-otlp-proto-http pyyaml \
		'grpcio>=1.85.1' 'protobuf>=7.35.1,<8' grpcio-tools==1.85.1
PYTEST_ARGS  ?= -q -p no:cacheprovider

# Shell snippet: py_for V prints the newest pyenv patch release of python V (or pythonV on PATH).
PY_FOR := py_for() { p=$$(ls -d $(PYENV_ROOT)/versions/$$1.*/bin/python 2>/dev/null | sort -V | tail -1); \
	[ -n "$$p" ] || p=$$(command -v python$$1 2>/dev/null || true); echo "$$p"; }

.PHONY: wheel test-python bench-python python-venvs

TEST_TARGETS  += test-python
BENCH_TARGETS += bench-python

## wheel: sdist, then the wheel built from it (so the sdist is proven to build from source)
wheel: $(CAPI_SO)
	@$(PY_FOR); py=$$(py_for $(PY_BUILD)); test -n "$$py" || { echo "python $(PY_BUILD) not found"; exit 1; }; \
	test -x .venv-build/bin/python || $$py -m venv .venv-build; \
	.venv-build/bin/pip install -q --disable-pip-version-check build; \
	rm -rf dist; POH_HOLDMETRICS_LIB=$(abspath $(CAPI_SO)) .venv-build/bin/python -m build -o dist . >build/wheel.log 2>&1 || { tail -40 build/wheel.log; exit 1; }; \
	ls dist

# One fresh venv per interpreter; the test dependencies are cached by pip across runs.
# Every interpreter's two suites run even when one fails; the target fails at the end.
test-python: wheel
	@$(PY_FOR); whl=$$(ls dist/*.whl); first=1; ran=0; failed=""; \
	for v in $(PY_VERSIONS); do \
	  py=$$(py_for $$v); \
	  if [ -z "$$py" ]; then \
	    echo "!!!!!! python $$v NOT FOUND: skipping its suite (install it with pyenv to test it) !!!!!!"; continue; fi; \
	  venv=.venv-py$$v; rm -rf $$venv; echo "== python $$v ($$py): fresh venv $$venv, installing $$whl"; \
	  $$py -m venv $$venv && \
	  $$venv/bin/pip install -q --disable-pip-version-check $(PY_TEST_DEPS) && \
	  $$venv/bin/pip install -q --disable-pip-version-check --no-deps "$$whl" || { failed="$$failed $$v-install"; continue; }; \
	  echo "== python $$v: native + fallback parity suite"; \
	  (cd python/tests && POH_WHEEL=$$PWD/../../$$whl POH_TEST_FRESH_VENV=$$( [ $$first = 1 ] && echo 1 ) \
	     ../../$$venv/bin/python -m pytest $(PYTEST_ARGS)) || failed="$$failed $$v-native"; \
	  echo "== python $$v: fallback-only suite (POH_HOLDMETRICS_PURE=1)"; \
	  (cd python/tests && POH_HOLDMETRICS_PURE=1 ../../$$venv/bin/python -m pytest $(PYTEST_ARGS)) || failed="$$failed $$v-pure"; \
	  first=0; ran=$$((ran+1)); \
	done; \
	test $$ran -gt 0 || { echo "no python interpreter found for $(PY_VERSIONS)"; exit 1; }; \
	if [ -n "$$failed" ]; then echo "== python suites FAILED:$$failed"; exit 1; fi

bench-python: wheel
	@$(PY_FOR); venv=.venv-bench; py=$$(py_for $(lastword $(PY_VERSIONS))); \
	test -x $$venv/bin/python || $$py -m venv $$venv; \
	$$venv/bin/pip install -q --disable-pip-version-check $(PY_TEST_DEPS); \
	$$venv/bin/pip install -q --disable-pip-version-check --no-deps --force-reinstall dist/*.whl; \
	cd python/bench && rc=0; ../../$$venv/bin/python bench.py || rc=1; ../../$$venv/bin/python peers.py || rc=1; exit $$rc
