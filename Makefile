# The README's two commands: `make dev` runs everything on this machine, `make test` checks it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LOCK := requirements.lock
PYTEST_ARGS ?=

export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: venv lock dev test migrations-check migration bench clean

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

## test: lint, format check, type check, import contracts, models == migrations, then the test
##       suite (PYTEST_ARGS='-k cart' to narrow)
test: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory migrations-check
	$(BIN)/pytest $(PYTEST_ARGS)

## migrations-check: fails when the models and the migrations disagree (a scratch SQLite database
##       upgraded to head, then `alembic check`); tests/platform/test_migrations.py does PostgreSQL
migrations-check: venv
	@scratch=$$(mktemp -d) && \
	export WINBACK_DATABASE_URL="sqlite+aiosqlite:///$$scratch/check.db" && \
	$(BIN)/alembic upgrade head && $(BIN)/alembic check; \
	status=$$?; rm -rf "$$scratch"; exit $$status

## migration: write the next migration from the models, m="what changed" (on a scratch database
##       at the current head; read what it wrote, then commit it)
migration: venv
	@test -n "$(m)" || { echo 'usage: make migration m="what changed"' >&2; exit 2; }
	@scratch=$$(mktemp -d) && \
	export WINBACK_DATABASE_URL="sqlite+aiosqlite:///$$scratch/head.db" && \
	$(BIN)/alembic upgrade head && $(BIN)/alembic revision --autogenerate -m "$(m)"; \
	status=$$?; rm -rf "$$scratch"; exit $$status

## bench: cart throughput benchmark
bench: venv
	$(BIN)/python -m bench.cart_throughput

## clean: remove the virtualenv, caches and build output (keeps .winback/, the local data)
clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
