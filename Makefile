# geopipe — two commands do everything on a fresh machine:
#   make sample   set up .venv, install, run the Rwanda sample pipeline, print where the tables are
#   make test     set up .venv, install, run the tests
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
CONFIG ?= pipelines/sample.yaml

.PHONY: all sample test test-fast lint bench mutation indicators notebooks clean

all: test

# (Re)install only when pyproject.toml changed: reruns are quick.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

sample: $(STAMP)
	$(VENV)/bin/geopipe run pipelines/sample.yaml

indicators: $(STAMP)
	$(VENV)/bin/geopipe run $(CONFIG)

test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile

test-fast: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile -m "not slow"

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(PY) -m benchmarks

# plant known bugs in a temporary copy of src/ and print which the tests catch (docs/testing.md)
mutation: $(STAMP)
	$(PY) scripts/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf out .pytest_cache .ruff_cache

# gigaspatial (PyPI giga-spatial) for `python -m benchmarks gigaspatial`, in its own venv beside
# the checkout: installing it into .venv would downgrade python-dateutil (docs/performance.md)
GIGA_VENV ?= ../venv-giga
.PHONY: venv-giga
venv-giga:
	test -x $(GIGA_VENV)/bin/python || $(PYTHON) -m venv $(GIGA_VENV)
	$(GIGA_VENV)/bin/python -m pip install --quiet giga-spatial==0.10.1 fiona
