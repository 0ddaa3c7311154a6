# `make run` and `make test` each build .venv from nothing, then do their job.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

run: $(STAMP)
	$(BIN)/hil run --lab lab.toml

lint: $(STAMP)
	$(BIN)/ruff check hil tests bench
	$(BIN)/ruff format --check hil tests bench

test: $(STAMP) lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.triage_bench

clean:
	rm -rf $(VENV) results build .pytest_cache .ruff_cache .hypothesis
