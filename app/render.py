"""HTML fragments for the page. Document and model text is always escaped before it is shown."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from typing import Any

from retrieval.chain import Answer
from retrieval.search import SearchHit

STYLE = """
<style>
.folio-chunk { white-space: pre-wrap; font-size: 0.9rem; line-height: 1.45; }
.folio-chunk mark { background: #fde68a; padding: 0 2px; border-radius: 2px; }
.folio-page-image img, [data-testid="stImage"] img { border: 1px solid #d4d4d4; }
.folio-unsupported { background: #fee2e2; text-decoration: underline wavy #dc2626; }
.folio-answer p:last-child, .folio-answer ul:last-child { margin-bottom: 0; }
a.folio-cite { text-decoration: none; font-weight: 600; padding: 0 1px; border-radius: 3px; }
a.folio-cite:hover, a.folio-cite:focus { background: #dbeafe; text-decoration: underline; }
.folio-relevance { display: flex; align-items: center; gap: 0.5rem; font-size: 0.85rem; }
.folio-relevance .bar { width: 6rem; height: 0.5rem; background: #e5e7eb; border-radius: 4px; }
.folio-relevance .fill { height: 100%; border-radius: 4px; }
</style>
"""


def page_name(page: int | None, label: str | None) -> str:
    """ "page 19 (printed 16)": Folio's 1-based page index and, when it differs, the label the
    PDF prints on that page."""
    if not page:
        return ""
    return f"page {page} (printed {label})" if label else f"page {page}"


def where(hit: SearchHit) -> str:
    name = hit.source.rsplit("/", 1)[-1]
    return f"{name}, {page_name(hit.page, hit.page_label)}" if hit.page else name


# Cosine similarity of all-MiniLM-L6-v2 between the question and a passage. Measured on one
# 10-Q (2023 Q3 AAPL, 12 of its questions, top 5): the best source scored 0.53-0.78, the others
# 0.49-0.69; off-topic questions scored -0.07-0.21. So: strong from 0.6, fair from 0.4.
RELEVANCE_LEVELS = ((0.6, "strong match", "#16a34a"), (0.4, "fair match", "#ca8a04"))
WEAK = ("weak match", "#9ca3af")
RELEVANCE_HELP = (
    "How closely the passage's meaning matches your question (similarity of their embeddings: "
    "strong from 0.6, fair from 0.4, weak below). Sources are listed by rank, which also counts "
    "matching words and the documents your question names, so a lower-ranked source can match "
    "more strongly."
)


def relevance(score: float) -> tuple[str, str]:
    """(label, colour) for a cosine score; negative scores are simply weak."""
    for floor, label, colour in RELEVANCE_LEVELS:
        if score >= floor:
            return label, colour
    return WEAK


def relevance_html(score: float) -> str:
    """A small bar and its label; the tooltip gives the similarity, never below 0."""
    label, colour = relevance(score)
    shown = min(max(score, 0.0), 1.0)
    return (
        f'<div class="folio-relevance" title="similarity {shown:.2f}">'
        f'<div class="bar"><div class="fill" style="width:{shown * 100:.0f}%;'
        f'background:{colour}"></div></div><span>{label}</span></div>'
    )


def source_anchor(answer_id: str, n: int) -> str:
    """The key of source n's expander (Streamlit adds the CSS class `st-key-<key>`)."""
    return f"src-{answer_id}-{n}"


# `[n]` links open source n: a click expands its expander (through Streamlit's own summary
# click, so its state stays right) and scrolls to it. Installed once per page.
CITATION_SCRIPT = """<script>
if (!window.folioCitations) {
  window.folioCitations = true;
  const doc = window.parent && window.parent.document ? window.parent.document : document;
  doc.addEventListener("click", (event) => {
    const link = event.target.closest && event.target.closest("a.folio-cite");
    if (!link) return;
    const box = doc.querySelector(".st-key-" + link.dataset.source);
    if (!box) return;
    event.preventDefault();
    const details = box.querySelector("details");
    if (details && !details.open) details.querySelector("summary").click();
    box.scrollIntoView({behavior: "smooth", block: "start"});
    const summary = box.querySelector("summary");
    if (summary) summary.focus({preventScroll: true});
  });
}
</script>"""


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


_MARKER = re.compile(r"\[(\d+)\]")


def linked_citations(escaped: str, answer: Answer) -> str:
    """`[n]` markers of escaped answer HTML as links to source n (only numbers of sources)."""
    ranks = {hit.rank for hit in answer.sources}

    def link(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n not in ranks:
            return match.group(0)
        anchor = source_anchor(answer.answer_id, n)
        return (
            f'<a class="folio-cite" href="#{anchor}" data-source="{anchor}" '
            f'title="Show source {n}">[{n}]</a>'
        )

    return _MARKER.sub(link, escaped)


def answer_html(answer: Answer | dict[str, Any]) -> str:
    """The answer text, escaped, its `[n]` markers linked to the sources; sentences the
    grounding check could not support are marked. Takes an Answer or its ask object."""
    answer = as_answer(answer)
    return linked_citations(_answer_body(answer), answer)


def _answer_body(answer: Answer) -> str:
    """A generated answer as safe Markdown (lists, bold, code; links only to URLs its sources
    contain), unsupported sentences marked; a quote, which is document text, stays escaped."""
    text = answer.answer
    if answer.answer != answer.generated or not answer.generated:
        return f'<div class="folio-chunk">{html.escape(text)}</div>'
    from app.markdown import safe_markdown, urls_in

    # `text` is the sentence as shown (citation markers included), so it is found verbatim.
    unsupported = [s.text or s.sentence for s in answer.sentences if not s.supported]
    allowed = urls_in(hit.text for hit in answer.sources)
    return (
        f'<div class="folio-answer">{safe_markdown(text, allowed, _spans(text, unsupported))}</div>'
    )


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


def as_answer(answer: Answer | dict[str, Any]) -> Answer:
    """An Answer, from itself or from its ask object (a saved conversation's turn): what the
    page shows of an answer reads the same either way."""
    if isinstance(answer, Answer):
        return answer
    from prompts import PromptSpec
    from retrieval.grounding import Citation, Quote, SentenceSupport, Span

    hits = [
        SearchHit(
            rank=int(s["n"]),
            chunk_id=s["chunk_id"],
            source=s["source"],
            page=s.get("page"),
            score=float(s.get("score") or 0.0),
            text=s.get("text", ""),
            metadata={k: s[k] for k in ("table", "ocr", "ocr_confidence") if s.get(k) is not None},
            context=s.get("text", ""),
            page_label=s.get("page_label"),
        )
        for s in answer.get("sources") or []
    ]
    by_id = {hit.chunk_id: hit for hit in hits}
    by_rank = {hit.rank: hit for hit in hits}
    q = answer.get("quote")
    quote = None
    if q and q.get("chunk_id") in by_id:
        spans = tuple(Span(s["text"], s["start"], s["end"]) for s in q.get("spans") or [])
        quote = Quote(q["text"], by_id[q["chunk_id"]], 0.0, spans)
    prompt = answer.get("prompt") or {}
    return Answer(
        question=answer.get("question", ""),
        standalone_question=answer.get("standalone_question") or answer.get("question", ""),
        answer=answer.get("answer", ""),
        mode=answer.get("mode", ""),
        refused=bool(answer.get("refused")),
        support=float(answer.get("support") or 0.0),
        quote=quote,
        citations=[
            Citation(int(c["n"]), by_rank[int(c["n"])])
            for c in answer.get("citations") or []
            if int(c["n"]) in by_rank
        ],
        sources=hits,
        prompt=PromptSpec(prompt.get("name", ""), int(prompt.get("version") or 0), "chat", ""),
        model=answer.get("model") or {},
        timings=answer.get("timings") or {},
        # The model's own text (saved since 2026-11-26; older turns: the answer when generated).
        generated=answer.get(
            "generated", answer.get("answer", "") if answer.get("sentences") else ""
        ),
        sentences=[
            SentenceSupport(
                sentence=s.get("sentence") or s.get("text", ""),
                support=float(s["support"]),
                supported=bool(s["supported"]),
                evidence=s.get("evidence", ""),
                chunk_id=s.get("chunk_id", ""),
                unsupported_terms=list(s["unsupported_terms"]),
                source=s.get("source"),
                text=s.get("text", ""),
            )
            for s in answer.get("sentences") or []
        ],
        chat=answer.get("chat"),
        answer_id=answer.get("answer_id") or "",
        stopped=bool(answer.get("stopped")),
    )
