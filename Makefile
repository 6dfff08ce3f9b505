# `make demo` and `make test` each build .venv on first use and install everything they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: install demo test ablation bench reproduce clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Pinned first: an unpinned torch would pull a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(PY) recipes/demo.py

# docs/ablation.md's settings: 250 steps, half the demo's. All 16 variants x 3 seeds: about 2.5 h on
# 2 cores; docs/ablation.md shows 10 of them (its reproduce line), about 1.5 h one run at a time.
ablation: $(STAMP)
	$(PY) recipes/ablation.py --max_steps 250

# Reproduce READ-CLIP (docs/reproduce.md): downloads the data and benchmarks, trains the reference recipe
# on the visible GPUs, evaluates, and compares with the paper. Options: make reproduce ARGS="--imagenet_dir DIR".
reproduce: $(STAMP)
	$(PY) recipes/reproduce.py $(ARGS)

bench: $(STAMP)
	$(PY) benchmarks/bench_step.py --threads 1

test: $(STAMP)
	# Lint first (import order, unused or undefined names: pyproject.toml), then the suite.
	$(PY) -m ruff check .
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) outputs .cache
