"""`folio ingest DIR --watch`: a real watcher process keeps the collection in sync with a folder,
survives Ctrl-C, SIGTERM and SIGKILL (mid-sync too), and catches up on restart."""

from __future__ import annotations

import json
import queue
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from consistency import assert_consistent
from filelock import FileLock

from conftest import Folio
from helpers import write_truncated_pdf
from ingest.watch import ChangeWatcher, SyncTargets, WatchError

DEBOUNCE = "0.5"


def _interruptible() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Watcher:
    """A `folio ingest PATH... --watch --json` process; its stdout read line by line."""

    def __init__(self, folio: Folio, *paths: Path, extra: tuple[str, ...] = ()) -> None:
        self.process = folio.subprocess(
            "ingest", *paths, "--watch", "--json", "--debounce", DEBOUNCE, *extra,
            # As from a terminal: a test run started in the background (`make test &`) passes
            # SIGINT on ignored, and then Ctrl-C would not reach the watcher.
            preexec_fn=_interruptible,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        assert self.process.stdout and self.process.stderr
        self._readers = [
            threading.Thread(target=self._read, args=(self.process.stdout, self.lines.put)),
            threading.Thread(target=self._read, args=(self.process.stderr, self.stderr.append)),
        ]
        for reader in self._readers:
            reader.daemon = True
            reader.start()

    @staticmethod
    def _read(stream: Any, sink: Any) -> None:
        for line in stream:
            sink(line)

    def next_sync(self, timeout: float = 90) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            stderr = "".join(self.stderr)
            raise AssertionError(f"no sync within {timeout}s; stderr: {stderr}") from None
        return dict(json.loads(line))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 120) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(timeout=30)


def search_texts(folio: Folio, query: str) -> list[tuple[str, str]]:
    # In-process, after the watcher process wrote: the store must notice and read afresh.
    return [
        (Path(hit["source"]).name, hit["text"])
        for hit in folio.json("search", query, "--k", "5")["results"]
    ]


def documents(folio: Folio) -> dict[str, int]:
    return {Path(d["path"]).name: d["chunks"] for d in folio.json("sources")["documents"]}


def test_watch_applies_added_changed_and_deleted_files(folio: Folio, docs: Path) -> None:
    (docs / "vault.txt").write_text("The vault code of the north office is 4711.")
    watcher = Watcher(folio, docs)
    try:
        first = watcher.next_sync()
        assert (first["sync"], first["trigger"], first["added"]) == (1, "start", 1)

        (docs / "orchard.md").write_text(
            "# Orchard\n\nThe orchard behind the office has 37 pear trees."
        )
        added = watcher.next_sync()
        assert (added["sync"], added["trigger"], added["added"]) == (2, "change", 1)
        name, text = search_texts(folio, "how many pear trees")[0]
        assert name == "orchard.md" and "37 pear trees" in text

        (docs / "vault.txt").write_text("The vault code of the north office is 9902.")
        changed = watcher.next_sync()
        assert (changed["updated"], changed["added"], changed["chunks_removed"]) == (1, 0, 1)
        texts = [text for _, text in search_texts(folio, "vault code of the north office")]
        assert "9902" in texts[0] and not any("4711" in text for text in texts)

        (docs / "orchard.md").unlink()
        deleted = watcher.next_sync()
        assert (deleted["removed"], deleted["chunks_removed"]) == (1, 1)
        assert documents(folio) == {"vault.txt": 1}

        # A download arriving: the partial file and hidden swap files are not touched; the
        # finished file is, in one sync.
        partial = docs / "memo.txt.crdownload"
        partial.write_text("The memo says the board meets on Thursdays.")
        (docs / ".memo.txt.swp").write_text("swap")
        partial.rename(docs / "memo.txt")
        memo = watcher.next_sync()
        assert (memo["added"], memo["skipped"], memo["failed"]) == (1, 0, [])

        # A bad file: one clear line, the watcher goes on.
        write_truncated_pdf(docs / "broken.pdf", ["A report that was cut short in transfer."])
        broken = watcher.next_sync()
        assert [f["path"] for f in broken["failed"]] == [str(docs / "broken.pdf")]
        assert any(line.startswith(f"error: {docs / 'broken.pdf'}: ") for line in watcher.stderr)
        (docs / "broken.pdf").unlink()
        (docs / "late.txt").write_text("The late note mentions the harbour crane.")
        late = watcher.next_sync()
        assert late["added"] == 1 and late["failed"] == []
    finally:
        code = watcher.stop(signal.SIGINT)
    assert code == 130
    assert "stopped watching" in "".join(watcher.stderr)
    assert documents(folio) == {"vault.txt": 1, "memo.txt": 1, "late.txt": 1}
    assert_consistent(Path(folio.env["FOLIO_DATA_DIR"]), "default")


def test_watch_waits_for_the_write_lock(folio: Folio, docs: Path) -> None:
    (docs / "a.txt").write_text("The first note is about the ferry timetable.")
    watcher = Watcher(folio, docs)
    try:
        assert watcher.next_sync()["added"] == 1
        data_dir = Path(folio.env["FOLIO_DATA_DIR"])
        with FileLock(str(data_dir / "folio.lock")):  # another writer, mid-ingest
            (docs / "b.txt").write_text("The second note is about the tram depot.")
            deadline = time.monotonic() + 30
            while "waiting for" not in "".join(watcher.stderr) and time.monotonic() < deadline:
                time.sleep(0.1)
            assert "waiting for" in "".join(watcher.stderr)
            assert watcher.lines.empty()  # nothing written while the other writer holds the lock
        assert watcher.next_sync()["added"] == 1
    finally:
        assert watcher.stop(signal.SIGTERM) == 0
    assert set(documents(folio)) == {"a.txt", "b.txt"}


@pytest.mark.slow
def test_watch_survives_sigkill_idle_and_mid_sync_and_catches_up(folio: Folio, docs: Path) -> None:
    data_dir = Path(folio.env["FOLIO_DATA_DIR"])
    (docs / "keep.txt").write_text("The keep note records the lighthouse keeper's name: Ines.")
    (docs / "edit.txt").write_text("The edit note says the budget is 120 thousand.")
    (docs / "drop.txt").write_text("The drop note lists the retired printers.")
    watcher = Watcher(folio, docs)
    assert watcher.next_sync()["added"] == 3
    watcher.kill()  # idle

    (docs / "edit.txt").write_text("The edit note says the budget is 95 thousand.")
    (docs / "drop.txt").unlink()
    (docs / "new.txt").write_text("The new note names the harbour pilot: Okafor.")
    watcher = Watcher(folio, docs)
    catch_up = watcher.next_sync()
    assert catch_up["trigger"] == "start"
    assert (catch_up["added"], catch_up["updated"], catch_up["removed"]) == (1, 1, 1)

    # A bigger change, killed while its chunks are being written.
    folio.env["FOLIO_COMMIT_EVERY_CHUNKS"] = "4"
    watcher.kill()
    watcher = Watcher(folio, docs)
    assert watcher.next_sync()["unchanged"] == 3
    for n in range(30):
        (docs / f"part{n:02d}.txt").write_text(
            "\n\n".join(
                f"Part {n} clause {i}: the tenant keeps bay {n * 100 + i}." for i in range(40)
            )
        )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not _some_parts_committed(data_dir):
        time.sleep(0.005)
    watcher.kill()
    assert _some_parts_committed(data_dir), "the sync finished before the kill"

    watcher = Watcher(folio, docs)
    resumed = watcher.next_sync()
    assert resumed["trigger"] == "start" and resumed["failed"] == []
    assert resumed["added"] + resumed["unchanged"] == 33
    assert resumed["added"] > 0 and resumed["unchanged"] > 3  # the kill came mid-sync
    assert watcher.stop(signal.SIGTERM) == 0
    state = assert_consistent(data_dir, "default")
    found = documents(folio)
    assert len(found) == 33 and "drop.txt" not in found
    assert sum(found.values()) == len(state.committed)  # no chunk counted twice
    texts = [text for _, text in search_texts(folio, "budget of the edit note")]
    assert "95 thousand" in texts[0] and not any("120 thousand" in t for t in texts)


def _some_parts_committed(data_dir: Path) -> bool:
    path = data_dir / "manifests" / "default.sqlite3"
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.05)
        try:
            (count,) = db.execute(
                "SELECT COUNT(*) FROM documents WHERE path LIKE '%part%'"
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return False
    return int(count) >= 2


# --- the watcher component, in process (no models) ----------------------------------------------


def test_a_burst_of_changes_is_one_sync_and_temporary_files_none(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    data_dir = docs / "data"  # a data dir inside the watched folder: its writes are not changes
    data_dir.mkdir()
    with ChangeWatcher([docs], ignore=[data_dir], debounce_s=0.3) as watcher:
        for name in (".hidden.txt", "~$report.docx", "notes.md~", "film.part", "photo.xyz"):
            (docs / name).write_text("x")
        (data_dir / "chroma.txt").write_text("x")
        assert not watcher.wait(1.0)

        for n in range(5):  # closer together than the debounce: one sync for all
            (docs / "sub" / f"n{n}.txt").write_text(f"note {n}")
            time.sleep(0.1)
        batch = watcher.wait(10)
        assert batch.ingest == sorted(docs / "sub" / f"n{n}.txt" for n in range(5))

        (docs / "sub" / "n0.txt").unlink()
        (docs / "sub" / "n1.txt").rename(docs / "sub" / "renamed.txt")
        batch = watcher.wait(10)
        assert batch.ingest == [docs / "sub" / "renamed.txt"]
        assert batch.remove == [docs / "sub" / "n0.txt", docs / "sub" / "n1.txt"]


def test_a_folder_that_never_goes_quiet_still_syncs(tmp_path: Path) -> None:
    with ChangeWatcher([tmp_path], debounce_s=0.5, max_delay_s=1.5) as watcher:
        started = time.monotonic()
        batch = SyncTargets()
        while not batch and time.monotonic() - started < 10:
            (tmp_path / "growing.txt").write_text(f"line {time.monotonic()}")
            batch = watcher.wait(0.1)
        assert batch.ingest == [tmp_path / "growing.txt"]  # synced while it still changes


def test_targets_follow_the_disk(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "moved-in" / "deep").mkdir(parents=True)
    (docs / "moved-in" / "deep" / "a.txt").write_text("a")
    single = tmp_path / "single.md"
    watcher = ChangeWatcher([docs, single], debounce_s=0.1)
    targets = watcher.targets(
        [
            docs / "moved-in",
            docs / "moved-in" / "deep" / "a.txt",
            docs / "gone",
            docs / "gone" / "b.txt",
        ]
    )
    assert targets.ingest == [docs / "moved-in"]  # the folder rescan covers its files
    assert targets.remove == [docs / "gone"]  # documents below it go with it
    full = watcher.full()
    assert (full.ingest, full.remove) == ([docs], [single])  # a watched file deleted while down
    with pytest.raises(WatchError, match="no such file or directory"):
        ChangeWatcher([tmp_path / "nowhere" / "x.txt"])


def test_watch_refuses_a_missing_folder(folio: Folio, tmp_path: Path) -> None:
    result = folio("ingest", tmp_path / "missing", "--watch")
    assert result.exit_code == 2
    assert f"error: {tmp_path / 'missing'}: no such file or directory" in result.stderr


def test_help_documents_watch(folio: Folio) -> None:
    result = folio("ingest", "--help")
    assert "--watch" in result.stdout and "--debounce" in result.stdout
