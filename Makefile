# Two commands on a fresh machine (Python 3.11): `make app` and `make test`.
# Both create or reuse .venv; a stamp keyed on the requirement files makes a second install a no-op.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
REQ_HASH := $(shell cat requirements.txt requirements-nodeps.txt requirements-dev.txt pyproject.toml | sha256sum | cut -c1-12)
APP_STAMP := $(VENV)/.app-installed-$(REQ_HASH)
DEV_STAMP := $(VENV)/.dev-installed-$(REQ_HASH)
# pip lists every local index it skips; keep the log readable.
QUIET_PIP := sed -e "/is ignored: it is neither a file nor a directory/d"
PORT ?= 8501
# localhost only by default; `make app ADDRESS=0.0.0.0` serves a classroom (see README)
ADDRESS ?= localhost

.PHONY: app test lint install install-dev bench clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

$(APP_STAMP): $(PY) requirements.txt requirements-nodeps.txt pyproject.toml
	$(PY) -m pip install -q -r requirements.txt 2>&1 | $(QUIET_PIP)
	$(PY) -m pip install -q --no-deps -r requirements-nodeps.txt 2>&1 | $(QUIET_PIP)
	# the package itself, editable: `recsys` on PATH inside the venv, no sys.path edits anywhere
	$(PY) -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | $(QUIET_PIP)
	rm -f $(VENV)/.app-installed-*
	touch $@

$(DEV_STAMP): $(APP_STAMP) requirements-dev.txt
	$(PY) -m pip install -q -r requirements-dev.txt 2>&1 | $(QUIET_PIP)
	rm -f $(VENV)/.dev-installed-*
	touch $@

install: $(APP_STAMP)
install-dev: $(DEV_STAMP)

app: install
	$(PY) -m streamlit run app.py --server.headless true --server.port $(PORT) --server.address $(ADDRESS)

test: install-dev
	$(PY) -m pytest

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install-dev
	for script in bench/[!_]*.py; do echo "== $$script"; $(PY) $$script; done

clean-venv:
	rm -rf $(VENV)
