# Two commands for a newcomer: `make run` (the product on embedded SQLite) and `make test`.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed
# `make test` runs the suite on this many pytest-xdist processes, a test file per process at a time (--dist
# loadfile: a file's module fixtures are built once, and its tests keep their order). Each process has its own
# scratch PostgreSQL database, SQLite files, ports and Redis database. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

.PHONY: run test bench clean

# First run only (and after pyproject.toml changes): pip's own output shows each package as it is fetched,
# with a bar for the larger downloads and for the unpacking on a terminal.
$(STAMP): pyproject.toml
	@test -x $(VENV)/bin/python || { echo "creating $(VENV) with $(PYTHON) …"; $(PYTHON) -m venv $(VENV); }
	@echo "installing Jifen and its dependencies into $(VENV) (first run only: about a minute, plus downloading ~260 MB) …"
	@start=$$(date +%s); \
	$(VENV)/bin/pip install -q --disable-pip-version-check --upgrade pip && \
	$(VENV)/bin/pip install --disable-pip-version-check --progress-bar on -e ".[dev]" && \
	touch $(STAMP) && \
	echo "dependencies installed in $$(( $$(date +%s) - start )) s"

run: $(STAMP)
	$(VENV)/bin/jifen up

test: $(STAMP)
	@# who may import whom (docs/architecture.md), checked by the shared tool when ../shared is beside the project
	@if [ -f ../shared/tools/layers.py ]; then python3 ../shared/tools/layers.py; \
	else echo "../shared/tools/layers.py not found: import layers not checked"; fi
	$(VENV)/bin/mypy src/jifen
	$(VENV)/bin/pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

# bench/intake.py and bench/periodic.py write their tables into docs/benchmarks.md (their own sections, dated
# with the machine). periodic.py's default is the issue's 1,000,000 members (too long for a routine run on 2 cores).
bench: $(STAMP)
	$(VENV)/bin/python bench/intake.py --db postgresql --events 100000
	$(VENV)/bin/python bench/intake.py --db sqlite --events 50000
	$(VENV)/bin/python bench/ledger_ops.py --ops 1000 --clients 8
	$(VENV)/bin/python bench/events.py --events 2000
	$(VENV)/bin/python bench/http_events.py --seconds 10
	$(VENV)/bin/python bench/http_events.py --group-commit --seconds 10
	$(VENV)/bin/python bench/group_cost.py
	$(VENV)/bin/python bench/flash_sale.py --attempts 2000 --clients 500 --stock 200 --members 400
	$(VENV)/bin/python bench/balance_read.py --seconds 10
	$(VENV)/bin/python bench/stream.py --events 20000 --consumers 2
	$(VENV)/bin/python bench/cluster.py --seconds 45
	$(VENV)/bin/python bench/soak.py --minutes 3 --no-docs
	$(VENV)/bin/python bench/verify.py --entries 200000
	$(VENV)/bin/python bench/boards.py
	$(VENV)/bin/python bench/analytics.py
	$(VENV)/bin/python bench/periodic.py --members 100000
	$(VENV)/bin/pip install -q -e '.[scale]' && $(VENV)/bin/python bench/kpi_engines.py --entries 2000000

clean:
	rm -rf var .pytest_cache
