# Two entry points for a fresh machine: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# Who can reach the app: this machine only. Serving to a network is explicit and needs a
# password (CNN_STUDIO_PASSWORD or password in .streamlit/secrets.toml): make run HOST=0.0.0.0
HOST ?= 127.0.0.1
# Data root: ../shared/data beside the checkout when present (dev machines, CI), else ./data.
SHARED := $(abspath ../shared/data)
export CNN_STUDIO_DATA ?= $(if $(wildcard $(SHARED)),$(SHARED),$(CURDIR)/data)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# GPU switch: `make run GPU=1` adds TensorFlow's CUDA wheels (tensorflow[and-cuda]);
# `make run GPU=1 BACKEND=jax` adds JAX with CUDA and runs Keras on JAX. BACKEND=jax alone: JAX on the CPU.
GPU ?= 0
BACKEND ?= tensorflow
EXTRA_REQS := $(if $(filter 1,$(GPU)),requirements-gpu-$(BACKEND).txt,$(if $(filter jax,$(BACKEND)),requirements-jax.txt))
EXTRA := $(if $(EXTRA_REQS),$(VENV)/.extra-$(BACKEND)-gpu$(GPU))

.PHONY: run dev test test-fast install install-dev browser lint clean

$(VENV)/.runtime: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

$(VENV)/.dev: requirements-dev.txt $(VENV)/.runtime
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

$(VENV)/.extra-$(BACKEND)-gpu$(GPU): $(EXTRA_REQS) $(VENV)/.runtime
	$(PY) -m pip install -q -r $(EXTRA_REQS)
	touch $@

install: $(VENV)/.runtime $(EXTRA)
install-dev: $(VENV)/.dev $(EXTRA) browser

# End-to-end tests drive Debian's Chromium; never a downloaded browser.
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

# The app, and every run it starts, use Keras on $(BACKEND).
run: install
	@$(PY) -m ui.auth $(HOST)
	KERAS_BACKEND=$(BACKEND) $(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT)

# Development: full error details in the browser (off for everyone else).
dev: install
	KERAS_BACKEND=$(BACKEND) $(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--client.showErrorDetails full

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

# Tests run in-process on TensorFlow (GPU=1: on its GPU); tests/test_backends.py and the other JAX
# tests train through KERAS_BACKEND=jax in child processes (GPU=1 BACKEND=jax: on JAX's GPU).
test: install-dev lint
	$(PY) -m pytest

# Everything but the slow (real training) and browser tests: the inner loop.
test-fast: $(VENV)/.dev lint
	$(PY) -m pytest -m "not slow and not browser"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
