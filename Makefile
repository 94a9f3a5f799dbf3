# Two commands set everything up on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

# The second test pass runs the same core tests against the real PostgreSQL and Redis.
PG_ENV := AUTHENTIK_POSTGRESQL__HOST=127.0.0.1 AUTHENTIK_POSTGRESQL__PORT=5432 \
	AUTHENTIK_POSTGRESQL__USER=postgres AUTHENTIK_POSTGRESQL__NAME=gatehouse \
	AUTHENTIK_REDIS__HOST=127.0.0.1 AUTHENTIK_REDIS__PORT=6379

.PHONY: run test test-embedded test-services install install-test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml $(STAMP)
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(STAMP)
install-test: $(TEST_STAMP)

run: $(STAMP)
	$(BIN)/ak migrate
	$(BIN)/ak server

test: test-embedded test-services

# Everything, on the embedded defaults: SQLite and the in-process cache.
test-embedded: $(TEST_STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

# The core again on PostgreSQL + Redis. Not repeated there: what no backend changes and that costs a minute
# and a half (the real proxies of e2e, the browser's pages, the log-level runs, building the wheel), nor the
# cluster tests, which bring their own PostgreSQL, PgBouncer and Redis set-ups, nor the offline manifest checks.
SERVICES_SKIP := --ignore=tests/e2e --ignore=tests/browser --ignore=tests/server/test_debug_log.py \
	--ignore=tests/core/test_packaging.py --ignore=tests/server/test_cluster_db.py \
	--ignore=tests/server/test_cluster_redis.py --ignore=tests/server/test_cluster_replicas.py \
	--ignore=tests/core/test_cluster_migrate.py --ignore=tests/deploy \
	--ignore=tests/server/test_fault_postgres.py --ignore=tests/server/test_fault_redis.py \
	--ignore=tests/server/test_fault_replicas.py --ignore=tests/server/test_cluster_sentinel.py \
	--ignore=tests/server/test_cluster_workers.py
test-services: $(TEST_STAMP)
	@if $(BIN)/python -c "import socket; [socket.create_connection(('127.0.0.1', p), 2).close() for p in (5432, 6379)]" 2>/dev/null; then \
		$(PG_ENV) $(BIN)/pytest $(SERVICES_SKIP) $(PYTEST_ARGS); \
	elif [ "$$CI" = "true" ]; then \
		echo "PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379) are required under CI=true"; exit 1; \
	else \
		echo "skipping the PostgreSQL + Redis pass: start them on 127.0.0.1:5432 and :6379"; \
	fi

lint: $(TEST_STAMP)
	$(BIN)/ruff check .

bench: $(TEST_STAMP)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache
