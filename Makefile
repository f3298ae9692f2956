# Thinkmeter: `make run` serves the app on http://127.0.0.1:8000 (embedded mode); `make test` runs the suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint typecheck bench clean lock audit

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml sdk/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip setuptools
	$(VENV)/bin/pip install --quiet -e '.[dev]'
	$(VENV)/bin/pip install --quiet -e ./sdk
	# openlit pins openai<3 and anthropic<1 although it works with current clients: test-only, no deps.
	$(VENV)/bin/pip install --quiet --no-deps openlit==1.45.0
	touch $@

run: install
	$(PY) manage.py migrate --verbosity 1
	$(PY) manage.py bootstrap
	$(PY) manage.py seed_demo --if-empty
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

test: install
	bash tests/run_tests.sh

lint: install
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy .

bench: install
	$(PY) bench/ingest.py

# requirements.lock: every installed distribution pinned (the project itself and the SDK,
# installed editable, left out), for pip-audit and reproducible installs. Refresh it after
# changing pyproject.toml: `make lock`, then `make audit`.
lock: install
	$(VENV)/bin/pip freeze --all --exclude-editable | LC_ALL=C sort -f > requirements.lock

audit: install
	$(PY) -m tests.hardening.audit_lock requirements.lock

clean:
	rm -rf var .pytest_cache .mypy_cache
