# All set-up happens here: `make demo` and `make test` work on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.flyenv-installed
export MUJOCO_GL ?= egl

.PHONY: demo test test-slow test-all lint bench docs clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	bash scripts/install_system_deps.sh
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first: the pinned CPU wheel; otherwise stable-baselines3 drags in a CUDA build
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,sweep,docs]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/flyenv demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q -m slow

test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m 'slow or not slow'

lint: $(STAMP)
	$(BIN)/ruff check flyenv agents tests benchmarks
	$(BIN)/ruff format --check flyenv agents tests benchmarks

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev,sweep,bench]'  # the peers: Brian2, snntorch
	$(BIN)/python benchmarks/bench_odor_taxis.py
	$(BIN)/python benchmarks/bench_kinematic.py
	$(BIN)/python benchmarks/bench_twin_transfer.py
	$(BIN)/python benchmarks/bench_brain.py --repeats 2
	$(BIN)/python benchmarks/bench_lateral_line.py
	$(BIN)/python benchmarks/bench_whole_brain.py
	$(BIN)/python benchmarks/bench_firing_statistics.py

# The documentation site (Sphinx + MyST + furo); warnings are errors.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
