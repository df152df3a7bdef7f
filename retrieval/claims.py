"""Claims checked term by term: the numbers and proper names of a generated sentence must appear
in the retrieved text, whatever an embedding thinks of the sentence.

Numbers are compared as values: thousands separators, currency signs and `%`/`percent` are
normalised, scale words (thousand, million, billion, trillion) multiply, and a bare figure in a
source may be in thousands, millions or billions (financial tables state their unit once, in a
header), so "$14.51 billion" matches a table's "14,510". A claim may round a source figure to the
precision it is written with ("$81.8 billion" for 81,797 million), never by more than 2%.
Dates are compared as (year, month, day). Proper names are capitalised words and acronyms that are
not at the start of a sentence; each word of a name must occur in the sources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_MONTHS = {
    name: n
    for n, names in enumerate(
        [("january", "jan"), ("february", "feb"), ("march", "mar"), ("april", "apr"),
         ("may",), ("june", "jun"), ("july", "jul"), ("august", "aug"),
         ("september", "sep", "sept"), ("october", "oct"), ("november", "nov"),
         ("december", "dec")],
        start=1,
    )
    for name in names
}  # fmt: skip
_MONTH = r"(?P<month>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + r")\.?"
# "July 1, 2023", "July 1 2023", "1 July 2023", "July 2023", "July 1"
_DATE = re.compile(
    rf"\b(?:{_MONTH}\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(?P<year>(?:19|20)\d\d))?"
    rf"|(?P<day2>\d{{1,2}})(?:st|nd|rd|th)?\s+{_MONTH.replace('month', 'month2')}"
    rf"(?:,?\s+(?P<year2>(?:19|20)\d\d))?"
    rf"|{_MONTH.replace('month', 'month3')},?\s+(?P<year3>(?:19|20)\d\d))\b",
    re.IGNORECASE,
)
_SCALES = {
    "thousand": Decimal(10) ** 3,
    "k": Decimal(10) ** 3,
    "million": Decimal(10) ** 6,
    "mn": Decimal(10) ** 6,
    "m": Decimal(10) ** 6,
    "billion": Decimal(10) ** 9,
    "bn": Decimal(10) ** 9,
    "b": Decimal(10) ** 9,
    "trillion": Decimal(10) ** 12,
    "tn": Decimal(10) ** 12,
}
# A figure: not glued to a word ("10-Q", "Q3", "COVID-19" are names, not figures) nor a
# citation marker ([2]).
_NUMBER = re.compile(
    r"(?<![\w.,/\[])(?<!\w-)(?P<currency>[$\u20ac\u00a3\u00a5]\s?)?"
    r"(?P<digits>\d{1,3}(?:,\d{3})+|\d+)(?P<frac>\.\d+)?(?![\w/\]]|-\w|[.,]\d)"
    r"(?:\s?(?P<percent>%|percent\b|per\s+cent\b|pct\b))?"
    r"(?:\s?(?P<scale>thousand|million|billion|trillion|mn|bn|tn|[kmb])\b)?",
    re.IGNORECASE,
)
_IMPLICIT_UNITS = (Decimal(1), Decimal(10) ** 3, Decimal(10) ** 6, Decimal(10) ** 9)
_MAX_ROUNDING = Decimal("0.02")  # a claim may round a source figure by at most 2%

# Words, with what glues to them ("10-Q", "COVID-19", "U.S.", "AT&T"); a capital letter first
# makes a name candidate.
_WORD = re.compile(r"\w[\w'\u2019&.\-]*", re.UNICODE)
# Words that are capitalised for reasons other than being a name.
_COMMON_WORDS = """
    a an the and or but nor so yet for of in on at to by with from into onto as about above
    after before during under over between through within without against among per via than
    then i i'm i've i'd i'll me my we our us you your he she it its they them their his her this
    that these those there here what which who whom whose when where why how is are was were be
    been being do does did have has had will would shall should can could may might must not no
    yes also however therefore thus overall additionally furthermore moreover meanwhile while
    although though because since if unless whether both either neither each every all any some
    most more less many much few other another such only just even still again once according
    based following note please answer question source sources yes no ok okay mr mrs ms dr st
    inc corp co ltd llc plc q1 q2 q3 q4 fy total net"""
_COMMON = frozenset(_COMMON_WORDS.split())


@dataclass(frozen=True)
class Figure:
    """A number as written (`text`) and its value; `unit` is the precision it is written with."""

    text: str
    value: Decimal
    unit: Decimal
    percent: bool
    scaled: bool  # an explicit scale word (million, billion, ...)


@dataclass(frozen=True)
class Date:
    text: str
    year: int | None
    month: int
    day: int | None


def figures(text: str) -> list[Figure]:
    """The numbers in a text, with dates' own numbers left to `dates`."""
    masked = _DATE.sub(lambda m: " " * len(m.group(0)), text)
    out = []
    for match in _NUMBER.finditer(masked):
        digits, frac = match.group("digits").replace(",", ""), match.group("frac") or ""
        try:
            mantissa = Decimal(digits + frac)
        except InvalidOperation:  # pragma: no cover - the pattern only matches digits
            continue
        scale_word = (match.group("scale") or "").lower()
        # A lone k/m/b after a plain number is only a scale next to a currency sign ("$5m").
        if scale_word in ("k", "m", "b") and not match.group("currency"):
            scale_word = ""
        scale = _SCALES.get(scale_word, Decimal(1))
        unit = Decimal(1).scaleb(-(len(frac) - 1) if frac else 0) * scale
        ends = [match.end(g) for g in ("digits", "frac", "percent") if match.group(g)]
        end = match.end("scale") if scale_word else max(ends)
        out.append(
            Figure(
                text=masked[match.start() : end].strip(),
                value=mantissa * scale,
                unit=unit,
                percent=bool(match.group("percent")),
                scaled=scale != 1,
            )
        )
    return out


def dates(text: str) -> list[Date]:
    out = []
    for match in _DATE.finditer(text):
        month = match.group("month") or match.group("month2") or match.group("month3")
        day = match.group("day") or match.group("day2")
        year = match.group("year") or match.group("year2") or match.group("year3")
        out.append(
            Date(
                text=match.group(0),
                year=int(year) if year else None,
                month=_MONTHS[month.lower().rstrip(".")],
                day=int(day) if day else None,
            )
        )
    return out


def _is_list_marker(text: str, figure: Figure) -> bool:
    """`1.` or `2)` opening a line of a generated list is numbering, not a claim (nor is a
    "sentence" that is only a number: the next list item cut off)."""
    return bool(re.match(rf"\W*{re.escape(figure.text)}(?:[.):]\s|\W*$)", text))


def _is_acronym(token: str) -> bool:
    return len(token) >= 2 and token.isupper() and token.isalpha()


def _is_heading(sentence: str, tokens: list[tuple[str, int]]) -> bool:
    """A Title Case heading ("Exchange Rate Changes:") capitalises ordinary words."""
    words = [t for t, _ in tokens if t[0].isalpha()]
    return (
        0 < len(words) <= 8
        and not re.search(r"[.!?]\W*$", sentence)
        and all(w[0].isupper() or w.lower() in _COMMON for w in words)
    )


def names(sentence: str) -> list[str]:
    """Proper names: runs of capitalised words (and acronyms) not opening the sentence; a run
    that opens it counts from its second word on when it has more than one word ("Ada Lund")."""
    tokens = [(m.group(0).rstrip(".'\u2019-"), m.start()) for m in _WORD.finditer(sentence)]
    tokens = [(re.sub(r"['\u2019]s$", "", t), at) for t, at in tokens if t]
    if _is_heading(sentence, tokens):  # only its acronyms are sure to be names
        return [t for t, _ in tokens if _is_acronym(t)]
    runs: list[list[tuple[str, int]]] = []
    current: list[tuple[str, int]] = []
    for token, at in tokens:
        capital = token[0].isupper() and token.lower() not in _COMMON
        if capital:
            current.append((token, at))
        else:
            if current:
                runs.append(current)
            current = []
    if current:
        runs.append(current)
    first_word = tokens[0][1] if tokens else -1
    out = []
    for run in runs:
        if run[0][1] == first_word and len(run) == 1:
            token = run[0][0]
            # A sentence's first word is capitalised anyway; an acronym is still a name.
            if not _is_acronym(token):
                continue
        out.append(" ".join(t for t, _ in run))
    return out


@dataclass(frozen=True)
class Evidence:
    """The retrieved text, prepared once for checking many sentences."""

    figures: tuple[Figure, ...]
    dates: tuple[Date, ...]
    words: frozenset[str]

    @classmethod
    def of(cls, texts: list[str]) -> Evidence:
        joined = "\n".join(texts)
        words = frozenset(
            w.lower().rstrip(".'\u2019-") for w in _WORD.findall(joined) if w.rstrip(".'\u2019-")
        )
        words |= {re.sub(r"['\u2019]s$", "", w) for w in words}
        words |= {part for w in words for part in re.split(r"[-.&]", w) if part}
        return cls(tuple(figures(joined)), tuple(dates(joined)), words)


def _figure_supported(claim: Figure, evidence: Evidence) -> bool:
    tolerance = min(claim.unit / 2, abs(claim.value) * _MAX_ROUNDING)
    tolerance = max(tolerance, Decimal("1e-9"))
    # Only a claim with a scale word ("$14.51 billion") reads a bare table figure in its unit;
    # "$5,000" is not supported by any "5".
    implicit = claim.scaled and not claim.percent
    for source in evidence.figures:
        if claim.percent and not source.percent:
            continue
        units = _IMPLICIT_UNITS if implicit and not source.scaled else (Decimal(1),)
        if any(abs(source.value * unit - claim.value) <= tolerance for unit in units):
            return True
    # A year on its own ("fiscal 2023") is supported by a date in that year.
    return (
        not claim.percent
        and not claim.scaled
        and any(d.year is not None and d.year == claim.value for d in evidence.dates)
    )


def _date_supported(claim: Date, evidence: Evidence) -> bool:
    years = {f.value for f in evidence.figures if not f.scaled and not f.percent}
    years |= {Decimal(d.year) for d in evidence.dates if d.year is not None}
    for source in evidence.dates:
        if source.month != claim.month:
            continue
        if claim.day is not None and source.day != claim.day:
            continue
        if claim.year is not None and source.year is not None and source.year != claim.year:
            continue
        # "July 1" in a table header with the year elsewhere in the same text.
        if claim.year is not None and source.year is None and claim.year not in years:
            continue
        return True
    return False


def _word_supported(word: str, evidence: Evidence) -> bool:
    word = word.lower()
    return word in evidence.words or all(p in evidence.words for p in word.split("-") if p)


def _name_supported(name: str, evidence: Evidence) -> bool:
    return all(_word_supported(word, evidence) for word in name.split())


def unsupported_terms(sentence: str, evidence: Evidence) -> list[str]:
    """The numbers, dates and names of a sentence that the evidence does not contain."""
    missing: list[str] = []
    for date in dates(sentence):
        if not _date_supported(date, evidence):
            missing.append(date.text)
    for figure in figures(sentence):
        if _is_list_marker(sentence, figure):
            continue
        if not _figure_supported(figure, evidence):
            missing.append(figure.text)
    for name in names(sentence):
        if not _name_supported(name, evidence):
            missing.append(name)
    return list(dict.fromkeys(missing))
