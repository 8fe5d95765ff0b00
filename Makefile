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

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev browser

# End-to-end tests drive Debian's Chromium; never a downloaded browser.
browser:
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

run: install
	@$(PY) -m ui.auth $(HOST)
	$(PY) -m streamlit run app.py --server.address $(HOST) --server.port $(PORT)

# Development: full error details in the browser (off for everyone else).
dev: install
	$(PY) -m streamlit run app.py --server.address 127.0.0.1 --server.port $(PORT) \
		--client.showErrorDetails full

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: install-dev lint
	$(PY) -m pytest

# Everything but the slow (real training) and browser tests: the inner loop.
test-fast: $(VENV)/.dev lint
	$(PY) -m pytest -m "not slow and not browser"

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache artifacts
