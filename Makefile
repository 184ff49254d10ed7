# Two commands for a newcomer: `make run` (the product on embedded SQLite) and `make test`.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e ".[dev]"
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/jifen up

test: $(STAMP)
	$(VENV)/bin/mypy src/jifen
	$(VENV)/bin/pytest

bench: $(STAMP)
	$(VENV)/bin/python bench/ledger_ops.py --ops 1000 --clients 8
	$(VENV)/bin/python bench/events.py --events 2000
	$(VENV)/bin/python bench/http_events.py --seconds 10
	$(VENV)/bin/python bench/boards.py
	$(VENV)/bin/python bench/analytics.py

clean:
	rm -rf var .pytest_cache
