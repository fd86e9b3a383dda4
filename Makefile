# Everyday commands. Every target sets up what it needs first, from the pinned locks.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.synced-dev
# schemathesis lives in a venv of its own: its pins must not move the test suite's.
FUZZ_VENV := .venv-fuzz
FUZZ_STAMP := $(FUZZ_VENV)/.synced-fuzz

.DEFAULT_GOAL := help
.PHONY: help setup demo test check lint typecheck iac openapi-check openapi fuzz unit bench lock \
	format clean

help:
	@echo "make demo    run the main job: the local stack and one task per model and mode"
	@echo "make test    set up, lint, type-check and run every test (what CI runs)"
	@echo "make bench   run the benchmarks in bench/"
	@echo "make openapi rewrite shared/wanflow/openapi.json after changing routes or models"
	@echo "make fuzz    schemathesis over the local stack's OpenAPI document (part of make test)"
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

$(FUZZ_STAMP): requirements/fuzz.lock | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(FUZZ_VENV)
	$(UV) pip sync --quiet --python $(FUZZ_VENV)/bin/python requirements/fuzz.lock
	touch $@

# The main job: the local stack, one task per model and mode, live progress, a table.
demo: setup
	$(BIN)/wanflow demo

check: lint typecheck iac openapi-check

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

# The committed OpenAPI document must be what the code produces (`make openapi` rewrites it).
openapi-check: setup
	$(BIN)/python -m wanflow.openapi --check

openapi: setup
	$(BIN)/python -m wanflow.openapi

# schemathesis against `wanflow local`: zero 5xx, and answers as the document says.
fuzz: setup $(FUZZ_STAMP)
	local/fuzz.sh

unit: setup
	$(BIN)/pytest tests/unit

test: check
	$(BIN)/pytest
	$(MAKE) --no-print-directory fuzz

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
	$(UV) pip compile --quiet --group fuzz --universal --python-version 3.11 --generate-hashes -o requirements/fuzz.lock

clean:
	rm -rf $(VENV) $(FUZZ_VENV) $(TOOLS) .mypy_cache .pytest_cache .ruff_cache
