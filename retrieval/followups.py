"""Follow-up questions: does a question refer back, and what subject does it carry over?

Earlier turns only ever shape the retrieval query. A question that does not point back at the
conversation (no pronoun, demonstrative, ellipsis or very short fragment) is used as it is, so an
unrelated earlier turn cannot leak into it. A follow-up that does point back gets the previous
standalone question's subject terms carried into it deterministically: a tiny model's rewrite can
drop the subject, this cannot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

STRATEGIES = ("bare", "rewrite", "fusion", "carry", "carry+rewrite")

# Words that point back at something said before.
_REFERRING = {
    "it", "its", "it's", "itself", "that", "this", "these", "those", "they", "them", "their",
    "theirs", "there", "then", "he", "she", "him", "her", "his", "hers", "former", "latter",
    "same", "above", "previous", "aforementioned",
}  # fmt: skip
_OPENERS = re.compile(
    r"^\s*(and|or|but|also|so|what about|how about|compared (to|with)|versus|vs\.?|why|"
    r"what else|anything else|more|same)\b",
    re.IGNORECASE,
)
_SHORT_WORDS = 3  # "Why?", "In 2022?", "And gaming?": fragments that need the history

_STOP = {
    "a", "an", "the", "of", "in", "on", "at", "to", "for", "from", "by", "with", "about", "as",
    "and", "or", "but", "is", "are", "was", "were", "be", "been", "being", "do", "does", "did",
    "has", "have", "had", "can", "could", "should", "would", "will", "shall", "may", "might",
    "must", "what", "which", "who", "whom", "whose", "when", "where", "why", "how", "much",
    "many", "i", "you", "we", "me", "my", "our", "your", "us", "if", "not", "no", "so", "than",
    "into", "over", "under", "during", "per", "any", "some", "all", "each", "other", "there",
    "say", "says", "said", "tell", "give", "describe", "explain", "list", "mention", "mentioned",
    "according", "please", "also", "more", "else", "else's", "compare", "compared", "versus",
    "vs", "ago", "year", "years", "change", "changed", "happen", "happened", "way", "like",
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9&.'\-]*[A-Za-z0-9]|[A-Za-z0-9]")
_MAX_CARRIED = 8
# A follow-up with its own name asks a complete question when it has this many content words,
# or fewer but no personal pronoun ("Why did its DCAI revenue fall?" still needs the history).
_COMPLETE_TERMS = 5
_COMPLETE_TERMS_NO_PRONOUN = 3
_PRONOUNS = {"it", "its", "it's", "itself", "they", "them", "their", "theirs", "he", "she", "him",
             "her", "his", "hers"}  # fmt: skip


@dataclass(frozen=True)
class PastTurn:
    """An earlier turn as retrieval sees it: the question and the standalone form it was given.
    Earlier answers are deliberately absent: they never reach a prompt or a query."""

    question: str
    standalone: str


def past_turns(history: Sequence[tuple[str, str] | PastTurn]) -> list[PastTurn]:
    """Normalise history: (question, answer) tuples (the UI's) know no standalone form."""
    return [t if isinstance(t, PastTurn) else PastTurn(t[0], t[0]) for t in history]


def _words(text: str) -> list[str]:
    return _WORD.findall(text)


def refers_back(question: str) -> bool:
    """Whether a question needs the conversation to be understood."""
    words = [w.lower() for w in _words(question)]
    if len(words) <= _SHORT_WORDS:
        return True
    if _OPENERS.match(question):
        return True
    return any(_points_back(words, i) for i, w in enumerate(words) if w in _REFERRING)


_BE_HAVE = {"is", "are", "was", "were", "be", "been", "has", "have", "had"}


def _points_back(words: list[str], i: int) -> bool:
    """A referring word in context: relative "that", existential "there" and "one of" do not."""
    word = words[i]
    before = words[i - 1] if i > 0 else ""
    after = words[i + 1] if i + 1 < len(words) else ""
    if word == "that":  # "the war that the ..." is relative; "how did that", "that growth" refer
        return not before or before in _STOP or not after or after not in _STOP
    if word == "there":  # "are there", "there were" are existential
        return before not in _BE_HAVE and after not in _BE_HAVE
    return True


def _is_name(word: str, first: bool) -> bool:
    """A proper name or code (capitalised, not sentence-initial), or an all-caps ticker."""
    if word.lower() in _STOP or word.lower() in _REFERRING or any(c.isdigit() for c in word):
        return False
    return (word[0].isupper() and not first) or (len(word) > 1 and word.isupper())


def _has_number(word: str) -> bool:
    return any(c.isdigit() for c in word)


def subject_terms(question: str) -> list[str]:
    """The content words of a question in their order (names, nouns, figures), no stop words."""
    seen: set[str] = set()
    terms = []
    for word in _words(question):
        key = word.lower().removesuffix("'s")
        if key in _STOP or key in _REFERRING or len(key) < 2 or key in seen:
            continue
        seen.add(key)
        terms.append(word.removesuffix("'s"))
    return terms


def _complete(question: str, words: list[str]) -> bool:
    terms = len(subject_terms(question))
    if terms >= _COMPLETE_TERMS:
        return True
    return terms >= _COMPLETE_TERMS_NO_PRONOUN and not any(w.lower() in _PRONOUNS for w in words)


def carry_subject(question: str, previous_standalone: str) -> str:
    """The follow-up with the previous question's subject terms it lacks, e.g.
    "And how did that compare to a year ago? (NVIDIA Data Center revenue)".

    Terms the follow-up replaces are not carried: its own names replace earlier names ("What
    about Microsoft?"), its own figures or years replace earlier ones ("And in 2022?")."""
    base = re.sub(r"\s*\([^()]*\)\s*$", "", previous_standalone)  # an earlier carried subject
    carried_before = re.findall(r"\(([^()]*)\)\s*$", previous_standalone)
    words = _words(question)
    own = {w.lower().removesuffix("'s") for w in words}
    names_here = any(_is_name(w, i == 0) for i, w in enumerate(words))
    # "What about Microsoft?" swaps the earlier name; "Why did its DCAI revenue fall?" keeps it.
    swaps_names = names_here and not any(w.lower() in _PRONOUNS for w in words)
    if names_here and _complete(question, words):
        return question  # "What about Intel's revenue in Q3 2023?" names its own subject
    numbers_here = any(_has_number(w) for w in words)
    previous_words = _words(base)
    previous_names = {
        w.removesuffix("'s") for i, w in enumerate(previous_words) if _is_name(w, i == 0)
    }
    carried = []
    for term in subject_terms(base + " " + " ".join(carried_before)):
        if term.lower() in own:
            continue
        if swaps_names and term in previous_names:
            continue
        if numbers_here and _has_number(term):
            continue
        carried.append(term)
    if not carried:
        return question
    return f"{question.strip()} ({' '.join(carried[:_MAX_CARRIED])})"


def keeps_subject(rewrite: str, question: str, previous_standalone: str) -> bool:
    """Whether an LLM rewrite kept at least one of the subject terms the follow-up lacked."""
    lacking = {t.lower() for t in subject_terms(previous_standalone)} - {
        t.lower() for t in subject_terms(question)
    }
    if not lacking:
        return True
    have = {t.lower() for t in subject_terms(rewrite)}
    return bool(lacking & have)
