# Everyday commands. Every target sets up what it needs first, from the pinned locks.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced-dev

.DEFAULT_GOAL := help
.PHONY: help setup demo test check lint typecheck iac unit bench lock format clean

help:
	@echo "make demo    run the main job: the local stack and one task per model and mode"
	@echo "make test    set up, lint, type-check and run every test (what CI runs)"
	@echo "make bench   run the benchmarks in bench/"
	@echo "make lock    re-pin the dependencies after editing pyproject.toml"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): requirements/dev.lock pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python requirements/dev.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --editable .
	touch $@

setup: $(STAMP)

# The main job: the local stack, one task per model and mode, live progress, a table.
demo: setup
	$(BIN)/wanflow demo

check: lint typecheck iac

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: setup
	$(BIN)/mypy
	@# Each handler is its own module named app: one mypy run per function.
	for f in functions/*/app.py; do $(BIN)/mypy "$$f" || exit 1; done

# The template (cfn-lint) and the state machine definitions (structure and transitions).
iac: setup
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python local/lint_asl.py

unit: setup
	$(BIN)/pytest tests/unit

test: check
	$(BIN)/pytest

bench: setup
	$(BIN)/python bench/catalog_import.py
	$(BIN)/python bench/moto_harness.py
	$(BIN)/python bench/lifecycle.py

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock: | $(UV)
	$(UV) pip compile --quiet pyproject.toml --universal --python-version 3.11 --generate-hashes -o requirements/runtime.lock
	$(UV) pip compile --quiet pyproject.toml --group dev --universal --python-version 3.11 --generate-hashes -o requirements/dev.lock

clean:
	rm -rf $(VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
