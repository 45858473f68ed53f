# dist: poh_holdmetrics past one machine, on the engines users run: poh_holdmetrics.dask on a
# dask.distributed LocalCluster (worker processes, spawned) and the Spark recipe
# (examples/spark) on PySpark local[2], tested against the single-process results.
#
#   make test-dist    .venv-dist (newest pyenv 3.12, else 3.11): the wheel + dask[distributed],
#                     pandas, pyarrow, pytest, and pyspark when `java` is on PATH (without
#                     Java the Spark tests skip, saying so); python/tests/test_dask.py and
#                     test_spark.py, then bench_dask.py once at a tiny size
#   make bench-dist   python/bench/bench_dask.py: 20M rows / 1M holders (POH_BENCH_DASK_ROWS,
#                     POH_BENCH_DASK_HOLDERS) on 1 and 2 workers against one process and
#                     against plain dask groupby-sum, same run
#
# DIST_WHEEL=path/to.whl tests that wheel instead of building dist/ (make wheel).

DIST_VENV      ?= .venv-dist
DIST_PY        := $(DIST_VENV)/bin/python
DIST_DEPS      := cffi numpy pandas pyarrow 'dask[distributed,dataframe]' pytest pytest-asyncio
DIST_SPARK     := pyspark
DIST_WHEEL     ?=
DIST_STAMP     := $(DIST_VENV)/.requirements
DIST_TINY      := POH_BENCH_DASK_ROWS=20000 POH_BENCH_DASK_HOLDERS=1000 POH_BENCH_DASK_REPEAT=1 POH_BENCH_DASK_FILES=4

TEST_TARGETS  += test-dist
BENCH_TARGETS += bench-dist

.PHONY: test-dist bench-dist dist-venv

# The venv is made again whenever this file (its requirement list) changes; pip's cache
# keeps that cheap after the first time.
$(DIST_STAMP): mk/dist.mk
	@$(PY_FOR); py=$$(py_for 3.12); [ -n "$$py" ] || py=$$(py_for 3.11); \
	test -n "$$py" || { echo "python 3.12 or 3.11 not found (pyenv install 3.12)"; exit 1; }; \
	rm -rf $(DIST_VENV); echo "== dist: fresh venv $(DIST_VENV) ($$py)"; \
	$$py -m venv $(DIST_VENV) && \
	$(DIST_PY) -m pip install -q --disable-pip-version-check $(DIST_DEPS) && \
	if command -v java >/dev/null 2>&1; then \
	  $(DIST_PY) -m pip install -q --disable-pip-version-check $(DIST_SPARK); \
	else echo "!!!!!! no java on PATH: pyspark not installed, the Spark tests will skip !!!!!!"; fi
	touch $@

dist-venv: $(DIST_STAMP)

test-dist: $(if $(DIST_WHEEL),,wheel) $(DIST_STAMP)
	@whl=$${DIST_WHEEL:-$$(ls dist/*.whl)}; whl=$$(cd $$(dirname $$whl) && pwd)/$$(basename $$whl); \
	$(DIST_PY) -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$$whl" && \
	echo "== dist: test_dask.py, test_spark.py on $$whl" && \
	(cd python/tests && ../../$(DIST_PY) -m pytest $(PYTEST_ARGS) test_dask.py test_spark.py) && \
	echo "== dist: bench_dask.py once, tiny" && \
	(cd python/bench && $(DIST_TINY) ../../$(DIST_PY) bench_dask.py)

bench-dist: $(if $(DIST_WHEEL),,wheel) $(DIST_STAMP)
	@whl=$${DIST_WHEEL:-$$(ls dist/*.whl)}; \
	$(DIST_PY) -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$$whl" && \
	cd python/bench && ../../$(DIST_PY) bench_dask.py
