# The two set-up commands of the README, each working from a fresh clone:
#   make demo   train the `quick` model on the shipped statistics, print its analyses and
#               write their figures to runs/quick/figures
#   make test   run the test suite (what CI runs, through .ci/run)
# Both create .venv first. TORCH picks the torch build; the default is the CPU wheel these
# machines carry (a plain `torch` requirement would pull a multi-GB CUDA build). On a CUDA
# machine: make demo TORCH=torch

PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch==2.13.0
RUN ?= runs/quick
BIN := $(VENV)/bin

.PHONY: demo test

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

demo: $(VENV)/.installed
	rm -rf $(RUN)
	$(BIN)/induction-bigram train --preset quick --out $(RUN)
	$(BIN)/induction-bigram evaluate $(RUN)
	$(BIN)/induction-bigram memories $(RUN)
	$(BIN)/induction-bigram logits $(RUN)

test: $(VENV)/.installed
	$(BIN)/python -m pytest
