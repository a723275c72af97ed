# Set-up and checks. `make demo` and `make test` each install everything they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PYTEST := $(PY) -m pytest -p no:cacheprovider

.PHONY: install demo test test-keras3 test-tfkeras lint format clean

install: $(STAMP)

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The main job: train on the bundled two-moons data and write runs/demo/.
demo: install
	$(VENV)/bin/tfp-realnvp train --out runs/demo --force

# The suite runs twice: under Keras 3 (TensorFlow's default tf.keras) with the slow end-to-end
# runs and the docstring examples, then under tf-keras (TF_USE_LEGACY_KERAS=1) without them.
test: lint test-keras3 test-tfkeras

test-keras3: install
	$(PYTEST) -q --doctest-modules tfp_realnvp tests

test-tfkeras: install
	TF_USE_LEGACY_KERAS=1 $(PYTEST) -q -m "not slow" tests

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
