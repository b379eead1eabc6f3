# The two set-up commands of the README, each working from a fresh clone:
#   make demo   train the `quick` model on the shipped statistics, print its analyses and
#               write their figures to runs/quick/figures
#   make test   run the test suite (what CI runs, through .ci/run)
#   make test-fast  the suite without slow trainings, notebooks, benchmarks, Ray, browser (development)
# Both create .venv first (TransformerLens 3.9, the HookedTransformer backend).
#   make test-tl4  the whole test suite again in .venv-tl4 (TransformerLens 4.3, the
#               TransformerBridge backend); .ci/run runs both. TL / TL4 pick the TransformerLens
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

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]" "$(TL)"
	touch $@

$(VENV_TL4)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV_TL4)
	$(VENV_TL4)/bin/python -m pip install --quiet "$(TORCH)"
	$(VENV_TL4)/bin/python -m pip install --quiet -e ".[dev]" "$(TL4)"
	touch $@

demo: $(VENV)/.installed
	rm -rf $(RUN)
	$(BIN)/induction-bigram train --preset quick --out $(RUN)
	$(BIN)/induction-bigram evaluate $(RUN)
	$(BIN)/induction-bigram memories $(RUN)
	$(BIN)/induction-bigram incontext $(RUN)

# --durations: each suite ends with its 20 slowest tests, where CI's wall time goes
test: $(VENV)/.installed browser
	$(BIN)/python -m pytest --durations=20

# The development tier: the suite without the end-to-end trainings, the notebooks, the benchmarks,
# Ray and the browser (pytest markers, pyproject.toml); make test is still what CI runs.
FAST ?= not slow and not notebook and not benchmark and not ray and not browser
# Two pytest processes, one per core: the top-level test modules and the test folders.
test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -q -m "$(FAST)" tests/test_*.py & top=$$!; \
	$(BIN)/python -m pytest -q -m "$(FAST)" $$(ls -d tests/*/ | grep -v __pycache__); folders=$$?; \
	wait $$top && exit $$folders

# The whole suite runs on TL 4 too; tests/tl4/known_failures.py skips, each with its reason, the
# tests that need what TL 4 does not have (a plain HookedTransformer, TL 3's weight folding).
test-tl4: $(VENV_TL4)/.installed browser
	$(VENV_TL4)/bin/python -m pytest -p tests.tl4.known_failures --durations=20

# The circuitsvis views are checked in a real browser (tests/figures/test_views.py). Debian's chromium
# is installed where apt-get works as root; elsewhere that one test is skipped with its reason.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
		&& apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| echo "chromium could not be installed: the browser test will be skipped"
