# simtui — run `make help` for the list of targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help

help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | \
	  awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36mmake %-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) ## Create .venv and install simtui with its dev extras (quick when up to date)

run: $(STAMP) ## Start the dashboard on the embedded database (or SIMTUI_DATABASE_URL)
	$(BIN)/simtui

test: $(STAMP) ## Run the whole test suite (starts the services the tests need)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(STAMP) ## ruff
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

typecheck: $(STAMP) ## mypy (strict on simcore)
	$(BIN)/mypy

check: lint typecheck test ## ruff + mypy + tests

fmt: $(STAMP) ## Format the code
	$(BIN)/ruff format src tests bench
	$(BIN)/ruff check --fix src tests bench

clean: ## Remove the virtualenv and caches
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install run test lint typecheck check fmt clean
