# The two commands of the README: `make demo` and `make test`. Both set up a virtual
# environment in .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch is pinned to a CPU-sized build here; on a GPU machine set TORCH_SPEC or install
# the CUDA build of your choice into the venv first.
TORCH_SPEC ?= torch==2.13.0
TORCH_PIP_ARGS ?=
DEMO_OUT ?= demo-out

.PHONY: demo test install install-test bench clean

$(VENV)/.base: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

$(VENV)/.test: $(VENV)/.base
	$(PIP) install --quiet $(TORCH_PIP_ARGS) "$(TORCH_SPEC)"
	$(PIP) install --quiet -e ".[test,ml]"
	touch $@

install: $(VENV)/.base
install-test: $(VENV)/.test

demo: $(VENV)/.base
	$(VENV)/bin/electromicro demo --out $(DEMO_OUT)

# Two pytest-xdist workers, each test file on one worker (the scheduler tests share daemons
# within a file): the scheduler, browser and cluster tests mostly wait, so two workers on two
# cores halve the suite's wall time. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: $(VENV)/.test
	$(PY) -m pytest -q --durations=25 -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# Each benchmark is a script (minutes to hours): `make bench NAME=pfib` runs
# benchmarks/bench_pfib.py; its results land in benchmarks/results/.
bench: $(VENV)/.test
	$(PY) benchmarks/bench_$(NAME).py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
