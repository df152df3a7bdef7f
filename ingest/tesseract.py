"""Folio's OCR engine: the Tesseract 5 CLI (Debian's `tesseract-ocr`), one process per page.

`tesseract stdin stdout --psm 6 -l eng tsv` reads a page image piped in and prints one row per
word with its box and confidence; `arrange_tsv` rebuilds lines and paragraphs in its reading
order. `--psm 6` (the page as one uniform block) reads a table row by row: `--psm 3`, automatic
segmentation, read filing tables column by column (CER 0.157 against 0.006, bench/ocr_engines.py).
No Python dependency: the binary is found on PATH (`shutil.which`), so a pip-only install falls
back to RapidOCR (ingest/ocr.py).
"""

from __future__ import annotations

import functools
import io
import os
import shutil
import subprocess
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PIL.Image import Image

INSTALL_COMMAND = "apt-get install tesseract-ocr"
PAGE_SEGMENTATION = "6"
LANGUAGE = "eng"
# A vertical gap above this many line heights ends a paragraph (as for RapidOCR): with --psm 6
# Tesseract puts the whole page in one paragraph.
PARAGRAPH_GAP = 0.9


class PageOCRError(Exception):
    """One page could not be read (timed out, or Tesseract failed): reported as a page warning."""


@dataclass(frozen=True)
class _Word:
    text: str
    confidence: float  # 0..1
    line: tuple[int, int, int]  # (block, paragraph, line) numbers: Tesseract's reading order
    top: int
    bottom: int


def binary() -> str | None:
    """The `tesseract` executable on PATH, None when it is not installed."""
    return shutil.which("tesseract")


@functools.lru_cache(maxsize=4)
def version(executable: str) -> str:
    """'5.3.0' (the first line of `tesseract --version`), '' when it cannot say."""
    try:
        done = subprocess.run(
            [executable, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    first = (done.stdout or done.stderr).strip().splitlines()
    return first[0].removeprefix("tesseract ").strip() if first else ""


def _words(tsv: str) -> list[_Word]:
    words = []
    for row in tsv.splitlines()[1:]:
        fields = row.split("\t")
        # Word rows are level 5 with 12 fields; -1 confidence marks block/line rows.
        if len(fields) != 12 or fields[0] != "5" or not fields[11].strip():
            continue
        confidence = float(fields[10])
        if confidence < 0:
            continue
        block, paragraph, line = int(fields[2]), int(fields[3]), int(fields[4])
        top, height = int(fields[7]), int(fields[9])
        words.append(
            _Word(fields[11].strip(), confidence / 100, (block, paragraph, line), top, top + height)
        )
    return words


def arrange_tsv(tsv: str) -> tuple[str, float | None]:
    """Tesseract's TSV as reading-order text (a blank line between paragraphs) and the page's
    confidence: word confidences weighted by their characters, None when nothing was read."""
    words = _words(tsv)
    if not words:
        return "", None
    lines: list[list[_Word]] = []
    for word in words:  # rows come in reading order, grouped by line
        if lines and lines[-1][0].line == word.line:
            lines[-1].append(word)
        else:
            lines.append([word])
    parts: list[str] = []
    previous: list[_Word] | None = None
    for line in lines:
        if previous is not None:
            # The line's extent, ascenders to descenders (a word's box may be x-height only).
            top = min(w.top for w in line)
            height = max(1, max(w.bottom for w in line) - top)
            gap = top - max(w.bottom for w in previous)
            new_paragraph = line[0].line[:2] != previous[0].line[:2] or gap > PARAGRAPH_GAP * height
            parts.append("\n\n" if new_paragraph else "\n")
        parts.append(" ".join(w.text for w in line))
        previous = line
    chars = sum(len(w.text) for w in words)
    confidence = sum(w.confidence * len(w.text) for w in words) / chars
    return "".join(parts), round(confidence, 4)


def read_image(executable: str, image: Image, timeout_s: float) -> tuple[str, float | None]:
    """OCR one page image with a `tesseract` process; PageOCRError when it times out or fails."""
    grey = image if image.mode == "L" else image.convert("L")
    buffer = io.BytesIO()
    grey.save(buffer, format="PPM")  # PGM: no compression to spend time on, read by Leptonica
    # One thread per process: pages run in parallel processes instead, and OpenMP threads of
    # concurrent processes spin against each other on a small machine.
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    command = [executable, "stdin", "stdout", "--psm", PAGE_SEGMENTATION, "-l", LANGUAGE, "tsv"]
    try:
        done = subprocess.run(
            command, input=buffer.getvalue(), capture_output=True, env=env, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:  # run() has killed the process
        reason = f"OCR timed out after {timeout_s:g} s; the page is not indexed"
        raise PageOCRError(reason) from None
    except OSError as exc:
        raise PageOCRError(f"Tesseract could not run ({exc.strerror or exc})") from None
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = said[-1][:120] if said else f"exit status {done.returncode}"
        raise PageOCRError(f"Tesseract failed on the page ({reason})")
    return arrange_tsv(done.stdout.decode("utf-8", "replace"))
