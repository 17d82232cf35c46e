# The two commands a newcomer needs: `make run` and `make test`. Everything they need is
# installed from here (a virtualenv from pyproject.toml pinned by requirements/constraints.txt,
# and Debian's chromium for the browser tests).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
STAMP := $(VENV)/.installed
SCALE ?= small

.PHONY: help install system-deps run web worker beat setup test lint typecheck pytest demo bench bench-pg bench-pg-run faults clean hooks

help:
	@echo "make run    set up and start web (127.0.0.1:8000), a Celery worker and beat"
	@echo "make test   set up and run ruff, mypy and the test suite"
	@echo "make demo   a scripted run of the main job in a fresh var/demo/"
	@echo "make bench  benchmarks (SCALE=small|medium|large)"

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium drives the browser tests; Playwright cannot download its own here.
# The broker-restart and beat fault tests start their own redis-server.
system-deps:
	@if [ ! -x /usr/bin/chromium ]; then \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	@if [ ! -x /usr/bin/redis-server ]; then \
	  echo "Installing Debian's redis-server for the fault tests..."; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq redis-server >/dev/null; \
	fi

setup: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py crm ensure-admin
	$(PY) manage.py crm setup-periodic-tasks
	$(PY) manage.py devtools load-demo-data

run: setup
	@echo
	@echo "Starting web on http://127.0.0.1:8000/admin/ , a Celery worker and beat. Ctrl-C stops all."
	@echo "Sent email lands in var/outbox/email/*.eml, SMS in var/outbox/sms.jsonl."
	@echo
	$(BIN)/honcho start -f Procfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

# The same ruff and mypy checks before each commit (.pre-commit-config.yaml).
hooks: install
	$(BIN)/pre-commit install

# Tests keep their files under var/test/ so they never touch a running `make run`.
pytest: install system-deps
	VAR_DIR=$(CURDIR)/var/test $(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck pytest

# The demo signs its simulated Twilio replies and ESP webhooks with these demo-only secrets.
demo: install
	rm -rf var/demo
	VAR_DIR=$(CURDIR)/var/demo TWILIO_AUTH_TOKEN=demo-twilio-auth-token \
	  WEBHOOK_SECRET=demo:demo-webhook-secret $(PY) manage.py devtools demo

# A fresh SQLite database under var/bench/ each run (or the empty database DATABASE_URL names).
bench: install
	rm -rf var/bench
	VAR_DIR=$(CURDIR)/var/bench $(PY) manage.py migrate --noinput >/dev/null
	VAR_DIR=$(CURDIR)/var/bench $(PY) manage.py devtools bench --scale $(SCALE)

# The same on a throwaway PostgreSQL 15 + Redis (fsync on), e.g. `make bench-pg SCALE=medium`.
bench-pg: install
	.ci/with-services $(MAKE) --no-print-directory bench-pg-run SCALE=$(SCALE)

bench-pg-run:
	rm -rf var/bench-pg
	VAR_DIR=$(CURDIR)/var/bench-pg $(PY) manage.py migrate --noinput >/dev/null
	VAR_DIR=$(CURDIR)/var/bench-pg $(PY) manage.py devtools bench --scale $(SCALE)

# The slow fault-injection tests (killed workers, restarted broker and beat, 100,000 tokens).
faults: install system-deps
	VAR_DIR=$(CURDIR)/var/test-faults $(BIN)/pytest -m slow tests/faults $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var/test var/demo .mypy_cache .ruff_cache .pytest_cache
