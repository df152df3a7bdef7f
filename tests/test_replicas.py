"""Replicas that agree: two `folio serve` processes and the web page over one Chroma server and
one shared data dir. What one writes, the others see at once (no restart), writers serialise, and
the index stays consistent (tests/consistency.py).

Each test uses a collection of its own on the module's pair of servers.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from consistency import assert_consistent

from api_server import ApiServer, api_env, api_server, run_folio, wait_ready
from helpers import write_pdf

RESERVOIR = "The Quillon reservoir holds 4812 megalitres of water."
ORCHARD = "The Brackwater orchard grows 317 varieties of pear."
pytestmark = pytest.mark.slow  # two servers and a Chroma server: ~1 min to start


@dataclass
class Replicas:
    a: ApiServer
    b: ApiServer
    env: dict[str, str]
    data_dir: Path
    chroma_url: str


@pytest.fixture(scope="module")
def replicas(chroma_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    root = tmp_path_factory.mktemp("replicas")
    data_dir = root / "shared-data"
    env = api_env(data_dir, FOLIO_CHROMA_URL=chroma_server)
    with (
        api_server(env, root / "a.log") as a,
        api_server(env, root / "b.log") as b,
    ):
        wait_ready(a)
        wait_ready(b)
        yield Replicas(a, b, env, data_dir, chroma_server)


def upload(server: ApiServer, collection: str, name: str, data: bytes) -> dict[str, Any]:
    with server.client() as client:
        response = client.post(
            "/v1/documents", params={"collection": collection}, files={"files": (name, data)}
        )
    assert response.status_code == 200, response.text
    return dict(response.json())


def search(server: ApiServer, collection: str, query: str, mode: str) -> list[dict[str, Any]]:
    with server.client() as client:
        response = client.post(
            "/v1/search", json={"query": query, "collection": collection, "mode": mode, "k": 3}
        )
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def sources(server: ApiServer, collection: str) -> list[str]:
    with server.client() as client:
        response = client.get("/v1/documents", params={"collection": collection})
    assert response.status_code == 200, response.text
    return [Path(d["path"]).name for d in response.json()["documents"]]


def found(hits: list[dict[str, Any]], fact: str) -> bool:
    return any(fact in hit["text"] for hit in hits)


def test_a_document_written_through_one_replica_is_found_through_the_other(
    replicas: Replicas,
) -> None:
    a, b, name = replicas.a, replicas.b, "shared"
    # B has searched (and so opened its retriever, BM25 index and document profiles) first.
    upload(b, name, "orchard.md", f"# Orchard\n\n{ORCHARD}\n".encode())
    for mode in ("dense", "bm25", "hybrid"):
        assert found(
            search(b, name, "How many pear varieties does the orchard grow?", mode), ORCHARD
        )
    reservoir = write_pdf(replicas.data_dir.parent / "reservoir.pdf", [f"# Reservoir\n{RESERVOIR}"])
    assert upload(a, name, "reservoir.pdf", reservoir.read_bytes())["added"] == 1

    question = "How many megalitres does the Quillon reservoir hold?"
    for mode in ("dense", "bm25", "hybrid"):
        hits = search(b, name, question, mode)
        assert found(hits, RESERVOIR), (mode, hits)
        assert hits[0]["source"].endswith("reservoir.pdf") and hits[0]["page"] == 1
    assert sorted(sources(b, name)) == ["orchard.md", "reservoir.pdf"]
    with b.client() as client:
        answer = client.post("/v1/ask", json={"question": question, "collection": name}).json()
    assert "4812" in answer["answer"] and answer["citations"], answer

    # Removed through B: gone from A's lists and from both retrievers on A.
    with b.client() as client:
        removed = client.delete(
            "/v1/documents", params={"collection": name, "path": "reservoir.pdf"}
        )
    assert removed.status_code == 200, removed.text
    assert sources(a, name) == ["orchard.md"]
    for mode in ("dense", "bm25", "hybrid"):
        assert not found(search(a, name, question, mode), RESERVOIR), mode
    with a.client() as client:
        names = [c["name"] for c in client.get("/v1/collections").json()["collections"]]
    assert name in names
    assert_consistent(replicas.data_dir, name, replicas.chroma_url)


def test_a_rebuild_by_another_process_does_not_break_the_replicas(replicas: Replicas) -> None:
    """A rebuild drops and re-creates the Chroma collection: handles cached by the running
    replicas must follow it, not fail with "collection does not exist"."""
    name = "rebuilt"
    upload(replicas.a, name, "orchard.md", f"# Orchard\n\n{ORCHARD}\n".encode())
    assert found(search(replicas.b, name, "pear varieties", "dense"), ORCHARD)
    uploads = replicas.data_dir / "uploads" / name
    rebuilt = run_folio(
        {**replicas.env, "FOLIO_COLLECTION": name}, "ingest", str(uploads), "--rebuild", "--json"
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    for server in (replicas.a, replicas.b):
        for mode in ("dense", "bm25"):
            assert found(search(server, name, "pear varieties", mode), ORCHARD), mode
    assert_consistent(replicas.data_dir, name, replicas.chroma_url)


def test_concurrent_uploads_through_two_replicas_both_land(replicas: Replicas) -> None:
    name = "concurrent"
    sends = [
        (replicas.a, "reservoir.md", RESERVOIR),
        (replicas.b, "orchard.md", ORCHARD),
        # One file name sent to both at once, in two versions: one of them wins, whole.
        (replicas.a, "ledger.md", "Version alpha of the ledger."),
        (replicas.b, "ledger.md", "Version beta of the ledger."),
    ]
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []
    start = threading.Barrier(len(sends))

    def send(server: ApiServer, filename: str, text: str) -> None:
        try:
            start.wait()
            results.append(upload(server, name, filename, f"# {filename}\n\n{text}\n".encode()))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=send, args=item) for item in sends]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not errors, errors
    assert len(results) == 4 and all(not r["failed"] for r in results), results

    for server in (replicas.a, replicas.b):
        assert sorted(sources(server, name)) == ["ledger.md", "orchard.md", "reservoir.md"]
        assert found(search(server, name, "Quillon reservoir megalitres", "bm25"), RESERVOIR)
        assert found(search(server, name, "pear varieties orchard", "dense"), ORCHARD)
    folder = replicas.data_dir / "uploads" / name
    assert sorted(p.name for p in folder.iterdir()) == ["ledger.md", "orchard.md", "reservoir.md"]
    on_disk = (folder / "ledger.md").read_text()
    ledger = search(replicas.a, name, "Which version of the ledger?", "bm25")
    assert next(h["text"] for h in ledger if h["source"].endswith("ledger.md")) in on_disk
    assert_consistent(replicas.data_dir, name, replicas.chroma_url)


def test_conversations_started_on_one_replica_continue_on_the_other(replicas: Replicas) -> None:
    name = "chats"
    upload(replicas.a, name, "reservoir.md", f"# Reservoir\n\n{RESERVOIR}\n".encode())
    with replicas.a.client() as client:
        first = client.post(
            "/v1/ask",
            json={"question": "How much does the Quillon reservoir hold?", "collection": name,
                  "new_chat": True},
        ).json()  # fmt: skip
    chat = first["chat"]
    with replicas.b.client() as client:
        listed = client.get("/v1/chats", params={"collection": name}).json()["chats"]
        assert [c["id"] for c in listed] == [chat]
        second = client.post(
            "/v1/ask", json={"question": "And in litres?", "collection": name, "chat": chat}
        )
        assert second.status_code == 200, second.text
        # An answer of A's conversation, rated through B.
        rated = client.post("/v1/feedback", json={"answer_id": first["answer_id"], "rating": "up"})
        assert rated.status_code == 204, rated.text
    with replicas.a.client() as client:
        turns = client.get(f"/v1/chats/{chat}").json()["turns"]
    assert [t["question"] for t in turns] == [
        "How much does the Quillon reservoir hold?",
        "And in litres?",
    ]


def sidebar(page: Any) -> str:
    """The side panel's text as a user reads it (Markdown escapes removed)."""
    return "\n".join(m.value for m in page.sidebar.markdown).replace("\\", "")


def test_the_web_page_sees_what_the_api_replicas_wrote(
    replicas: Replicas, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page (a third process's view: its own service) lists a document uploaded through an
    API replica, answers from it, and drops it once another replica removed it."""
    from page_answers import ask, open_page

    name = "page"
    for key, value in {**replicas.env, "FOLIO_COLLECTION": name}.items():
        monkeypatch.setenv(key, value)
    upload(replicas.a, name, "reservoir.md", f"# Reservoir\n\n{RESERVOIR}\n".encode())
    page = open_page()
    listed = sidebar(page)
    assert "reservoir.md" in listed
    ask(page, "How many megalitres does the Quillon reservoir hold?")
    assert "4812" in "\n".join(str(e.proto.body) for e in page.get("html"))

    upload(replicas.b, name, "orchard.md", f"# Orchard\n\n{ORCHARD}\n".encode())
    with replicas.b.client() as client:
        client.delete("/v1/documents", params={"collection": name, "path": "reservoir.md"})
    page.run()
    listed = sidebar(page)
    assert "orchard.md" in listed and "reservoir.md" not in listed
    ask(page, "How many pear varieties does the Brackwater orchard grow?")
    assert "317" in "\n".join(str(e.proto.body) for e in page.get("html"))
