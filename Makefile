# Every target sets up its own environment: `make invoke` and `make test` work on a fresh machine.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# sam build for the python3.13 runtime needs python3.13 on PATH; pyenv installs it off PATH.
PYENV_ROOT ?= $(shell pyenv root 2>/dev/null || echo $(HOME)/.pyenv)
PY313 := $(firstword $(wildcard $(PYENV_ROOT)/versions/3.13.0/bin/python3.13) $(shell command -v python3.13 2>/dev/null))
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(if $(PY313),$(dir $(PY313)):)$(PATH)
export SAM_CLI_TELEMETRY := 0

FUNCTION ?= writer
EVENT ?= events/$(FUNCTION).json
ENV ?= default
STACK ?=

.PHONY: help venv build invoke test lint bench deploy delete verify preflight publish clean

help:
	@echo "make invoke [FUNCTION=writer] [EVENT=events/writer.json]  build, then invoke locally (no Docker)"
	@echo "make test                                              lint, template checks, unit/crash/e2e tests"
	@echo "make build                                             sam build (the layer ships its .pyc)"
	@echo "make bench | deploy [ENV=prod] [SKIP_PREFLIGHT=1] | delete [ENV=prod]"
	@echo "make publish BUCKET=<artifact bucket> [REGION=eu-west-1] [VERSION=0.2.0]   the functions to SAR"
	@echo "make preflight [ENV=prod] [ARGS=\"--parameter-overrides ReservedConcurrency=5 --region eu-west-1\"]"
	@echo "make verify STACK=... [ARGS=\"--wait-seconds 900 --region eu-west-1\"]"

$(VENV)/.stamp: requirements-dev.txt
	@if [ -z "$(PY313)" ]; then \
	  echo "error: Python 3.13 not found (looked in $(PYENV_ROOT)/versions/3.13.0/bin and on PATH)." >&2; \
	  echo "       Install it with 'pyenv install 3.13.0' (the python3.13 Lambda runtime; sam build needs it)." >&2; \
	  exit 1; fi
	$(PY313) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

.venv-checkov/.stamp: requirements-checkov.txt $(VENV)/.stamp
	$(PY313) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet -r requirements-checkov.txt
	@touch $@

venv: $(VENV)/.stamp .venv-checkov/.stamp

build: $(VENV)/.stamp
	sam build --cached --parallel

invoke: build
	$(PY) scripts/local_invoke.py --function $(FUNCTION) --event $(EVENT)

lint: $(VENV)/.stamp
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	MYPYPATH=layers/shared $(VENV)/bin/mypy --strict layers/shared/s3files_store
	for f in functions/*/app.py infra/*/app.py; do MYPYPATH=layers/shared $(VENV)/bin/mypy --strict "$$f" || exit 1; done

test: venv lint
	$(PY) -m pytest

bench: build
	$(PY) bench/run.py

# The preflight checks the account before anything is built or created; SKIP_PREFLIGHT=1 skips it.
deploy: $(VENV)/.stamp
ifeq ($(SKIP_PREFLIGHT),)
	@$(PY) scripts/verify.py preflight --config-env $(ENV) || { \
	  echo "make deploy: stopped before creating anything. Fix the FAIL lines above, or deploy anyway:" \
	       "SKIP_PREFLIGHT=1 make deploy ENV=$(ENV)" >&2; exit 1; }
endif
	@$(MAKE) --no-print-directory build
	sam deploy --config-env $(ENV)

delete: $(VENV)/.stamp
	@echo "Deleting the stack. The data bucket is retained (DeletionPolicy: Retain): empty and delete it yourself."
	@echo "The file system cannot be deleted while exports to S3 are pending: if the delete fails, wait a"
	@echo "few minutes (CloudWatch PendingExports at 0) and run 'make delete' again."
	sam delete --config-env $(ENV)

verify: $(VENV)/.stamp
	@test -n "$(STACK)" || { echo "usage: make verify STACK=<stack-name>" >&2; exit 2; }
	$(PY) scripts/verify.py --stack $(STACK) $(ARGS)

preflight: $(VENV)/.stamp
	$(PY) scripts/verify.py preflight --config-env $(ENV) $(ARGS)

# SAR gets functions/template.yaml exactly as the stack nests it: its sam build output, packaged.
SAR_TEMPLATE := .aws-sam/build/Functions/template.yaml
SAR_PACKAGED := .aws-sam/sar-packaged.yaml
REGION_ARG = $(if $(REGION),--region $(REGION))

publish: $(VENV)/.stamp
	@test -n "$(BUCKET)" || { echo "usage: make publish BUCKET=<bucket> [REGION=<region>] [VERSION=<x.y.z>]" >&2; \
	  echo "       BUCKET holds the packaged code; its policy must let serverlessrepo.amazonaws.com s3:GetObject." >&2; \
	  exit 2; }
	$(MAKE) --no-print-directory build
	sam package --template-file $(SAR_TEMPLATE) --s3-bucket $(BUCKET) --output-template-file $(SAR_PACKAGED) $(REGION_ARG)
	sam publish --template $(SAR_PACKAGED) $(REGION_ARG) $(if $(VERSION),--semantic-version $(VERSION))
	@echo "Published (private). Share it, then deploy it: README, \"Serverless Application Repository\"."

clean:
	rm -rf .aws-sam .local bench/results.json
