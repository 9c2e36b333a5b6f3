# The two commands a newcomer needs: `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STACK  := $(BIN)/socpipe stack
# Where the local stack keeps pids, logs, data and its env file (exported for every socpipe command).
export SOCPIPE_STACK_DIR ?= $(CURDIR)/.socpipe/stack

.PHONY: demo test lint bench prereqs venv stack-up stack-down clean dist agent-deb

$(BIN)/socpipe: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,stack]'
	touch $@

venv: $(BIN)/socpipe

# System programs the local stack needs (Debian): Java 17 and Maven for Kafka, Prometheus;
# rsyslog + omkafka only for the agent benchmark; chromium + chromedriver for the browser test of
# the triage queue.
prereqs:
	@missing=""; \
	command -v java >/dev/null || missing="$$missing openjdk-17-jre-headless"; \
	command -v mvn >/dev/null || missing="$$missing maven"; \
	command -v prometheus >/dev/null || missing="$$missing prometheus"; \
	command -v logger >/dev/null || missing="$$missing bsdutils"; \
	command -v dpkg-deb >/dev/null || missing="$$missing dpkg"; \
	command -v lintian >/dev/null || missing="$$missing lintian"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

stack-up: venv prereqs
	$(STACK) up

stack-down:
	-$(STACK) down

demo: stack-up
	$(BIN)/socpipe demo
	@echo; echo "The stack keeps running. Stop it with: $(STACK) down"

# Lint before any test: ruff (lint + format) and mypy (strict on collectors/, detectors/ and pipeline/; every
# body of tests/ checked, annotations optional: see [tool.mypy] in pyproject.toml). `make test` fails when
# any of them fails.
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Tests run against the secured broker (SASL_SSL + SCRAM + ACLs next to the loopback listener), so the
# agents' own principals and the SOC's super user are exercised on every run.
test: lint venv prereqs
	$(STACK) up --secure
	. $(SOCPIPE_STACK_DIR)/env && $(BIN)/python -m pytest -q -p no:cacheprovider tests; rc=$$?; \
	$(STACK) down; exit $$rc

bench: venv prereqs
	@command -v rsyslogd >/dev/null && dpkg -s rsyslog-kafka >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rsyslog rsyslog-kafka >/dev/null || true; }
	$(STACK) up >/dev/null
	@set -e; . $(SOCPIPE_STACK_DIR)/env; summary=$$(mktemp); export SOCPIPE_BENCH_SUMMARY=$$summary; \
	for b in tests/bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b; done; \
	echo "== every target in this run (machine: $$(nproc) cores)"; $(BIN)/python tests/bench/benchreport.py $$summary; rm -f $$summary

# The wheels (socpipe-agent: the agent alone; socpipe-soc: the SOC side) and their SHA-256.
dist: venv
	$(BIN)/python release/build.py wheels --out dist

# The agent's Debian package (dpkg-deb), checked by lintian.
agent-deb: venv prereqs
	$(BIN)/python release/build.py deb --out dist
	lintian --fail-on error,warning dist/socpipe-agent_*_all.deb

clean: stack-down
	rm -rf $(VENV) .socpipe
