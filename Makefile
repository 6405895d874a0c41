# The two set-up commands are `make run` and `make test`; the rest serve them and CI.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

# Integration services on this machine's loopback (see .ci/run and tests/integration/).
# A database name of this run's own (the shell's pid), so two integration runs on one machine never share one.
IT_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/provenant_it_$$$$
IT_BROKER_URL ?= redis://127.0.0.1:6379/15
IT_S3_ENDPOINT ?= http://127.0.0.1:5399

# Unit modules that run again in the integration session, on PostgreSQL with S3 storage: what SQLite forgives
# (NUL bytes, integer ranges, trigger and constraint behaviour), PostgreSQL may not.
IT_PARITY := tests/artifacts/test_hostile_input.py tests/artifacts/api/test_naming.py tests/artifacts/test_filters.py \
	tests/artifacts/api/test_runs.py tests/artifacts/test_lineage.py tests/artifacts/api/test_queries.py \
	tests/artifacts/api/test_versions.py tests/governance/access/test_authentication.py \
	tests/artifacts/access/test_permission_matrix.py tests/artifacts/access/test_rule.py \
	tests/artifacts/access/test_scenarios.py tests/governance/access/test_reviews.py \
	tests/core/audit/test_log_db.py tests/core/audit/test_recorder.py tests/governance/audit/test_api.py \
	tests/core/audit/test_tree.py tests/governance/registry/test_api.py tests/governance/registry/test_services.py \
	tests/test_partial_updates.py tests/artifacts/api/test_version_pages.py

.PHONY: run test test-integration fuzz lint demo venv clean screenshots bench-smoke

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# The Python client (its own distribution), tested against a real server in `make test`.
	$(BIN)/python -m pip install --quiet -e "./clients/python[audit]"
	touch $(STAMP)

# axe-core for the browser tests' accessibility checks (tests/e2e/axe.py), from the npm registry at the locked
# version. Only the tests need it (and Node.js's npm): `make run` stays Python only. Without npm the accessibility
# tests skip, as the browser tests do without Chromium, except under CI=true, where they fail.
AXE := node_modules/axe-core/axe.min.js

$(AXE): package.json package-lock.json
	if command -v npm >/dev/null; then npm ci --no-audit --no-fund && touch $(AXE); \
	else echo "npm not found: the browser tests' accessibility checks will skip (apt-get install npm)"; fi

venv: $(STAMP)

run: $(STAMP)
	DJANGO_DEBUG=true $(BIN)/python manage.py migrate --noinput
	DJANGO_DEBUG=true $(BIN)/python manage.py load_demo --host $(HOST) --port $(PORT)
	DJANGO_DEBUG=true $(BIN)/python manage.py runserver $(HOST):$(PORT)

test: $(STAMP) $(AXE)
	$(BIN)/python -m pytest -p no:cacheprovider $(PYTEST_ARGS)

test-integration: $(STAMP)
	DATABASE_URL=$(IT_DATABASE_URL) CELERY_BROKER_URL=$(IT_BROKER_URL) \
	PROVENANT_S3_BUCKET=provenant-it PROVENANT_S3_ENDPOINT_URL=$(IT_S3_ENDPOINT) PROVENANT_S3_REGION=us-east-1 \
	AWS_ACCESS_KEY_ID=provenant-it AWS_SECRET_ACCESS_KEY=provenant-it \
	$(BIN)/python -m pytest -p no:cacheprovider -m "integration or not integration" tests/integration $(IT_PARITY) \
	$(PYTEST_ARGS)

# Schemathesis against a real server (granian, PostgreSQL on 127.0.0.1:5432, the demo data), as an all-rights
# and a no-role caller; see tests/fuzz/run. FUZZ_SEED=<seed> repeats a run.
fuzz: $(STAMP)
	tests/fuzz/run

# Every benchmark that has a smoke mode, run small so that none can rot (benchmarks/README.md has the full runs).
# Each makes its own fresh databases (PostgreSQL; the transfer ones fall back to SQLite when 127.0.0.1:5432 does not
# answer), starts what it measures, prints only, and exits non-zero on an error or a check that fails.
BENCH_SMOKE := client_transfer.py client_pull_links.py session_chunks.py mlflow_plugin.py blob_transfer.py \
	permissions.py portal.py audit_log.py webhooks.py peer_mlflow.py lifecycle.py \
	scanning.py signing.py topology.py

bench-smoke: $(STAMP)
	set -e; for bench in $(BENCH_SMOKE); do echo "== benchmarks/$$bench --smoke"; $(BIN)/python benchmarks/$$bench --smoke; done

# The README's pictures of the portal, taken by its browser tests (tests/e2e) into docs/screenshots/.
screenshots: $(STAMP) $(AXE)
	PROVENANT_SCREENSHOTS=1 $(BIN)/python -m pytest -p no:cacheprovider tests/e2e $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) var node_modules
