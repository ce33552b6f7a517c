# make run  - install into .venv, write homeserver.yaml if missing, build the web client (when
#            Node.js is installed), start on http://localhost:8008
# make test - install the test dependencies and run the whole suite (PYTEST_ARGS to narrow it),
#            and the web client's unit tests when Node.js is installed (required with CI=true)

PYTHON ?= python3
VENV ?= .venv
CONFIG ?= homeserver.yaml
DATA_DIR ?= data
PYTEST_ARGS ?=
NPM ?= npm

BIN := $(VENV)/bin

# The web client (web/) needs Node.js 20.19+ and npm; without them the server runs without it.
HAVE_NODE := $(shell command -v $(NPM) >/dev/null 2>&1 && node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)' 2>/dev/null && echo yes)
WEB_SOURCES := $(shell find web/src web/public web/sw -type f 2>/dev/null) \
	web/index.html web/vite.config.ts web/tsconfig.json web/tsconfig.node.json

.PHONY: run test lint clean web web-test

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

run: $(VENV)/.installed-run $(CONFIG) web
	$(BIN)/python -m homeserver run --config $(CONFIG)

# npm ci only when the lock file changed; the build only when a source is newer than web/dist.
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && $(NPM) ci
	touch $@

web/dist/index.html: web/node_modules/.installed $(WEB_SOURCES)
	cd web && $(NPM) run build

# A failed or impossible build does not stop the server: / then says how to build the client.
web:
ifeq ($(HAVE_NODE),yes)
	@$(MAKE) --no-print-directory web/dist/index.html || \
		echo "!! The web client could not be built: the server starts without it (see above)."
else
	@echo "!! Node.js 20.19+ and npm not found: the web client was not built. The server starts"
	@echo "   without it; / says how to build it (cd web && npm ci && npm run build)."
endif

web-test:
ifeq ($(HAVE_NODE),yes)
	@$(MAKE) --no-print-directory web/node_modules/.installed
	cd web && $(NPM) test
else ifeq ($(CI),true)
	@echo "Node.js 20.19+ and npm are required to run the web client's tests (CI=true)" >&2
	@exit 1
else
	@echo "!! SKIPPED the web client's tests: Node.js 20.19+ and npm not found"
endif

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .

test: $(VENV)/.installed-test lint web-test
	$(BIN)/pytest -q $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache web/node_modules web/dist
