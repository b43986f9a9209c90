# The two quickstart commands: `make demo` (the main job) and `make test` (the test matrix).
# Both create .venv with Python 3.12 and install the project into it first.

PYTHON := $(shell sh scripts/find-python)
VENV := .venv
BIN := $(VENV)/bin
# tox creates one environment per Django x psycopg_pool version with this interpreter.
export PATH := $(dir $(PYTHON)):$(PATH)

.PHONY: demo test lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/python benchmarks/sharing.py

test: $(BIN)/.installed
	$(BIN)/tox run-parallel -m ci --parallel auto --parallel-live

lint: $(BIN)/.installed
	$(BIN)/tox run -e lint
