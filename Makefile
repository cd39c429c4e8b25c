# Two entry points: `make run` (serve on embedded defaults) and `make test` (the whole suite).
# Both install exactly the hashed versions of requirements/ (the lock); `make lock` refreshes it.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
UV_VERSION ?= 0.13.9
# One lock for every platform and Python >= 3.11, with the hashes of every file PyPI serves.
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --quiet \
	--default-index https://pypi.org/simple --custom-compile-command "make lock"

.PHONY: run test lint bench load clean lock lock-upgrade

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml requirements/run.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements/run.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $@

$(VENV)/.installed-dev: pyproject.toml requirements/dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements/dev.txt
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python -m pip check
	touch $@ $(VENV)/.installed-run

# Re-resolves requirements/ from pyproject.toml, keeping every pin that still fits (run it
# after changing a dependency; commit both files). `make lock-upgrade` moves every pin to the
# newest release allowed.
lock: | $(BIN)/python
	$(BIN)/python -m pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml $(LOCK_FLAGS) $(LOCK_UPGRADE) -o requirements/run.txt
	$(BIN)/uv pip compile pyproject.toml --extra dev --constraint requirements/run.txt \
		$(LOCK_FLAGS) $(LOCK_UPGRADE) -o requirements/dev.txt

lock-upgrade:
	$(MAKE) lock LOCK_UPGRADE=--upgrade

run: $(VENV)/.installed-run
	$(BIN)/ssc migrate
	$(BIN)/ssc serve

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The authorisation walk runs in a process of its own after the rest: in a shared xdist worker,
# after other tests, its PostgreSQL+Redis teardown hung twice (open defect, see README).
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS) --ignore=tests/api/test_authorisation.py
	$(BIN)/python -m pytest -n 0 $(PYTEST_ARGS) tests/api/test_authorisation.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .hypothesis .schemathesis schemathesis-report
