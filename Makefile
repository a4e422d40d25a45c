# Quick start: `make run` (the whole system on embedded defaults) and `make test` (every test).
# Both set themselves up: a virtual environment in .venv, Python and npm dependencies.
SHELL := /bin/bash
.DEFAULT_GOAL := run

# Django 6 needs Python >= 3.12: use the newest interpreter found, 3.11 at the least.
PYTHON ?= $(shell for p in python3.14 python3.13 python3.12 $$HOME/.pyenv/versions/3.1[2-9]*/bin/python3 python3.11 python3; do \
	if $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then echo $$p; break; fi; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# Alpaca's OpenAPI specs for the contract tests' fake Alpaca, from a pinned wheel that ships them.
# Only its two JSON files are read (never imported), so its own dependencies are not installed.
ALPACA_SPECS := alpaca-mcp-server==2.4.0
# The demo moves one simulated 5-minute bar every 10 s; set COLLECT_INTERVAL_SECONDS to change it.
export COLLECT_INTERVAL_SECONDS ?= 10

.PHONY: run test setup lint format bench clean wordpress-plugin test-wordpress

$(STAMP): pyproject.toml Makefile $(wildcard package.json package-lock.json)
	@test -n "$(PYTHON)" || { echo "Python 3.11+ is needed"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps '$(ALPACA_SPECS)'
	@if [ -f package.json ]; then npm ci --no-audit --no-fund --loglevel=error; fi
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/python -m tradingrobot.launcher

# The tests run on the development settings (DEBUG on at import: no HTTPS redirect, a generated
# SECRET_KEY); pytest-django still runs each test with DEBUG off, as production does.
test: setup
	DEBUG=$${DEBUG:-true} $(BIN)/python -m tradingrobot.embedded_redis -- $(BIN)/python -m pytest $(PYTEST_ARGS)

# The WordPress plugin as an "Upload plugin" zip, with lightweight-charts copied in from npm.
wordpress-plugin: setup
	$(BIN)/python wordpress/build_plugin.py

# Only the WordPress suite (a fresh WordPress on MariaDB, the backend, PHPUnit, Chromium).
test-wordpress: setup
	$(BIN)/python -m tradingrobot.embedded_redis -- $(BIN)/python -m pytest tests/wordpress $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: setup
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) var node_modules dist build/wordpress
