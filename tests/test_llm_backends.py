"""One contract for both LLM backends: in-process llama.cpp and a real `python -m llama_cpp.server`
with the same packaged model. Streaming, citations, refusal, stop sequences, sampling, the
completion route, cancellation, and clear errors for a server that is down or silent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import llm_servers
from conftest import REPO, Folio, free_port
from folio.llm import check_llm, load_llm
from folio.settings import Settings, load_settings
from folio.store import ChromaStore
from llm_servers import LlamaServer
from retrieval.chain import Answer, AnswerChain, Token
from retrieval.search import QueryToChunks

# The session's real servers: fixtures shared through tests/llm_servers.py, not conftest.
llama_server = llm_servers.llama_server
silent_server = llm_servers.silent_server

QUESTION = "Who painted the Skerry lighthouse?"
DOC = (
    "# Lighthouse\n\nThe Skerry lighthouse was painted red and white by the keeper Ada Lund.\n\n"
    "The Skerry lighthouse was built in 1887 from local granite.\n\n"
    "# Ferries\n\nFerries to the outer islands leave every ninety minutes in summer.\n"
)


def cli_env(data_dir: Path) -> dict[str, str]:
    return {
        "FOLIO_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "FOLIO_N_THREADS": "1",
        "FOLIO_MAX_TOKENS": "24",  # short answers keep the suite fast
    }


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-document collection, ingested once for every test here."""
    root = tmp_path_factory.mktemp("backends")
    (root / "docs").mkdir()
    (root / "docs" / "light.md").write_text(DOC)
    folio = Folio(cli_env(root / "data"))
    assert folio.json("ingest", root / "docs")["added"] == 1
    return root / "data"


@dataclass
class Backend:
    name: str  # "local" | "server"
    folio: Folio  # the CLI with this backend's environment
    data_dir: Path
    server: LlamaServer | None

    def settings(self, **overrides: Any) -> Settings:
        url = self.server.url if self.server else None
        return load_settings(data_dir=self.data_dir, llm_url=url, n_threads=1, **overrides)

    @contextmanager
    def chain(self, **overrides: Any) -> Iterator[AnswerChain]:
        settings = self.settings(**overrides)
        retriever = QueryToChunks(settings, ChromaStore(settings.data_dir))
        try:
            yield AnswerChain(settings, retriever)
        finally:
            retriever.close()

    def ask(self, question: str = QUESTION, **sampling: Any) -> tuple[list[Token], Answer]:
        with self.chain() as chain:
            *events, answer = chain.stream(question, mode="generate", **sampling)
        assert isinstance(answer, Answer)
        return [e for e in events if isinstance(e, Token)], answer


@pytest.fixture(params=["local", "server"])
def backend(request: pytest.FixtureRequest, data_dir: Path) -> Backend:
    env = cli_env(data_dir)
    server = None
    if request.param == "server":
        server = request.getfixturevalue("llama_server")
        env["FOLIO_LLM_URL"] = server.url
    return Backend(request.param, Folio(env), data_dir, server)


def test_answer_streams_tokens_then_a_cited_grounded_answer(backend: Backend) -> None:
    tokens, answer = backend.ask(max_tokens=24)
    assert len(tokens) >= 2  # streamed piece by piece, not in one block
    assert answer.refused is False and answer.stopped is False
    assert answer.quote is not None and "Ada Lund" in answer.quote.text
    assert answer.sources and answer.sources[0].source.endswith("light.md")
    assert answer.sentences  # every generated sentence got a grounding verdict
    assert 0 < int(answer.timings["completion_tokens"] or 0) <= 24
    assert answer.timings["first_token_ms"] is not None


def test_cli_answer_names_the_backend_and_model(backend: Backend) -> None:
    result = backend.folio.json("ask", QUESTION, "--answer-mode", "generate")
    assert result["refused"] is False and result["stopped"] is False
    assert result["answer"] and result["sentences"]
    assert list(result).index("stopped") == list(result).index("refusal") + 1
    if backend.server:
        assert result["model"] == {
            "url": backend.server.url,
            "served_model": str(backend.server.model_path),
            "backend": "server",
        }
    else:
        model = result["model"]
        assert model["backend"] == "local" and model["n_gpu_layers"] == 0
        assert model["path"].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")


def test_unanswerable_question_is_refused_without_the_llm(backend: Backend, tmp_path: Path) -> None:
    # An LLM that cannot answer at all: any call to it would fail the question.
    if backend.server:
        backend.folio.env["FOLIO_LLM_URL"] = f"http://127.0.0.1:{free_port()}/v1"
    else:
        broken = tmp_path / "broken.gguf"
        broken.write_bytes(b"GGUF" + b"\0" * 64)
        backend.folio.env["FOLIO_LLM_MODEL"] = str(broken)
    result = backend.folio(
        "ask", "What is the boiling point of mercury in kelvin?", "--answer-mode", "generate",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    answer = result.json()
    assert answer["refused"] is True and answer["answer"] == "Not found in your documents."
    assert answer["timings"]["completion_tokens"] == 0
    assert answer["model"]["backend"] == backend.name


def test_stop_sequences_end_the_generation(backend: Backend) -> None:
    llm = load_llm(backend.settings())
    greedy = {"temperature": 0.0, "max_tokens": 20}
    free = llm.invoke(llm.prompt("completion", "", "1, 2, 3, 4, 5,", []), greedy)
    assert free.startswith(" 6, 7, 8, 9")  # what the model writes unstopped
    stopped = llm.invoke(llm.prompt("completion", "", "1, 2, 3, 4, 5,", [" 9"]), greedy)
    assert stopped == " 6, 7, 8,"


def test_per_request_sampling(backend: Backend) -> None:
    _, short = backend.ask(max_tokens=8)
    _, longer = backend.ask(max_tokens=40)
    assert 0 < int(short.timings["completion_tokens"] or 0) <= 8
    assert len(short.generated) < len(longer.generated)
    # Sampled (temperature 1) with the same seed: the same text; another seed: another text.
    runs = [backend.ask(max_tokens=16, temperature=1.0, seed=s)[1].generated for s in (3, 3, 4)]
    assert runs[0] == runs[1] and runs[0] != runs[2]
    _, greedy_a = backend.ask(max_tokens=16, temperature=0.0, seed=1)
    _, greedy_b = backend.ask(max_tokens=16, temperature=0.0, seed=1)
    assert greedy_a.generated == greedy_b.generated


def test_completion_kind_prompt_is_sent_as_plain_completion(backend: Backend) -> None:
    from prompts import load_prompt

    route = "POST /v1/completions "
    before = backend.server.log_text().count(route) if backend.server else 0
    with backend.chain() as chain:
        hits = chain.retriever.search(QUESTION)
        text, stop, _ = chain.build_prompt(
            load_prompt("grounded-qa-completion"), QUESTION, hits, 16
        )
        *_, answer = chain.stream(QUESTION, mode="generate", prompt="grounded-qa-completion")
    assert "<|im_start|>" not in text and text.rstrip().endswith("Answer:") and "\n" in stop
    assert answer.prompt.name == "grounded-qa-completion"
    if backend.server:
        assert backend.server.wait_for_log(route)
        assert backend.server.log_text().count(route) == before + 1


def test_cancel_stops_generation_and_keeps_the_partial_answer(backend: Backend) -> None:
    route = "Disconnected from client"
    before = backend.server.log_text().count(route) if backend.server else 0
    cancel = threading.Event()
    pieces: list[str] = []
    with backend.chain() as chain:
        started = time.perf_counter()
        for event in chain.stream(QUESTION, mode="generate", cancel=cancel, max_tokens=200):
            if isinstance(event, Token):
                pieces.append(event.text)
                if len(pieces) == 2:
                    cancel.set()
            else:
                answer = event
        elapsed = time.perf_counter() - started
    assert answer.stopped is True and answer.to_json()["stopped"] is True
    assert len(pieces) == 2 and int(answer.timings["completion_tokens"] or 0) <= 4
    assert answer.generated == "".join(pieces).strip()
    assert answer.sources and answer.refused is False  # finished like any answer
    assert elapsed < 30
    if backend.server:  # the HTTP stream was closed: the server stopped generating
        assert backend.server.wait_for_log(route)
        assert backend.server.log_text().count(route) > before

    # Cancelled before generation (a job dropped while waiting): nothing is generated.
    cancel = threading.Event()
    cancel.set()
    with backend.chain() as chain:
        events = list(chain.stream(QUESTION, mode="generate", cancel=cancel))
    assert [e for e in events if isinstance(e, Token)] == []
    last = events[-1]
    assert isinstance(last, Answer) and last.stopped and last.timings["completion_tokens"] == 0


@pytest.mark.slow  # a fresh process loads both models: ~20 s on 2 cores
def test_answers_import_no_langchain_community_and_warn_nothing(
    data_dir: Path, llama_server: LlamaServer
) -> None:
    """A fresh process answering with each backend: langchain_community is never imported and no
    LangChain deprecation warning is raised (one process for both: model loading is the cost)."""
    code = (
        "import json, os, sys, warnings\n"
        "url, args = sys.argv[1], sys.argv[2:]\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    from folio.cli import app\n"
        "    for backend_url in ('', url):\n"
        "        os.environ['FOLIO_LLM_URL'] = backend_url\n"
        "        try:\n"
        "            app(args, standalone_mode=False)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "bad = [str(w.message) for w in caught if w.category.__name__.startswith('LangChain')\n"
        "       or 'langchain' in str(w.message).lower()]\n"
        "print('CHECK ' + json.dumps({'community': 'langchain_community' in sys.modules,\n"
        "                             'warnings': bad}), file=sys.stderr)\n"
    )
    ask = ["ask", QUESTION, "--answer-mode", "generate", "--json"]
    out = subprocess.run(
        [sys.executable, "-c", code, llama_server.url, *ask],
        env={**os.environ, **cli_env(data_dir)},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    answers = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert [a["model"]["backend"] for a in answers] == ["local", "server"], out.stderr[-2000:]
    assert all(a["refused"] is False for a in answers)
    check = json.loads(out.stderr.rsplit("CHECK ", 1)[1].splitlines()[0])
    assert check == {"community": False, "warnings": []}


def test_server_down_is_one_line_naming_the_url(data_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    folio = Folio({**cli_env(data_dir), "FOLIO_LLM_URL": url})
    result = folio("ask", QUESTION, "--answer-mode", "generate")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and url in lines[0] and "not reachable" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    report = check_llm(load_settings(data_dir=data_dir, llm_url=url))
    assert report["ok"] is False and url in report["error"] and report["backend"] == "server"


def test_silent_server_times_out_naming_the_url(data_dir: Path, silent_server: str) -> None:
    folio = Folio({**cli_env(data_dir), "FOLIO_LLM_URL": silent_server, "FOLIO_LLM_TIMEOUT_S": "1"})
    started = time.perf_counter()
    result = folio("ask", QUESTION, "--answer-mode", "generate")
    assert result.exit_code == 1 and time.perf_counter() - started < 30
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and silent_server in lines[0], result.stderr
    assert "did not answer within 1 s" in lines[0]
    # The generation request itself times out too (model named: no /models request first).
    settings = load_settings(
        data_dir=data_dir, llm_url=silent_server, llm_timeout_s=1, llm_server_model="m", n_ctx=512
    )
    llm = load_llm(settings)
    from folio.llm import LLMUnavailableError

    with pytest.raises(LLMUnavailableError, match="did not answer within 1 s"):
        llm.invoke(llm.prompt("chat", "system", "user", []), {"max_tokens": 4})


def test_token_estimate_without_a_tokenizer_errs_high(llama_server: LlamaServer) -> None:
    """Servers without a tokenizer endpoint (Ollama) get an estimate: it must never count fewer
    tokens than the model's real tokenizer, or prompts would overflow the context window."""
    from folio.llm_server import ServerLLM

    real = ServerLLM(llama_server.url, None, None, 30, 2048)
    estimate = ServerLLM(llama_server.url, None, None, 30, 2048, server_tokenizer=False)
    texts = [
        DOC,
        (REPO / "README.md").read_text()[:3000],
        "| Total net sales | $ 81,797 | $ 82,959 | (1)% | 12,345 |\n" * 10,  # digits split
        "3.14159265358979323846 2.71828182845904523536 " * 10,
        "Die Straßenbahn fährt über die Brücke nach Zürich. " * 10,
        "Revenue          $    1,234         $    5,678\n" * 10,  # layout-mode PDF text
    ]
    for text in texts:
        assert estimate.count_tokens(text) >= real.count_tokens(text)
        cut = estimate.truncate(text, 50)
        assert text.startswith(cut) and 0 < real.count_tokens(cut) <= 50


def test_a_url_without_v1_says_what_the_url_should_be(
    data_dir: Path, llama_server: LlamaServer
) -> None:
    root = llama_server.url.removesuffix("/v1")
    folio = Folio({**cli_env(data_dir), "FOLIO_LLM_URL": root})
    result = folio("ask", QUESTION, "--answer-mode", "generate")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and root in lines[0] and "HTTP 404" in lines[0], result.stderr
    assert "ending in /v1" in lines[0]
