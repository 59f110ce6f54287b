PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint-imports bench clean

# `setup` only installs. The stamp makes it a no-op while .venv is newer than
# requirements.lock and pyproject.toml.
setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --no-deps -r requirements.lock
	$(VPY) -m pip install --no-deps --no-build-isolation -e .
	$(VPY) -m pip check || echo "WARNING: 'pip check' reported issues (mlxtend is installed with --no-deps); continuing"
	touch $@

demo: setup
	$(VENV)/bin/dlw demo demo-project

test: setup
	$(VPY) -m pytest -q

lint-imports: setup
	$(VENV)/bin/lint-imports

bench: setup
	$(VPY) bench/train_overhead.py

clean:
	rm -rf $(VENV) demo-project
