"""Under load: a real `folio serve` answering many clients at once, ingesting while it searches,
and killed (SIGKILL) in the middle of an upload. Speed is measured by bench/serve_bench.py; these
tests check that nothing fails, nothing is half visible and nothing is lost.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from consistency import assert_consistent, manifest_documents

from api_server import ApiServer, api_env, api_server, run_folio, wait_ready

# Eight facts, one per question: each answer must quote and cite its own.
FACTS = {
    "How tall is the Marrow lighthouse?": ("The Marrow lighthouse is 41 metres tall.", "41 metres"),
    "When does the Pellin ferry leave?": ("The Pellin ferry leaves at 06:40 every day.", "06:40"),
    "How many beds does the Orrin hospital have?": ("The Orrin hospital has 212 beds.", "212 beds"),
    "How long is the Tavish bridge?": ("The Tavish bridge is 1380 metres long.", "1380 metres"),
    "How deep is the Callow harbour?": ("The Callow harbour is 17 metres deep.", "17 metres"),
    "How many books does the Wendle library hold?": (
        "The Wendle library holds 88000 books.", "88000 books"),
    "How old is the Fenmore oak?": ("The Fenmore oak is 640 years old.", "640 years"),
    "How many seats does the Ashby theatre have?": (
        "The Ashby theatre has 955 seats.", "955 seats"),
}  # fmt: skip
pytestmark = pytest.mark.slow  # each starts a server with its models (20-30 s) before it begins
FILLER = (
    "The council publishes this register every spring so that residents and visitors can plan "
    "their trips, and each entry is checked by a surveyor before the register goes to print. "
)


def facts_document() -> str:
    sections = [f"## {q.split(' the ')[1].rstrip('?')}\n\n{fact}" for q, (fact, _) in FACTS.items()]
    return "# Town register\n\n" + "\n\n".join(sections) + "\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    root = tmp_path_factory.mktemp("load")
    (root / "docs").mkdir()
    (root / "docs" / "register.md").write_text(facts_document())
    env = api_env(root / "data")
    ingested = run_folio(env, "ingest", str(root / "docs"), "--json")
    assert ingested.returncode == 0, ingested.stderr
    with api_server(env, root / "serve.log") as running:
        wait_ready(running)
        yield running


def ask_all(server: ApiServer, mode: str, **extra: Any) -> list[tuple[str, httpx.Response]]:
    """Every question at once, from eight clients released together."""
    start = threading.Barrier(len(FACTS))

    def ask(question: str) -> tuple[str, httpx.Response]:
        with server.client(timeout=600) as client:
            start.wait()
            body = {"question": question, "answer_mode": mode, **extra}
            return question, client.post("/v1/ask", json=body)

    with ThreadPoolExecutor(len(FACTS)) as pool:
        return list(pool.map(ask, FACTS))


def check_cited_answers(replies: list[tuple[str, httpx.Response]]) -> list[dict[str, Any]]:
    answers = []
    for question, response in replies:
        assert response.status_code == 200, (question, response.text)
        answer = response.json()
        value = FACTS[question][1]
        assert value in answer["answer"], (question, answer["answer"])
        assert not answer["refused"]
        cited = [c for c in answer["citations"] if c["source"].endswith("register.md")]
        assert cited, (question, answer["citations"])
        answers.append(answer)
    return answers


def test_eight_parallel_questions_get_eight_cited_answers(server: ApiServer) -> None:
    answers = check_cited_answers(ask_all(server, "quote"))
    # They were queued (one quote worker per process), not refused: most of them waited.
    waited = [a["timings"]["queue_ms"] for a in answers]
    assert sum(1 for ms in waited if ms > 0) >= 4, waited


def test_eight_parallel_generated_answers_are_queued_and_cited(server: ApiServer) -> None:
    """quote+generate: the LLM writes, unsupported sentences are dropped, the citations stay."""
    replies = ask_all(server, "quote+generate", max_tokens=48, temperature=0)
    answers = check_cited_answers(replies)
    waited = sorted(a["timings"]["queue_ms"] for a in answers)
    assert waited[-1] > 0, waited  # one LLM: the last one waited for the others


def chunked_document(n: int) -> tuple[str, str]:
    """A document of several chunks whose unique fact sits in its last chunk."""
    fact = f"The archive code of parcel {n:02d} is ZX{n * 7919 % 100000:05d}."
    body = "\n\n".join(f"## Part {p}\n\n{FILLER * 6}" for p in range(1, 4))
    return f"# Parcel {n:02d}\n\n{body}\n\n## Code\n\n{fact}\n", fact


def test_search_during_an_ingest_never_sees_half_a_document(tmp_path: Path) -> None:
    """20 documents go in (each committed on its own: commit_every_chunks=1) while at least 50
    searches run. A hit is "from a fully committed document" when its chunk is one of the chunks
    the manifest lists for its document once the ingest is over (these documents never change), and
    a document listing taken right after the search shows that document with all its chunks."""
    env = api_env(tmp_path / "data", FOLIO_COMMIT_EVERY_CHUNKS="1")
    documents = {f"parcel-{n:02d}.md": chunked_document(n) for n in range(20)}
    observations: list[tuple[list[dict[str, Any]], dict[str, int]]] = []
    failures: list[str] = []
    with api_server(env, tmp_path / "serve.log") as server:
        wait_ready(server)
        with server.client() as client:  # the collection exists before the first search
            client.post("/v1/collections", json={"name": "default"})
        done = threading.Event()

        def ingest() -> None:
            files = [("files", (name, text.encode())) for name, (text, _) in documents.items()]
            with server.client(timeout=900) as client:
                response = client.post("/v1/documents", files=files)
            if response.status_code != 200 or response.json()["added"] != 20:
                failures.append(f"ingest: {response.status_code} {response.text[:300]}")
            done.set()

        def searcher(offset: int) -> None:
            with server.client() as client:
                n = offset
                while not done.is_set() or n < 50:
                    fact = documents[f"parcel-{n % 20:02d}.md"][1]
                    mode = ("hybrid", "dense", "bm25")[n % 3]
                    found = client.post("/v1/search", json={"query": fact, "mode": mode, "k": 5})
                    listed = client.get("/v1/documents")
                    if found.status_code != 200 or listed.status_code != 200:
                        failures.append(f"search: {found.status_code} {found.text[:300]}")
                        continue
                    counts = {d["path"]: d["chunks"] for d in listed.json()["documents"]}
                    observations.append((found.json()["results"], counts))
                    n += 2

        threads = [threading.Thread(target=ingest)] + [
            threading.Thread(target=searcher, args=(i,)) for i in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=900)
    assert not failures, failures[:5]
    assert len(observations) >= 50
    final, _ = manifest_documents(Path(env["FOLIO_DATA_DIR"]), "default")
    assert len(final) == 20
    partial_views = 0
    for hits, counts in observations:
        partial_views += 0 < len(counts) < 20
        for hit in hits:
            assert hit["chunk_id"] in final[hit["source"]], hit
            assert counts.get(hit["source"]) == len(final[hit["source"]]), (hit["source"], counts)
    assert partial_views > 0, "no search ran while the ingest was half done"
    assert_consistent(Path(env["FOLIO_DATA_DIR"]), "default")


def multipart(files: dict[str, str]) -> tuple[dict[str, str], bytes]:
    request = httpx.Request(
        "POST", "http://x/", files=[("files", (n, t.encode())) for n, t in files.items()]
    )
    return dict(request.headers), request.read()


def pending_ids(data_dir: Path) -> int:
    path = data_dir / "manifests" / "default.sqlite3"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return int(db.execute("SELECT COUNT(*) FROM pending").fetchone()[0])
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


@pytest.mark.parametrize("moment", ["receiving the body", "writing the index"])
def test_sigkill_during_an_upload_leaves_the_collection_consistent(
    tmp_path: Path, moment: str
) -> None:
    data_dir = tmp_path / "data"
    env = api_env(data_dir)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "register.md").write_text(facts_document())
    assert run_folio(env, "ingest", str(tmp_path / "docs"), "--json").returncode == 0
    # A large upload: 40 documents of ~30 KB, one of them a new version of an uploaded file.
    big = {f"bulk-{n:02d}.md": chunked_document(n)[0] * 12 for n in range(40)}
    old_version = "# Parcel 05\n\nThe first edition of parcel 05 weighs 12 kilograms.\n"
    headers, body = multipart(big)

    with api_server(env, tmp_path / "serve-1.log") as server:
        wait_ready(server)
        with server.client() as client:
            first = client.post("/v1/documents", files={"files": ("bulk-05.md", old_version)})
            assert first.status_code == 200 and first.json()["added"] == 1, first.text

        def slow_body() -> Iterator[bytes]:
            step = 64 * 1024
            for start in range(0, len(body), step):
                yield body[start : start + step]
                if moment == "receiving the body" and start >= len(body) // 2:
                    os.killpg(server.proc.pid, signal.SIGKILL)
                    server.proc.wait(timeout=60)
                    yield body[start + step :]  # to a dead socket: the request fails here
                    return

        def send() -> None:
            try:
                with server.client(timeout=600) as client:
                    client.post("/v1/documents", content=slow_body(), headers=headers)
            except httpx.HTTPError:
                pass  # the server was killed under it: the expected end of this request

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        if moment == "writing the index":
            deadline = time.monotonic() + 300
            while pending_ids(data_dir) == 0:  # chunk ids journalled: store writes under way
                assert time.monotonic() < deadline, "the ingest never started"
                assert sender.is_alive(), "the upload ended before the kill"
                time.sleep(0.05)
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=60)
        assert server.proc.returncode == -signal.SIGKILL

    with api_server(env, tmp_path / "serve-2.log") as server, server.client() as client:
        listed = client.get("/v1/documents")
        assert listed.status_code == 200, listed.text
        names = [Path(d["path"]).name for d in listed.json()["documents"]]
        assert names == ["bulk-05.md", "register.md"]
        hits = client.post("/v1/search", json={"query": "How tall is the Marrow lighthouse?"})
        assert hits.status_code == 200 and "41 metres" in hits.json()["results"][0]["text"]
        again = client.post(
            "/v1/documents", files={"files": ("bulk-00.md", big["bulk-00.md"].encode())}
        )
        assert again.status_code == 200 and again.json()["added"] == 1, again.text
        found = client.post("/v1/search", json={"query": chunked_document(0)[1], "mode": "bm25"})
        assert chunked_document(0)[1] in json.dumps(found.json())
        old = client.post("/v1/search", json={"query": "How heavy is parcel 05?", "mode": "bm25"})
        assert "12 kilograms" in old.json()["results"][0]["text"]
    # The files the killed upload staged are gone, the version it replaced is back.
    uploads = data_dir / "uploads" / "default"
    assert sorted(p.name for p in uploads.iterdir()) == ["bulk-00.md", "bulk-05.md"]
    assert (uploads / "bulk-05.md").read_text() == old_version
    assert_consistent(data_dir, "default")
