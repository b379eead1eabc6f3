# The two set-up commands of the README, each working from a fresh clone:
#   make demo   train the `quick` model on the shipped statistics, print its analyses and
#               write their figures to runs/quick/figures
#   make test   run the test suite on both TransformerLens versions at once (what CI runs,
#               through .ci/run): .venv (TL 3.9, HookedTransformer) and .venv-tl4 (TL 4.3,
#               TransformerBridge); tests/run_suites.sh
#   make test-fast  the suite without slow trainings, notebooks, benchmarks, Ray, browser (development)
# demo and test-fast create .venv first, test both venvs.
#   make test-tl4  the whole test suite in .venv-tl4 alone. TL / TL4 pick the TransformerLens
#               of each venv (docs/transformerlens-versions.md). TORCH picks the torch build; the default is the CPU wheel these
# machines carry (a plain `torch` requirement would pull a multi-GB CUDA build). On a CUDA
# machine: make demo TORCH=torch

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
TL ?= transformer-lens==3.9.0
VENV_TL4 ?= .venv-tl4
TL4 ?= transformer-lens==4.3.0
RUN ?= runs/quick
BIN := $(VENV)/bin

.PHONY: demo test test-fast test-tl4 browser

# Bytecode is written where this runs (into the venv, the checkout's __pycache__): the first
# process to import a module compiles it and every later one (the CLI's subprocesses in the
# tests, Ray's workers, the notebooks' kernels) reads it.
unexport PYTHONDONTWRITEBYTECODE

# One pip call a venv: torch pinned beside the package, so that its `torch>=2.1` cannot pull a CUDA
# build. The two venvs can be built at once (make test does): hatchling's editable install
# writes nothing into the checkout. --no-compile: Python compiles what it imports on first use,
# a small part of the files of torch, transformers and ray that pip would compile.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile "$(TORCH)" "$(TL)" -e ".[dev]"
	touch $@

$(VENV_TL4)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_TL4)
	$(VENV_TL4)/bin/python -m pip install --quiet --no-compile "$(TORCH)" "$(TL4)" -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	rm -rf $(RUN)
	$(BIN)/induction-bigram train --preset quick --out $(RUN)
	$(BIN)/induction-bigram evaluate $(RUN)
	$(BIN)/induction-bigram memories $(RUN)
	$(BIN)/induction-bigram incontext $(RUN)

# both venvs and the browser at once, each suite starting as soon as its venv is ready
test:
	tests/run_suites.sh

# The bytecode of what the suite imports, written once by one process (tests/warm_bytecode.py)
# instead of by the suite's processes, several at once, on their first imports.
%/.warm: %/.installed tests/warm_bytecode.py
	OMP_NUM_THREADS=1 $*/bin/python tests/warm_bytecode.py
	touch $@

# The development tier: the suite without the end-to-end trainings, the notebooks, the benchmarks,
# Ray and the browser (pytest markers, pyproject.toml); make test is still what CI runs.
FAST ?= not slow and not notebook and not benchmark and not ray and not browser
# Two pytest processes, one per core and one torch thread each (two threads each would contend for
# the cores): the top-level test modules and the test folders.
test-fast: export OMP_NUM_THREADS = 1
test-fast: export MKL_NUM_THREADS = 1
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -q -m "$(FAST)" tests/test_*.py & top=$$!; \
	$(BIN)/python -m pytest -q -m "$(FAST)" $$(ls -d tests/*/ | grep -v __pycache__); folders=$$?; \
	wait $$top && exit $$folders

# The whole suite on TL 4 alone; tests/tl4/known_failures.py skips, each with its reason, the
# tests that need what TL 4 does not have (a plain HookedTransformer, TL 3's weight folding).
test-tl4: $(VENV_TL4)/.installed browser
	$(VENV_TL4)/bin/python -m pytest -p tests.tl4.known_failures --durations=20

# The circuitsvis views are checked in a real browser (tests/figures/test_views.py). Debian's chromium
# is installed where apt-get works as root; elsewhere that one test is skipped with its reason.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium could not be installed: the browser test will be skipped"
