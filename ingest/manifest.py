"""The per-collection manifest: every document, its chunk ids, and a journal of store writes.

The manifest (SQLite) is the source of truth for what a collection holds. Chunks are written to
the vector store only after their ids are journalled here, so a crash at any moment leaves
either journalled ids (rolled back by `recover`) or a committed document with all its chunks.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    title TEXT NOT NULL,
    pages INTEGER,
    chunks INTEGER NOT NULL,
    ingested_at TEXT NOT NULL,
    chunker TEXT NOT NULL,
    embedder TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS documents_sha ON documents(sha256);
CREATE TABLE IF NOT EXISTS doc_chunks (
    path TEXT NOT NULL,
    chunk_id TEXT NOT NULL,
    ord INTEGER NOT NULL,
    PRIMARY KEY (path, chunk_id)
);
CREATE INDEX IF NOT EXISTS doc_chunks_id ON doc_chunks(chunk_id);
CREATE TABLE IF NOT EXISTS pending (chunk_id TEXT PRIMARY KEY);
"""


@dataclass(frozen=True)
class DocumentRecord:
    path: str
    sha256: str
    size: int
    mtime_ns: int
    title: str
    pages: int | None
    chunks: int
    ingested_at: str
    chunker: str
    embedder: str

    def to_json(self) -> dict[str, object]:
        return {
            "path": self.path,
            "title": self.title,
            "pages": self.pages,
            "chunks": self.chunks,
            "sha256": self.sha256,
            "size": self.size,
            "ingested_at": self.ingested_at,
        }


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class Manifest:
    """SQLite-backed record of one collection's documents and chunk ids."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # A long-lived reader (the web UI's retriever) is used from each session's thread in
        # turn; its callers serialise access, so sqlite's same-thread check is lifted.
        self._db = sqlite3.connect(
            str(path), timeout=60, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- collection configuration -------------------------------------------------------
    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: dict[str, str]) -> None:
        with self.transaction() as db:
            db.executemany(
                "INSERT INTO meta(key, value) VALUES(?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                list(values.items()),
            )

    def generation(self) -> int:
        """Bumped by every change of the committed documents: derived indexes compare it."""
        return int(self.get_meta("generation") or 0)

    def delete_meta(self, key: str) -> None:
        self._db.execute("DELETE FROM meta WHERE key = ?", (key,))

    # --- documents ------------------------------------------------------------------------
    def documents(self) -> list[DocumentRecord]:
        rows = self._db.execute(
            "SELECT path, sha256, size, mtime_ns, title, pages, chunks, ingested_at, chunker, "
            "embedder FROM documents ORDER BY path"
        ).fetchall()
        return [DocumentRecord(*row) for row in rows]

    def document(self, path: str) -> DocumentRecord | None:
        row = self._db.execute(
            "SELECT path, sha256, size, mtime_ns, title, pages, chunks, ingested_at, chunker, "
            "embedder FROM documents WHERE path = ?",
            (path,),
        ).fetchone()
        return None if row is None else DocumentRecord(*row)

    def paths_with_sha(self, sha256: str) -> list[str]:
        rows = self._db.execute("SELECT path FROM documents WHERE sha256 = ?", (sha256,))
        return [str(row[0]) for row in rows]

    def chunk_ids(self, path: str) -> list[str]:
        rows = self._db.execute(
            "SELECT chunk_id FROM doc_chunks WHERE path = ? ORDER BY ord", (path,)
        ).fetchall()
        return [str(row[0]) for row in rows]

    def referenced(self, chunk_ids: Iterable[str]) -> set[str]:
        """The ids among these that some committed document still uses."""
        found: set[str] = set()
        ids = list(chunk_ids)
        for start in range(0, len(ids), 500):
            batch = ids[start : start + 500]
            marks = ",".join("?" * len(batch))
            rows = self._db.execute(
                f"SELECT DISTINCT chunk_id FROM doc_chunks WHERE chunk_id IN ({marks})", batch
            )
            found.update(str(row[0]) for row in rows)
        return found

    def chunk_count(self) -> int:
        row = self._db.execute("SELECT COUNT(DISTINCT chunk_id) FROM doc_chunks").fetchone()
        return int(row[0])

    def all_chunk_ids(self) -> set[str]:
        return {str(row[0]) for row in self._db.execute("SELECT DISTINCT chunk_id FROM doc_chunks")}

    # --- the write journal ----------------------------------------------------------------
    def journal(self, chunk_ids: Iterable[str]) -> None:
        """Record ids about to be written to (or deleted from) the store, before touching it."""
        with self.transaction() as db:
            db.executemany(
                "INSERT OR IGNORE INTO pending(chunk_id) VALUES(?)", ((cid,) for cid in chunk_ids)
            )

    def pending(self) -> list[str]:
        return [str(row[0]) for row in self._db.execute("SELECT chunk_id FROM pending")]

    def clear_pending(self, chunk_ids: Iterable[str]) -> None:
        with self.transaction() as db:
            db.executemany("DELETE FROM pending WHERE chunk_id = ?", ((cid,) for cid in chunk_ids))

    def commit_documents(
        self, records: list[tuple[DocumentRecord, list[str]]], removed_paths: Iterable[str] = ()
    ) -> tuple[set[str], set[str]]:
        """Atomically make these documents current (and remove others).

        Returns (orphans, shared): the chunk ids no committed document uses any more (they stay
        journalled until the caller has deleted them from the store), and the touched ids that
        another document still shares (their stored source path may need repointing).
        """
        with self.transaction() as db:
            before: set[str] = set()
            touched = [record.path for record, _ in records] + list(removed_paths)
            for path in touched:
                before.update(
                    str(row[0])
                    for row in db.execute("SELECT chunk_id FROM doc_chunks WHERE path = ?", (path,))
                )
                db.execute("DELETE FROM doc_chunks WHERE path = ?", (path,))
                db.execute("DELETE FROM documents WHERE path = ?", (path,))
            for record, ids in records:
                db.execute(
                    "INSERT INTO documents VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        record.path, record.sha256, record.size, record.mtime_ns, record.title,
                        record.pages, record.chunks, record.ingested_at, record.chunker,
                        record.embedder,
                    ),
                )  # fmt: skip
                db.executemany(
                    "INSERT OR IGNORE INTO doc_chunks(path, chunk_id, ord) VALUES(?,?,?)",
                    ((record.path, cid, i) for i, cid in enumerate(ids)),
                )
            db.execute(
                "INSERT INTO meta(key, value) VALUES('generation', '1') ON CONFLICT(key) "
                "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )
            new_ids = {cid for _, ids in records for cid in ids}
            still_used = self.referenced(before) if before else set()
            orphans = before - still_used
            # New ids are committed now; orphans stay pending until deleted from the store.
            db.executemany("DELETE FROM pending WHERE chunk_id = ?", ((c,) for c in new_ids))
            db.executemany(
                "INSERT OR IGNORE INTO pending(chunk_id) VALUES(?)", ((c,) for c in orphans)
            )
        return orphans, still_used

    def owners(self, chunk_ids: Iterable[str]) -> dict[str, str]:
        """One document path that uses each of these chunk ids."""
        owners: dict[str, str] = {}
        for cid in chunk_ids:
            row = self._db.execute(
                "SELECT path FROM doc_chunks WHERE chunk_id = ? ORDER BY path LIMIT 1", (cid,)
            ).fetchone()
            if row is not None:
                owners[cid] = str(row[0])
        return owners

    def clear(self) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM doc_chunks")
            db.execute("DELETE FROM documents")
            db.execute("DELETE FROM pending")
            # The generation survives (and moves on): derived indexes must see the wipe.
            db.execute("DELETE FROM meta WHERE key != 'generation'")
            db.execute(
                "INSERT INTO meta(key, value) VALUES('generation', '1') ON CONFLICT(key) "
                "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
            )
