"""Retrieval: dense (Chroma), sparse (BM25) or both fused by reciprocal rank fusion.

Options: k, MMR diversity, a source-path glob, and neighbouring-chunk expansion. Every hit carries
its cosine similarity to the query as `score` (calibrated for refusal, whatever found it), and only
chunks the manifest has committed are ever returned.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from folio.models import load_embedding_model
from folio.settings import Settings
from folio.store import ChromaStore, StoredChunk
from ingest.index import manifest_path
from ingest.manifest import Manifest
from retrieval.bm25 import load_sparse

Mode = Literal["dense", "bm25", "hybrid"]


@dataclass(frozen=True)
class SearchHit:
    rank: int
    chunk_id: str
    source: str
    page: int | None
    score: float
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)
    context: str = ""  # text widened with neighbouring chunks (= text when not expanded)

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "chunk_id": self.chunk_id,
            "source": self.source,
            "page": self.page,
            "score": round(self.score, 6),
            "text": self.text,
            "table": self.table,
        }

    @property
    def table(self) -> bool:
        """The chunk holds (part of) a table."""
        return bool(self.metadata.get("table", False))


@dataclass(frozen=True)
class SearchOptions:
    k: int = 5
    mode: Mode = "hybrid"
    mmr_lambda: float | None = None  # 1.0 = pure relevance; lower = more diverse
    source_glob: str | None = None
    neighbors: int = 0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> SearchOptions:
        base = cls(
            k=settings.k,
            mode=settings.retrieval_mode,
            mmr_lambda=settings.mmr_lambda,
            neighbors=settings.neighbors,
        )
        return replace(
            base, **{key: value for key, value in overrides.items() if value is not None}
        )


def rrf(rankings: list[tuple[list[str], float]], k: int = 60) -> dict[str, float]:
    """Weighted reciprocal rank fusion: sum over rankings of weight / (k + rank)."""
    fused: dict[str, float] = {}
    for ranking, weight in rankings:
        for rank, chunk_id in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + weight / (k + rank)
    return fused


def _dot(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


class QueryToChunks:
    """Top-k chunks for a query from one collection."""

    def __init__(self, settings: Settings, store: ChromaStore, collection: str | None = None):
        self.settings = settings
        self.store = store
        self.collection = collection or settings.collection
        self._manifest = Manifest(manifest_path(settings, self.collection))

    def close(self) -> None:
        self._manifest.close()

    def embed_query(self, query: str) -> list[float]:
        return load_embedding_model(self.settings).embed([query])[0]

    def search(self, query: str, options: SearchOptions | None = None) -> list[SearchHit]:
        options = options or SearchOptions.from_settings(self.settings)
        if not query.strip():
            return []
        allowed = self._allowed_sources(options.source_glob)
        if allowed is not None and not allowed:
            return []
        pool = max(options.k * 4, 20)
        vector = self.embed_query(query)
        rankings: list[tuple[list[str], float]] = []
        found: dict[str, StoredChunk] = {}
        if options.mode in ("dense", "hybrid"):
            where = {"source": {"$in": sorted(allowed)}} if allowed is not None else None
            dense = self.store.query(self.collection, vector, pool, where=where)
            found.update((c.chunk_id, c) for c in dense)
            rankings.append(([c.chunk_id for c in dense], self.settings.fusion_dense_weight))
        if options.mode in ("bm25", "hybrid"):
            sparse = load_sparse(self.settings, self.collection)
            # Over-fetch when filtering by path: BM25 cannot filter inside the index.
            sparse_hits = sparse.search(query, pool * (4 if allowed else 1)) if sparse else []
            rankings.append(([cid for cid, _ in sparse_hits], self.settings.fusion_bm25_weight))
        fused = rrf(rankings, self.settings.rrf_k)
        committed = self._manifest.referenced(fused)
        candidates = sorted((c for c in fused if c in committed), key=lambda c: -fused[c])
        candidates = candidates[:pool]
        chunks = self._with_embeddings(candidates, found)
        if allowed is not None:
            chunks = [c for c in chunks if c[0].metadata.get("source") in allowed]
        scored = [(stored, _dot(vector, emb)) for stored, emb in chunks]
        if options.mmr_lambda is not None:
            scored = self._mmr(scored, chunks, options.mmr_lambda, options.k)
        hits = [
            self._hit(rank, stored, score)
            for rank, (stored, score) in enumerate(scored[: options.k], 1)
        ]
        if options.neighbors > 0:
            hits = [self._expand(hit, options.neighbors) for hit in hits]
        return hits

    def _allowed_sources(self, glob: str | None) -> set[str] | None:
        if not glob:
            return None
        paths = [d.path for d in self._manifest.documents()]
        return {
            p
            for p in paths
            if fnmatch.fnmatch(p, glob) or fnmatch.fnmatch(p.rsplit("/", 1)[-1], glob)
        }  # a glob matches the full path or just the file name ("*.pdf", "*2023 Q3*")

    def _with_embeddings(
        self, ids: list[str], found: dict[str, StoredChunk]
    ) -> list[tuple[StoredChunk, list[float]]]:
        stored = {c.chunk_id: c for c in self.store.get(self.collection, ids, embeddings=True)}
        return [(stored[cid], stored[cid].embedding or []) for cid in ids if cid in stored]

    @staticmethod
    def _mmr(
        scored: list[tuple[StoredChunk, float]],
        chunks: list[tuple[StoredChunk, list[float]]],
        lam: float,
        k: int,
    ) -> list[tuple[StoredChunk, float]]:
        """Maximal marginal relevance over the fused candidates."""
        vectors = {stored.chunk_id: emb for stored, emb in chunks}
        remaining = list(scored)
        chosen: list[tuple[StoredChunk, float]] = []
        while remaining and len(chosen) < k:

            def gain(item: tuple[StoredChunk, float]) -> float:
                redundancy = max(
                    (_dot(vectors[item[0].chunk_id], vectors[c.chunk_id]) for c, _ in chosen),
                    default=0.0,
                )
                return lam * item[1] - (1 - lam) * redundancy

            best = max(remaining, key=gain)
            chosen.append(best)
            remaining.remove(best)
        return chosen

    @staticmethod
    def _hit(rank: int, stored: StoredChunk, score: float) -> SearchHit:
        page = stored.metadata.get("page")
        return SearchHit(
            rank=rank,
            chunk_id=stored.chunk_id,
            source=str(stored.metadata.get("source", "")),
            page=int(page) if isinstance(page, int | float) and not math.isnan(page) else None,
            score=score,
            text=stored.text,
            metadata=dict(stored.metadata),
            context=stored.text,
        )

    def _expand(self, hit: SearchHit, neighbors: int) -> SearchHit:
        """Widen the hit with the chunks around it in its document, overlaps removed."""
        ids = self._manifest.chunk_ids(hit.source)
        if hit.chunk_id not in ids:
            return hit
        at = ids.index(hit.chunk_id)
        window = self.store.get(self.collection, ids[max(0, at - neighbors) : at + neighbors + 1])
        same_page = [c for c in window if c.metadata.get("page") == hit.metadata.get("page")]
        text, end = "", None
        for chunk in sorted(same_page, key=lambda c: int(c.metadata.get("start", 0))):
            start = int(chunk.metadata.get("start", 0))
            if end is None or start >= end:
                text += ("\n" if text else "") + chunk.text
            else:
                text += chunk.text[end - start :]
            end = max(end or 0, start + len(chunk.text))
        return replace(hit, context=text or hit.text)
