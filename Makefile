# Set-up is part of every target: `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: venv bytecode run test unit clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# Every process of the exchange imports the package: compiled once here, not in each of them at each
# start, also where PYTHONDONTWRITEBYTECODE is set (a 64-LIM exchange starts 129 processes; compiling
# was about 50 ms of each one's start). Up-to-date files are skipped, so this costs a tenth of a second.
bytecode: venv
	$(BIN)/python -m compileall -q -x '/(\.venv|build|\.git|run)/' .

# The exchange on its built-in two-LIM topology, in the foreground (Ctrl-C stops it).
run: venv bytecode
	$(BIN)/mxone up

# Every test: pyflakes (ruff), the layers (import-linter's contracts in pyproject.toml) and the
# types of the pure cores (mypy, [tool.mypy] in pyproject.toml), then unit, integration (real
# processes) and cluster (supervisord, kill -9).
test: venv bytecode
	$(BIN)/ruff check --quiet .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy
	$(BIN)/python -m pytest

unit: venv bytecode
	$(BIN)/python -m pytest tests/unit

clean:
	rm -rf $(VENV) run *.egg-info
	find . -path ./.venv -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
