"""The HTTP API refuses what it should: no key, bad input, oversized bodies. Each refusal is a
JSON error {"error": {"code", "message"}} and leaves the index exactly as it was."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api_server import ApiServer, api_env, api_server, run_folio, sse_events
from conftest import free_port

KEY = "test-key-5f2c9a"
LIMIT_MB = 1


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("api-errors")


@pytest.fixture(scope="module")
def server(root: Path) -> Iterator[ApiServer]:
    docs = root / "docs"
    docs.mkdir()
    (docs / "tides.md").write_text("# Tides\n\nHigh tide at Leith is at 14:05 on Sunday.\n")
    env = api_env(root / "data")
    ingested = run_folio(env, "ingest", str(docs), "--json")
    assert ingested.returncode == 0, ingested.stderr
    # The key and the limit come from `--config`, as a deployment would keep them out of `ps`.
    config = root / "folio.yaml"
    config.write_text(f"api_key: {KEY}\nmax_upload_mb: {LIMIT_MB}\n", encoding="utf-8")
    with api_server(env, root / "serve.log", "--config", str(config)) as running:
        yield running


@pytest.fixture
def client(server: ApiServer) -> Iterator[httpx.Client]:
    with server.client(KEY) as http:
        yield http


def error_of(response: httpx.Response) -> dict[str, str]:
    body = response.json()
    assert set(body["error"]) == {"code", "message"} and body["error"]["message"]
    assert "Traceback" not in response.text
    return dict(body["error"])


def snapshot(client: httpx.Client, root: Path) -> Any:
    """What a malformed request must not change: the documents and the upload folder."""
    documents = client.get("/v1/documents").json()
    uploads = sorted(str(p) for p in (root / "data").rglob("uploads/**/*"))
    return documents, uploads, client.get("/v1/collections").json()


def test_without_the_key_only_healthz_answers(server: ApiServer) -> None:
    with server.client() as anonymous:
        assert anonymous.get("/healthz").status_code == 200
        for method, path in [("GET", "/v1/documents"), ("POST", "/v1/ask"), ("GET", "/readyz"),
                             ("GET", "/openapi.json"), ("GET", "/docs"), ("GET", "/v1/models"),
                             ("GET", "/no/such/route")]:  # fmt: skip
            refused = anonymous.request(method, path)
            assert refused.status_code == 401, path
            assert error_of(refused)["code"] == "unauthorized"
            assert refused.headers["www-authenticate"].startswith("Bearer")
    with server.client("wrong-key") as wrong:
        refused = wrong.get("/v1/documents")
        assert refused.status_code == 401 and error_of(refused)["message"] == "wrong API key"
    with server.client(KEY) as keyed:
        assert keyed.get("/v1/documents").status_code == 200
        assert keyed.get("/openapi.json").json()["components"]["securitySchemes"]["bearer"]


def test_the_openai_client_sends_the_key(server: ApiServer) -> None:
    from openai import AuthenticationError, OpenAI

    keyed = OpenAI(base_url=f"{server.url}/v1", api_key=KEY, timeout=120)
    answer = keyed.chat.completions.create(
        model="folio/default", messages=[{"role": "user", "content": "When is high tide at Leith?"}]
    )
    assert "14:05" in (answer.choices[0].message.content or "")
    with pytest.raises(AuthenticationError):
        OpenAI(base_url=f"{server.url}/v1", api_key="nope").models.list()


BAD_REQUESTS = [
    # (method, path, keyword arguments, status, code)
    ("POST", "/v1/ask", {"content": b'{"question": "When is',
                         "headers": {"content-type": "application/json"}}, 400, "malformed_json"),
    ("POST", "/v1/ask", {"json": {}}, 422, "missing_field"),
    ("POST", "/v1/ask", {"json": {"question": "   "}}, 422, "empty_question"),
    ("POST", "/v1/ask", {"json": {"question": "When?", "k": 0}}, 422, "k_out_of_range"),
    ("POST", "/v1/ask", {"json": {"question": "When?", "k": 101}}, 422, "k_out_of_range"),
    ("POST", "/v1/ask", {"json": {"question": "When?", "k": "five"}}, 422, "invalid_request"),
    ("POST", "/v1/ask", {"content": b'{"question": "When is high tide?"}',  # curl -d's default
                         "headers": {"content-type": "application/x-www-form-urlencoded"}},
     415, "unsupported_media_type"),
    ("POST", "/v1/ask", {"json": {"question": "When?", "collection": "Bad Name!"}}, 422,
     "invalid_collection"),
    ("POST", "/v1/ask", {"json": {"question": "When?", "chat": "../etc"}}, 422, "invalid_chat_id"),
    ("POST", "/v1/ask", {"json": {"question": "When?", "prompt": "/etc/passwd"}}, 422,
     "invalid_request"),
    ("POST", "/v1/ask", {"json": {"question": "When?", "prompt": "no-such-prompt"}}, 422,
     "invalid_option"),
    ("POST", "/v1/ask", {"json": {"question": "When?", "temprature": 0.5}}, 422,
     "invalid_request"),
    ("POST", "/v1/search", {"json": {"query": "tide", "k": 1000}}, 422, "k_out_of_range"),
    ("POST", "/v1/search", {"json": {"query": ""}}, 422, "empty_query"),
    ("POST", "/v1/ask", {"json": {"question": "x" * 9000}}, 422, "invalid_request"),
    ("POST", "/v1/ask", {"json": {"question": ["When?"]}}, 422, "invalid_request"),
    ("POST", "/v1/collections", {"json": {"name": "UPPER"}}, 422, "invalid_collection"),
    ("POST", "/v1/documents", {"params": {"collection": "../x"},
                               "files": [("files", ("a.md", b"# A\n\nText."))]}, 422,
     "invalid_collection"),
    ("POST", "/v1/documents", {"files": [("other", ("a.md", b"# A\n\nText."))]}, 422,
     "missing_field"),
    ("DELETE", "/v1/documents", {"params": {"path": "/nowhere/tides.md"}}, 404,
     "document_not_found"),
    ("DELETE", "/v1/documents", {}, 422, "missing_field"),
    ("GET", "/v1/chats/no-such-chat", {}, 404, "chat_not_found"),
    ("PATCH", "/v1/chats/no-such-chat", {"json": {"title": "x"}}, 404, "chat_not_found"),
    ("DELETE", "/v1/chats/no-such-chat", {}, 404, "chat_not_found"),
    ("GET", "/v1/chats", {"params": {"collection": "No!"}}, 422, "invalid_collection"),
    ("POST", "/v1/feedback", {"json": {"answer_id": "abc", "rating": "meh"}}, 422,
     "invalid_rating"),
    ("POST", "/v1/chat/completions", {"json": {"model": "gpt-4", "messages": [
        {"role": "user", "content": "hi"}]}}, 422, "model_not_found"),
    ("POST", "/v1/chat/completions", {"json": {"model": "folio/default", "messages": []}}, 422,
     "empty_question"),
    ("GET", "/v1/ask", {}, 405, "method_not_allowed"),
    ("GET", "/v2/nothing", {}, 404, "not_found"),
]  # fmt: skip


def test_bad_requests_get_their_error_and_change_nothing(client: httpx.Client, root: Path) -> None:
    before = snapshot(client, root)
    assert before[0]["documents"], "the fixture's document is indexed"
    for method, path, kwargs, status, code in BAD_REQUESTS:
        response = client.request(method, path, **kwargs)
        assert (response.status_code, error_of(response)["code"]) == (status, code), (
            method, path, kwargs, response.text
        )  # fmt: skip
    assert snapshot(client, root) == before


def test_a_partly_unknown_delete_removes_nothing(client: httpx.Client, root: Path) -> None:
    before = snapshot(client, root)
    stored = before[0]["documents"][0]["path"]
    response = client.delete("/v1/documents", params={"path": [stored, "/nowhere/else.md"]})
    assert response.status_code == 404 and "/nowhere/else.md" in error_of(response)["message"]
    assert snapshot(client, root) == before


def test_oversized_bodies_are_refused_before_they_are_read(
    client: httpx.Client, server: ApiServer, root: Path
) -> None:
    before = snapshot(client, root)
    host, port = server.url.removeprefix("http://").split(":")
    # A declared size over the limit: refused from the headers, before a byte of body is sent.
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("POST", "/v1/documents?collection=big")
    conn.putheader("Authorization", f"Bearer {KEY}")
    conn.putheader("Content-Type", "multipart/form-data; boundary=x")
    conn.putheader("Content-Length", str(50 * 1024 * 1024))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413
    assert json.loads(response.read())["error"]["code"] == "too_large"
    conn.close()

    # The client sends the body anyway (httpx does): the 413 still comes back.
    part = b"# Big\n\n" + b"word " * (LIMIT_MB * 1024 * 1024 // 5 + 1000)
    refused = client.post(
        "/v1/documents", params={"collection": "big"}, files=[("files", ("big.md", part))]
    )
    assert refused.status_code == 413 and error_of(refused)["code"] == "too_large"

    # No declared size (chunked): refused once the bytes received pass the limit.
    def chunks() -> Iterator[bytes]:
        body = json.dumps({"question": "x" * (LIMIT_MB * 1024 * 1024 + 10)}).encode()
        for start in range(0, len(body), 65536):
            yield body[start : start + 65536]

    streamed = client.post(
        "/v1/ask", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413 and error_of(streamed)["code"] == "too_large"
    assert snapshot(client, root) == before
    assert "big" not in {c["name"] for c in client.get("/v1/collections").json()["collections"]}


def test_serve_refuses_an_open_address_without_a_key(root: Path) -> None:
    env = api_env(root / "open-data")
    env.pop("FOLIO_API_KEY", None)
    port = free_port()
    result = run_folio(env, "serve", "--host", "0.0.0.0", "--port", str(port), timeout=60)
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0" in result.stderr and "FOLIO_API_KEY" in result.stderr
    assert "--insecure" in result.stderr and "Traceback" not in result.stderr
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass


def test_a_down_llm_server_is_a_503_not_a_traceback(root: Path) -> None:
    closed = free_port()  # nothing listens here
    env = api_env(root / "down-data", FOLIO_LLM_URL=f"http://127.0.0.1:{closed}/v1")
    with api_server(env, root / "down.log") as down, down.client() as client:
        uploaded = client.post(
            "/v1/documents", files=[("files", ("tides.md", b"# Tides\n\nHigh tide is at 14:05."))]
        )
        assert uploaded.status_code == 200 and uploaded.json()["added"] == 1
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.json()["checks"]["llm"]["ok"] is False
        assert error_of(not_ready)["code"] == "not_ready"

        body = {"question": "When is high tide?", "answer_mode": "generate", "max_tokens": 8}
        failed = client.post("/v1/ask", json=body)
        assert failed.status_code == 503
        error = error_of(failed)
        assert error["code"] == "llm_unavailable" and f"127.0.0.1:{closed}" in error["message"]

        with client.stream("POST", "/v1/ask", json={**body, "stream": True}) as response:
            events = list(sse_events(response.iter_lines()))
        assert events[-1][0] == "error"
        assert json.loads(events[-1][1])["error"]["code"] == "llm_unavailable"
        # The quote mode needs no LLM: it still answers.
        quoted = client.post("/v1/ask", json={"question": "When is high tide?"})
        assert quoted.status_code == 200 and "14:05" in quoted.json()["answer"]
    assert "Traceback" not in (root / "down.log").read_text()
