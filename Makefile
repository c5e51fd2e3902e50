# ECG Lens: the two commands a new user needs are `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
EXAMPLE := resources/examples/example_pvc.hea

.PHONY: run analyze test lint bench clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[app,train,dev]'
	touch $(STAMP)

## Install everything and open the viewer on the bundled example (needs a display).
run: $(STAMP)
	$(VENV)/bin/ecglens view $(EXAMPLE)

## Headless form of the main job: analyze the bundled example and print the result.
analyze: $(STAMP)
	$(VENV)/bin/ecglens analyze $(EXAMPLE)

## The whole test suite (ruff + pytest, Qt offscreen). CI runs exactly this.
test: $(STAMP)
	$(VENV)/bin/ruff check .
	QT_QPA_PLATFORM=offscreen $(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	for b in benchmarks/bench_*.py; do OMP_NUM_THREADS=2 $(PY) $$b; done

clean-venv:
	rm -rf $(VENV)
