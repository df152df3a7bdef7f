"""HTML fragments for the page. Document and model text is always escaped before it is shown."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable

from retrieval.chain import Answer
from retrieval.search import SearchHit

STYLE = """
<style>
.folio-chunk { white-space: pre-wrap; font-size: 0.9rem; line-height: 1.45; }
.folio-chunk mark { background: #fde68a; padding: 0 2px; border-radius: 2px; }
.folio-page-image img, [data-testid="stImage"] img { border: 1px solid #d4d4d4; }
.folio-unsupported { background: #fee2e2; text-decoration: underline wavy #dc2626; }
</style>
"""


def where(hit: SearchHit) -> str:
    name = hit.source.rsplit("/", 1)[-1]
    return f"{name}, page {hit.page}" if hit.page else name


Passage = str | tuple[int, int]  # text found wherever it occurs, or exact (start, end) offsets


def _spans(text: str, passages: Iterable[Passage]) -> list[tuple[int, int]]:
    """Where each passage occurs in text (whitespace-insensitive), merged and sorted."""
    found: list[tuple[int, int]] = []
    for passage in passages:
        if isinstance(passage, tuple):
            found.append(passage)
            continue
        words = passage.split()
        if not words:
            continue
        pattern = r"\s+".join(re.escape(w) for w in words)
        found.extend(m.span() for m in re.finditer(pattern, text))
    merged: list[tuple[int, int]] = []
    for start, end in sorted(found):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def highlighted(text: str, passages: Iterable[Passage]) -> str:
    """The chunk text, escaped, with the cited passages wrapped in <mark>."""
    out, cursor = [], 0
    for start, end in _spans(text, passages):
        out.append(html.escape(text[cursor:start]))
        out.append(f"<mark>{html.escape(text[start:end])}</mark>")
        cursor = end
    out.append(html.escape(text[cursor:]))
    return f'<div class="folio-chunk">{"".join(out)}</div>'


def cited_passages(answer: Answer, hit: SearchHit) -> list[Passage]:
    """The passages of this source that the answer relies on: the quote (each of its verbatim
    spans: a table row's label, headers and value) and the evidence of supported sentences."""
    passages: list[Passage] = []
    quote = answer.quote
    if quote is not None and quote.hit.chunk_id == hit.chunk_id:
        spans = [(s.start, s.end) for s in quote.spans if hit.text[s.start : s.end] == s.text]
        passages.extend(spans or [quote.text])
    passages.extend(
        s.evidence for s in answer.sentences if s.supported and s.chunk_id == hit.chunk_id
    )
    return passages


def answer_html(answer: Answer) -> str:
    """The answer text, escaped; sentences the grounding check could not support are marked."""
    text = answer.answer
    if answer.answer != answer.generated or not answer.sentences:
        return f'<div class="folio-chunk">{html.escape(text)}</div>'
    # `text` is the sentence as shown (citation markers included), so it is found verbatim.
    marked = [s.text or s.sentence for s in answer.sentences if not s.supported]
    out, cursor = [], 0
    for start, end in _spans(text, marked):
        out.append(html.escape(text[cursor:start]))
        out.append(
            f'<span class="folio-unsupported" title="not supported by the sources">'
            f"{html.escape(text[start:end])}</span>"
        )
        cursor = end
    out.append(html.escape(text[cursor:]))
    return f'<div class="folio-chunk">{"".join(out)}</div>'


def timings_caption(answer: Answer) -> str:
    t = answer.timings
    parts = [f"retrieval {t.get('retrieve_ms') or 0:.0f} ms"]
    if t.get("first_token_ms") is not None:
        parts.append(f"first token {t['first_token_ms']:.0f} ms")
    if t.get("total_ms") is not None:
        parts.append(f"total {t['total_ms']:.0f} ms")
    if t.get("tokens_per_s"):
        parts.append(f"{t['tokens_per_s']:.1f} tokens/s")
    return " · ".join(parts)
