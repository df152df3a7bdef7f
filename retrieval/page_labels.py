"""What a PDF page calls itself ("iv", "16", "A-3") beside Folio's 1-based page index.

The label is the PDF's own page label (its /PageLabels tree) when it has one. Many PDFs (SEC
filings among them) have none but print their page numbers in a header or footer ("Apple Inc. |
Q3 2023 Form 10-Q | 7" on page 10): then the number printed on the page is its label, when a
neighbouring page carries the neighbouring number at the same place (so a table's last figure is
never taken for a page number).

Labels are read at query time from the file, not stored at ingest: collections built before
labels existed get them without a re-ingest. They are cached by path, modification time and size.
pdfium reads them: the label tree in 2.8 ms per SEC filing (pypdf's `page_labels` took 30-120 ms
and failed on one filing's object streams), a printed number in a few ms per page.
"""

from __future__ import annotations

import os
import re
import threading
from functools import lru_cache

LABELLED_FILES_CACHED = 256
PAGES_CACHED = 8192
# pdfium is not thread-safe: every use of it in the process (page labels for the answer worker
# and API threads, page previews for the web page's sessions) holds this lock.
PDFIUM_LOCK = threading.Lock()
# A page number alone on the first or last line, or after a separator ("Form 10-Q | 7",
# "Annual report - 12", "Balance Sheets 6"); never the end of a figure such as "304,182".
_PRINTED_NUMBER = re.compile(r"(?:^|[\s|\u2022\u00b7\u2013\u2014-])(\d{1,4})$")


def page_label(source: str, page: int | None) -> str | None:
    """The label of 1-based `page` in the PDF at `source`, or None when the file is not a PDF,
    cannot be read, or has no label for the page other than its index (nothing to add)."""
    if page is None or page < 1 or not source.lower().endswith(".pdf"):
        return None
    try:
        stat = os.stat(source)
    except OSError:
        return None
    version = (source, stat.st_mtime_ns, stat.st_size)
    labels = _labels(*version)
    if labels:
        label = labels[page - 1] if page <= len(labels) else ""
    else:
        label = _printed_label(*version, page) or ""
    return label if label and label != str(page) else None


@lru_cache(maxsize=LABELLED_FILES_CACHED)
def _labels(source: str, mtime_ns: int, size: int) -> tuple[str, ...]:
    """Every page's label from the label tree, or () when the PDF has none (or cannot be read).
    mtime and size are part of the cache key: a changed file is read again."""
    import pypdfium2

    try:
        with PDFIUM_LOCK:
            document = pypdfium2.PdfDocument(source)
            try:
                labels = tuple(document.get_page_label(i) for i in range(len(document)))
            finally:
                document.close()
    except Exception:  # a damaged, encrypted or vanished file: no labels, never an error
        return ()
    return labels if any(labels) else ()


def _printed_label(source: str, mtime_ns: int, size: int, page: int) -> str | None:
    number = _printed_number(source, mtime_ns, size, page)
    if number is None:
        return None
    before = _printed_number(source, mtime_ns, size, page - 1)
    after = _printed_number(source, mtime_ns, size, page + 1)
    return str(number) if number - 1 == before or number + 1 == after else None


@lru_cache(maxsize=PAGES_CACHED)
def _printed_number(source: str, mtime_ns: int, size: int, page: int) -> int | None:
    """The number printed alone at the end of the page's last (or first) line of text."""
    import pypdfium2

    if page < 1:
        return None
    try:
        with PDFIUM_LOCK:
            document = pypdfium2.PdfDocument(source)
            try:
                if page > len(document):
                    return None
                text_page = document[page - 1].get_textpage()
                try:
                    text = text_page.get_text_range()
                finally:
                    text_page.close()
            finally:
                document.close()
    except Exception:  # as for labels: no number, never an error
        return None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in lines[-1:] + lines[:1]:
        match = _PRINTED_NUMBER.search(line)
        if match:
            return int(match.group(1))
    return None
