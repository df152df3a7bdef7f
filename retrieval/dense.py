"""Dense retrieval: the query embedded with the collection's model, nearest chunks from Chroma."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from folio.models import load_embedding_model
from folio.settings import Settings
from folio.store import ChromaStore
from ingest.index import manifest_path
from ingest.manifest import Manifest


@dataclass(frozen=True)
class SearchHit:
    rank: int
    chunk_id: str
    source: str
    page: int | None
    score: float
    text: str
    metadata: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "chunk_id": self.chunk_id,
            "source": self.source,
            "page": self.page,
            "score": round(self.score, 6),
            "text": self.text,
        }


class QueryToChunks:
    """Top-k chunks for a query. Only chunks the manifest has committed are ever returned."""

    def __init__(self, settings: Settings, store: ChromaStore, collection: str | None = None):
        self.settings = settings
        self.store = store
        self.collection = collection or settings.collection
        self._manifest = Manifest(manifest_path(settings, self.collection))

    def close(self) -> None:
        self._manifest.close()

    def search(self, query: str, k: int = 5) -> list[SearchHit]:
        if not query.strip():
            return []
        vector = load_embedding_model(self.settings).embed([query])[0]
        # Ask for a few more: an ingest in progress may have written chunks not yet committed.
        found = self.store.query(self.collection, vector, k + 8)
        committed = self._manifest.referenced(c.chunk_id for c in found)
        hits: list[SearchHit] = []
        for stored in found:
            if stored.chunk_id not in committed:
                continue
            page = stored.metadata.get("page")
            hits.append(
                SearchHit(
                    rank=len(hits) + 1,
                    chunk_id=stored.chunk_id,
                    source=str(stored.metadata.get("source", "")),
                    page=int(page) if isinstance(page, int | float) else None,
                    score=stored.score,
                    text=stored.text,
                    metadata=stored.metadata,
                )
            )
            if len(hits) == k:
                break
        return hits
