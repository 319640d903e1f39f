# highseas — `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# PostgreSQL used by the test suite (each run makes and drops its own database on it).
export HIGHSEAS_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test
# How long `make soak` sends its load, in seconds (setup, drain and checks come on top).
SOAK_SECONDS ?= 120

.PHONY: help install run demo test test-fast lint typecheck migrations-check check bench bench-api soak clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## create .venv and install highseas with its dev tools

run: $(STAMP) ## start the service on the embedded SQLite default at http://127.0.0.1:8000
	$(BIN)/highseas serve

demo: $(STAMP) ## an offline tour of a few seconds on a throwaway database (./highseas.db untouched)
	$(BIN)/highseas demo

test: $(STAMP) ## run the whole test suite, on SQLite and PostgreSQL
	$(BIN)/pytest

test-fast: $(STAMP) ## the suite without the slow process tests
	$(BIN)/pytest -m 'not slow'

lint: $(STAMP) ## ruff (lint and format check)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP) ## mypy, strict on src/
	$(BIN)/mypy

migrations-check: $(STAMP) ## alembic check: models and migrations agree (on a scratch SQLite database)
	@tmp=$$(mktemp -d) && trap 'rm -rf $$tmp' EXIT && \
	  HIGHSEAS_DATABASE_URL=sqlite:///$$tmp/check.db $(BIN)/alembic upgrade head && \
	  HIGHSEAS_DATABASE_URL=sqlite:///$$tmp/check.db $(BIN)/alembic check

check: lint typecheck migrations-check test ## everything CI runs

bench: $(STAMP) bench-api ## the slow benchmarks (1M rows each; minutes); results go in bench/README.md
	$(BIN)/python bench/pool_load.py
	$(BIN)/python bench/import.py --both

bench-api: $(STAMP) ## customer_to_task accept under load vs a bare FastAPI endpoint (both databases)
	$(BIN)/python bench/api.py --both

soak: $(STAMP) ## scale-out under load and faults on a throwaway PostgreSQL (SOAK_SECONDS=120; soak/README.md)
	$(BIN)/python -m soak --seconds $(SOAK_SECONDS)

clean: ## remove the virtualenv and caches (keeps highseas.db)
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
