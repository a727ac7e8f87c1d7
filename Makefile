# sitewatch: two commands for a newcomer.
#   make demo   set up a venv and run a simulated site end to end (no servers needed)
#   make test   install everything the tests need (venv, pip, npm, Debian packages) and run them

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMPS := .stamps
DURATION ?=

.PHONY: demo test setup lint bench clean help

help:
	@echo "make demo   - run a simulated construction site with the gateway (Ctrl-C to stop)"
	@echo "make test   - install what the tests need and run the whole suite"
	@echo "make lint   - ruff, mypy and pyright on the firmware"
	@echo "make bench  - run the benchmarks under bench/"

$(STAMPS):
	mkdir -p $(STAMPS)

# Python environment: re-installed when pyproject.toml changes.
$(STAMPS)/venv: pyproject.toml | $(STAMPS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,report]'
	touch $@

# Debian packages the tests use (mosquitto, influxdb, victoria-metrics, mbpoll, nodejs).
$(STAMPS)/system: tools/install-system-deps.sh | $(STAMPS)
	tools/install-system-deps.sh
	touch $@

# MicroPython (WebAssembly) and pyright, pinned in package-lock.json.
$(STAMPS)/npm: package.json package-lock.json $(STAMPS)/system | $(STAMPS)
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# ESP32 stubs for type-checking the firmware.
$(STAMPS)/stubs: $(STAMPS)/venv | $(STAMPS)
	rm -rf typings/esp32
	$(BIN)/python -m pip install -q --target typings/esp32 'micropython-esp32-stubs==1.29.*'
	touch $@

setup: $(STAMPS)/venv $(STAMPS)/system $(STAMPS)/npm $(STAMPS)/stubs

demo: $(STAMPS)/venv
	$(BIN)/sitewatch demo $(if $(DURATION),--duration $(DURATION))

# The suite waits mostly on simulated sites (I/O, not CPU): 4 workers on 2 cores, measured (docs/testing.md).
# --dist loadfile: a file's tests share one worker, so a module's simulated run (a module-scoped fixture)
# runs once, not once per worker.
TEST_WORKERS ?= 4

test: setup
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy
	node_modules/.bin/pyright -p pyrightconfig.firmware.json

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) $(STAMPS) node_modules typings var
