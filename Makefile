# Quick start: `make run` (set up and start the service), `make test` (set up and run the tests).
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: setup run test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[piper,dev]"
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(PY) -m app

# The Chatterbox tests need the CPU torch stack (scripts/install-chatterbox-cpu.sh says why it
# is installed the way it is); the GPU image installs the `chatterbox` extra as declared.
test: setup
	bash scripts/install-browser.sh
	bash scripts/install-haproxy.sh
	bash scripts/install-chatterbox-cpu.sh $(VENV)
	PYTHON=$(PYTHON) bash scripts/install-pipecat-venv.sh $(VENV)-pipecat
	$(PY) -m pytest -q

# ruff, mypy, and the layer contracts in pyproject.toml ([tool.importlinter]).
lint: setup
	$(VENV)/bin/ruff check app tests benchmarks examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: setup
	$(PY) benchmarks/pipeline.py

clean:
	rm -rf $(VENV) $(VENV)-pipecat .pytest_cache .mypy_cache .ruff_cache .hypothesis
