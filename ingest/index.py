"""One collection's index: the manifest and the vector store kept consistent with each other."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from folio.settings import Settings
from folio.store import ChromaStore, Metadata
from ingest.documents import Chunk, SourceFile
from ingest.manifest import DocumentRecord, Manifest, utc_now


class IndexLockedError(RuntimeError):
    """Another Folio process holds the write lock for too long."""


class ConfigMismatchError(RuntimeError):
    """The collection was built with another embedder or chunker."""


def manifest_path(settings: Settings, collection: str) -> Path:
    return settings.data_dir / "manifests" / f"{collection}.sqlite3"


@contextmanager
def write_lock(settings: Settings, on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
    """One writer per data dir: the second one waits (and says so) up to lock_timeout_s."""
    from filelock import FileLock, Timeout

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    lock_file = settings.data_dir / "folio.lock"
    owner_file = settings.data_dir / "folio.lock.owner"
    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        owner = owner_file.read_text().strip() if owner_file.exists() else "another process"
        if on_wait:
            on_wait(f"waiting for {owner} to finish writing to {settings.data_dir} ...")
        try:
            lock.acquire(timeout=settings.lock_timeout_s)
        except Timeout:
            raise IndexLockedError(
                f"{settings.data_dir} is locked by {owner} "
                f"(waited {settings.lock_timeout_s:.0f}s); "
                "try again when it has finished"
            ) from None
    try:
        owner_file.write_text(f"folio process {os.getpid()}")
        yield
    finally:
        lock.release()


@dataclass
class PreparedDocument:
    """A document ready to commit: its record, chunk ids, and the chunks still to embed."""

    record: DocumentRecord
    chunk_ids: list[str]
    new_chunks: list[Chunk]


def chunk_metadata(source: SourceFile, chunk: Chunk) -> Metadata:
    meta: Metadata = {
        "source": source.path,
        "filename": Path(source.path).name,
        "title": source.title,
        "sha256": source.sha256,
        "chunk_index": chunk.index,
        "start": chunk.start,
        "end": chunk.end,
        "table": chunk.table,
        "ocr": chunk.ocr_confidence is not None,
    }
    if chunk.ocr_confidence is not None:  # Chroma metadata holds no None: absent unless OCR
        meta["ocr_confidence"] = chunk.ocr_confidence
    if chunk.page is not None:
        meta["page"] = chunk.page
    if chunk.heading:
        meta["heading"] = chunk.heading
    return meta


class CollectionIndex:
    """Writes and reads one collection. Write methods must run under `write_lock`."""

    def __init__(self, settings: Settings, store: ChromaStore, collection: str) -> None:
        self.settings = settings
        self.store = store
        self.name = collection
        self.manifest = Manifest(manifest_path(settings, collection))

    def close(self) -> None:
        self.manifest.close()

    # --- consistency ------------------------------------------------------------------------
    def recover(self) -> int:
        """Roll back store writes that a crashed process journalled but never committed."""
        pending = self.manifest.pending()
        if not pending:
            return 0
        orphans = sorted(set(pending) - self.manifest.referenced(pending))
        self.store.delete(self.name, orphans)
        self.manifest.clear_pending(pending)
        return len(orphans)

    def check_config(self, embedder: str, chunker: str) -> None:
        built = (self.manifest.get_meta("embedder"), self.manifest.get_meta("chunker"))
        if self.manifest.documents() and built != (embedder, chunker):
            raise ConfigMismatchError(
                f"collection '{self.name}' was built with embedder {built[0]} and chunker "
                f"{built[1]}, but the settings now give {embedder} and {chunker}; "
                "re-run `folio ingest --rebuild` to re-embed every document"
            )
        self.manifest.set_meta({"embedder": embedder, "chunker": chunker})

    def refresh_sparse(self) -> None:
        """Bring the BM25 index up to the manifest (a no-op when it already is)."""
        from retrieval.bm25 import rebuild

        rebuild(self.settings, self.store, self.manifest, self.name)

    def wipe(self) -> None:
        self.store.drop(self.name)
        self.manifest.clear()

    # --- writes -----------------------------------------------------------------------------
    def commit(
        self,
        documents: list[tuple[SourceFile, PreparedDocument]],
        embed: Callable[[list[Chunk]], list[list[float]]],
    ) -> tuple[int, int]:
        """Embed the new chunks and make these documents current. Returns (written, deleted)."""
        new = [(source, chunk) for source, prepared in documents for chunk in prepared.new_chunks]
        ids = [chunk.chunk_id for _, chunk in new]
        # Journal first: whatever reaches the store from here on can be rolled back by `recover`.
        self.manifest.journal(ids)
        if new:
            vectors = embed([chunk for _, chunk in new])
            self.store.upsert(
                self.name,
                ids,
                vectors,
                [chunk.text for _, chunk in new],
                [chunk_metadata(source, chunk) for source, chunk in new],
            )
        touched = {prepared.record.path for _, prepared in documents}
        orphans, shared = self.manifest.commit_documents(
            [(prepared.record, prepared.chunk_ids) for _, prepared in documents]
        )
        self._delete_orphans(orphans)
        self._repoint(shared, touched)
        return len(ids), len(orphans)

    def remove(self, paths: list[str]) -> int:
        """Remove documents and the chunks no other document shares. Returns chunks deleted."""
        orphans, shared = self.manifest.commit_documents([], paths)
        self._delete_orphans(orphans)
        self._repoint(shared, set(paths))
        return len(orphans)

    def _delete_orphans(self, orphans: set[str]) -> None:
        if orphans:
            self.store.delete(self.name, sorted(orphans))
            self.manifest.clear_pending(orphans)

    def _repoint(self, shared: set[str], touched: set[str]) -> None:
        """Chunks shared by identical files must name a path that still holds them."""
        if not shared:
            return
        owners = self.manifest.owners(shared)
        stale = [
            stored
            for stored in self.store.get(self.name, sorted(shared))
            if stored.metadata.get("source") in touched
            and owners.get(stored.chunk_id) not in (None, stored.metadata.get("source"))
        ]
        if stale:
            metadatas: list[Metadata] = []
            for stored in stale:
                owner = owners[stored.chunk_id]
                metadatas.append({**stored.metadata, "source": owner, "filename": Path(owner).name})
            self.store.update_metadata(self.name, [s.chunk_id for s in stale], metadatas)

    # --- reads ------------------------------------------------------------------------------
    def documents(self) -> list[DocumentRecord]:
        return self.manifest.documents()

    def new_record(
        self, source: SourceFile, chunks: int, embedder: str, chunker: str
    ) -> DocumentRecord:
        return DocumentRecord(
            path=source.path,
            sha256=source.sha256,
            size=source.size,
            mtime_ns=source.mtime_ns,
            title=source.title,
            pages=source.pages,
            chunks=chunks,
            ingested_at=utc_now(),
            chunker=chunker,
            embedder=embedder,
        )


def recover_if_idle(settings: Settings, store: ChromaStore, collection: str) -> None:
    """Readers finish a crashed writer's work (rollback, BM25 refresh) when no writer runs now."""
    from filelock import FileLock, Timeout

    path = manifest_path(settings, collection)
    if not path.exists():
        return
    from retrieval.bm25 import built_generation

    manifest = Manifest(path)
    try:
        if (
            not manifest.pending()
            and built_generation(settings, collection) == manifest.generation()
        ):
            return
    finally:
        manifest.close()
    lock = FileLock(str(settings.data_dir / "folio.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return  # a writer is running; it recovers, and readers skip uncommitted chunks
    try:
        index = CollectionIndex(settings, store, collection)
        index.recover()
        index.refresh_sparse()
        index.close()
    finally:
        lock.release()
