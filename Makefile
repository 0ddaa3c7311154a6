# `make run` and `make test` each build .venv from nothing, then do their job.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint bench soak system clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test,labgrid]'
	touch $@

# System packages (QEMU, cross gcc, dtc, ser2net), the TF-A source and the Linux guest's kernel,
# installed by the project's own script. Needs root; without it the QEMU and labgrid tiers skip and say how to enable them.
system:
	@if [ "$$(id -u)" -eq 0 ]; then scripts/setup-system.sh; \
	elif sudo -n true 2>/dev/null; then sudo scripts/setup-system.sh; \
	else echo "make: not root, skipping scripts/setup-system.sh (QEMU and labgrid tests will skip)"; fi

run: $(STAMP) system
	$(BIN)/hil run --lab lab.toml

lint: $(STAMP)
	$(BIN)/ruff check hil tests bench
	$(BIN)/ruff format --check hil tests bench

# One pytest worker more than the cores: part of the suite waits on boards, emulators and
# timeouts rather than computing (-n auto left a quarter of two cores idle).
TEST_WORKERS ?= $(shell echo $$(( $$(nproc) + 1 )))

test: $(STAMP) system lint
	$(BIN)/pytest -q -n $(TEST_WORKERS)

# Every benchmark runs even when an earlier one misses its target; make bench fails if any did.
BENCHES := triage_bench controller_bench capture_bench realxen_bench

bench: $(STAMP)
	@missed=""; for b in $(BENCHES); do $(BIN)/python -m bench.$$b || missed="$$missed $$b"; done; \
	if [ -n "$$missed" ]; then echo "make bench: target missed in:$$missed"; exit 1; fi

soak: $(STAMP)
	$(BIN)/python -m bench.soak --quick

clean:
	rm -rf $(VENV) results build .pytest_cache .ruff_cache .hypothesis
