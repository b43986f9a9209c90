# The two quickstart commands: `make matrix` (the main job) and `make test`.
# Both create .venv with Python 3.12 and install the project into it first.

PYTHON := $(shell sh scripts/find-python)
VENV := .venv
BIN := $(VENV)/bin
# tox and the matrix cells find this interpreter first; toxfile.py adds pyenv's 3.10-3.13.
export PATH := $(dir $(PYTHON)):$(PATH)
export UV_PYTHON_DOWNLOADS := never

.PHONY: matrix pairwise demo test lint

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The smoke selection of the compatibility matrix (matrix/axes.toml): every Django, Python,
# psycopg_pool, psycopg, SQLAlchemy, PostgreSQL and engine value at least once.
matrix: $(BIN)/.installed
	$(BIN)/python -m matrix run smoke

pairwise: $(BIN)/.installed
	$(BIN)/python -m matrix run pairwise

demo: $(BIN)/.installed
	$(BIN)/python benchmarks/sharing.py

# Lint and mypy, then the whole suite once on the newest stack (.venv); other versions are the
# matrix's job (make matrix).
test: $(BIN)/.installed
	$(BIN)/tox run -e lint
	PYTHONDEVMODE=1 $(BIN)/python -m pytest -q -n 2

lint: $(BIN)/.installed
	$(BIN)/tox run -e lint
