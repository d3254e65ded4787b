# Two commands for a fresh machine: `make run` and `make test`. Everything else is optional.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements-dev.lock pyproject.toml | cksum | cut -d' ' -f1)

AUDIT := tools/graphql-http-audit
AUDIT_STAMP := $(AUDIT)/node_modules/.installed

.PHONY: run test tools lint check lock schema schema-check clean bench bench-quick

$(STAMP): requirements-dev.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@rm -f $(VENV)/.installed-*
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation --editable .
	@touch $@

## run: migrate and seed the default SQLite database, print a demo token, serve GraphiQL on :8000
run: $(STAMP)
	$(BIN)/clientdesk migrate
	$(BIN)/clientdesk seed-demo --if-empty
	$(BIN)/clientdesk token create --staff admin@clientdesk.test --name "make run" --replace
	$(BIN)/clientdesk serve

## tools: the outside test tools from npm (graphql-http's audit), when npm is there
$(AUDIT_STAMP): $(AUDIT)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --prefix $(AUDIT) --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: the graphql-http audit test will be skipped" >&2; fi

tools: $(AUDIT_STAMP)

## test: the whole suite on SQLite, and on PostgreSQL too when TEST_DATABASE_URL is set
test: $(STAMP) $(AUDIT_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## bench: Clientdesk against PostGraphile 5 and the SQL floor on 1,000,000 clients (README, Performance)
bench: $(STAMP)
	$(BIN)/python -m bench.run $(BENCH_ARGS)

## bench-quick: the same on 100,000 clients with short runs
bench-quick: $(STAMP)
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

## lint: ruff and mypy --strict
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

check: lint test

## schema-check: fail on a breaking change to schema.graphql since SCHEMA_BASE (default: the
## previous commit) that README's changelog does not explain
SCHEMA_BASE ?= HEAD~1
schema-check: $(STAMP)
	$(BIN)/clientdesk schema-check --against $(SCHEMA_BASE)

## schema: regenerate schema.graphql from the code
schema: $(STAMP)
	$(BIN)/clientdesk export-schema --output schema.graphql

## lock: re-resolve the pinned dependencies (needs network)
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
		-c requirements.lock -o requirements-dev.lock

clean:
	rm -rf $(VENV) clientdesk.db clientdesk.db.write-turn .mypy_cache .ruff_cache .pytest_cache $(AUDIT)/node_modules
