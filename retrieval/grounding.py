"""What our code decides, not the model: quotes, support scores, citations, and prompt hygiene."""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from retrieval.bm25 import tokenize
from retrieval.claims import Evidence, unsupported_terms
from retrieval.injection import addresses_assistant, has_scaffolding, redact_instructions
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
            "page_label": self.hit.page_label,
            "chunk_id": self.hit.chunk_id,
            "table": self.hit.table,
            "ocr": self.hit.ocr,
            "ocr_confidence": self.hit.ocr_confidence,
            "spans": [s.to_json() for s in spans],
        }


def best_quote(question: str, hits: list[SearchHit], embed: Embed) -> Quote | None:
    """The retrieved sentence that best answers the question: embedding similarity plus
    IDF-weighted overlap of the question's (stemmed) terms. A sentence that addresses the
    assistant (an injected instruction) or carries prompt scaffolding is never the quote."""
    candidates = [
        (hit, s)
        for hit in hits
        for s in sentences(clean_source(hit.text))
        if len(s) >= 12 and not addresses_assistant(s) and not has_scaffolding(s)
    ]
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


@functools.lru_cache(maxsize=512)
def clean_source(text: str) -> str:
    """A source's text without what addresses the assistant (retrieval.injection): what the
    prompt shows the model and the only text that can support an answer. Cached: the prompt,
    the quote and the grounding check of one answer clean the same chunks."""
    return redact_instructions(text)


@dataclass(frozen=True)
class SentenceSupport:
    """One sentence of an answer checked against the sources. `sentence` is the claim (its
    citation markers removed), `text` the sentence as shown; `source` is the rank of the source
    that supports it best; `unsupported_terms` are its numbers and names no source contains."""

    sentence: str
    support: float
    supported: bool
    evidence: str
    chunk_id: str
    unsupported_terms: list[str] = field(default_factory=list)
    source: int | None = None
    text: str = ""

    def to_json(self) -> dict[str, object]:
        return {
            "text": self.text or self.sentence,
            "support": round(self.support, 4),
            "supported": self.supported,
            "unsupported_terms": list(self.unsupported_terms),
            "source": self.source,
            "sentence": self.sentence,
            "evidence": self.evidence,
            "chunk_id": self.chunk_id,
        }


def _normal(text: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def answer_sentences(answer: str) -> list[tuple[str, str]]:
    """(sentence as shown, claim without citation markers) for each sentence that says something."""
    out = []
    for shown in sentences(answer):
        claim = " ".join(_CITATION.sub("", shown).split())
        claim = re.sub(r"\s+([.,;:!?])", r"\1", claim)
        # A bare list number ("1.", "2)") is numbering, not a sentence.
        if _normal(claim) and not re.fullmatch(r"\W*\d{1,2}[.)]?\W*", claim):
            out.append((shown, claim))
    return out


def _label(hit: SearchHit) -> str:
    """What names a source besides its text: file name, page, document title and heading."""
    where = hit.source.rsplit("/", 1)[-1] + (f", page {hit.page}" if hit.page else "")
    extra = [str(hit.metadata.get(k) or "") for k in ("title", "heading")]
    return "\n".join([where, *extra])


def grounding(
    answer: str, hits: list[SearchHit], embed: Embed, threshold: float
) -> tuple[float, list[SentenceSupport]]:
    """Each answer sentence's best-supporting retrieved sentence; overall support = the mean."""
    results = check_sentences(answer_sentences(answer), hits, embed, threshold)
    if not results:
        return 0.0, []
    return sum(r.support for r in results) / len(results), results


def check_sentences(
    claims: list[tuple[str, str]], hits: list[SearchHit], embed: Embed, threshold: float
) -> list[SentenceSupport]:
    """Check (shown, claim) sentences against the sources. A claim is supported when it is
    similar enough to a source sentence (or copies source text), every number and proper name
    in it occurs in some source (text, neighbouring context, file name, title or heading), it
    does not address the assistant or carry prompt scaffolding, and it is no closer to an
    injected instruction than to the real text. Injected sentences never count as support."""
    if not claims or not hits:
        return []
    cleaned = [clean_source(hit.text) for hit in hits]
    evidence = [(n, s) for n, text in enumerate(cleaned) for s in sentences(text)]
    injected = [
        s
        for hit in hits
        for s in sentences(hit.text)
        if addresses_assistant(s) and s not in {e for _, e in evidence}
    ]
    if not evidence:
        return [
            SentenceSupport(claim, 0.0, False, "", "", [], None, shown) for shown, claim in claims
        ]
    texts = [claim for _, claim in claims]
    vectors = embed(texts + [s for _, s in evidence] + injected)
    claim_vecs = vectors[: len(texts)]
    ev_vecs = vectors[len(texts) : len(texts) + len(evidence)]
    inj_vecs = vectors[len(texts) + len(evidence) :]
    per_hit_text = [
        "\n".join([c, clean_source(hit.context) if hit.context else "", _label(hit)])
        for hit, c in zip(hits, cleaned, strict=True)
    ]
    everything = Evidence.of(per_hit_text)
    per_hit = [Evidence.of([t]) for t in per_hit_text]
    context = _normal(" ".join(per_hit_text))
    results = []
    for (shown, claim), c_vec in zip(claims, claim_vecs, strict=True):
        scores = [_cos(c_vec, e_vec) for e_vec in ev_vecs]
        order = sorted(range(len(scores)), key=lambda i: -scores[i])
        terms = unsupported_terms(claim, everything)
        # The source that supports it: the most similar one that holds all its terms.
        holds_terms = [not terms and not unsupported_terms(claim, e) for e in per_hit]
        at = next((i for i in order if holds_terms[evidence[i][0]]), None)
        at = order[0] if at is None else at
        copied = len(_normal(claim).split()) >= 3 and f" {_normal(claim)} " in f" {context} "
        # Verbatim (normalised) text from the sources is supported whatever the embedding says.
        support = 1.0 if copied else max(0.0, scores[at])
        injection_like = addresses_assistant(claim) or has_scaffolding(shown)
        if inj_vecs and not copied:
            closest_injection = max(_cos(c_vec, v) for v in inj_vecs)
            injection_like = injection_like or closest_injection > max(scores[order[0]], 0.5)
        n, sentence = evidence[at]
        results.append(
            SentenceSupport(
                sentence=claim,
                support=support,
                supported=support >= threshold and not terms and not injection_like,
                evidence=sentence,
                chunk_id=hits[n].chunk_id,
                unsupported_terms=terms,
                source=hits[n].rank,
                text=shown,
            )
        )
    return results
