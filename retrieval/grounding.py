"""What our code decides, not the model: quotes, support scores, citations, and prompt hygiene."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from retrieval.bm25 import tokenize
from retrieval.search import SearchHit

Embed = Callable[[list[str]], list[list[float]]]

_SENTENCE_END = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(\[]?[A-Z0-9])|\n{2,}|\n(?=[-*•#\d])")
_CITATION = re.compile(r"\[(\d+(?:\s*[,;]\s*\d+)*)\]")
# Chat-template control tokens of common model families; inside documents they are only text.
_SPECIAL_TOKENS = re.compile(
    r"<\|[A-Za-z0-9_\-]{1,40}\|>|</?(?:start_of_turn|end_of_turn|bos|eos|pad|s|unk)>"
    r"|\[/?INST\]|<<\s*/?\s*SYS\s*>>|<\s*/?\s*(?:system|user|assistant)\s*>",
    re.IGNORECASE,
)
_DEFUSE = str.maketrans({"<": "\u2039", ">": "\u203a", "[": "\u27e6", "]": "\u27e7"})
REFUSAL_PATTERNS = re.compile(
    r"cannot answer|can't answer|can not answer|unable to answer|not (?:be )?(?:found|mentioned|"
    r"provided|stated|contained) in|no information|do(?:es)? not (?:contain|mention|say|provide)|"
    r"don't know|do not know|not enough information",
    re.IGNORECASE,
)


def neutralise(text: str) -> str:
    """Defuse chat-template tokens in document text: the angle brackets of `<|im_start|>` become
    single guillemets, so the tokenizer reads plain text, never a control token."""
    return _SPECIAL_TOKENS.sub(lambda m: m.group(0).translate(_DEFUSE), text)


def sentences(text: str) -> list[str]:
    parts = (" ".join(p.split()) for p in _SENTENCE_END.split(text))
    return [p for p in parts if len(p) > 1]


def says_it_cannot_answer(answer: str) -> bool:
    return bool(REFUSAL_PATTERNS.search(answer)) or not answer.strip()


@dataclass(frozen=True)
class Citation:
    n: int
    hit: SearchHit

    def to_json(self) -> dict[str, object]:
        return {"n": self.n, **{k: v for k, v in self.hit.to_json().items() if k != "rank"}}


def parse_citations(answer: str, sources: list[SearchHit]) -> tuple[str, list[Citation]]:
    """Keep `[n]` markers that point at a numbered source; drop the others from the text."""
    kept: dict[int, Citation] = {}

    def replace(match: re.Match[str]) -> str:
        numbers = [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
        valid = [n for n in numbers if 1 <= n <= len(sources)]
        for n in valid:
            kept.setdefault(n, Citation(n, sources[n - 1]))
        return "".join(f"[{n}]" for n in valid)

    cleaned = _CITATION.sub(replace, answer)
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", re.sub(r"[ \t]{2,}", " ", cleaned)).strip()
    return cleaned, sorted(kept.values(), key=lambda c: c.n)


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@dataclass(frozen=True)
class Span:
    """A verbatim piece of a chunk's text: `hit.text[start:end] == text`."""

    text: str
    start: int
    end: int

    def to_json(self) -> dict[str, object]:
        return {"text": self.text, "start": self.start, "end": self.end}


def span_of(text: str, chunk_text: str) -> Span | None:
    """Where `text` sits verbatim in the chunk (whitespace runs may differ), if it does."""
    at = chunk_text.find(text)
    if at >= 0:
        return Span(text, at, at + len(text))
    words = text.split()
    if not words:
        return None
    pattern = re.compile(r"\s+".join(re.escape(w) for w in words))
    match = pattern.search(chunk_text)
    return Span(match.group(0), match.start(), match.end()) if match else None


@dataclass(frozen=True)
class Quote:
    """The answer's quote. `text` is what is shown; `spans` are the verbatim pieces of the
    chunk it was made from (one for a sentence, several for a table row with its headers)."""

    text: str
    hit: SearchHit
    score: float
    spans: tuple[Span, ...] = ()

    def to_json(self) -> dict[str, object]:
        spans = self.spans
        if not spans:
            found = span_of(self.text, self.hit.text)
            spans = (found,) if found else ()
        return {
            "text": self.text,
            "source": self.hit.source,
            "page": self.hit.page,
            "chunk_id": self.hit.chunk_id,
            "table": self.hit.table,
            "spans": [s.to_json() for s in spans],
        }


def best_quote(question: str, hits: list[SearchHit], embed: Embed) -> Quote | None:
    """The retrieved sentence that best answers the question: embedding similarity plus
    IDF-weighted overlap of the question's (stemmed) terms."""
    candidates = [(hit, s) for hit in hits for s in sentences(hit.text) if len(s) >= 12]
    if not candidates:
        return None
    vectors = embed([question] + [s for _, s in candidates])
    q_vec, s_vecs = vectors[0], vectors[1:]
    q_terms = set(tokenize([question])[0])
    s_terms = tokenize([s for _, s in candidates])
    df = Counter(t for terms in s_terms for t in set(terms))
    n = len(candidates)
    idf = {t: math.log(1 + n / (1 + df[t])) for t in q_terms}
    total = sum(idf.values()) or 1.0
    best: Quote | None = None
    for (hit, text), vec, terms in zip(candidates, s_vecs, s_terms, strict=True):
        overlap = sum(idf[t] for t in q_terms & set(terms)) / total
        # Rank-1 chunks get a small prior: retrieval already judged them most relevant.
        score = _cos(q_vec, vec) + 0.5 * overlap + 0.02 * (len(hits) - hit.rank) / max(1, len(hits))
        if best is None or score > best.score:
            best = Quote(text, hit, score)
    return best


@dataclass(frozen=True)
class SentenceSupport:
    sentence: str
    support: float
    supported: bool
    evidence: str
    chunk_id: str

    def to_json(self) -> dict[str, object]:
        return {
            "sentence": self.sentence,
            "support": round(self.support, 4),
            "supported": self.supported,
            "evidence": self.evidence,
            "chunk_id": self.chunk_id,
        }


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def grounding(
    answer: str, hits: list[SearchHit], embed: Embed, threshold: float
) -> tuple[float, list[SentenceSupport]]:
    """Each answer sentence's best-supporting retrieved sentence; overall support = the mean."""
    claims = [s for s in sentences(_CITATION.sub("", answer)) if _normal(s)]
    evidence = [(hit, s) for hit in hits for s in sentences(hit.text)]
    if not claims or not evidence:
        return 0.0, []
    vectors = embed(claims + [s for _, s in evidence])
    claim_vecs, ev_vecs = vectors[: len(claims)], vectors[len(claims) :]
    context = _normal(" ".join(hit.text for hit in hits))
    results = []
    for claim, c_vec in zip(claims, claim_vecs, strict=True):
        scores = [_cos(c_vec, e_vec) for e_vec in ev_vecs]
        at = max(range(len(scores)), key=scores.__getitem__)
        # Verbatim (normalised) text from the sources is supported whatever the embedding says.
        support = 1.0 if _normal(claim) and _normal(claim) in context else max(0.0, scores[at])
        hit, sentence = evidence[at]
        results.append(
            SentenceSupport(claim, support, support >= threshold, sentence, hit.chunk_id)
        )
    return sum(r.support for r in results) / len(results), results
