"""The sparse (BM25) index of a collection, persisted beside Chroma and rebuilt on every write.

Chunk tokens are cached in the manifest database, so a rebuild tokenizes only new chunks and then
re-indexes token lists (fast); queries load the saved index once per process and never rebuild it.
Each build lives in its own generation folder; a `current` file names the live one and is swapped
atomically, so a reader never sees a half-written index.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from folio.settings import Settings
from folio.store import ChromaStore
from ingest.manifest import Manifest

TOKENS_SCHEMA = "CREATE TABLE IF NOT EXISTS bm25_tokens (chunk_id TEXT PRIMARY KEY, tokens TEXT)"


def sparse_dir(settings: Settings, collection: str) -> Path:
    return settings.data_dir / "bm25" / collection


@functools.lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def stem(words: list[str]) -> list[str]:
    """The English stems BM25 indexes, for matching words outside the index."""
    return [str(w) for w in _stemmer().stemWords(words)]


def tokenize(texts: list[str]) -> list[list[str]]:
    import bm25s

    tokens = bm25s.tokenize(
        texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False
    )
    return [list(t) for t in tokens]


def built_generation(settings: Settings, collection: str) -> int | None:
    current = sparse_dir(settings, collection) / "current"
    try:
        return int(current.read_text().strip())
    except (OSError, ValueError):
        return None


def rebuild(settings: Settings, store: ChromaStore, manifest: Manifest, collection: str) -> int:
    """Bring the BM25 index to the manifest's generation (writers only, under the write lock)."""
    generation = manifest.generation()
    if built_generation(settings, collection) == generation:
        return generation
    import bm25s

    db = sqlite3.connect(str(manifest.path), timeout=60)
    try:
        db.execute(TOKENS_SCHEMA)
        committed = sorted(manifest.all_chunk_ids())
        cached = {row[0] for row in db.execute("SELECT chunk_id FROM bm25_tokens")}
        missing = [cid for cid in committed if cid not in cached]
        for start in range(0, len(missing), 2000):
            part = missing[start : start + 2000]
            stored = store.get(collection, part)
            rows = zip(
                (s.chunk_id for s in stored), tokenize([s.text for s in stored]), strict=True
            )
            db.executemany(
                "INSERT OR REPLACE INTO bm25_tokens VALUES (?, ?)",
                ((cid, json.dumps(tokens)) for cid, tokens in rows),
            )
        stale = cached - set(committed)
        db.executemany("DELETE FROM bm25_tokens WHERE chunk_id = ?", ((c,) for c in stale))
        db.commit()
        by_id = {cid: json.loads(tokens) for cid, tokens in db.execute("SELECT * FROM bm25_tokens")}
    finally:
        db.close()
    ids = [cid for cid in committed if cid in by_id]

    root = sparse_dir(settings, collection)
    target = root / f"gen-{generation}"
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    (target / "ids.json").write_text(json.dumps(ids))
    if ids:
        retriever = bm25s.BM25()
        # An empty token list would break the index: keep the row with a placeholder token.
        retriever.index([by_id[cid] or ["\x00"] for cid in ids], show_progress=False)
        retriever.save(str(target), show_progress=False)
    pointer = root / "current.tmp"
    pointer.write_text(str(generation))
    os.replace(pointer, root / "current")
    for old in root.glob("gen-*"):
        if old != target:
            shutil.rmtree(old, ignore_errors=True)
    return generation


class SparseIndex:
    """A loaded BM25 index of one generation."""

    def __init__(self, folder: Path) -> None:
        import bm25s

        self.ids: list[str] = json.loads((folder / "ids.json").read_text())
        self._retriever = (
            bm25s.BM25.load(str(folder), show_progress=False, verbosity=0) if self.ids else None
        )

    def search(self, query: str, k: int) -> list[tuple[str, float]]:
        if self._retriever is None or not query.strip():
            return []
        tokens = tokenize([query])
        if not tokens[0]:
            return []
        documents, scores = self._retriever.retrieve(
            tokens, k=min(k, len(self.ids)), show_progress=False
        )
        return [
            (self.ids[int(d)], float(s))
            for d, s in zip(documents[0], scores[0], strict=True)
            if s > 0
        ]

    def document_frequencies(self, tokens: list[str]) -> tuple[int, list[int]]:
        """The number of indexed chunks, and how many of them hold each (tokenized) term."""
        if self._retriever is None:
            return 0, [0] * len(tokens)
        vocab = self._retriever.vocab_dict
        indptr = self._retriever.scores["indptr"]  # one column of the score matrix per term
        frequencies = [
            int(indptr[vocab[t] + 1] - indptr[vocab[t]]) if t in vocab else 0 for t in tokens
        ]
        return int(self._retriever.scores["num_docs"]), frequencies

    def chunks_with(self, term: str) -> list[str]:
        """The ids of the chunks that hold a (stemmed) term."""
        if self._retriever is None or term not in self._retriever.vocab_dict:
            return []
        matrix, column = self._retriever.scores, self._retriever.vocab_dict[term]
        rows = matrix["indices"][matrix["indptr"][column] : matrix["indptr"][column + 1]]
        return [self.ids[int(row)] for row in rows]

    def scores(self, query: str) -> dict[str, float]:
        """Every chunk's BM25 score for the query (zeros left out), for score-level fusion."""
        if self._retriever is None or not query.strip():
            return {}
        tokens = [t for t in tokenize([query])[0] if t in self._retriever.vocab_dict]
        if not tokens:
            return {}
        values = self._retriever.get_scores(tokens)
        return {self.ids[i]: float(v) for i, v in enumerate(values) if v > 0}


@functools.lru_cache(maxsize=8)
def _load(folder: Path) -> SparseIndex:
    return SparseIndex(folder)


def load_sparse(settings: Settings, collection: str) -> SparseIndex | None:
    """The current BM25 index (cached per process and generation), or None if never built."""
    generation = built_generation(settings, collection)
    if generation is None:
        return None
    folder = sparse_dir(settings, collection) / f"gen-{generation}"
    try:
        return _load(folder)
    except (OSError, ValueError):  # swapped out under us: the next query loads the new one
        return None
