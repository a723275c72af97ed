# Set-up and checks. `make demo` and `make test` each install everything they need first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# Each pass runs on TEST_WORKERS processes (pytest-xdist), a test file per process at a time,
# so a file's module-scoped fixtures are built once.
TEST_WORKERS ?= 2
PYTEST := -m pytest -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile
# The wheel is tested as installed: in its own virtual environment, which reaches the
# dependencies already in $(VENV) through a .pth file (and so does not run $(VENV)'s editable
# install of the checkout), from a directory where the checkout is not importable.
WHEEL_VENV := build/wheel-venv
WHEEL_PY := $(abspath $(WHEEL_VENV))/bin/python

.PHONY: install demo dist wheel-venv test test-slow test-all test-keras3 test-tfkeras lint format clean

install: $(STAMP)

$(STAMP): setup.py pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The main job: train on the bundled two-moons data and write runs/demo/.
demo: install
	$(VENV)/bin/tfp-realnvp train --out runs/demo --force

# An sdist, and a wheel built from it (so a file the sdist lacks is missing from the wheel too).
dist: install
	rm -rf dist
	mkdir -p build
	$(PY) -m build --no-isolation --outdir dist . > build/dist.log 2>&1 || (cat build/dist.log; exit 1)

wheel-venv: dist
	rm -rf $(WHEEL_VENV)
	$(PY) -m venv --without-pip $(WHEEL_VENV)
	$(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])" \
		> "$$($(WHEEL_PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/deps.pth"
	$(WHEEL_PY) -m pip install --quiet --no-deps --no-index dist/*.whl
	$(WHEEL_PY) -m pip check

# The suite runs twice: under Keras 3 (TensorFlow's default tf.keras) on the checkout, every test
# but the packaging ones, with the docstring examples; and under tf-keras (TF_USE_LEGACY_KERAS=1)
# on the installed wheel, the tests of what each Keras does its own way (marked tf_keras: fit,
# callbacks, saving, Keras state in backups and exports) and the packaging tests of the installed
# wheel (marked installed). The two passes run one after the other, each on both cores: side by
# side (four TensorFlow processes on two cores) they took a minute longer in all, and about 10%
# more CPU (user 23:30 against 21:21, the install's share taken out).
# `make test` leaves out the end-to-end runs marked slow (pyproject.toml says which); `make
# test-slow` runs them, in the same two passes. CI (.ci/run) runs `make test`, then
# `make test-slow`; `make test-all` does the same.
test: lint
	$(MAKE) --no-print-directory test-keras3
	$(MAKE) --no-print-directory test-tfkeras

test-slow: install
	$(MAKE) --no-print-directory test-keras3 TIER=slow DOCTESTS=
	$(MAKE) --no-print-directory test-tfkeras TIER=slow

test-all: test test-slow

# Which tests a pass runs (a pytest -m expression), and the Keras 3 pass's docstring examples.
TIER ?= not slow
DOCTESTS ?= --doctest-modules tfp_realnvp

test-keras3: install
	$(PY) $(PYTEST) -q -m "($(TIER)) and not installed" $(DOCTESTS) tests

test-tfkeras: wheel-venv
	cd $(WHEEL_VENV) && TF_USE_LEGACY_KERAS=1 TFP_REALNVP_TEST_INSTALLED=1 \
		$(WHEEL_PY) $(PYTEST) -q -m "($(TIER)) and (tf_keras or installed)" $(CURDIR)/tests

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
