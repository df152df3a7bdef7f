"""What "the collection is consistent" means, checked on the real files and the real Chroma.

A collection is consistent when the manifest journals nothing (no write is half done) and the
chunk ids its committed documents list are exactly the ids Chroma holds: no orphan chunk in
Chroma, no committed chunk missing from it. Used by the replica and load tests.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse


@dataclass(frozen=True)
class IndexState:
    documents: dict[str, set[str]]  # committed path -> its chunk ids
    pending: int  # journalled ids not yet committed or rolled back
    stored: set[str]  # the ids in Chroma

    @property
    def committed(self) -> set[str]:
        return {cid for ids in self.documents.values() for cid in ids}

    @property
    def orphans(self) -> set[str]:
        return self.stored - self.committed

    @property
    def missing(self) -> set[str]:
        return self.committed - self.stored


def manifest_documents(data_dir: Path, collection: str) -> tuple[dict[str, set[str]], int]:
    """(committed path -> chunk ids, pending journal entries), read-only from the manifest."""
    path = data_dir / "manifests" / f"{collection}.sqlite3"
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=60)
    try:
        documents: dict[str, set[str]] = {
            str(p): set() for (p,) in db.execute("SELECT path FROM documents")
        }
        for path_, chunk_id in db.execute("SELECT path, chunk_id FROM doc_chunks"):
            documents.setdefault(str(path_), set()).add(str(chunk_id))
        (pending,) = db.execute("SELECT COUNT(*) FROM pending").fetchone()
    finally:
        db.close()
    return documents, int(pending)


def chroma_ids(data_dir: Path, collection: str, chroma_url: str | None) -> set[str]:
    """Every id in the collection's Chroma collection (a server, or the embedded store of a
    data dir that no other process holds open)."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        url = urlparse(chroma_url)
        host, port = str(url.hostname), int(url.port or 8000)
        client = chromadb.HttpClient(host=host, port=port, settings=settings)
    else:
        client = chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=settings)
    names = [str(getattr(c, "name", c)) for c in client.list_collections()]
    if f"folio_{collection}" not in names:
        return set()
    return set(client.get_collection(f"folio_{collection}").get(include=[])["ids"])


def index_state(data_dir: Path, collection: str, chroma_url: str | None = None) -> IndexState:
    documents, pending = manifest_documents(data_dir, collection)
    return IndexState(documents, pending, chroma_ids(data_dir, collection, chroma_url))


def assert_consistent(data_dir: Path, collection: str, chroma_url: str | None = None) -> IndexState:
    state = index_state(data_dir, collection, chroma_url)
    assert state.pending == 0, f"{state.pending} journalled ids left"
    assert not state.orphans, f"{len(state.orphans)} chunks in Chroma that no document uses"
    assert not state.missing, f"{len(state.missing)} committed chunks missing from Chroma"
    return state
