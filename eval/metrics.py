"""Evaluation metrics: pure functions over ranked relevance flags, answers and refusals.

Every formula is written out in the README ("Evaluation"). A metric that is undefined for a
question (no gold evidence, a refused answer, no citation) returns None and is left out of the mean.
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_PUNCT = set(string.punctuation)


def normalize(text: str) -> str:
    """SQuAD's answer normalisation: lowercase, no punctuation, no articles, single spaces.
    Folio's citation markers ([1]) are removed first."""
    text = re.sub(r"\[\d+\]", " ", text.lower())
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Sequence[str]) -> float | None:
    if not answers:
        return None
    return float(any(normalize(prediction) == normalize(a) for a in answers))


def token_f1(prediction: str, answers: Sequence[str]) -> float | None:
    """SQuAD token F1 against the best-matching gold answer."""
    if not answers:
        return None
    best = 0.0
    pred = normalize(prediction).split()
    for answer in answers:
        ref = normalize(answer).split()
        common = sum((Counter(pred) & Counter(ref)).values())
        if not pred or not ref or common == 0:
            score = float(pred == ref)
        else:
            precision, recall = common / len(pred), common / len(ref)
            score = 2 * precision * recall / (precision + recall)
        best = max(best, score)
    return best


def contains_answer(text: str, answers: Sequence[str]) -> bool:
    """A gold answer appears in the text, on word boundaries, after normalisation."""
    padded = f" {normalize(text)} "
    return any(normalize(a) and f" {normalize(a)} " in padded for a in answers)


# --- retrieval ---------------------------------------------------------------------------------
def hit_at_k(relevant: Sequence[bool], k: int, has_gold: bool = True) -> float | None:
    if not has_gold:
        return None
    return float(any(relevant[:k]))


def mrr_at_k(relevant: Sequence[bool], k: int = 10, has_gold: bool = True) -> float | None:
    if not has_gold:
        return None
    for rank, flag in enumerate(relevant[:k], start=1):
        if flag:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(relevant: Sequence[bool], n_relevant: int, k: int = 10) -> float | None:
    """Binary-gain nDCG@k; the ideal ranking puts min(n_relevant, k) relevant items first."""
    if n_relevant <= 0:
        return None
    dcg = sum(1.0 / math.log2(rank + 1) for rank, f in enumerate(relevant[:k], start=1) if f)
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(n_relevant, k) + 1))
    return dcg / ideal


def context_precision(relevant: Sequence[bool], has_gold: bool = True) -> float | None:
    """RAGAS context precision: average precision over the ranked contexts,
    sum_k(precision@k * rel_k) / (number of relevant contexts retrieved); 0 when none is."""
    if not has_gold:
        return None
    hits, total = 0, 0.0
    for rank, flag in enumerate(relevant, start=1):
        if flag:
            hits += 1
            total += hits / rank
    return total / hits if hits else 0.0


def context_recall(evidence_found: Sequence[bool]) -> float | None:
    """Share of the gold evidence items that some retrieved context matches."""
    if not evidence_found:
        return None
    return sum(evidence_found) / len(evidence_found)


# --- answers -----------------------------------------------------------------------------------
def citation_accuracy(cited_relevant: Sequence[bool]) -> float | None:
    """Share of the answer's citations that point at gold evidence (None without citations)."""
    if not cited_relevant:
        return None
    return sum(cited_relevant) / len(cited_relevant)


def has_unsupported_claim(unsupported_terms: Sequence[Sequence[str]]) -> float:
    """1.0 when some sentence of a shown answer has a number or proper name that no retrieved
    source contains (retrieval.claims), else 0.0. Its mean over answered questions is the
    unsupported-claim rate."""
    return float(any(terms for terms in unsupported_terms))


@dataclass(frozen=True)
class RefusalCounts:
    refused_unanswerable: int
    refused: int
    unanswerable: int

    @property
    def precision(self) -> float | None:
        return self.refused_unanswerable / self.refused if self.refused else None

    @property
    def recall(self) -> float | None:
        return self.refused_unanswerable / self.unanswerable if self.unanswerable else None


def refusal_counts(refused: Sequence[bool], answerable: Sequence[bool]) -> RefusalCounts:
    """Refusal as the positive class: precision = refused and unanswerable / refused,
    recall = refused and unanswerable / unanswerable."""
    both = sum(1 for r, a in zip(refused, answerable, strict=True) if r and not a)
    return RefusalCounts(both, sum(refused), sum(1 for a in answerable if not a))


def cosine(a: Sequence[float], b: Sequence[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
    return dot / norm if norm else 0.0


# --- aggregation -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    value: float | None
    low: float | None
    high: float | None
    n: int

    def to_json(self) -> dict[str, float | int | None]:
        def r(x: float | None) -> float | None:
            return None if x is None else round(x, 4)

        return {"value": r(self.value), "low": r(self.low), "high": r(self.high), "n": self.n}


def mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def bootstrap(
    rows: Sequence[object],
    statistic: Callable[[Sequence[object]], float | None],
    n: int,
    seed: int,
    resamples: int = 1000,
) -> Estimate:
    """The statistic with a 95% percentile bootstrap interval, resampling questions."""
    import random

    value = statistic(rows)
    if value is None or not rows:
        return Estimate(value, None, None, n)
    rng = random.Random(seed)
    samples = []
    for _ in range(resamples):
        drawn = [rows[rng.randrange(len(rows))] for _ in rows]
        stat = statistic(drawn)
        if stat is not None:
            samples.append(stat)
    samples.sort()
    if not samples:
        return Estimate(value, None, None, n)
    low = samples[int(0.025 * (len(samples) - 1))]
    high = samples[math.ceil(0.975 * (len(samples) - 1))]
    return Estimate(value, low, high, n)


def mean_estimate(values: Sequence[float | None], seed: int) -> Estimate:
    kept = [v for v in values if v is not None]
    return bootstrap(kept, lambda rows: mean(rows), len(kept), seed)  # type: ignore[arg-type]


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (q in 0..100)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
