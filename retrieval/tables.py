"""The quote for a question that asks for a value: the table row that holds it, read as
`Row label (Column header): value`, with the verbatim cells as spans into the chunk.

Prose questions keep sentence quotes, taken from the chunks' prose only: a table is never a
"sentence", so it can never become the quote whole.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, replace

from ingest.tables import Cell, TableBlock, find_tables
from retrieval.grounding import Embed, Quote, Span, best_quote, span_of
from retrieval.search import SearchHit

# Questions that ask for an amount, a count, a rate or a figure by name.
_VALUE_QUESTION = re.compile(
    r"\b(?:how (?:much|many)|what (?:was|were|is|are|did)|total|revenues?|sales|income|"
    r"percent(?:age)?|amounts?|values?|figures?|number of|costs?|expenses?|margins?|earnings|"
    r"eps|cash|balance|price|rates?|ratio|spend|spent|paid|profit|loss|assets|liabilities|"
    r"debt|shares)\b|%",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z]+|\d+")
_MONTHS = {
    "january", "february", "march", "april", "may", "june", "july", "august", "september",
    "october", "november", "december",
}  # fmt: skip
_PERIODS = {"three", "six", "nine", "twelve", "quarter", "year", "month", "months", "weeks"}
_CHANGE = {"change", "changed", "increase", "increased", "decrease", "decreased", "growth", "grew"}
_IGNORED = {"ended", "ending", "end", "the", "in", "of", "and", "millions", "thousands", "as", "at"}


# Questions after a reason or a description want a sentence even when they name a measure.
_REASON_QUESTION = re.compile(
    r"^\W*(?:why|explain|describe|summari[sz]e|what (?:caused|drove|led|factors|risks?|were the "
    r"reasons|is the reason|are the reasons)|how (?:did|does|do|has|have|will|would|is|are) "
    r"(?!.*\b(?:much|many)\b))",
    re.IGNORECASE,
)


MIN_NAMED = 0.2  # of the question's terms, in the row label, its section, caption or headers


def asks_for_value(question: str) -> bool:
    return bool(_VALUE_QUESTION.search(question)) and not _REASON_QUESTION.search(question)


@dataclass(frozen=True)
class _Row:
    hit: SearchHit
    table: TableBlock
    cells: tuple[Cell, ...]
    score: float
    named: float  # share of the question's terms found in the row label, its section or table


_STOPWORDS = {
    "a", "an", "and", "are", "as", "at", "be", "by", "did", "do", "does", "for", "from", "had",
    "has", "have", "how", "in", "is", "it", "its", "much", "many", "of", "on", "or", "that", "the",
    "their", "this", "to", "was", "were", "what", "which", "with",
}  # fmt: skip


def _terms(text: str) -> set[str]:
    """Lower-case words, plurals folded ("sales" = "sale"). Lighter than the BM25 stemmer, which
    makes "effects" and "effective" one word."""
    words = re.findall(r"[a-z0-9]+", text.lower().replace("\u2019s", "").replace("'s", ""))
    return {
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
        for w in words
        if w not in _STOPWORDS
    }


_LATEST = {"latest", "recent", "current", "last"}


def _column_score(question_words: set[str], header: str) -> float:
    """How well a column's header names the period or measure the question asks about; for
    "the latest quarter", a little for each year in the header (later years score higher)."""
    score = 0.0
    if question_words & _LATEST:
        years = [int(y) for y in re.findall(r"\b(?:19|20)\d\d\b", header)]
        score += max(years, default=2000) / 10000
    for word in set(_WORD.findall(header.lower())) - _IGNORED:
        if word not in question_words:
            if word in _CHANGE and question_words & _CHANGE:
                score += 2.0
            continue
        if len(word) == 4 and word.isdigit():
            score += 2.0  # a year
        elif word in _MONTHS or word in _PERIODS:
            score += 1.5
        elif word.isdigit():
            score += 1.0  # a day of the month
        else:
            score += 0.5
    return score


def _rows(question: str, hits: list[SearchHit]) -> list[_Row]:
    """Every labelled body row with a value, scored by how much of its label the question names
    (words weighted by rarity among the labels: "Total" is everywhere), then its section label,
    caption and headers; best first."""
    question_terms = _terms(question)
    labelled: list[tuple[SearchHit, TableBlock, tuple[Cell, ...], set[str], set[str], set[str]]]
    labelled = []
    for hit in hits:
        for table in find_tables(hit.text):
            context = _terms(hit.text[table.caption_start : table.header_end]) | _terms(
                hit.metadata.get("heading") or ""
            )
            section: set[str] = set()
            for cells in table.rows:
                label_terms = _terms(cells[0].text if cells else "")
                if not any(c.text for c in cells[1:]):
                    section = label_terms  # "Net sales:" names the rows below it
                elif label_terms:
                    labelled.append((hit, table, cells, label_terms, section, context))
    df = Counter(t for *_, label_terms, _, _ in labelled for t in label_terms)

    def weight(terms: set[str]) -> float:
        return sum(math.log(1 + len(labelled) / (1 + df[t])) for t in terms)

    asked = weight(question_terms) or 1.0
    found: list[_Row] = []
    for hit, table, cells, label_terms, section, context in labelled:
        matched = question_terms & label_terms
        # Named words count most; a label named whole ("Total") counts a little more.
        score = (
            4.0 * weight(matched) / asked
            + 0.25 * weight(matched) / (weight(label_terms) or 1.0)
            + 0.3 * len(question_terms & section) / max(1, len(section))
            + 0.2 * len(question_terms & context) / max(1, len(question_terms))
            + 0.05 * (len(hits) - hit.rank) / max(1, len(hits))
            - (0.0 if matched else 10.0)
        )
        named = len(question_terms & (label_terms | section | context))
        found.append(_Row(hit, table, cells, score, named / max(1, len(question_terms))))
    return sorted(found, key=lambda r: -r.score)


def _strong(row: _Row, question: str) -> bool:
    """The row label is named by the question, and the row's table names a fair part of the
    rest: one generic word ("Revenues") in a long question is not enough."""
    label_terms = _terms(row.cells[0].text)
    matched = _terms(question) & label_terms
    named = len(matched) >= 2 or (bool(matched) and len(matched) == len(label_terms))
    return named and row.named >= MIN_NAMED


def _row_quote(question: str, row: _Row) -> Quote:
    words = set(_WORD.findall(question.lower()))
    label = row.cells[0]
    columns = [n for n in range(1, len(row.cells)) if row.cells[n].text]
    headers = {n: row.table.column_headers(n) for n in columns}
    scores = {n: _column_score(words, " ".join(c.text for c in headers[n])) for n in columns}
    best = max(columns, key=lambda n: (scores[n], -n))  # ties: the first value column
    value = row.cells[best]
    header_text = " ".join(c.text for c in headers[best])
    text = (
        f"{label.text} ({header_text}): {value.text}"
        if header_text
        else (f"{label.text}: {value.text}")
    )
    spans = (label, *headers[best], value)
    return Quote(
        text=text,
        hit=row.hit,
        score=row.score,
        spans=tuple(Span(c.text, c.start, c.end) for c in spans),
    )


def value_quote(question: str, hits: list[SearchHit], strict: bool = True) -> Quote | None:
    """The best-matching table row's value under the column the question names (else the first
    value column). Strict: only a row whose label the question clearly names."""
    rows = _rows(question, hits)
    if not rows or (strict and not _strong(rows[0], question)):
        return None
    return _row_quote(question, rows[0])


_TITLE = r"(?:^|(?<=\n\n))([^\n]{1,80})(?<![.!?:;,])"
_TITLE_ABOVE = re.compile(_TITLE + r"\n\n(?=\S)")
_TITLE_LAST = re.compile(_TITLE + r"\n*$")


def prose_only(text: str, join_titles: bool) -> str:
    """The chunk's sentences, offsets unchanged: table lines blanked (captions stay). A lone
    title line ("Effective Tax Rate") is joined to the sentence below it when `join_titles`
    (PDF pages: plain extraction ran them together, layout mode parts them with a blank line),
    else blanked; a title at the very end is blanked."""
    for table in reversed(find_tables(text)):
        blank = re.sub(r"[^\n]", " ", text[table.start : table.end])
        text = text[: table.start] + "\n\n" + blank[2:] + text[table.end :]
    if join_titles:
        text = _TITLE_ABOVE.sub(lambda m: m.group(1) + " \n", text)
    else:
        text = _TITLE_ABOVE.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)
    return _TITLE_LAST.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), text)


def answer_quote(question: str, hits: list[SearchHit], embed: Embed) -> Quote | None:
    """A table row for a value question a row answers; otherwise the best prose sentence."""
    if asks_for_value(question):
        quote = value_quote(question, hits)
        if quote is not None:
            return quote
    prose_hits = [replace(h, text=prose_only(h.text, h.page is not None)) for h in hits]
    prose = best_quote(question, [h for h in prose_hits if h.text.strip()], embed)
    if prose is None:
        return value_quote(question, hits, strict=False)
    original = next(h for h in hits if h.chunk_id == prose.hit.chunk_id)
    found = span_of(prose.text, original.text)
    return replace(prose, hit=original, spans=(found,) if found else ())
