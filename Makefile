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

# make invoke: FUNCTION defaults to the one EVENT's file name is named for (events/reader-list.json:
# reader), EVENT to events/$(FUNCTION).json; neither given: the writer.
FUNCTION ?=
EVENT ?=
ENV ?= default
STACK ?=

.PHONY: help venv build invoke new-function test lint docs bench deploy delete verify preflight publish clean \
	sam-local sam-local-up sam-local-down

help:
	@echo "make invoke [FUNCTION=writer] [EVENT=events/writer.json]  build, then invoke locally (no Docker);"
	@echo "                          the function defaults to the one the event file is named for"
	@echo "make new-function NAME=report   scaffold a function: handler, template lines, event, test"
	@echo "make test                 lint, template checks, unit/crash/e2e/sam local tests (what CI runs; about"
	@echo "                          6 min on 2 cores; as root it starts the project's own Docker engine)"
	@echo "make docs                 build the documentation site (MkDocs) into site/; open site/index.html"
	@echo "make lint                 ruff check, ruff format --check, mypy --strict (layer, handlers, infra)"
	@echo "make build [V=1]          sam build (the layer ships its .pyc); V=1 shows sam's output"
	@echo "make sam-local            every sample event through sam local invoke (own Docker engine, root)"
	@echo "make sam-local-up | sam-local-down   start (prints DOCKER_HOST) / stop that engine"
	@echo "make bench                benchmark against the disk's floor; writes bench/results.json"
	@echo "make preflight [ENV=prod] [ARGS=\"--parameter-overrides ReservedConcurrency=5 --region eu-west-1\"]"
	@echo "make deploy [ENV=prod] [SKIP_PREFLIGHT=1] [ALLOW_REPLACE=AccessPoint,..]   docs/deploy.md"
	@echo "make delete [ENV=prod]    keeps the bucket and the dead-letter queue; follows the delete to its end"
	@echo "make verify STACK=... [ARGS=\"--wait-seconds 900 --region eu-west-1\"]"
	@echo "make publish BUCKET=<artifact bucket> [REGION=eu-west-1]   the functions to SAR (publisher: sar/publisher.toml)"
	@echo "make venv                 install .venv (sam, pytest, ruff, mypy...) and .venv-checkov; every target"
	@echo "                          that needs them runs it first"
	@echo "make clean                stop the sam local engine; remove .aws-sam, .local, bench/results.json"
	@echo "sam itself is .venv/bin/sam (not on PATH outside make), e.g. .venv/bin/sam deploy --guided"

$(VENV)/.stamp: requirements-dev.txt
	@if [ -z "$(PY313)" ]; then \
	  echo "error: Python 3.13 not found (looked in $(PYENV_ROOT)/versions/3.13.0/bin and on PATH)." >&2; \
	  echo "       Install it with 'pyenv install 3.13.0' (the python3.13 Lambda runtime; sam build needs it)." >&2; \
	  exit 1; fi
	@scripts/install_venv.sh $(PY313) $(VENV) requirements-dev.txt \
	  "aws-sam-cli, cfn-lint, moto, pytest, ruff, mypy, MkDocs and Powertools (about a minute)"
	@touch $@

.venv-checkov/.stamp: requirements-checkov.txt $(VENV)/.stamp
	@scripts/install_venv.sh $(PY313) .venv-checkov requirements-checkov.txt \
	  "checkov, in its own venv since it pins another boto3 (about a minute)"
	@touch $@

venv: $(VENV)/.stamp .venv-checkov/.stamp

# sam build's output (and its notes on functions without requirements.txt, which use the layer's)
# is shown with V=1 or when the build fails; otherwise one line. On stderr, so that the stdout of
# `make invoke` is the function's answer alone.
build: $(VENV)/.stamp
ifeq ($(V),)
	@mkdir -p .local; start=$$SECONDS; \
	  sam build --cached --parallel > .local/build.log 2>&1 || { cat .local/build.log >&2; exit 1; }; \
	  echo "==> sam build: .aws-sam/build in $$((SECONDS - start)) s (V=1 shows sam's output)" >&2
else
	sam build --cached --parallel
endif

invoke: build
	@$(PY) scripts/local_invoke.py $(if $(FUNCTION),--function $(FUNCTION)) $(if $(EVENT),--event $(EVENT))

new-function: $(VENV)/.stamp
	@test -n "$(NAME)" || { echo "usage: make new-function NAME=<name> (lowercase letters and digits)" >&2; exit 2; }
	@$(PY) scripts/new_function.py "$(NAME)"

# Quiet on success (one line), the tools' own findings on failure.
lint: $(VENV)/.stamp
	@$(VENV)/bin/ruff check --quiet .
	@$(VENV)/bin/ruff format --check --quiet .
	@MYPYPATH=layers/shared $(VENV)/bin/mypy --strict --no-error-summary layers/shared/s3files_store
	@for f in functions/*/app.py infra/*/app.py; do \
	  MYPYPATH=layers/shared $(VENV)/bin/mypy --strict --no-error-summary "$$f" || exit 1; done
	@echo "==> lint: ruff check, ruff format --check, mypy --strict: clean"

# pytest's closing line ("N passed, N skipped in S s (H:MM:SS)") stays the last line: CI reads it.
test: venv lint
	@echo "==> pytest: about 6 min on 2 cores; as root, tests/sam_local starts the project's Docker engine"
	@$(PY) -m pytest

# The reference site (docs/, mkdocs.yml), strict: a broken link, anchor or API reference fails it,
# as tests/docs does under make test. NO_MKDOCS_2_WARNING: no banner about MkDocs' future.
docs: $(VENV)/.stamp
	@NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet
	@echo "==> docs: site/index.html"

# tests/sam_local only; SAM_LOCAL_REQUIRED makes it fail, not skip, when the engine cannot start.
sam-local: $(VENV)/.stamp
	SAM_LOCAL_REQUIRED=1 $(PY) -m pytest tests/sam_local

sam-local-up: $(VENV)/.stamp
	PYTHONPATH=scripts $(PY) -m sam_engine up

sam-local-down: $(VENV)/.stamp
	PYTHONPATH=scripts $(PY) -m sam_engine down

bench: build
	$(PY) bench/run.py

# The preflight checks the account, and on an update that no parameter change replaces storage or
# network, before anything is built or created; SKIP_PREFLIGHT=1 skips it. ALLOW_REPLACE=<logical
# ids> lets this deploy replace them on purpose: the preflight warns instead of failing, and the stack
# policy (infra/stack-policy.json; sam deploy has no option for it) is lifted for them during this
# deploy and set whole again afterwards, whatever sam deploy did.
ALLOW_ARG = $(if $(ALLOW_REPLACE),--allow-replace $(ALLOW_REPLACE))
# The hints of verify.py name its options the way the target the user typed takes them
# (s3files_ops.checklist.option): `make deploy` takes none, `make preflight` tries them.
verify preflight: export OPTIONS_HINT := ARGS="%s"
deploy: export OPTIONS_HINT := make preflight ARGS="%s"

deploy: $(VENV)/.stamp
# The preflight exits 2 when no credentials or no Region are found: sam deploy needs them too, so
# skipping the preflight is offered only for the other failures (1).
ifeq ($(SKIP_PREFLIGHT),)
	@$(PY) scripts/verify.py preflight --config-env $(ENV) $(ALLOW_ARG) || { status=$$?; \
	  if [ $$status -eq 1 ]; then echo "make deploy: stopped before creating anything. Fix the FAIL lines" \
	    "above, or deploy anyway: SKIP_PREFLIGHT=1 make deploy ENV=$(ENV)" >&2; \
	  else echo "make deploy: stopped before creating anything. Fix the lines above, then run it again." >&2; fi; \
	  exit 1; }
endif
	@$(MAKE) --no-print-directory build
	@$(PY) scripts/stack_ops.py policy --config-env $(ENV) $(ALLOW_ARG)
	@sam deploy --config-env $(ENV); status=$$?; \
	  $(PY) scripts/stack_ops.py policy --config-env $(ENV) || status=1; exit $$status

# sam delete gives up after about 60 minutes while CloudFormation goes on (Lambda's VPC network
# interfaces alone take 25-40): wait-delete follows the stack to its end and explains what failed.
delete: $(VENV)/.stamp
	@$(PY) scripts/stack_ops.py delete-plan --config-env $(ENV)
	@sam delete --config-env $(ENV) || echo "sam delete stopped waiting (or failed); following the stack from here."
	@$(PY) scripts/stack_ops.py wait-delete --config-env $(ENV)

verify: $(VENV)/.stamp
	@test -n "$(STACK)" || { echo "usage: make verify STACK=<stack-name>" >&2; exit 2; }
	$(PY) scripts/verify.py --stack $(STACK) $(ARGS)

preflight: $(VENV)/.stamp
	$(PY) scripts/verify.py preflight --config-env $(ENV) $(ARGS)

# SAR gets functions/template.yaml exactly as the stack nests it: its sam build output, packaged.
SAR_TEMPLATE := .aws-sam/build/Functions/template.yaml
SAR_PACKAGED := .aws-sam/sar-packaged.yaml
REGION_ARG = $(if $(REGION),--region $(REGION))

# The publisher's Author, HomePageUrl and SourceCodeUrl: sar/publisher.toml, or these variables.
PUBLISHER_ARGS = $(if $(AUTHOR),--author "$(AUTHOR)") $(if $(HOME_PAGE_URL),--home-page-url "$(HOME_PAGE_URL)") \
	$(if $(SOURCE_CODE_URL),--source-code-url "$(SOURCE_CODE_URL)")

publish: $(VENV)/.stamp
	@test -n "$(BUCKET)" || { echo "usage: make publish BUCKET=<bucket> [REGION=<region>] [AUTHOR=... HOME_PAGE_URL=... SOURCE_CODE_URL=...]" >&2; \
	  echo "       BUCKET holds the packaged code; its policy must let serverlessrepo.amazonaws.com s3:GetObject." >&2; \
	  exit 2; }
	@test -z "$(VERSION)" || { echo "make publish: no VERSION: the version is SemanticVersion in functions/template.yaml, its one source" >&2; \
	  exit 2; }
	@$(PY) scripts/sar_metadata.py check $(PUBLISHER_ARGS)
	@$(PY) scripts/verify.py credentials $(REGION_ARG)
	$(MAKE) --no-print-directory build
	@$(PY) scripts/sar_metadata.py write $(SAR_TEMPLATE) $(PUBLISHER_ARGS)
	sam package --template-file $(SAR_TEMPLATE) --s3-bucket $(BUCKET) --output-template-file $(SAR_PACKAGED) $(REGION_ARG)
	sam publish --template $(SAR_PACKAGED) $(REGION_ARG)
	@echo "Published (private). Share it, then deploy it: docs/sar.md."

clean:
	@if [ -x $(PY) ]; then PYTHONPATH=scripts $(PY) -m sam_engine down; fi
	rm -rf .aws-sam .local bench/results.json
