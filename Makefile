# CA Rotation Watch: every target installs what it needs (a .venv, Azurite under node_modules).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INFRA_VENV := .venv-infra
AZURITE := node_modules/.bin/azurite

.PHONY: help deps run test bench mutation mutation-changed lint fmt infra-check clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# checkov and pycep-parser pin dependencies that clash with the Azure SDKs: own venv.
$(INFRA_VENV)/.installed: requirements-infra.txt
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(INFRA_VENV)/bin/python -m pip install --quiet -r requirements-infra.txt
	touch $@

$(AZURITE): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.installed $(AZURITE) $(INFRA_VENV)/.installed ## install everything (idempotent)

run: $(VENV)/.installed $(AZURITE) ## the local demo on its own Azurite store (.azurite-demo/): the 2020 incident replayed
	$(PY) scripts/demo.py

test: deps ## the whole suite (starts and stops its own Azurite, SMTP and HTTP receivers)
	@bash scripts/ensure-chromium.sh
	$(PY) -m pytest -n 2 --dist loadgroup -q

bench: $(VENV)/.installed $(AZURITE) ## the benchmarks the issues ask for, as ratios against baselines
	$(PY) scripts/bench.py

mutation: $(VENV)/.installed $(AZURITE) ## mutmut, module by module against its own tests; scores to .mutation.json (not CI)
	$(PY) scripts/mutation.py --max-children 2 $(MODULES)

mutation-changed: $(VENV)/.installed $(AZURITE) ## mutmut on the modules whose source or tests changed since their row in .mutation.json
	$(PY) scripts/mutation.py --max-children 2 --changed $(MODULES)

lint: $(VENV)/.installed ## ruff
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean: ## remove local state (venvs, node_modules, Azurite data: .azurite and the demo's, outbox)
	rm -rf $(VENV) $(INFRA_VENV) node_modules .azurite .azurite-demo .outbox .sample
