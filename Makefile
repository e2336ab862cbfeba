# Dredge. `make demo` runs the pipeline end to end on embedded defaults; `make test` runs the tests.
# Both do their own set-up (venv, jars, emulator) on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
CONF ?= conf/local.yaml
PYTEST_ARGS ?=
# The local emulators accept any credentials; on AWS the default credential chain is used.
export AWS_ACCESS_KEY_ID ?= dredge-local
export AWS_SECRET_ACCESS_KEY ?= dredge-local
export AWS_DEFAULT_REGION ?= us-east-1


.PHONY: build notebooks help setup services-up services-down services-status demo test test-unit lint bench clean

help: ## show this help
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-16s %s\n", $$1, $$2}'

setup: ## install the venv, fetch jars from Maven Central, install kinesalite (idempotent)
	@scripts/setup.sh

services-up: setup ## start kinesalite and the Kafka broker on 127.0.0.1
	@scripts/services.sh up

services-down: ## stop the local services
	@scripts/services.sh down

services-status: ## show whether the local services run
	@scripts/services.sh status

demo: setup ## run the main job end to end on embedded defaults
	@scripts/services.sh up
	@rc=0; $(VENV)/bin/dredge demo --conf $(CONF) || rc=$$?; scripts/services.sh down; exit $$rc

test: setup ## run the whole test suite (starts and stops the local services)
	@scripts/services.sh up
	@rc=0; $(PY) -m pytest $(PYTEST_ARGS) || rc=$$?; scripts/services.sh down; exit $$rc

test-unit: setup ## run only the tests that need no services
	$(PY) -m pytest -m "not integration and not e2e" $(PYTEST_ARGS)

lint: setup ## ruff and mypy
	$(VENV)/bin/ruff check spark_jobs tests bench deploy scripts notebooks
	$(VENV)/bin/ruff format --check spark_jobs tests bench deploy scripts notebooks
	$(VENV)/bin/mypy spark_jobs

bench: setup ## run the benchmarks; figures go to bench/results/*.json
	@scripts/services.sh up
	@rc=0; $(PY) -m bench || rc=$$?; scripts/services.sh down; exit $$rc

notebooks: setup ## execute the notebooks against the demo output (run `make demo` first)
	$(PY) scripts/run_notebooks.py --enriched $${DREDGE_ENRICHED:-data/demo/enriched}

build: setup ## wheel + cluster files (EMR/Databricks) into dist/
	@scripts/build.sh

clean: ## remove local data, reports and run state (keeps venv and jars)
	rm -rf data reports .run spark-warehouse

include mk/druid.mk
