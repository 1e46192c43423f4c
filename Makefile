# Devora API v2. `make run` and `make test` work on a fresh machine with Python 3.11, apt and npm.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint format openapi bench system-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.runtime: $(BIN)/python requirements-v2.txt
	$(BIN)/pip install --quiet -r requirements-v2.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

system-deps:
	@command -v redis-server >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server)

run: $(VENV)/.runtime
	@echo "Devora API on http://$(HOST):$(PORT) — docs at http://$(HOST):$(PORT)/docs"
	$(BIN)/uvicorn backend.main:app --host $(HOST) --port $(PORT) --no-access-log --no-proxy-headers

test: $(VENV)/.dev system-deps
	$(BIN)/pytest

lint: $(VENV)/.dev
	$(BIN)/ruff check backend api_v2 schemas tests bench
	$(BIN)/ruff format --check backend api_v2 schemas tests bench
	$(BIN)/mypy

format: $(VENV)/.dev
	$(BIN)/ruff format backend api_v2 schemas tests bench
	$(BIN)/ruff check --fix backend api_v2 schemas tests bench

openapi: $(VENV)/.runtime
	$(BIN)/python -m backend export-openapi --output openapi.yaml

bench: $(VENV)/.dev
	@command -v wrk >/dev/null || ($(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk)
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
