# PixelFlow. `make run` starts the whole stack, `make test` runs every test; both install
# whatever is missing first (Python packages, PostgreSQL, Kafka's jars, the FerretDB build,
# Envoy), caching downloads and builds under ~/.cache/pixelflow.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CACHE := $(or $(PIXELFLOW_CACHE_DIR),$(HOME)/.cache/pixelflow)
BUF_VERSION := 1.75.0
BUF := $(CACHE)/buf-$(BUF_VERSION)/node_modules/.bin/buf
DATA_DIR ?= data
PROTOS := $(shell find proto -name '*.proto')
NPM_CACHE := $(HOME)/.npm
CHROMIUM := /usr/bin/chromium
UI_SOURCES := $(shell find ui/src ui/public ui/scripts -type f -not -path 'ui/src/gen/*' 2>/dev/null) ui/index.html ui/vite.config.ts ui/tsconfig.json
OPENAPI_INPUTS := scripts/gen_openapi.py tools/openapi/go.mod tools/openapi/go.sum tools/openapi/openapi_config.yaml

.PHONY: help deps proto openapi ui fetch test-tools k8s-tools helm-template browser lint format test test-ui test-unit test-integration test-e2e run infra migrate bench load lock clean up down ps logs
COMPOSE ?= docker compose

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.lock requirements-dev.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.lock -r requirements-dev.lock
	@# The repo root and the generated stubs are importable from the venv without installing.
	$(PY) -c 'import sysconfig, pathlib; pathlib.Path(sysconfig.get_paths()["purelib"], "pixelflow-dev.pth").write_text("$(CURDIR)\n$(CURDIR)/gen/python\n")'
	@# The `pixelflow` command (pyproject's console script), its code edited in place.
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps --editable .
	touch $@

deps: $(VENV)/.installed ## create .venv from requirements.lock and requirements-dev.lock

gen/.stamp: $(VENV)/.installed $(PROTOS) scripts/gen_proto.py scripts/proto_sources.py
	$(PY) scripts/gen_proto.py
	touch $@

proto: gen/.stamp ## generate Python stubs and Envoy's descriptor set from proto/

gen/openapi/.stamp: gen/.stamp $(OPENAPI_INPUTS)
	$(PY) scripts/gen_openapi.py
	touch $@

openapi: gen/openapi/.stamp ## OpenAPI document (gen/openapi/) and its Swagger UI page (gen/docs/) from proto/

ui/node_modules/.installed: ui/package.json ui/package-lock.json
	cd ui && npm ci --cache $(NPM_CACHE) --prefer-offline --no-audit --no-fund
	touch $@

# The build generates the browser's stubs from proto/ (with .venv's protoc) and type-checks.
ui/dist/index.html: $(VENV)/.installed ui/node_modules/.installed $(PROTOS) scripts/proto_sources.py scripts/gen_proto.py $(UI_SOURCES)
	cd ui && npm run build

ui: ui/dist/index.html ## build the browser UI (npm ci, stubs, type-check, vite build)

fetch: deps ## install/build PostgreSQL, Kafka, FerretDB and Envoy (cached)
	$(PY) -m infra fetch

$(BUF):
	mkdir -p $(CACHE)/buf-$(BUF_VERSION)
	npm install --silent --no-save --no-audit --no-fund --prefix $(CACHE)/buf-$(BUF_VERSION) @bufbuild/buf@$(BUF_VERSION)

# buf reads the descriptor set `make proto` compiled, as an image (buf.yaml says why).
BUF_IMAGE := 'gen/pixelflow.protoset\#format=binpb'
lint: proto $(BUF) ## ruff, mypy, buf lint and buf breaking (against the main branch's protos)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(BUF) lint $(BUF_IMAGE) --path pixelflow
	$(PY) scripts/gen_proto.py --against main --out gen/main.protoset
	$(BUF) breaking $(BUF_IMAGE) --against 'gen/main.protoset#format=binpb' --path pixelflow

format: deps ## apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# pytest exits 5 when it collected nothing: that must fail the run, never pass it.
define pytest
	PIXELFLOW_BUF=$(BUF) $(PY) -m pytest $(1) || { code=$$?; [ $$code -eq 5 ] && echo "pytest collected no tests" >&2; exit $$code; }
endef

# Debian packages only the tests use: docker-compose validates docker-compose.yml without an engine.
test-tools:
	@command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose; }

k8s-tools: deps ## build Helm and the strict manifest validator into the cache (tools/helm, tools/k8s-validate)
	$(PY) -m infra k8s-tools

CHART := deploy/helm/pixelflow
helm-template: k8s-tools ## render the Helm chart with values-production.yaml into gen/helm/ and validate it
	mkdir -p gen/helm
	$$($(PY) -c 'from infra.cache import ensure_helm; print(ensure_helm())') template pixelflow $(CHART) --kube-version 1.27.0 \
	  -f $(CHART)/values-production.yaml > gen/helm/production.yaml
	$$($(PY) -c 'from infra.cache import ensure_k8s_validate; print(ensure_k8s_validate())') gen/helm/production.yaml

browser: ## Debian's Chromium for the browser tests (installed only if missing)
	@test -x $(CHROMIUM) || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

test-ui: ui/node_modules/.installed $(VENV)/.installed ## the UI's unit tests (Vitest)
	cd ui && npm test

test: lint test-ui fetch openapi ui test-tools k8s-tools browser ## every test, against real servers on free ports
	$(call pytest,tests)

test-unit: proto openapi test-tools k8s-tools $(BUF) ## unit tests only (no servers)
	$(call pytest,-m unit tests)

test-integration: proto openapi fetch ui ## integration tests only
	$(call pytest,-m integration tests)

test-e2e: proto openapi fetch ui browser ## browser tests only (headless Chromium)
	$(call pytest,-m e2e tests)

run: proto openapi fetch ui ## start the whole stack on the default ports (Ctrl-C stops it)
	$(PY) -m infra run --data-dir $(DATA_DIR)

infra: proto fetch ## start only PostgreSQL, FerretDB and Kafka
	$(PY) -m infra up --data-dir $(DATA_DIR)

migrate: proto ## apply auth_svc's database migrations (PIXELFLOW_AUTH_DATABASE_URL)
	$(PY) -m auth_svc migrate

load: proto fetch ui ## a mixed workload at a target rate on a stack of its own (ARGS="--rate 8 --duration 120", or --server HOST:PORT)
	$(PY) -m bench.load $(ARGS)

bench: proto fetch ## benchmarks, each a side-by-side table of medians (docs/benchmarks.md)
	$(PY) -m bench.engine_bench
	$(PY) -m bench.memory_bench
	$(PY) -m bench.encoder_bench
	$(PY) -m bench.variants_bench
	$(PY) -m bench.mesh_bench
	$(PY) -m bench.store_bench
	$(PY) -m bench.auth_bench

lock: ## re-resolve requirements.lock (the services') and requirements-dev.lock (what development adds) from pyproject.toml
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --disable-pip-version-check $$($(PYTHON) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(" ".join(repr(d) for d in p["dependencies"]))')
	{ echo "# Exact versions of every Python package the services run with (direct ones: pyproject.toml's"; \
	  echo "# dependencies); what a developer's machine adds is requirements-dev.lock. Regenerate both with 'make lock'."; \
	  .lock-venv/bin/pip freeze --exclude-editable; } > requirements.lock
	@# The runtime pins hold while the dev extra is added (-c): the two locks never disagree.
	.lock-venv/bin/pip install --quiet --disable-pip-version-check -c requirements.lock $$($(PYTHON) -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb"))["project"]; print(" ".join(repr(d) for d in p["optional-dependencies"]["dev"]))')
	{ echo "# Exact versions of what a developer's machine adds to requirements.lock: the local gateway's Envoy,"; \
	  echo "# linters, type stubs, test runners, the benchmarks' photographs (pyproject.toml's dev extra)."; \
	  echo "# Installed after requirements.lock; regenerate both with 'make lock'."; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -v -x -F -f requirements.lock; } > requirements-dev.lock
	rm -rf .lock-venv

up: ## the stack from containers (docker-compose.yml); `make up WORKERS=3` scales the workers
	$(COMPOSE) up --build --detach --scale worker=$(or $(WORKERS),1)

down: ## stop and remove the containers (volumes are kept; `docker compose down -v` drops them)
	$(COMPOSE) down

ps: ## the containers and their health
	$(COMPOSE) ps

logs: ## follow every container's logs
	$(COMPOSE) logs --follow --tail=100

logs-%: # follow one service's logs, e.g. make logs-worker
	$(COMPOSE) logs --follow --tail=100 $*

clean: ## remove generated code and the venv (keeps ./data and the download cache)
	rm -rf gen $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis artifacts ui/dist ui/node_modules ui/src/gen
