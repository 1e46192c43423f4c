# Devora API v2. `make run` and `make test` work on a fresh machine with Python 3.11, apt and npm.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The local database (SecantusDB) lives in a virtualenv of its own: it runs as a separate
# process and is never importable from the API's environment.
DB_VENV := .venv-db
HOST ?= 127.0.0.1
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

CLIENT := clients/typescript

.PHONY: run test sandbox lint format openapi client golden bench chaos system-deps clean clean-data

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python requirements-v2.txt
	$(BIN)/pip install --quiet -r requirements-v2.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

$(DB_VENV)/.installed: requirements-db.txt
	$(PYTHON) -m venv $(DB_VENV)
	$(DB_VENV)/bin/pip install --quiet -r requirements-db.txt
	touch $@

# What the suite needs from Debian: redis-server, Node and npm (the TypeScript client),
# Chromium (Swagger UI, ReDoc and the client in a real browser), PostgreSQL (generated
# projects) and bubblewrap (the sandbox that runs jobs' code). Installed only when missing.
# PostgreSQL's server binaries are not on PATH: its
# pair names a path pattern, which `command -v` finds once the pattern matches a file.
# The packages of $(1) (`command:package` pairs) whose command is missing.
missing = $$(for pair in $(1); do command -v $${pair%%:*} >/dev/null || echo $${pair\#*:}; done)
DEBIAN_TOOLS := redis-server:redis-server node:nodejs npm:npm chromium:chromium \
	/usr/lib/postgresql/*/bin/initdb:postgresql bwrap:bubblewrap
system-deps:
	@missing="$(call missing,$(DEBIAN_TOOLS))"; \
	if [ -n "$$missing" ]; then \
		$(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	fi

$(CLIENT)/node_modules/.package-lock.json: $(CLIENT)/package-lock.json | system-deps
	cd $(CLIENT) && npm ci --no-audit --no-fund --loglevel=error

# Starts the local database (data in .data/mongodb), then the API; Ctrl-C stops both.
run: $(VENV)/.runtime $(DB_VENV)/.installed sandbox
	@$(BIN)/python -m backend dev --host $(HOST) --port $(PORT)

clean-data: $(VENV)/.runtime
	$(BIN)/python -m backend clean-data

# Two pytest-xdist workers, one test module each at a time (module fixtures stay together):
# 10.5 min instead of 14 here. `.venv/bin/pytest tests/…` runs a part serially.
test: $(VENV)/.dev $(DB_VENV)/.installed system-deps sandbox $(CLIENT)/node_modules/.package-lock.json
	$(BIN)/pytest -n 2 --dist loadfile

# The sandbox tool (bubblewrap) and PostgreSQL (a postgresql project's checks start it inside
# the sandbox), from Debian, and the dependency environment, built once per set of pins. Where
# any cannot be had (no apt, no index), jobs still run, the checks they need `skipped`;
# `make test` needs them all (they come with system-deps too).
SANDBOX_TOOLS := bwrap:bubblewrap /usr/lib/postgresql/*/bin/initdb:postgresql
sandbox: $(VENV)/.runtime
	@missing="$(call missing,$(SANDBOX_TOOLS))"; \
	[ -z "$$missing" ] || { $(SUDO) apt-get update -qq && \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; } || \
		echo "not installed: $$missing; the jobs' checks that need it will be skipped"
	@$(BIN)/python -m backend sandbox-env >/dev/null || echo "jobs' checks will be skipped"

lint: $(VENV)/.dev $(CLIENT)/node_modules/.package-lock.json
	cd $(CLIENT) && npm run -s typecheck
	$(BIN)/ruff check backend api_v2 schemas tests bench
	$(BIN)/ruff format --check backend api_v2 schemas tests bench
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff format backend api_v2 schemas tests bench
	$(BIN)/ruff check --fix backend api_v2 schemas tests bench

openapi: $(VENV)/.runtime
	$(BIN)/python -m backend export-openapi --output openapi.yaml

# Regenerate the TypeScript client's types from openapi.yaml (the suite fails while they differ).
client: openapi $(CLIENT)/node_modules/.package-lock.json
	cd $(CLIENT) && npm run -s generate && npm run -s typecheck

# Rewrite the generator's golden files (tests/generation/golden/) after changing a template.
golden: $(VENV)/.runtime
	$(BIN)/python -m tests.support.golden

# About 45 minutes: bench.overhead alone is ~25 (its RSS soak is 10 of them).
bench: $(VENV)/.dev $(DB_VENV)/.installed
	@command -v wrk >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(BIN)/python -m bench.overhead
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.jobs
	$(BIN)/python -m bench.agentic

# About 10 minutes: each fault under a mixed load, then everything read back (bench/chaos.py).
chaos: $(VENV)/.dev $(DB_VENV)/.installed system-deps
	$(BIN)/python -m bench.chaos

clean:
	rm -rf $(VENV) $(DB_VENV) .pytest_cache .mypy_cache .ruff_cache
