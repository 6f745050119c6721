# Two entry points that work on a fresh clone: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export GX_ANALYTICS_ENABLED := False
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: install demo test bench docs clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt -e '.[dev,postgres,mlflow,bench,server,spark]'
	# compact names-dataset index for person-name detection (~1 min, once; $$PRIVGOV_CACHE or ~/.cache/privgov)
	$(PY) -m privacy.deid.build_name_index
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/privgov demo

test: $(STAMP)
	bash scripts/system-deps.sh
	$(PY) -m pytest -q -n 2 --timeout 600

# Reference pages generated from the pydantic models (tests/test_docs_gen.py checks they are current).
docs: $(STAMP)
	$(PY) -m governance.docs_gen
	$(PY) -m governance.server.openapi

bench: $(STAMP)
	$(PY) benchmarks/crypto.py
	$(PY) benchmarks/policy.py
	$(PY) benchmarks/validate.py
	$(PY) -m pip install -q -c constraints.txt -e '.[bench]'
	$(PY) benchmarks/pii.py

clean:
	rm -rf $(VENV) .privgov build *.egg-info .pytest_cache .hypothesis
