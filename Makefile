# make run  - install into .venv, write homeserver.yaml if missing, start on http://localhost:8008
# make test - install the test dependencies and run the whole suite (PYTEST_ARGS to narrow it)

PYTHON ?= python3
VENV ?= .venv
CONFIG ?= homeserver.yaml
DATA_DIR ?= data
PYTEST_ARGS ?=

BIN := $(VENV)/bin

.PHONY: run test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed-run

$(CONFIG): | $(VENV)/.installed-run
	$(BIN)/python -m homeserver generate-config --server-name localhost \
		--config-path $(CONFIG) --data-dir $(DATA_DIR) --open-registration

run: $(VENV)/.installed-run $(CONFIG)
	$(BIN)/python -m homeserver run --config $(CONFIG)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

test: $(VENV)/.installed-test lint
	$(BIN)/pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
