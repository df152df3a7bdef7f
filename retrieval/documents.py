"""The document-level stage: which documents does a question name?

In a collection of look-alike documents (five companies' quarterly reports over several quarters)
chunk retrieval alone cannot tell "Apple's net sales in Q3 2023" from NVIDIA's or from Apple's
Q1: the sentences are nearly identical. The question names its document, so that is matched first:

- each document gets a profile from its file name, its title and its first page (its opening
  chunks: FIRST_CHUNKS of a paged document, one of a document without pages), read from the store
  at query time and cached per manifest generation, so no re-ingest is needed;
- the question yields *signals*: periods ("Q3 2023", "third quarter of 2023", "2023 Q3", "3Q23",
  "fiscal 2023") matched against the period in a file name or title (else the cover page's
  "period ended"); a file name or title all of whose content words the question uses; names
  (capitalised words and tickers such as "Apple", "AAPL") found on a document's first page; and
  a recency cue ("the latest 10-Q");
- a name or title word counts only when the documents it matches hold at least NAME_SHARE of the
  collection's chunks that use it (from the BM25 index): "Apple" on Apple's cover page names
  Apple's filings; "Middle East" in the opening of one encyclopedia article does not name it;
- a signal that matches some but not all documents scores log(N / matches) for each document it
  matches (rarer = more telling); a signal every document matches says nothing;
- the documents with the best score are *named*, unless that is every candidate document. Their
  chunks are then ranked by the question without its naming words (which match the cover page,
  not the answer), ahead of everything else.

A question that names nothing produces no discriminating signal and leaves retrieval unchanged.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

from folio.settings import Settings
from folio.store import ChromaStore
from ingest.manifest import Manifest
from retrieval.bm25 import SparseIndex, built_generation, load_sparse, stem

FIRST_CHUNKS = 4  # the opening chunks of a paged document stand for its first page
# A first-page name names its documents only if they hold this share of the chunks using it.
NAME_SHARE = 0.8

QUARTER_WORDS = {"first": 1, "second": 2, "third": 3, "fourth": 4}
QUARTER_WORDS.update({"1st": 1, "2nd": 2, "3rd": 3, "4th": 4})

# Order matters: compound forms are consumed before their parts are read alone.
_PERIOD_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\bq([1-4])\s*(?:fy\s*)?['\u2019]?(\d{4}|\d{2})\b", re.I), "qy"),
    (re.compile(r"\b(?:fy\s*)?(\d{4})\s*[-_/ ]?\s*q([1-4])\b", re.I), "yq"),
    (re.compile(r"\b([1-4])q\s*['\u2019]?(\d{4}|\d{2})\b", re.I), "qy"),
    (
        re.compile(
            r"\b(first|second|third|fourth|1st|2nd|3rd|4th)\s+(?:fiscal\s+)?quarter"
            r"(?:\s+(?:of|in|for|ended))?(?:\s+(?:the\s+)?(?:fiscal\s+)?(?:year\s+)?(\d{4}))?",
            re.I,
        ),
        "wy",
    ),
    (re.compile(r"\bq([1-4])\b", re.I), "q"),
    (re.compile(r"\b(?:fiscal\s+(?:year\s+)?|fy\s*['\u2019]?)(\d{4}|\d{2})\b", re.I), "y"),
    (re.compile(r"\b(19[5-9]\d|20\d\d)\b"), "y"),
]
# The period a filing covers, stated on its cover page.
_PERIOD_ENDED = re.compile(
    r"(?:quarterly|fiscal|annual)?\s*(?:period|year)\s+ended\s+[A-Z][a-z]+\.?\s+\d{1,2},\s+(\d{4})",
    re.I,
)
_RECENT = re.compile(
    r"\b(?:latest|most\s+recent|newest|last|current)\s+(?:quarterly\s+|annual\s+)?"
    r"(?:10-?q|10-?k|reports?|filings?|statements?|quarter|year)\b",
    re.I,
)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9&]*(?:['\u2019]s)?")
_PERIOD_TOKEN = re.compile(r"^(?:q[1-4]|[1-4]q\d*|fy\d*|\d+)$", re.I)
# Words that carry no document name: question words, auxiliaries, pronouns, and the
# capitalised verbs that start commands ("Summarize ...").
_NOT_NAMES = {
    "according", "analyze", "assess", "based", "compare", "comparing", "considering",
    "describe", "detail", "discuss", "evaluate", "examine", "explain", "give", "given",
    "identify", "list", "name", "outline", "please", "provide", "show", "summarize",
    "summarise", "tell", "what", "which", "who", "whom", "whose", "when", "where", "why",
    "how", "did", "does", "do", "has", "have", "had", "were", "been", "being", "can", "could",
    "would", "should", "may", "might", "must", "shall", "about", "any", "all", "some", "its",
    "our", "your", "his", "her", "from", "than", "so", "also", "more", "most", "less", "over",
    "under", "between", "during", "after", "before", "here", "we", "you", "he", "she", "them",
    "much", "many", "each", "other", "was", "yes", "no", "latest", "recent", "last",
}  # fmt: skip


@dataclass(frozen=True)
class Period:
    year: int | None
    quarter: int | None

    def covers(self, other: Period) -> bool:
        """This (question) period includes the (document) period `other`."""
        if self.year is not None and self.year != other.year:
            return False
        return self.quarter is None or self.quarter == other.quarter

    def key(self) -> tuple[int, int]:
        return (self.year or 0, self.quarter or 0)


def _year(text: str) -> int:
    value = int(text)
    return value + 2000 if value < 100 else value


def periods_in(text: str) -> tuple[set[Period], str]:
    """The periods a text names, and the text with them blanked out."""
    found: set[Period] = set()
    for pattern, shape in _PERIOD_PATTERNS:
        for match in pattern.finditer(text):
            a, b = match.group(1), match.group(2) if pattern.groups > 1 else None
            if shape == "qy":
                found.add(Period(_year(b or "0"), int(a)))
            elif shape == "yq":
                found.add(Period(_year(a), int(b or "0")))
            elif shape == "wy":
                found.add(Period(_year(b) if b else None, QUARTER_WORDS[a.lower()]))
            elif shape == "q":
                found.add(Period(None, int(a)))
            else:
                found.add(Period(_year(a), None))
        text = pattern.sub(lambda m: " " * len(m.group(0)), text)
    return found, text


def _stem(words: Iterable[str]) -> list[str]:
    return stem([w.lower() for w in words])


def _raw_words(text: str) -> list[tuple[str, bool]]:
    """(word without possessive, was possessive), pure numbers and period tokens left out."""
    found = []
    for raw in _WORD.findall(text):
        word = re.sub(r"['\u2019]s$", "", raw)
        if not _PERIOD_TOKEN.match(word) and sum(c.isalpha() for c in word) >= 2:
            found.append((word, word != raw))
    return found


def _words(text: str) -> list[str]:
    return [word for word, _ in _raw_words(text)]


def _terms(text: str) -> frozenset[str]:
    return frozenset(_stem(_words(text)))


def _content_terms(text: str) -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    skip = _NOT_NAMES.union(STOPWORDS_EN)
    words = [w for w in _words(text) if w.lower() not in skip]
    return frozenset(_stem(words))


@dataclass(frozen=True)
class DocumentProfile:
    path: str
    labels: tuple[frozenset[str], ...]  # content terms of the file name, and of the title
    page_terms: frozenset[str]  # terms of the first page and the labels
    periods: frozenset[Period]

    @classmethod
    def build(cls, path: str, title: str, first_page: str) -> DocumentProfile:
        name = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        # The file name's period, else the title's, else the one the cover page states.
        periods = periods_in(name)[0] or periods_in(title)[0]
        if not periods:
            periods = {Period(_year(m.group(1)), None) for m in _PERIOD_ENDED.finditer(first_page)}
        labels = tuple(t for t in dict.fromkeys([_content_terms(name), _content_terms(title)]) if t)
        page_terms = _terms(f"{name} {title} {first_page}")
        return cls(path, labels, page_terms, frozenset(periods))


@dataclass(frozen=True)
class QuestionSignals:
    periods: frozenset[Period]
    names: frozenset[str]  # stemmed capitalised words and tickers
    words: frozenset[str]  # other stemmed content words
    recent: bool

    @classmethod
    def parse(cls, question: str) -> QuestionSignals:
        from bm25s.stopwords import STOPWORDS_EN

        periods, rest = periods_in(question)
        names: list[str] = []
        words: list[str] = []
        for n, (word, possessive) in enumerate(_raw_words(rest)):
            lower = word.lower()
            if lower in STOPWORDS_EN or lower in _NOT_NAMES:
                continue
            inner_capital = any(c.isupper() for c in word[1:])  # NVIDIA, AAPL, iPhone
            # A sentence's first word is capitalised anyway: a name only if it looks like one.
            first_word = n == 0
            is_name = inner_capital or (possessive if first_word else word[0].isupper())
            (names if is_name else words).append(word)
        return cls(
            frozenset(periods),
            frozenset(_stem(names)),
            frozenset(_stem(words)) - frozenset(_stem(names)),
            bool(_RECENT.search(question)),
        )


@dataclass(frozen=True)
class Signal:
    documents: frozenset[str]  # the candidate documents it matches
    terms: frozenset[str]  # the question's (stemmed) words that made it


@dataclass(frozen=True)
class NamedDocuments:
    paths: frozenset[str]
    within_query: str  # the question to rank their chunks by (naming words removed)


class DocumentIndex:
    """Profiles of one collection's documents; says which of them a question names."""

    def __init__(
        self,
        profiles: list[DocumentProfile],
        owners: dict[str, frozenset[str]],
        sparse: SparseIndex | None,
    ) -> None:
        self.profiles = profiles
        self.owners = owners  # chunk id -> the documents that hold it
        self.sparse = sparse

    def signals(self, question: str, profiles: list[DocumentProfile]) -> list[Signal]:
        parsed = QuestionSignals.parse(question)
        signals = []
        for period in parsed.periods:
            covered = (p.path for p in profiles if any(period.covers(d) for d in p.periods))
            signals.append(Signal(frozenset(covered), frozenset()))
        # A file name or title whose every content word the question uses.
        asked = parsed.names | parsed.words
        by_label: dict[frozenset[str], set[str]] = {}
        for profile in profiles:
            for label in profile.labels:
                if label <= asked:
                    by_label.setdefault(label, set()).add(profile.path)
        # Each naming word must be one the rest of the collection hardly uses: "Apple" on
        # Apple's cover page, not "Middle East" in one article's opening or "force" as a title.
        candidates = {p.path for p in profiles}
        for label, paths in by_label.items():
            matched = frozenset(paths)
            if any(self._concentrated(term, matched, candidates) for term in label):
                signals.append(Signal(matched, label))
        for term in parsed.names:
            matched = frozenset(p.path for p in profiles if term in p.page_terms)
            if matched and self._concentrated(term, matched, candidates):
                signals.append(Signal(matched, frozenset([term])))
        return signals

    def _concentrated(self, term: str, matched: frozenset[str], candidates: set[str]) -> bool:
        if self.sparse is None:
            return True
        inside = outside = 0
        for chunk_id in self.sparse.chunks_with(term):
            paths = self.owners.get(chunk_id, frozenset()) & candidates
            if paths & matched:
                inside += 1
            elif paths:
                outside += 1
        return inside >= NAME_SHARE * (inside + outside)

    def scores(self, question: str, among: set[str] | None = None) -> dict[str, float]:
        """Each candidate document's score: the summed weight of the signals it matches."""
        return self._scored(question, among)[0]

    def _scored(
        self, question: str, among: set[str] | None
    ) -> tuple[dict[str, float], list[Signal]]:
        profiles = [p for p in self.profiles if among is None or p.path in among]
        total = len(profiles)
        scores = {p.path: 0.0 for p in profiles}
        # A signal that matches some but not all documents: rarer = more telling.
        telling = [s for s in self.signals(question, profiles) if 0 < len(s.documents) < total]
        for signal in telling:
            for path in signal.documents:
                scores[path] += math.log(total / len(signal.documents))
        if QuestionSignals.parse(question).recent:
            self._prefer_latest(scores, profiles)
        return scores, telling

    @staticmethod
    def _prefer_latest(scores: dict[str, float], profiles: list[DocumentProfile]) -> None:
        """'The latest 10-Q': among the best-scoring documents, the one of the latest period."""
        best = max(scores.values(), default=0.0)
        tied = [p for p in profiles if scores[p.path] >= best - 1e-9 and p.periods]
        if len(tied) < 2:
            return
        latest = max(max(d.key() for d in p.periods) for p in tied)
        for p in tied:
            if max(d.key() for d in p.periods) == latest:
                scores[p.path] += math.log(len(tied))

    def named(self, question: str, among: set[str] | None = None) -> NamedDocuments | None:
        """The documents the question names (best score, ties kept), or None when it names none
        or every candidate."""
        scores, signals = self._scored(question, among)
        best = max(scores.values(), default=0.0)
        if best <= 0:
            return None
        chosen = frozenset(path for path, score in scores.items() if score >= best - 1e-9)
        if len(chosen) == len(scores):
            return None
        naming = frozenset().union(*(s.terms for s in signals if s.documents & chosen))
        return NamedDocuments(chosen, _without(question, naming))


def _without(question: str, terms: frozenset[str]) -> str:
    """The question without its periods and naming words: inside the named documents those
    match the cover page, not the answer."""
    _, text = periods_in(question)

    def drop(match: re.Match[str]) -> str:
        word = re.sub(r"['\u2019]s$", "", match.group(0))
        return " " if _stem([word])[0] in terms else match.group(0)

    return " ".join(_WORD.sub(drop, text).split())


_CACHE: dict[tuple[str, str, int, int | None], DocumentIndex] = {}
_CACHE_LOCK = threading.Lock()


def document_index(settings: Settings, store: ChromaStore, manifest: Manifest) -> DocumentIndex:
    """The collection's document profiles, built once per process and manifest generation."""
    collection = settings.collection
    # The BM25 generation is part of the key: a writer (here or in another replica) commits the
    # manifest before it rebuilds BM25, and an index built in between would keep the old one.
    key = (
        str(manifest.path),
        collection,
        manifest.generation(),
        built_generation(settings, collection),
    )
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    documents = manifest.documents()
    chunk_ids = {d.path: manifest.chunk_ids(d.path) for d in documents}
    first_ids = {path: ids[:FIRST_CHUNKS] for path, ids in chunk_ids.items()}
    wanted = [cid for ids in first_ids.values() for cid in ids]
    stored = {c.chunk_id: c for c in store.get(collection, list(dict.fromkeys(wanted)))}
    profiles = []
    for doc in documents:
        chunks = [stored[cid] for cid in first_ids[doc.path] if cid in stored]
        # The opening chunks, whichever pages they are on (a cover page may yield no text);
        # a document without pages: its opening chunk alone.
        if chunks and chunks[0].metadata.get("page") is None:
            chunks = chunks[:1]
        text = " ".join(c.text for c in chunks)
        profiles.append(DocumentProfile.build(doc.path, doc.title, text))
    owners: dict[str, set[str]] = {}
    for path, ids in chunk_ids.items():
        for cid in ids:
            owners.setdefault(cid, set()).add(path)
    index = DocumentIndex(
        profiles,
        {cid: frozenset(paths) for cid, paths in owners.items()},
        load_sparse(settings, collection),
    )
    with _CACHE_LOCK:
        for old in [k for k in _CACHE if k[:2] == key[:2]]:
            del _CACHE[old]
        _CACHE[key] = index
    return index
