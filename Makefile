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
# SAM CLI and checkov too (they pin boto3 and cfn-lint differently from each other and from moto).
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.synced-sam
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.synced-checkov
export SAM_CLI_TELEMETRY := 0

.DEFAULT_GOAL := help
.PHONY: help setup demo test check lint typecheck iac openapi-check openapi fuzz build unit bench \
	lock format clean

help:
	@echo "make demo    run the main job: the local stack and one task per model and mode"
	@echo "make test    set up, lint, type-check and run every test (what CI runs)"
	@echo "make bench   run the benchmarks in bench/"
	@echo "make openapi rewrite shared/wanflow/openapi.json after changing routes or models"
	@echo "make fuzz    schemathesis over the local stack's OpenAPI document (part of make test)"
	@echo "make build   sam build, bytecode recompiled for Lambda, artifact sizes (part of make test)"
	@echo "make lock    re-pin the dependencies after editing pyproject.toml"

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): requirements/dev.lock pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python requirements/dev.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps --editable .
	touch $@

# The local stack deploys the template after the SAM transform, which runs in the SAM venv.
setup: $(STAMP) $(SAM_STAMP)

$(FUZZ_STAMP): requirements/fuzz.lock | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(FUZZ_VENV)
	$(UV) pip sync --quiet --python $(FUZZ_VENV)/bin/python requirements/fuzz.lock
	touch $@

$(SAM_STAMP): requirements/sam.lock | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(SAM_VENV)
	$(UV) pip sync --quiet --python $(SAM_VENV)/bin/python requirements/sam.lock
	touch $@

$(CHECKOV_STAMP): requirements/checkov.lock | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(CHECKOV_VENV)
	$(UV) pip sync --quiet --python $(CHECKOV_VENV)/bin/python requirements/checkov.lock
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

# The template (cfn-lint, SAM's own lint, checkov: every finding fixed or suppressed in the
# template with its reason), the template CloudFormation gets (after the SAM transform: what
# only its output has, such as a circular dependency) and the state machine definitions
# (structure and transitions).
iac: setup $(SAM_STAMP) $(CHECKOV_STAMP)
	$(BIN)/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint --region us-east-1 --template template.yaml
	$(SAM_VENV)/bin/python local/check_transformed.py template.yaml
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download
	$(BIN)/python local/lint_asl.py

# sam build as Lambda needs it (bytecode recompiled unchecked-hash), then artifact sizes.
build: setup $(SAM_STAMP)
	$(BIN)/python local/lambda_build.py

# The committed OpenAPI document must be what the code produces (`make openapi` rewrites it).
openapi-check: setup
	$(BIN)/python -m wanflow_local.openapi --check

openapi: setup
	$(BIN)/python -m wanflow_local.openapi

# schemathesis against `wanflow local`: zero 5xx, and answers as the document says.
fuzz: setup $(FUZZ_STAMP)
	local/fuzz.sh

unit: setup
	$(BIN)/pytest tests/unit

# pytest runs last: CI reads the closing summary line, and schemathesis closes with a
# pytest-like line of its own ("3 warnings in 18s") that would read as "no test ran".
test: check build fuzz
	$(BIN)/pytest

# coldstart builds the functions with SAM CLI (its venv), as `make build` does.
bench: setup $(SAM_STAMP)
	$(BIN)/python bench/catalog_import.py
	$(BIN)/python bench/moto_harness.py
	$(BIN)/python bench/lifecycle.py
	$(BIN)/python bench/coldstart.py
	$(BIN)/python bench/cost.py

format: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock: | $(UV)
	$(UV) pip compile --quiet pyproject.toml --universal --python-version 3.11 --generate-hashes -o shared/requirements.txt
	$(UV) pip compile --quiet pyproject.toml --group dev --universal --python-version 3.11 --generate-hashes -o requirements/dev.lock
	$(UV) pip compile --quiet --group fuzz --universal --python-version 3.11 --generate-hashes -o requirements/fuzz.lock
	$(UV) pip compile --quiet --group sam --universal --python-version 3.11 --generate-hashes -o requirements/sam.lock
	$(UV) pip compile --quiet --group checkov --universal --python-version 3.11 --generate-hashes -o requirements/checkov.lock

clean:
	rm -rf $(VENV) $(FUZZ_VENV) $(SAM_VENV) $(CHECKOV_VENV) $(TOOLS) .aws-sam .mypy_cache .pytest_cache .ruff_cache
