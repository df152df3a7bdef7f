"""The HTTP API end to end: a real `folio serve` (uvicorn) over real Chroma and the real models.

One server for the module; the documents are ingested, and the CLI's answers taken, by `folio`
processes before it starts, so the CLI and the API can be compared on the same index.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api_server import ApiServer, api_env, api_server, run_folio, sse_events, wait_ready
from helpers import write_pdf

QUESTION = "Who painted the Skerry lighthouse?"
# A question the tiny model answers at length: at temperature 0 it writes all 300 tokens (~5 s
# here), a generation still running when the test acts on it.
LONG = {
    "question": "Describe the Skerry lighthouse, the harbour office and the ferries in detail.",
    "answer_mode": "generate",
    "max_tokens": 300,
    "temperature": 0,
}
# What a user compares between two interfaces: not timings, ids or the chat.
SAME_FIELDS = ("answer", "quote", "citations", "sources", "refused", "mode", "support", "prompt")
ASK_KEYS = {
    "question", "standalone_question", "answer", "quote", "mode", "refused", "support",
    "citations", "sources", "prompt", "model", "timings", "chat", "answer_id", "refusal",
    "sentences", "stopped",
}  # fmt: skip


@dataclass
class Library:
    root: Path
    env: dict[str, str]
    cli_answer: dict[str, Any]
    cli_sources: dict[str, Any]


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    root = tmp_path_factory.mktemp("api")
    docs = root / "docs"
    write_pdf(
        docs / "harbour.pdf",
        [
            "# Harbour report\nThe harbour office opens at seven in the morning on weekdays.",
            "# Lighthouse\nThe Skerry lighthouse was painted red and white by the keeper Ada Lund."
            "\nThe Skerry lighthouse was built in 1887 from local granite.",
            "# Ferries\nFerries to the outer islands leave every ninety minutes in summer.",
        ],
    )
    (docs / "bridge.md").write_text(
        "# Tay bridge\n\nThe Tay bridge was painted grey in 1990.\n\n"
        "The Tay bridge was built in 1878."
    )
    env = api_env(root / "data")
    ingested = run_folio(env, "ingest", str(docs), "--json")
    assert ingested.returncode == 0, ingested.stderr
    asked = run_folio(env, "ask", QUESTION, "--json")
    assert asked.returncode == 0, asked.stderr
    listed = run_folio(env, "sources", "--json")
    return Library(root, env, json.loads(asked.stdout), json.loads(listed.stdout))


@pytest.fixture(scope="module")
def server(library: Library) -> Iterator[ApiServer]:
    with api_server(library.env, library.root / "serve.log") as running:
        wait_ready(running)
        yield running


@pytest.fixture
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with server.client() as http:
        yield http


def ask(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/ask", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def stream(client: httpx.Client, **body: Any) -> list[tuple[str, Any]]:
    with client.stream("POST", "/v1/ask", json={**body, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [(name, json.loads(data)) for name, data in sse_events(response.iter_lines())]


def test_health_readiness_and_docs(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["ready"] is True
    assert {"embedder", "store", "llm"} <= set(ready.json()["checks"])
    paths = client.get("/openapi.json").json()["paths"]
    for route in ("/v1/ask", "/v1/search", "/v1/documents", "/v1/collections", "/v1/chats",
                  "/v1/chats/{chat_id}", "/v1/feedback", "/v1/chat/completions", "/v1/models",
                  "/healthz", "/readyz"):  # fmt: skip
        assert route in paths
    docs = client.get("/docs").text
    assert "swagger" in docs.lower() and "cdn." not in docs  # works on a machine offline
    script = re.search(r'src="([^"]+swagger-ui-bundle\.js)"', docs)
    assert script and client.get(script.group(1)).status_code == 200


def test_the_api_and_the_cli_give_the_same_answer(library: Library, client: httpx.Client) -> None:
    answer = ask(client, question=QUESTION)
    assert set(answer) >= ASK_KEYS
    assert "Ada Lund" in answer["answer"] and answer["quote"]["page"] == 2
    for field in SAME_FIELDS:
        assert answer[field] == library.cli_answer[field], field
    assert answer["chat"] is None and answer["stopped"] is False


def test_documents_collections_and_search(library: Library, client: httpx.Client) -> None:
    assert client.get("/v1/documents").json() == library.cli_sources
    collections = client.get("/v1/collections").json()["collections"]
    default = next(c for c in collections if c["name"] == "default")
    assert default["documents"] == 2 and default["chunks"] >= 2

    found = client.post("/v1/search", json={"query": "ferries to the islands", "k": 2})
    assert found.status_code == 200
    results = found.json()["results"]
    assert found.json()["query"] == "ferries to the islands" and len(results) == 2
    assert results[0]["source"].endswith("harbour.pdf") and results[0]["page"] == 3
    dense = client.post("/v1/search", json={"query": "Tay bridge", "mode": "dense", "k": 1})
    assert dense.json()["results"][0]["source"].endswith("bridge.md")

    created = client.post("/v1/collections", json={"name": "fresh"})
    assert created.status_code == 201
    assert created.json() == {"name": "fresh", "documents": 0, "chunks": 0}
    assert client.post("/v1/collections", json={"name": "fresh"}).status_code == 200
    names = {c["name"] for c in client.get("/v1/collections").json()["collections"]}
    assert {"default", "fresh"} <= names
    empty = ask(client, question="Anything here?", collection="fresh")
    assert empty["refused"] is True and "empty" in empty["answer"]


def test_answers_stream_as_server_sent_events(client: httpx.Client) -> None:
    events = stream(client, question=QUESTION, answer_mode="generate", max_tokens=16)
    names = [name for name, _ in events]
    assert names[-1] == "answer" and "token" in names
    assert set(names) <= {"queued", "token", "answer"}
    tokens = "".join(data["text"] for name, data in events if name == "token")
    final = events[-1][1]
    assert tokens.strip() and set(final) >= ASK_KEYS
    assert final["mode"] == "generate" and 0 < final["timings"]["completion_tokens"] <= 16
    assert final["quote"]["page"] == 2  # the quote and its citation hold whatever the model says

    quoted = stream(client, question=QUESTION)  # quote mode: no tokens, the answer at once
    assert [name for name, _ in quoted if name != "queued"] == ["answer"]
    assert "Ada Lund" in quoted[-1][1]["answer"]


def test_saved_chats_continue_rename_and_delete(client: httpx.Client) -> None:
    first = ask(client, question="When was the Skerry lighthouse built?", new_chat=True)
    chat = first["chat"]
    assert chat and "1887" in first["answer"]
    follow_up = ask(client, question="Who painted it?", chat=chat)
    assert follow_up["chat"] == chat and "Ada Lund" in follow_up["answer"]
    assert "Skerry" in follow_up["standalone_question"]  # the follow-up kept its subject

    listed = client.get("/v1/chats", params={"collection": "default"}).json()["chats"]
    assert [c["turns"] for c in listed if c["id"] == chat] == [2]
    transcript = client.get(f"/v1/chats/{chat}").json()
    assert transcript["id"] == chat and transcript["collection"] == "default"
    assert [t["answer_id"] for t in transcript["turns"]] == [
        first["answer_id"],
        follow_up["answer_id"],
    ]
    renamed = client.patch(f"/v1/chats/{chat}", json={"title": "Lighthouse questions"})
    assert renamed.status_code == 200 and renamed.json()["title"] == "Lighthouse questions"
    assert client.get(f"/v1/chats/{chat}").json()["title"] == "Lighthouse questions"

    deleted = client.delete(f"/v1/chats/{chat}")
    assert deleted.status_code == 204 and deleted.content == b""
    for method in ("GET", "DELETE"):
        gone = client.request(method, f"/v1/chats/{chat}")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "chat_not_found"


def test_feedback_is_recorded(library: Library, client: httpx.Client) -> None:
    answer = ask(client, question=QUESTION)
    sent = client.post(
        "/v1/feedback", json={"answer_id": answer["answer_id"], "rating": "up", "comment": "ok"}
    )
    assert sent.status_code == 204
    lines = (library.root / "data" / "feedback.jsonl").read_text().splitlines()
    saved = json.loads(lines[-1])
    assert saved["answer_id"] == answer["answer_id"] and saved["rating"] == 1  # 1 = thumbs up
    assert saved["question"] == QUESTION and saved["comment"] == "ok"
    unknown = client.post("/v1/feedback", json={"answer_id": "nope", "rating": "down"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "answer_not_found"


def test_openai_client_gets_the_grounded_answer(server: ApiServer) -> None:
    from openai import OpenAI

    openai = OpenAI(base_url=f"{server.url}/v1", api_key="unused", timeout=120)
    assert "folio/default" in [m.id for m in openai.models.list()]

    completion = openai.chat.completions.create(
        model="folio/default", messages=[{"role": "user", "content": QUESTION}]
    )
    folio = (completion.model_extra or {})["folio"]
    message = completion.choices[0].message.content or ""
    # The grounded answer, then its cited sources for chat front ends that show only the message.
    cited = folio["citations"][0]
    assert message == f"{folio['answer']}\n\nSources: [{cited['n']}] harbour.pdf, page 2"
    assert "Ada Lund" in folio["answer"] and cited["page"] == 2
    assert completion.choices[0].finish_reason == "stop"

    # Earlier user turns are the history follow-ups are resolved against.
    follow_up = openai.chat.completions.create(
        model="folio/default",
        messages=[
            {"role": "user", "content": "When was the Skerry lighthouse built?"},
            {"role": "assistant", "content": "In 1887."},
            {"role": "user", "content": "Who painted it?"},
        ],
    )
    assert "Skerry" in (follow_up.model_extra or {})["folio"]["standalone_question"]

    chunks = list(
        openai.chat.completions.create(
            model="folio/default",
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            max_tokens=16,
            extra_body={"answer_mode": "generate"},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = (chunks[-1].model_extra or {})["folio"]
    assert text.strip() and last["mode"] == "generate"
    assert text.strip().startswith(last["answer"][:20].strip()) or last["answer"] in text
    # Cut off at max_tokens: OpenAI's "length", so a client knows the answer is incomplete.
    assert last["timings"]["completion_tokens"] == 16
    assert chunks[-1].choices[0].finish_reason == "length"

    from openai import BadRequestError, UnprocessableEntityError

    with pytest.raises((BadRequestError, UnprocessableEntityError)):  # one answer per request
        openai.chat.completions.create(
            model="folio/default", messages=[{"role": "user", "content": QUESTION}], n=2
        )

    from openai import NotFoundError

    with pytest.raises(NotFoundError):
        openai.chat.completions.create(
            model="folio/nowhere", messages=[{"role": "user", "content": QUESTION}]
        )


def test_upload_takes_good_files_and_lists_bad_ones(library: Library, client: httpx.Client) -> None:
    good = b"# Canal\n\nThe Union canal lock keeper is Morag Innes."
    files = [
        ("files", ("canal.md", good, "text/markdown")),
        ("files", ("virus.exe", b"MZ\x90\x00", "application/octet-stream")),
        ("files", ("../escape.pdf", b"%PDF-1.4 nope", "application/pdf")),
        ("files", (".hidden.md", b"# hidden", "text/markdown")),
        ("files", ("broken.pdf", b"%PDF-1.7\n1 0 obj garbage", "application/pdf")),
    ]
    response = client.post("/v1/documents", params={"collection": "uploads"}, files=files)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["added"] == 1 and report["chunks_added"] >= 1
    failed = {Path(f["path"]).name: f["error"] for f in report["failed"]}
    assert set(failed) == {"virus.exe", "escape.pdf", ".hidden.md", "broken.pdf"}
    assert "unsupported" in failed["virus.exe"] and "hidden" in failed[".hidden.md"]
    assert ".." in failed["escape.pdf"]

    folder = library.root / "data" / "uploads"
    assert sorted(p.name for p in folder.rglob("*") if p.is_file()) == ["canal.md"]
    assert not (library.root / "escape.pdf").exists()
    listed = client.get("/v1/documents", params={"collection": "uploads"}).json()
    stored = [d["path"] for d in listed["documents"]]
    assert [Path(p).name for p in stored] == ["canal.md"]
    answer = ask(client, question="Who is the Union canal lock keeper?", collection="uploads")
    assert "Morag Innes" in answer["answer"]

    removed = client.delete("/v1/documents", params={"collection": "uploads", "path": stored})
    assert removed.status_code == 200
    assert removed.json()["removed"] == stored and removed.json()["chunks_removed"] >= 1
    assert client.get("/v1/documents", params={"collection": "uploads"}).json()["documents"] == []


# Answers that generate wait for the one LLM (quotes have a lane of their own and do not wait).
GENERATING = {"answer_mode": "quote+generate", "max_tokens": 8}


def test_a_waiting_question_is_queued_not_refused(client: httpx.Client, server: ApiServer) -> None:
    generating = threading.Event()
    first: list[tuple[str, Any]] = []

    def long_answer() -> None:
        body = {**LONG, "stream": True}
        with server.client() as other, other.stream("POST", "/v1/ask", json=body) as response:
            for name, data in sse_events(response.iter_lines()):
                first.append((name, json.loads(data)))
                if name == "token":
                    generating.set()

    worker = threading.Thread(target=long_answer)
    worker.start()
    assert generating.wait(timeout=120)
    # A client that gives up while its question waits: the question is dropped, never answered.
    with (
        server.client(timeout=httpx.Timeout(120, read=1.0)) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post("/v1/ask", json={"question": QUESTION, "chat": "gave-up", **GENERATING})
    second = stream(client, question="When was the Tay bridge built?", **GENERATING)
    worker.join(timeout=120)
    time.sleep(1.0)  # the worker would have reached it by now
    assert client.get("/v1/chats/gave-up").status_code == 404
    positions = [data["position"] for name, data in second if name == "queued"]
    assert second[0][0] == "queued" and positions[-1] == 1  # next once the other left
    answer = second[-1][1]
    assert second[-1][0] == "answer" and "1878" in answer["answer"] + answer["quote"]["text"]
    assert first[-1][0] == "answer" and first[-1][1]["stopped"] is False


def test_a_client_that_leaves_cancels_its_answer(client: httpx.Client, server: ApiServer) -> None:
    chat = "left-early"
    body = {**LONG, "chat": chat}
    with (
        server.client() as leaving,
        leaving.stream("POST", "/v1/ask", json={**body, "stream": True}) as response,
    ):
        for name, _ in sse_events(response.iter_lines()):
            if name == "token":
                break  # close the connection after the first token
    turn = saved_turn(client, chat)
    assert turn["stopped"] is True and turn["timings"]["completion_tokens"] < 300

    # Not streaming: a client that times out is gone too.
    body["chat"] = chat = "timed-out"
    with (
        server.client(timeout=httpx.Timeout(120, read=2.0)) as impatient,
        pytest.raises(httpx.ReadTimeout),
    ):
        impatient.post("/v1/ask", json=body)
    turn = saved_turn(client, chat)
    assert turn["stopped"] is True and turn["timings"]["completion_tokens"] < 300


def saved_turn(client: httpx.Client, chat: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = client.get(f"/v1/chats/{chat}")
        if found.status_code == 200 and found.json()["turns"]:
            return dict(found.json()["turns"][-1])
        time.sleep(0.3)
    raise AssertionError(f"chat {chat} was never saved")


def test_only_uploads_may_be_large(client: httpx.Client) -> None:
    """A question of over a megabyte is refused (413) though uploads may reach max_upload_mb."""
    huge = client.post("/v1/search", json={"query": "lock " * 250_000})
    assert huge.status_code == 413
    assert "requests other than uploads" in huge.json()["error"]["message"]
    assert client.post("/v1/search", json={"query": "lock"}).status_code == 200
