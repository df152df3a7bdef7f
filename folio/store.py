"""The vector store component: one Chroma collection per Folio collection, embedded or server."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

Metadata = dict[str, str | int | float | bool]


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

    def collections(self) -> list[str]:
        names = [str(getattr(c, "name", c)) for c in self._client.list_collections()]
        return sorted(n[len("folio_") :] for n in names if n.startswith("folio_"))

    def count(self, name: str) -> int:
        return int(self._collection(name).count())

    def upsert(
        self,
        name: str,
        ids: list[str],
        embeddings: list[list[float]],
        texts: list[str],
        metadatas: list[Metadata],
    ) -> None:
        collection = self._collection(name)
        for part in _batches(ids, self._max_batch):
            collection.upsert(
                ids=ids[part],
                embeddings=embeddings[part],
                documents=texts[part],
                metadatas=metadatas[part],
            )

    def update_metadata(self, name: str, ids: list[str], metadatas: list[Metadata]) -> None:
        collection = self._collection(name)
        for part in _batches(ids, self._max_batch):
            collection.update(ids=ids[part], metadatas=metadatas[part])

    def delete(self, name: str, ids: list[str]) -> None:
        collection = self._collection(name)
        for part in _batches(ids, self._max_batch):
            collection.delete(ids=ids[part])

    def get(self, name: str, ids: list[str], embeddings: bool = False) -> list[StoredChunk]:
        if not ids:
            return []
        found: dict[str, StoredChunk] = {}
        collection = self._collection(name)
        include = ["documents", "metadatas"] + (["embeddings"] if embeddings else [])
        for part in _batches(ids, self._max_batch):
            result = collection.get(ids=ids[part], include=include)
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
        return list(self._collection(name).get(include=[])["ids"])

    def query(
        self, name: str, embedding: list[float], k: int, where: dict[str, Any] | None = None
    ) -> list[StoredChunk]:
        collection = self._collection(name)
        total = collection.count()
        if total == 0:
            return []
        result = collection.query(
            query_embeddings=[embedding],
            n_results=min(k, total),
            where=where,
            include=["documents", "metadatas", "distances"],
        )
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
