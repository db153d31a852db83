# The README's two commands: `make dev` runs everything on this machine, `make test` checks it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv lock dev test bench clean

## venv: create .venv with the pinned dependencies of requirements.lock, and winback itself
venv: $(STAMP)

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r $(LOCK) -e '.[dev]'
	touch $(STAMP)

## lock: re-pin every dependency after a change to pyproject.toml's dependencies
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install pip-tools
	$(BIN)/pip-compile --quiet --strip-extras --extra dev --no-emit-index-url --no-emit-find-links --output-file $(LOCK) pyproject.toml

## dev: Temporal dev server, worker and API on this machine (SQLite, outbox; no keys needed)
dev: venv
	$(BIN)/winback dev

## test: lint, format check, type check, import contracts, then the test suite (PYTEST_ARGS='-k cart' to narrow)
test: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

## bench: cart throughput benchmark
bench: venv
	$(BIN)/python -m bench.cart_throughput

## clean: remove the virtualenv, caches and build output (keeps .winback/, the local data)
clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
