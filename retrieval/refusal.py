"""Refusal: can the collection answer this question at all? Decided from retrieval evidence only.

The best chunk's cosine similarity alone cannot tell an on-topic question from one about a
document that was never ingested (other texts share much vocabulary). So a small logistic model
combines several signals, each normalised so that it means the same in a 3-chunk collection and
in a 100,000-chunk one:

- `dense_top`: the best cosine similarity of the dense (embedding) search;
- `bm25_norm`: the best BM25 score divided by the most the question's terms could score
  (every term matched with saturated frequency), so it does not grow with the collection;
- `coverage`: the share of the question's terms, weighted by how rare they are (IDF scaled by
  the IDF of an unseen term), that the best-matching chunk contains;
- `rare_coverage`: the share of the question's rarer half of terms that this chunk contains;
- `missing`: the IDF-weighted share of the question's terms found nowhere in the collection;
- `agreement`: whether the dense and BM25 searches agree on their best chunk;
- `names`: the share of the names in the question (capitalised words after the first, such as a
  company or a place) that the candidate chunks mention; 1 when the question names nothing.

The fitted parameters are data (`refusal_model.json`, written by `python -m bench.fit_refusal`);
the decision never calls the LLM.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrieval.bm25 import load_sparse, tokenize
from retrieval.search import QueryToChunks, SearchHit

MODEL_FILE = Path(__file__).resolve().with_name("refusal_model.json")
FEATURES = (
    "dense_top", "bm25_norm", "coverage", "rare_coverage", "missing", "agreement", "names",
)  # fmt: skip
DEPTH = 5  # how many chunks each search contributes as candidates
BM25_K1 = 1.5  # bm25s' default saturation, for the score's upper bound


@dataclass(frozen=True)
class RefusalModel:
    """Logistic regression over standardised features: P(the collection answers the question)."""

    features: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]
    bias: float
    threshold: float  # the fitted decision threshold (the default `refusal_threshold`)
    about: str = ""

    def probability(self, values: dict[str, float]) -> float:
        z = self.bias + sum(
            w * (values[name] - mu) / sd
            for name, w, mu, sd in zip(
                self.features, self.weights, self.mean, self.scale, strict=True
            )
        )
        # Clipped so that P (even rounded to 6 places) stays inside (0, 1): 1 always refuses.
        return 1.0 / (1.0 + math.exp(-max(-12.0, min(12.0, z))))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RefusalModel:
        features = tuple(str(f) for f in data["features"])
        if set(features) - set(FEATURES):
            raise ValueError(f"unknown refusal features: {sorted(set(features) - set(FEATURES))}")
        model = cls(
            features=features,
            mean=tuple(float(x) for x in data["mean"]),
            scale=tuple(float(x) or 1.0 for x in data["scale"]),
            weights=tuple(float(x) for x in data["weights"]),
            bias=float(data["bias"]),
            threshold=float(data["threshold"]),
            about=str(data.get("about", "")),
        )
        if not len(model.features) == len(model.mean) == len(model.scale) == len(model.weights):
            raise ValueError("refusal model: features, mean, scale and weights differ in length")
        return model

    def to_json(self) -> dict[str, Any]:
        return {
            "about": self.about,
            "features": list(self.features),
            "mean": [round(x, 6) for x in self.mean],
            "scale": [round(x, 6) for x in self.scale],
            "weights": [round(x, 6) for x in self.weights],
            "bias": round(self.bias, 6),
            "threshold": round(self.threshold, 4),
        }


@functools.lru_cache(maxsize=4)
def load_model(path: Path = MODEL_FILE) -> RefusalModel:
    return RefusalModel.from_json(json.loads(path.read_text(encoding="utf-8")))


def default_threshold() -> float:
    """The committed model's decision threshold; 0.5 if the file cannot be read."""
    try:
        return load_model().threshold
    except (OSError, ValueError, KeyError, TypeError):
        return 0.5


@dataclass(frozen=True)
class Assessment:
    p_answerable: float
    threshold: float
    features: dict[str, float]

    @property
    def refused(self) -> bool:
        return self.p_answerable < self.threshold

    def to_json(self) -> dict[str, Any]:
        return {
            "p_answerable": round(self.p_answerable, 6),
            "threshold": self.threshold,
            "features": {k: round(v, 4) for k, v in self.features.items()},
        }


def _idf(df: int, n_docs: int) -> float:
    """BM25's (Lucene) IDF, as bm25s computes it."""
    return math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))


def names_in(question: str) -> list[str]:
    """Capitalised words after the first, without digits or a possessive: likely proper names."""
    words = [re.sub(r"'s?$", "", w) for w in re.findall(r"[\w'&-]+", question)[1:]]
    names = [w for w in words if w[:1].isupper() and re.fullmatch(r"[A-Za-z&-]+", w)]
    return list(dict.fromkeys(names))


def question_features(
    retriever: QueryToChunks, question: str, hits: Sequence[SearchHit]
) -> dict[str, float]:
    """The model's inputs for one question, from the collection's own dense and BM25 indexes.

    Every feature lies in [0, 1] (cosine in [-1, 1]) whatever the collection's size."""
    settings, store = retriever.settings, retriever.store
    terms = list(dict.fromkeys(tokenize([question])[0])) if question.strip() else []
    sparse = load_sparse(settings, retriever.collection)
    vector = retriever.embed_query(question)
    dense = store.query(retriever.collection, vector, DEPTH)
    bm25 = sparse.search(question, DEPTH) if sparse else []
    n_docs, dfs = sparse.document_frequencies(terms) if sparse else (0, [0] * len(terms))

    dense_top = max((c.score for c in dense), default=0.0)
    # IDF scaled by an unseen term's: 1 = found nowhere, near 0 = in every chunk.
    unseen = _idf(0, n_docs)
    weights = [_idf(df, n_docs) / unseen for df in dfs]
    total = sum(weights) or 1.0
    missing = sum(w for w, df in zip(weights, dfs, strict=True) if df == 0) / total
    bound = sum(_idf(df, n_docs) * (BM25_K1 + 1) for df in dfs) or 1.0
    bm25_norm = min(1.0, (bm25[0][1] if bm25 else 0.0) / bound)

    # The chunks that could hold the answer: what is shown, and each search's best (over the
    # whole collection, even when a source filter narrowed the hits).
    texts = {h.chunk_id: h.text for h in hits}
    texts.update((c.chunk_id, c.text) for c in dense[:3])
    missing_ids = [cid for cid, _ in bm25[:3] if cid not in texts]
    texts.update((c.chunk_id, c.text) for c in store.get(retriever.collection, missing_ids))
    by_rarity = sorted(zip(terms, weights, strict=True), key=lambda pair: -pair[1])
    rare = {t for t, _ in by_rarity[: max(1, (len(terms) + 1) // 2)]}
    coverage, rare_coverage = 0.0, 0.0
    mentioned: set[str] = set()
    for chunk_terms in map(set, tokenize(list(texts.values())) if texts else []):
        mentioned |= chunk_terms
        share = sum(w for t, w in zip(terms, weights, strict=True) if t in chunk_terms) / total
        rare_share = len(rare & chunk_terms) / len(rare) if rare else 0.0
        coverage, rare_coverage = max((coverage, rare_coverage), (share, rare_share))

    dense_ids = [c.chunk_id for c in dense]
    bm25_ids = [cid for cid, _ in bm25]
    agreement = (
        (float(dense_ids[0] in bm25_ids[:3]) + float(bm25_ids[0] in dense_ids[:3])) / 2
        if dense_ids and bm25_ids
        else 0.0
    )
    named = names_in(question)
    names = [stems for stems in tokenize(named) if stems] if named else []
    return {
        "dense_top": dense_top,
        "bm25_norm": bm25_norm,
        "coverage": coverage if terms else 0.0,
        "rare_coverage": rare_coverage,
        "missing": missing if terms else 1.0,
        "agreement": agreement,
        "names": sum(set(stems) <= mentioned for stems in names) / len(names) if names else 1.0,
    }


def assess(
    retriever: QueryToChunks,
    question: str,
    hits: Sequence[SearchHit],
    threshold: float,
    model: RefusalModel | None = None,
) -> Assessment:
    """P(answerable) for the question over this collection, and the threshold it is held to."""
    if not hits:
        return Assessment(0.0, threshold, {})
    model = model or load_model()
    features = question_features(retriever, question, hits)
    return Assessment(model.probability(features), threshold, features)
