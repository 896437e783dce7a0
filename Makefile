# The two commands: `make demo` and `make test`. Everything else is set-up they call.
PYTHON ?= $(shell command -v python3.11 >/dev/null 2>&1 && echo python3.11 || echo python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_DATA ?= demo-data
PYTEST_ARGS ?=

.PHONY: demo test setup system lint clean

demo: setup
	VIGILA_DATA_DIR=$${VIGILA_DATA_DIR:-$(DEMO_DATA)} $(BIN)/vigila demo

test: setup lint
	$(BIN)/python -m pytest -n 2 $(PYTEST_ARGS)

lint: setup
	$(BIN)/ruff check src tests
	$(BIN)/mypy

setup: system $(STAMP)

# Debian packages (PostgreSQL, ffmpeg, Mosquitto, ...), skipped when present.
system:
	bash scripts/install-system.sh

# The venv is rebuilt when the pins change.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(DEMO_DATA) .pytest_cache .mypy_cache .ruff_cache
