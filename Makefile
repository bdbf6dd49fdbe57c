# driftline: streaming features (Feast) and drift alerts from HR chatbot traffic (PyFlink, Kafka).
# `make help` lists the targets. Everything runs from a virtualenv in .venv.

VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3.11

.DEFAULT_GOAL := help
.PHONY: help install demo test test-unit test-integration bench bench-quick alibi-env lint up down clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-17s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev]'
	$(PY) -m streams.assets
	touch $@

install: $(VENV)/.installed ## create .venv, install driftline, fetch the Flink Kafka jars and the Tansu broker

demo: install ## the whole product end to end: stack, jobs, simulated traffic with drift, features, alerts
	$(VENV)/bin/driftline demo

test: install ## unit + integration tests (starts the local stack itself)
	$(PY) -m pytest -q -p no:cacheprovider

test-unit: install ## pure tests only (seconds)
	$(PY) -m pytest -q tests/unit

test-integration: install ## tests against the real broker, Redis and a Flink mini-cluster
	$(PY) -m pytest -q -m integration tests/integration

bench: install ## the standard benchmark set (about 45 minutes), results in benchmarks/RESULTS.md
	$(PY) -m benchmarks.run

bench-quick: install ## a smoke version of each benchmark (results in benchmarks/out/quick)
	$(PY) -m benchmarks.run --quick

alibi-env: install ## the separate alibi-detect venv the drift benchmarks compare against
	$(PY) -m benchmarks.peers.alibi_env

lint: install ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

up: install ## start the local stack (broker, Redis, topics)
	$(VENV)/bin/driftline up

down: ## stop what `make up` started
	$(VENV)/bin/driftline down

clean: down ## remove local state (not the venv or the download cache)
	rm -rf .driftline
