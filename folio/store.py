"""The vector store component: one Chroma collection per Folio collection, embedded or server."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

Metadata = dict[str, str | int | float | bool]
T = TypeVar("T")


class StoreUnavailableError(RuntimeError):
    """The Chroma server cannot be reached; the message says what to start."""


@dataclass(frozen=True)
class StoredChunk:
    chunk_id: str
    text: str
    metadata: Metadata
    score: float  # cosine similarity, higher is closer
    embedding: list[float] | None = None


def chroma_name(collection: str) -> str:
    return f"folio_{collection}"


def _collection_gone(exc: Exception) -> bool:
    """Chroma's answer to a handle whose collection was dropped (by a rebuild in another
    replica): NotFoundError in chromadb 1.x, InvalidCollectionException before."""
    name = type(exc).__name__
    return name in ("NotFoundError", "InvalidCollectionException") or "does not exist" in str(exc)


class _DiskFreshness:
    """Per embedded store path, in this process: the state of Chroma's database file we last
    saw, and an epoch that moves on when another process changed it. Moving on detaches
    chromadb's cached system for the path, so clients made after it read the disk afresh; the
    detached system is stopped one change later, when no call can still be using it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, tuple[int, ...]] = {}
        self._epochs: dict[str, int] = {}
        self._retired: dict[str, Any] = {}

    @staticmethod
    def _token(path: Path) -> tuple[int, ...]:
        token: list[int] = []
        for name in ("chroma.sqlite3", "chroma.sqlite3-wal"):
            try:
                stat = (path / name).stat()
                token += [stat.st_mtime_ns, stat.st_size]
            except FileNotFoundError:
                token += [0, 0]
        return tuple(token)

    def seen(self, path: Path) -> int:
        with self._lock:
            self._seen.setdefault(str(path), self._token(path))
            return self._epochs.setdefault(str(path), 0)

    def mark_current(self, path: Path) -> None:
        with self._lock:
            self._seen[str(path)] = self._token(path)

    def check(self, path: Path) -> int:
        key = str(path)
        token = self._token(path)
        with self._lock:
            if self._seen.get(key, token) != token:
                from chromadb.api.shared_system_client import SharedSystemClient

                old = self._retired.pop(key, None)
                if old is not None:
                    old.stop()
                self._retired[key] = SharedSystemClient._identifier_to_system.pop(key, None)
                SharedSystemClient._identifier_to_refcount.pop(key, None)
                self._epochs[key] = self._epochs.get(key, 0) + 1
            self._seen[key] = token
            return self._epochs.setdefault(key, 0)


_freshness = _DiskFreshness()


def _batches(items: Sequence[Any], size: int) -> Iterator[slice]:
    for start in range(0, len(items), size):
        yield slice(start, start + size)


class ChromaStore:
    """Chroma behind a small typed interface: upsert, delete, query and get by id."""

    def __init__(self, data_dir: Path, chroma_url: str | None = None) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        self.url = chroma_url
        self.path = None if chroma_url else data_dir / "chroma"
        if chroma_url:
            parsed = urlparse(chroma_url)
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise StoreUnavailableError(f"chroma_url '{chroma_url}' is not an http(s) URL")
            try:
                self._client = chromadb.HttpClient(
                    host=parsed.hostname,
                    port=parsed.port or (443 if parsed.scheme == "https" else 8000),
                    ssl=parsed.scheme == "https",
                    settings=chroma_settings,
                )
                self._client.heartbeat()
            except Exception as exc:
                raise StoreUnavailableError(
                    f"Chroma server at {chroma_url} is not reachable ({exc.__class__.__name__}); "
                    "start it with `chroma run --path DIR --port P` or unset FOLIO_CHROMA_URL"
                ) from None
        else:
            assert self.path is not None
            self.path.mkdir(parents=True, exist_ok=True)
            from filelock import FileLock

            # Chroma's first open creates its schema without a cross-process guard: two
            # processes opening a new store at once fail with "table ... already exists".
            with FileLock(str(self.path / ".open.lock")):
                self._client = chromadb.PersistentClient(
                    path=str(self.path), settings=chroma_settings
                )
            self._epoch = _freshness.seen(self.path)
        self._max_batch = int(self._client.get_max_batch_size())
        self._collections: dict[str, Any] = {}

    @property
    def mode(self) -> str:
        return "server" if self.url else "embedded"

    @property
    def location(self) -> str:
        return self.url or str(self.path)

    def _collection(self, name: str) -> Any:
        if name not in self._collections:
            # embedding_function=None: Folio embeds itself; Chroma's default would fetch a model.
            self._collections[name] = self._client.get_or_create_collection(
                name=chroma_name(name),
                metadata={"hnsw:space": "cosine"},
                embedding_function=None,
            )
        return self._collections[name]

    def _sync(self) -> None:
        """Reopen an embedded store that another process wrote to since we last looked: Chroma
        keeps its vector index in memory and would go on answering from the old one (new
        documents missing, removed ones failing with "Error finding id")."""
        if self.path is None:
            return
        epoch = _freshness.check(self.path)
        if epoch != self._epoch:
            import chromadb
            from chromadb.config import Settings as ChromaSettings

            self._client = chromadb.PersistentClient(
                path=str(self.path),
                settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False),
            )
            self._collections.clear()
            self._epoch = epoch

    def _wrote(self) -> None:
        """Our own writes are not another process's: no reopen for them. Writers hold the data
        dir's write lock, so no other process wrote in between."""
        if self.path is not None:
            _freshness.mark_current(self.path)

    def _on(self, name: str, action: Callable[[Any], T]) -> T:
        """`action(collection)`, once more on a fresh handle if the cached one went stale:
        another process sharing this Chroma may have dropped and re-created the collection."""
        self._sync()
        try:
            return action(self._collection(name))
        except Exception as exc:
            if not _collection_gone(exc):
                raise
            self._collections.pop(name, None)
            return action(self._collection(name))

    def collections(self) -> list[str]:
        self._sync()
        names = [str(getattr(c, "name", c)) for c in self._client.list_collections()]
        return sorted(n[len("folio_") :] for n in names if n.startswith("folio_"))

    def count(self, name: str) -> int:
        return int(self._on(name, lambda c: c.count()))

    def upsert(
        self,
        name: str,
        ids: list[str],
        embeddings: list[list[float]],
        texts: list[str],
        metadatas: list[Metadata],
    ) -> None:
        def write(collection: Any) -> None:
            for part in _batches(ids, self._max_batch):
                collection.upsert(
                    ids=ids[part],
                    embeddings=embeddings[part],
                    documents=texts[part],
                    metadatas=metadatas[part],
                )

        self._on(name, write)
        self._wrote()

    def update_metadata(self, name: str, ids: list[str], metadatas: list[Metadata]) -> None:
        def write(collection: Any) -> None:
            for part in _batches(ids, self._max_batch):
                collection.update(ids=ids[part], metadatas=metadatas[part])

        self._on(name, write)
        self._wrote()

    def delete(self, name: str, ids: list[str]) -> None:
        def write(collection: Any) -> None:
            for part in _batches(ids, self._max_batch):
                collection.delete(ids=ids[part])

        self._on(name, write)
        self._wrote()

    def get(self, name: str, ids: list[str], embeddings: bool = False) -> list[StoredChunk]:
        if not ids:
            return []
        found: dict[str, StoredChunk] = {}
        include = ["documents", "metadatas"] + (["embeddings"] if embeddings else [])
        for part in _batches(ids, self._max_batch):
            wanted = ids[part]
            result = self._on(name, lambda c: c.get(ids=wanted, include=include))  # noqa: B023
            vectors = result.get("embeddings")
            for i, (cid, text, meta) in enumerate(
                zip(
                    result["ids"],
                    result["documents"] or [],
                    result["metadatas"] or [],
                    strict=False,
                )
            ):
                vector = [float(x) for x in vectors[i]] if vectors is not None else None
                found[cid] = StoredChunk(cid, text or "", dict(meta or {}), 1.0, vector)
        return [found[cid] for cid in ids if cid in found]

    def all_ids(self, name: str) -> list[str]:
        return list(self._on(name, lambda c: c.get(include=[]))["ids"])

    def query(
        self, name: str, embedding: list[float], k: int, where: dict[str, Any] | None = None
    ) -> list[StoredChunk]:
        def search(collection: Any) -> Any:
            total = collection.count()
            if total == 0:
                return None
            return collection.query(
                query_embeddings=[embedding],
                n_results=min(k, total),
                where=where,
                include=["documents", "metadatas", "distances"],
            )

        result = self._on(name, search)
        if result is None:
            return []
        ids = result["ids"][0]
        texts = (result["documents"] or [[]])[0]
        metas = (result["metadatas"] or [[]])[0]
        distances = (result["distances"] or [[]])[0]
        return [
            StoredChunk(cid, text or "", dict(meta or {}), 1.0 - float(dist))
            for cid, text, meta, dist in zip(ids, texts, metas, distances, strict=False)
        ]

    def drop(self, name: str) -> None:
        self._collections.pop(name, None)
        if chroma_name(name) in [getattr(c, "name", c) for c in self._client.list_collections()]:
            self._client.delete_collection(chroma_name(name))

    def close(self) -> None:
        """Let go of Chroma: an embedded store kept open does not see what other processes
        wrote since, so a long-lived writer (`folio ingest --watch`) reopens it for each sync."""
        self._collections.clear()
        close = getattr(self._client, "close", None)  # not on ClientAPI, nor in older chromadb
        if close is not None:
            close()
