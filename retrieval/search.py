"""Retrieval: dense (Chroma), sparse (BM25) or both fused (weighted reciprocal rank fusion by
default; per-query adaptive weights or a convex combination of normalised scores by setting).

When the question names documents (a company, a quarter, a title, a file name: the document stage
in retrieval.documents) their chunks are ranked first. Options: k, MMR diversity, a source-path
glob, and neighbouring-chunk expansion. Every hit carries its cosine similarity to the query as
`score` (calibrated for refusal, whatever found it), and only chunks the manifest has committed
are ever returned.
"""

from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from folio.models import load_embedding_model
from folio.settings import Settings
from folio.store import ChromaStore, StoredChunk
from ingest.index import manifest_path
from ingest.manifest import Manifest
from retrieval.bm25 import load_sparse

if TYPE_CHECKING:
    from retrieval.documents import NamedDocuments

Mode = Literal["dense", "bm25", "hybrid"]
QUERY_VECTORS_KEPT = 16
Scored = tuple[StoredChunk, float, list[float]]  # a chunk, its cosine to the query, its vector


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
    page_label: str | None = None  # the PDF's printed page label, when it differs from `page`

    def to_json(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "chunk_id": self.chunk_id,
            "source": self.source,
            "page": self.page,
            "page_label": self.page_label,
            "score": round(self.score, 6),
            "text": self.text,
            "table": self.table,
            "ocr": self.ocr,
            "ocr_confidence": self.ocr_confidence,
        }

    @property
    def table(self) -> bool:
        """The chunk holds (part of) a table."""
        return bool(self.metadata.get("table", False))

    @property
    def ocr(self) -> bool:
        """The chunk's text was read by OCR (a scanned page or an image file)."""
        return bool(self.metadata.get("ocr", False))

    @property
    def ocr_confidence(self) -> float | None:
        """OCR's confidence in the chunk's page (0..1), None when not read by OCR."""
        value = self.metadata.get("ocr_confidence")
        return float(value) if self.ocr and isinstance(value, int | float) else None


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


def standout(scores: list[float]) -> float:
    """How far the best score stands above the mean of a top list, in standard deviations
    (floored so that a flat list still counts a little)."""
    if len(scores) < 3:
        return 1.0
    mean = sum(scores) / len(scores)
    spread = math.sqrt(sum((s - mean) ** 2 for s in scores) / len(scores))
    return max((max(scores) - mean) / spread, 0.25) if spread > 0 else 0.25


def normalise(values: list[float]) -> list[float]:
    """Min-max to [0, 1] (all equal: all 1)."""
    low, high = min(values, default=0.0), max(values, default=0.0)
    return [(v - low) / (high - low) if high > low else 1.0 for v in values]


class QueryToChunks:
    """Top-k chunks for a query from one collection."""

    def __init__(self, settings: Settings, store: ChromaStore, collection: str | None = None):
        self.settings = settings
        self.store = store
        self.collection = collection or settings.collection
        self._manifest = Manifest(manifest_path(settings, self.collection))
        # The refusal model embeds the question the search just embedded: keep the last few.
        self._query_vectors: dict[str, list[float]] = {}

    def close(self) -> None:
        self._manifest.close()

    def embed_query(self, query: str) -> list[float]:
        vector = self._query_vectors.get(query)
        if vector is None:
            vector = load_embedding_model(self.settings).embed([query])[0]
            if len(self._query_vectors) >= QUERY_VECTORS_KEPT:
                self._query_vectors.pop(next(iter(self._query_vectors)))
            self._query_vectors[query] = vector
        return vector

    def search(self, query: str, options: SearchOptions | None = None) -> list[SearchHit]:
        options = options or SearchOptions.from_settings(self.settings)
        if not query.strip():
            return []
        allowed = self._allowed_sources(options.source_glob)
        if allowed is not None and not allowed:
            return []
        pool = self.settings.fusion_candidates or max(options.k * 4, 20)
        vector = self.embed_query(query)
        named = self.named_documents(query, allowed)
        if named is None:
            scored = self._ranked(query, vector, options.mode, allowed, pool)
        else:
            # The chunks of the documents the question names first, then the rest as usual.
            paths = set(named.paths)
            scored = self._ranked(named.within_query, vector, options.mode, paths, pool)
            if len(scored) < options.k:
                seen = {stored.chunk_id for stored, _, _ in scored}
                rest = self._ranked(query, vector, options.mode, allowed, pool)
                scored += [item for item in rest if item[0].chunk_id not in seen]
        if options.mmr_lambda is not None:
            scored = self._mmr(scored, options.mmr_lambda, options.k)
        hits = [
            self._hit(rank, stored, score)
            for rank, (stored, score, _) in enumerate(scored[: options.k], 1)
        ]
        if options.neighbors > 0:
            hits = [self._expand(hit, options.neighbors) for hit in hits]
        return hits

    def named_documents(self, query: str, allowed: set[str] | None = None) -> NamedDocuments | None:
        """The documents the query names (document stage), or None: search them all."""
        if not self.settings.document_stage:
            return None
        from retrieval.documents import document_index

        settings = self.settings.model_copy(update={"collection": self.collection})
        index = document_index(settings, self.store, self._manifest)
        return index.named(query, allowed)

    def _ranked(
        self, query: str, vector: list[float], mode: Mode, allowed: set[str] | None, pool: int
    ) -> list[Scored]:
        """Candidates from each retriever, fused, as (chunk, cosine, embedding), best first."""
        dense: list[StoredChunk] = []
        sparse_hits: list[tuple[str, float]] = []
        sparse = load_sparse(self.settings, self.collection) if mode != "dense" else None
        if mode in ("dense", "hybrid"):
            where = {"source": {"$in": sorted(allowed)}} if allowed is not None else None
            dense = self.store.query(self.collection, vector, pool, where=where)
        convex = mode == "hybrid" and self.settings.fusion == "convex"
        every: dict[str, float] = {}  # BM25 scores of all chunks, when needed
        if sparse is not None and allowed is None and not convex:
            sparse_hits = sparse.search(query, pool)
        elif sparse is not None:
            # BM25 cannot filter inside its index: score every chunk, keep the allowed ones.
            every = sparse.scores(query)
            inside = (
                {cid for path in allowed for cid in self._manifest.chunk_ids(path)}
                if allowed is not None
                else None
            )
            kept = ((c, s) for c, s in every.items() if inside is None or c in inside)
            sparse_hits = sorted(kept, key=lambda h: -h[1])[:pool]
        if convex:
            return self._convex(vector, dense, sparse_hits, every, allowed, pool)
        rankings: list[tuple[list[str], float]] = []
        if mode in ("dense", "hybrid"):
            rankings.append(([c.chunk_id for c in dense], self.settings.fusion_dense_weight))
        if mode in ("bm25", "hybrid"):
            rankings.append(([cid for cid, _ in sparse_hits], self.settings.fusion_bm25_weight))
        if mode == "hybrid" and self.settings.fusion == "adaptive":
            rankings = self._adaptive(rankings, dense, sparse_hits)
        fused = rrf(rankings, self.settings.rrf_k)
        return self._score(self._committed(fused), vector, allowed, pool)

    def _committed(self, fused: dict[str, float]) -> list[str]:
        committed = self._manifest.referenced(fused)
        return sorted((c for c in fused if c in committed), key=lambda c: -fused[c])

    def _score(
        self, ids: list[str], vector: list[float], allowed: set[str] | None, pool: int
    ) -> list[Scored]:
        chunks = self._with_embeddings(ids[:pool])
        if allowed is not None:
            chunks = [c for c in chunks if c[0].metadata.get("source") in allowed]
        return [(stored, _dot(vector, emb), emb) for stored, emb in chunks]

    def _adaptive(
        self,
        rankings: list[tuple[list[str], float]],
        dense: list[StoredChunk],
        sparse_hits: list[tuple[str, float]],
    ) -> list[tuple[list[str], float]]:
        """Scale each retriever's weight by how far its best score stands out from the rest of
        its top list: a retriever that is sure of its answer counts more for this query."""
        dense_scores = [c.score for c in dense]
        sparse_scores = [s for _, s in sparse_hits]
        (dense_ids, dense_w), (sparse_ids, sparse_w) = rankings
        return [
            (dense_ids, dense_w * standout(dense_scores)),
            (sparse_ids, sparse_w * standout(sparse_scores)),
        ]

    def _convex(
        self,
        vector: list[float],
        dense: list[StoredChunk],
        sparse_hits: list[tuple[str, float]],
        bm25: dict[str, float],
        allowed: set[str] | None,
        pool: int,
    ) -> list[Scored]:
        """alpha * normalised cosine + (1 - alpha) * normalised BM25 over both candidate lists,
        each candidate scored by both retrievers (min-max over the candidates)."""
        ids = list(dict.fromkeys([c.chunk_id for c in dense] + [cid for cid, _ in sparse_hits]))
        committed = self._manifest.referenced(ids)
        scored = self._score([c for c in ids if c in committed], vector, allowed, len(ids))
        if not scored:
            return []
        cosines = normalise([score for _, score, _ in scored])
        lexical = normalise([bm25.get(stored.chunk_id, 0.0) for stored, _, _ in scored])
        alpha = self.settings.fusion_convex_dense
        fused = [alpha * c + (1 - alpha) * b for c, b in zip(cosines, lexical, strict=True)]
        order = sorted(range(len(scored)), key=lambda i: -fused[i])
        return [scored[i] for i in order][:pool]

    def _allowed_sources(self, glob: str | None) -> set[str] | None:
        if not glob:
            return None
        paths = [d.path for d in self._manifest.documents()]
        return {
            p
            for p in paths
            if fnmatch.fnmatch(p, glob) or fnmatch.fnmatch(p.rsplit("/", 1)[-1], glob)
        }  # a glob matches the full path or just the file name ("*.pdf", "*2023 Q3*")

    def _with_embeddings(self, ids: list[str]) -> list[tuple[StoredChunk, list[float]]]:
        stored = {c.chunk_id: c for c in self.store.get(self.collection, ids, embeddings=True)}
        return [(stored[cid], stored[cid].embedding or []) for cid in ids if cid in stored]

    @staticmethod
    def _mmr(scored: list[Scored], lam: float, k: int) -> list[Scored]:
        """Maximal marginal relevance over the fused candidates."""
        remaining = list(scored)
        chosen: list[Scored] = []
        while remaining and len(chosen) < k:

            def gain(item: Scored) -> float:
                redundancy = max((_dot(item[2], c[2]) for c in chosen), default=0.0)
                return lam * item[1] - (1 - lam) * redundancy

            best = max(remaining, key=gain)
            chosen.append(best)
            remaining.remove(best)
        return chosen

    @staticmethod
    def _hit(rank: int, stored: StoredChunk, score: float) -> SearchHit:
        from retrieval.page_labels import page_label

        raw_page = stored.metadata.get("page")
        page = (
            int(raw_page)
            if isinstance(raw_page, int | float) and not math.isnan(raw_page)
            else None
        )
        source = str(stored.metadata.get("source", ""))
        return SearchHit(
            rank=rank,
            chunk_id=stored.chunk_id,
            source=source,
            page=page,
            score=score,
            text=stored.text,
            metadata=dict(stored.metadata),
            context=stored.text,
            page_label=page_label(source, page),
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
