# Two commands on a fresh machine: `make demo` and `make test`. Only python3 is needed.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,console]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sessiontree demo --db demo.db --workspace demo-workspace --latency 0.3

lint: $(STAMP)
	$(BIN)/ruff check sessiontree tests examples bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python bench/dispatch.py
	$(BIN)/python bench/passivation.py
	$(BIN)/python bench/chaos.py --trials 200
	$(BIN)/python bench/console_overhead.py

clean:
	rm -rf $(VENV) demo.db demo.db-wal demo.db-shm demo-workspace
