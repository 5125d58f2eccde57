# Baton's entry points. Two commands matter on a fresh machine (README.md):
#   make run    the whole system on the embedded default (SQLite, in-memory channels,
#               local Celery worker + beat), with demo data and demo logins printed
#   make test   the test suite; set DATABASE_URL / REDIS_URL to also run the
#               PostgreSQL + Redis integration tests
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements/base.txt requirements/dev.txt | sha1sum | cut -c1-12)
# Benchmark-only requirements (Viewflow, AGPL): installed by `make bench-peer` and nothing else.
BENCH_STAMP := $(VENV)/.bench-installed-$(shell cat requirements/base.txt requirements/dev.txt requirements/bench.txt | sha1sum | cut -c1-12)

.PHONY: run test lint format bench bench-api bench-peer bench-audit bench-inbox bench-timers bench-soak bench-live fuzz audit relay clean

$(STAMP): requirements/base.txt requirements/dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m config.run

test: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	$(BIN)/python -m bench.transitions

# The REST API on PostgreSQL: actions through gunicorn beside raw SQL, 1,000 waiters on one
# uvicorn; e.g. BENCH_ARGS="--seconds 6 --workers 4 --waiters 100"
bench-api: $(STAMP)
	$(BIN)/python -m bench.api $(BENCH_ARGS)

$(BENCH_STAMP): $(STAMP) requirements/bench.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements/bench.txt
	rm -f $(VENV)/.bench-installed-*
	touch $(BENCH_STAMP)

# Baton beside Viewflow on PostgreSQL + Redis; options: make bench-peer BENCH_ARGS="--seconds 6 --check"
bench-peer: $(BENCH_STAMP)
	$(BIN)/python -m bench.peer $(BENCH_ARGS)

# The fuzz targets of tests/fuzz/ for longer than the suite runs them: FUZZ_MINUTES=10 make fuzz
fuzz: $(STAMP)
	$(BIN)/python -m bench.fuzz --minutes $(or $(FUZZ_MINUTES),3)

# bandit on the application's code, pip-audit on the installed requirements (.ci/audit)
audit: $(STAMP)
	bash .ci/audit

# The auditors' log and export over 3,000,000 entries on PostgreSQL; e.g. BENCH_ARGS="--entries 200000"
bench-audit: $(STAMP)
	$(BIN)/python -m bench.audit $(BENCH_ARGS)

# The inbox and the team view on 1,000,000 requests on PostgreSQL, beside hand-written SQL
# (data kept in baton_bench_inbox); BENCH_ARGS="--rebuild --check", "--only team"
bench-inbox: $(STAMP)
	$(BIN)/python -m bench.inbox $(BENCH_ARGS)

# The timers scan on 100,000 handoffs due over a day, beside a hand-written query (PostgreSQL,
# database baton_bench_timers made afresh); BENCH_ARGS="--check" exits 1 on a missed target
bench-timers: $(STAMP)
	$(BIN)/python -m bench.timers $(BENCH_ARGS)

# Web, workers, beat and relay under load while a worker is killed, Redis and a web process
# restarted (database baton_bench_soak made afresh, Redis on port 6397); BENCH_ARGS="--seconds 60 --check"
bench-soak: $(STAMP)
	$(BIN)/python -m bench.soak $(BENCH_ARGS)

# 1,000 WebSocket clients, live events beside a bare group_send (PostgreSQL + Redis); BENCH_ARGS="--clients 200 --check"
bench-live: $(STAMP)
	$(BIN)/python -m bench.live $(BENCH_ARGS)

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache test-artifacts
