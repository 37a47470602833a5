# Two commands for a newcomer: `make demo` and `make test`. Everything else is what they call.
SHELL := /bin/bash
VENV := .venv
RUNTIME_VENV := .venv-lambda-runtime
CHECKOV_VENV := .venv-checkov
BIN := $(VENV)/bin
# sam build (no container) runs `python3.13` from PATH: the venv's own one comes first.
export PATH := $(CURDIR)/$(BIN):$(PATH)
export SAM_CLI_TELEMETRY := 0
export LAMBDA_RUNTIME_PYTHON := $(CURDIR)/$(RUNTIME_VENV)/bin/python
# pytest-xdist, three workers: on CI's two cores a third keeps both busy while e2e tests wait on their local
# cloud (a fourth was slower: one more collection and more local clouds). A test file runs in one worker, so its
# module fixtures (a served local cloud, a deploy) are made once; two workers take the e2e files while the third
# runs in-process files, the longest files first (tests/xdist_scheduling.py).
PYTEST_WORKERS := -n 3 --dist loadfile --no-loadscope-reorder

.PHONY: demo test lint scan build unit e2e clean diagram

UV := $(BIN)/uv pip install -q

$(BIN)/.installed: requirements-installer.txt requirements-dev.txt requirements-lambda-runtime.txt pyproject.toml
	@py=$$(scripts/find-python313) || exit 1; \
	  test -x $(BIN)/python || $$py -m venv $(VENV); \
	  test -x $(RUNTIME_VENV)/bin/python || $$py -m venv $(RUNTIME_VENV)
	$(BIN)/python -m pip install -q -r requirements-installer.txt
	$(UV) --python $(BIN)/python -r requirements-dev.txt
	$(UV) --python $(BIN)/python --no-deps -e .
	$(UV) --python $(RUNTIME_VENV)/bin/python -r requirements-lambda-runtime.txt
	touch $@

# Bytecode for everything installed, compiled once per install: a Python that may not write it
# (PYTHONDONTWRITEBYTECODE set, a read-only tree) compiles every module it imports again in each process,
# and make demo and make test start many (local clouds, sam runs, Lambda runtimes, test workers).
$(BIN)/.compiled: $(BIN)/.installed
	-$(BIN)/python -W ignore -m compileall -qq -j 0 $(VENV)/lib
	-$(RUNTIME_VENV)/bin/python -W ignore -m compileall -qq -j 0 $(RUNTIME_VENV)/lib
	touch $@

.aws-sam/build/template.yaml: $(BIN)/.installed template.yaml samconfig.toml $(shell find functions layers statemachine roles -type f -not -path '*/__pycache__/*' 2>/dev/null)
	$(BIN)/sam build --cached

# The local cloud's own bytecode too (up to date in a moment when nothing changed).
build: $(BIN)/.compiled .aws-sam/build/template.yaml
	@$(BIN)/python -W ignore -m compileall -q local_cloud

lint: $(BIN)/.compiled
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml $(wildcard roles/*.yaml)
	$(BIN)/sam validate --lint

$(CHECKOV_VENV)/.installed: requirements-checkov.txt $(BIN)/.installed
	@py=$$(scripts/find-python313) || exit 1; test -x $(CHECKOV_VENV)/bin/python || $$py -m venv $(CHECKOV_VENV)
	$(UV) --python $(CHECKOV_VENV)/bin/python -r requirements-checkov.txt
	touch $@

scan: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --config-file .checkov.yaml -f template.yaml $(wildcard roles/*.yaml)

unit: $(BIN)/.compiled
	$(BIN)/pytest $(PYTEST_WORKERS) -m "not e2e"

e2e: build
	$(BIN)/pytest $(PYTEST_WORKERS) -m e2e

# The grants' coverage (tests/e2e/test_iam_grants_used.py) reads what every e2e local cloud recorded, so it
# runs once the parallel run is over.
IAM_REPORTS := $(CURDIR)/.pytest-iam-reports

# pytest's assertion-rewritten bytecode of the test modules, written once, beside the build, rather than by each worker
# as it collects (about 3 s of CPU per worker on a clean clone). Collecting also says at once when a module fails to
# import.
TESTS_BYTECODE := .pytest-bytecode
$(TESTS_BYTECODE): $(BIN)/.installed $(shell find tests -name '*.py' -not -path '*/__pycache__/*')
	@$(BIN)/pytest -p no:xdist -p no:cacheprovider --collect-only -q > $@.log 2>&1 || { tail -30 $@.log; exit 1; }
	@rm -f $@.log && touch $@

test: lint scan
	@$(MAKE) --no-print-directory -j2 build $(TESTS_BYTECODE)
	rm -rf $(IAM_REPORTS)
	IAM_REPORTS_DIR=$(IAM_REPORTS) $(BIN)/pytest $(PYTEST_WORKERS)
	IAM_REPORTS_DIR=$(IAM_REPORTS) $(BIN)/pytest tests/e2e/test_iam_grants_used.py

demo: build
	$(BIN)/cloudtrail-onboarding demo

# docs/overview.* and docs/state-machine.* from template.yaml, the ASL and roles/ (tests fail when they are stale).
diagram: $(BIN)/.installed
	$(BIN)/python scripts/diagram.py
	@command -v dot >/dev/null || { echo "Graphviz 'dot' not found: apt-get install graphviz"; exit 1; }
	$(BIN)/python scripts/diagram.py --render

clean:
	rm -rf .aws-sam $(VENV) $(RUNTIME_VENV) $(CHECKOV_VENV) $(TESTS_BYTECODE)
