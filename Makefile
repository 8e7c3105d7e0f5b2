# Set-up is part of every target: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: venv run test unit clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The exchange on its built-in two-LIM topology, in the foreground (Ctrl-C stops it).
run: venv
	$(BIN)/mxone up

# Every test: pyflakes (ruff), the layers (import-linter's contracts in pyproject.toml) and the
# types of the pure cores (mypy, [tool.mypy] in pyproject.toml), then unit, integration (real
# processes) and cluster (supervisord, kill -9).
test: venv
	$(BIN)/ruff check --quiet .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/python -m pytest

unit: venv
	$(BIN)/python -m pytest tests/unit

clean:
	rm -rf $(VENV) run *.egg-info
