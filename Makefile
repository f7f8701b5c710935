# matbal: two commands do all set-up on a fresh machine.
#   make demo   -> creates .venv if missing, installs matbal, runs the CPU demo
#   make test   -> same environment, runs the test suite
# Use an existing environment (conda, your own CUDA torch): make test VENV=$$CONDA_PREFIX
# torch is installed only when the environment has none: TORCH_SPEC (default: the CPU build that lies
# on our machines); on your own machine add TORCH_PIP_ARGS="--index-url <PyTorch CPU wheel index>".
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
STAMP := $(VENV)/.matbal-installed
PYTEST_ARGS ?=

.PHONY: demo test figs experiments claims lab bench clean-venv

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	@$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[dev,real]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) -m matbal demo

test: $(STAMP)
	$(PY) -m pytest -p no:cacheprovider $(PYTEST_ARGS)

experiments: $(STAMP)
	$(PY) experiments/run_all.py

claims: $(STAMP)
	$(PY) experiments/build_claims.py

figs: $(STAMP)
	$(PY) paper_figs/build_all.py

bench: $(STAMP)
	@$(PY) -c "import ot" 2>/dev/null || $(PY) -m pip install -e ".[bench]"
	$(PY) benchmarks/run_all.py --quick

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/

clean-venv:
	rm -rf $(VENV)
