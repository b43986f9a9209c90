# The two quickstart commands: `make matrix` (the main job) and `make test`.
# Both create .venv with Python 3.12 and install the project into it first.

PYTHON := $(shell sh scripts/find-python)
VENV := .venv
BIN := $(VENV)/bin
# tox and the matrix cells find this interpreter first; toxfile.py adds pyenv's 3.10-3.13.
export PATH := $(dir $(PYTHON)):$(PATH)
export UV_PYTHON_DOWNLOADS := never

.PHONY: matrix pairwise demo bench test lint docs docs-serve

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

# 16 threads on 4 connections, our engines against the stock pools: a few seconds.
demo: $(BIN)/.installed
	$(BIN)/python -m benchmarks.sharing

$(BIN)/.bench-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	touch $@

# Every contender side by side, the goals met or not, the results written to
# benchmarks/results/ and docs/img/benchmark/ (docs/performance.md): about 8.5 minutes on 2
# cores. Choose with ARGS, e.g. make bench ARGS="--quick --scenarios per_query".
bench: $(BIN)/.bench-installed
	$(BIN)/python -m benchmarks $(ARGS)

# Lint and mypy, then the whole suite once on the newest stack (.venv); other versions are the
# matrix's job (make matrix).
test: $(BIN)/.installed
	$(BIN)/tox run -e lint
	PYTHONDEVMODE=1 $(BIN)/python -m pytest -q -n 2

lint: $(BIN)/.installed
	$(BIN)/tox run -e lint

# The documentation site (MkDocs Material), built offline: Mermaid comes from the npm registry
# at build time, never from a CDN; the minified library is not committed.
DOCS_BUILD := build/docs
MERMAID_VERSION := 11.17.2
# Material prints a banner about its successor on every build; it says nothing about ours.
export NO_MKDOCS_2_WARNING := 1

$(BIN)/.docs-installed: $(BIN)/.installed pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	touch $@

$(DOCS_BUILD)/mermaid/mermaid.min.js:
	rm -rf $(DOCS_BUILD)/mermaid && mkdir -p $(DOCS_BUILD)/mermaid
	cd $(DOCS_BUILD)/mermaid && npm pack --silent mermaid@$(MERMAID_VERSION) >/dev/null \
		&& tar -xzf mermaid-$(MERMAID_VERSION).tgz package/dist/mermaid.min.js \
		&& mv package/dist/mermaid.min.js . && rm -rf package mermaid-$(MERMAID_VERSION).tgz

# Builds with --strict (a warning fails), then draws the pages in headless chromium, offline,
# and keeps the screenshots in $(DOCS_BUILD)/*.png. No PostgreSQL needed (--noconftest).
docs: $(BIN)/.docs-installed $(DOCS_BUILD)/mermaid/mermaid.min.js
	$(BIN)/mkdocs build --strict
	DOCS_SITE=$(DOCS_BUILD)/site $(BIN)/python -m pytest tests/test_docs_site.py -q --noconftest

docs-serve: $(BIN)/.docs-installed $(DOCS_BUILD)/mermaid/mermaid.min.js
	$(BIN)/mkdocs serve --strict
