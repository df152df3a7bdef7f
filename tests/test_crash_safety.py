"""SIGKILL a real ingest at several points, and run ingests concurrently: the index stays whole."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from filelock import FileLock

from conftest import Folio
from folio.settings import load_settings
from folio.store import ChromaStore
from ingest.index import manifest_path
from ingest.manifest import Manifest

TOPICS = [
    "astronomy", "beekeeping", "carpentry", "dentistry", "etching", "falconry", "glassblowing",
    "hydrology", "ironwork", "juggling", "knitting", "lacquering",
]  # fmt: skip


def write_corpus(folder: Path) -> None:
    for n, topic in enumerate(TOPICS):
        sentences = [
            f"Section {i} of the {topic} handbook describes step {i} in detail." for i in range(60)
        ]
        (folder / f"{n:02d}-{topic}.txt").write_text("\n\n".join(sentences))


def consistent(env: dict[str, str]) -> tuple[set[str], set[str]]:
    """The chunk ids the manifest commits, and the ids the store holds."""
    settings = load_settings(data_dir=env["FOLIO_DATA_DIR"])
    store = ChromaStore(settings.data_dir, None)
    manifest = Manifest(manifest_path(settings, "default"))
    try:
        return manifest.all_chunk_ids(), set(store.all_ids("default"))
    finally:
        manifest.close()


def processes_using(data_dir: Path) -> list[int]:
    """Live processes started with this data dir in their environment (ingest workers included)."""
    marker = f"FOLIO_DATA_DIR={data_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                state = (entry / "stat").read_text().split(") ")[1][0]
                if marker in environ and state != "Z":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def manifest_state(env: dict[str, str]) -> tuple[int, int]:
    """(documents committed, chunk ids journalled) read without disturbing the writer."""
    path = Path(env["FOLIO_DATA_DIR"]) / "manifests" / "default.sqlite3"
    if not path.exists():
        return 0, 0
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05)
        try:
            documents = db.execute("SELECT COUNT(*) FROM documents").fetchone()[0]
            pending = db.execute("SELECT COUNT(*) FROM pending").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error:
        return 0, 0
    return int(documents), int(pending)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kill_when",
    ["lock_taken", "some_documents_committed", "after_3s"],
)
def test_sigkill_leaves_index_consistent_and_rerun_completes(
    folio: Folio, docs: Path, kill_when: str
) -> None:
    write_corpus(docs)
    folio.env["FOLIO_COMMIT_EVERY_CHUNKS"] = "8"  # many commit groups: many points to die at
    data_dir = Path(folio.env["FOLIO_DATA_DIR"])
    process = folio.subprocess("ingest", docs, "--json")
    started = time.monotonic()
    killed = False
    while process.poll() is None and time.monotonic() - started < 120:
        documents, pending = manifest_state(folio.env)
        hit = {
            "lock_taken": (data_dir / "folio.lock.owner").exists(),
            "chunks_journalled": pending > 0,
            "some_documents_committed": documents >= 3,
            "after_3s": time.monotonic() - started > 3 and documents > 0,
        }[kill_when]
        if hit:
            os.kill(process.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.002)
    process.wait()
    assert killed, f"ingest finished before the kill point {kill_when}"
    # Its extraction workers notice the parent is gone and exit too.
    deadline = time.monotonic() + 10
    while processes_using(data_dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_using(data_dir) == []

    # The next command (any command) rolls back what the killed one left half-done.
    sources = folio.json("sources")
    committed, stored = consistent(folio.env)
    assert committed == stored
    assert len(sources["documents"]) < len(TOPICS)

    rerun = folio.json("ingest", docs)
    assert rerun["failed"] == []
    assert rerun["added"] + rerun["unchanged"] == len(TOPICS)
    committed, stored = consistent(folio.env)
    assert committed == stored and len(committed) > 0
    hit = folio.json("search", "falconry handbook step 7", "--k", "1")["results"][0]
    assert "falconry" in hit["text"]


def run_until_killed(folio: Folio, target: str, nth: int, *args: str | Path) -> None:
    process = subprocess.run(
        [sys.executable, "-c", "import killhook; killhook.main()", target, str(nth)]
        + [str(a) for a in args],
        env={**os.environ, **folio.env, "PYTHONPATH": str(Path(__file__).parent)},
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert process.returncode == -signal.SIGKILL, process.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "nth", "store_differs"),
    [
        ("Manifest.journal", 2, False),  # ids journalled, nothing written yet
        ("ChromaStore.upsert", 2, True),  # chunks in the store, their documents not committed
        ("Manifest.commit_documents", 2, True),  # committed; replaced chunks not yet deleted
        ("ChromaStore.delete", 1, False),  # replaced chunks deleted, journal not yet cleared
    ],
)
def test_sigkill_at_each_write_step_is_rolled_back(
    folio: Folio, docs: Path, target: str, nth: int, store_differs: bool
) -> None:
    write_corpus(docs)
    folio.env["FOLIO_COMMIT_EVERY_CHUNKS"] = "8"
    assert folio.json("ingest", docs)["added"] == len(TOPICS)
    for file in sorted(docs.iterdir())[:6]:  # an update run replaces chunks: every step occurs
        file.write_text(file.read_text().replace("in detail", "briefly, revised"))
    run_until_killed(folio, target, nth, "ingest", docs, "--json")

    committed, stored = consistent(folio.env)
    assert (committed != stored) == store_differs  # the kill left the state it was meant to
    folio.json("sources")  # any next command recovers
    committed, stored = consistent(folio.env)
    assert committed == stored

    rerun = folio.json("ingest", docs)
    assert rerun["failed"] == [] and rerun["updated"] + rerun["unchanged"] == len(TOPICS)
    committed, stored = consistent(folio.env)
    assert committed == stored
    results = folio.json("search", "astronomy handbook step 3 revised", "--k", "3")["results"]
    assert any("revised" in r["text"] for r in results)
    assert not any("in detail" in r["text"] for r in results if "astronomy" in r["text"])


@pytest.mark.slow
def test_two_concurrent_ingests_both_land(folio: Folio, tmp_path: Path) -> None:
    first_dir, second_dir = tmp_path / "one", tmp_path / "two"
    first_dir.mkdir()
    second_dir.mkdir()
    write_corpus(first_dir)
    for n in range(4):
        (second_dir / f"memo{n}.md").write_text(
            f"# Memo {n}\n\nThe memo number {n} is about budgets."
        )
    one = folio.subprocess("ingest", first_dir, "--json")
    two = folio.subprocess("ingest", second_dir, "--json")
    _, err_one = one.communicate(timeout=300)
    _, err_two = two.communicate(timeout=300)
    assert (one.returncode, two.returncode) == (0, 0), err_one + err_two
    assert "waiting for" in err_one + err_two
    assert len(folio.json("sources")["documents"]) == len(TOPICS) + 4
    committed, stored = consistent(folio.env)
    assert committed == stored


def test_a_held_lock_makes_ingest_wait_or_stop_clearly(folio: Folio, docs: Path) -> None:
    (docs / "a.txt").write_text("The lock test document.")
    data_dir = Path(folio.env["FOLIO_DATA_DIR"])
    data_dir.mkdir(parents=True)
    (data_dir / "folio.lock.owner").write_text("folio process 4242")
    with FileLock(str(data_dir / "folio.lock")):
        folio.env["FOLIO_LOCK_TIMEOUT_S"] = "0.5"
        stopped = folio("ingest", docs)
        assert stopped.exit_code == 1
        assert "locked by folio process 4242" in stopped.stderr
        assert "waiting for folio process 4242" in stopped.stderr
        folio.env["FOLIO_LOCK_TIMEOUT_S"] = "120"
        waiter = folio.subprocess("ingest", docs, "--json")
        time.sleep(1.0)
        assert waiter.poll() is None  # still waiting while we hold the lock
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert '"added": 1' in out
