"""Text from page images: Tesseract when installed, else RapidOCR; pages read concurrently.

The engine was chosen by measurement (`bench/ocr_engines.py`, 300 dpi, one thread): Tesseract
`--psm 6` (ingest/tesseract.py) read SEC filing pages with a lower character error rate than
RapidOCR (0.006 against 0.008) at an eighth of the CPU time (1.6 against 12.8 s per page).
RapidOCR (ONNX models inside its wheel) stays as the fallback when the `tesseract` binary is
missing, so a pip-only install still reads scans, slower: `choose_reader` picks automatically.

RapidOCR returns one box per detected text line fragment; `PageImageToText` puts them back in
reading order (top to bottom, then left to right within a line, a blank line where the vertical
gap says a paragraph ends) and scores the page by the recogniser's confidence.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import statistics
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from folio.models import require
from ingest import tesseract
from ingest.documents import IngestError
from ingest.tesseract import PageOCRError

if TYPE_CHECKING:
    from PIL.Image import Image

# PDF pages are rendered at this resolution: below about 200 dpi RapidOCR drops the spaces
# between words; 300 dpi reads them, and Tesseract is measured there too (bench/ocr_engines.py).
PDF_RENDER_DPI = 300
# One onnxruntime thread by default: OCR runs in the extraction worker while the embedder uses
# the other core, so a second OCR thread would only take time from the embedder (as
# `torch_threads` bounds torch). The benchmark gives the one- and multi-thread speeds.
DEFAULT_THREADS = 1
# Larger images are scaled down before anything else (RapidOCR's own default is 2000 px, which
# shrinks a 300 dpi Letter page to ~180 dpi: recognition then runs words together).
MAX_SIDE_PX = 4000
# Text is *found* on a copy scaled to this longest side, then *read* from the full-size crops.
# RapidOCR's default (shortest side at least 736 px, never scaled down) runs detection on the
# whole 300 dpi page: about 4x the detection time (27 s against 6-7 s on a loaded machine, an
# SEC filing page), for the same text (longest side 1280 and 2000 gave the same CER, 0.007).
DETECT_SIDE_PX = 1600
# A vertical gap above this many line heights ends a paragraph.
PARAGRAPH_GAP = 0.9
INSTALL_HINT = "pip install rapidocr-onnxruntime --no-deps (or `make install`)"
UNREADABLE_PAGE = "no text found by OCR (blank page, or a scan too faint or small to read)"
FALLBACK_NOTICE = (
    "notice: tesseract is not installed, so OCR uses RapidOCR (about 8x slower per page); "
    f"install it: {tesseract.INSTALL_COMMAND}"
)
# A Tesseract page takes 1-3 s here; a page still running after this is stopped and reported,
# so one pathological scan cannot hang an ingest.
PAGE_TIMEOUT_S = 120.0
# Concurrent Tesseract processes per document (the setting ocr_processes overrides). The default is
# one per usable core: each process runs one thread, and while a scanned document is read the
# embedder has nothing of it to embed (it gets the document whole), so OCR may take every core;
# when other files' chunks are embedding meanwhile, the OS shares the cores among single-threaded
# processes without the spinning of oversubscribed thread pools.


@dataclass(frozen=True)
class PageText:
    """What OCR read on one page: `confidence` is the recogniser's mean score (weighted by
    characters, 0..1), None when nothing was read."""

    text: str
    confidence: float | None


@dataclass(frozen=True)
class _Fragment:
    text: str
    score: float
    top: float
    bottom: float
    left: float

    @property
    def height(self) -> float:
        return max(1.0, self.bottom - self.top)

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


@functools.lru_cache(maxsize=2)
def _engine(threads: int) -> Any:
    """Loaded once per process (the models take ~1 s to load)."""
    from folio.models import ModelNotFoundError

    try:
        require("rapidocr_onnxruntime", INSTALL_HINT)
        require("cv2", "pip install opencv-python-headless (or `make install`)")
    except ModelNotFoundError as exc:  # the file's one-line error says what to install
        raise IngestError(f"OCR is unavailable: {exc}") from None
    import logging

    import cv2
    from rapidocr_onnxruntime import RapidOCR

    if threads:
        cv2.setNumThreads(threads)  # its resizes and dilations follow the same thread budget

    engine = RapidOCR(
        intra_op_num_threads=threads or -1,  # 0: onnxruntime's default (all cores)
        inter_op_num_threads=1,
        max_side_len=MAX_SIDE_PX,
        det_limit_type="max",
        det_limit_side_len=DETECT_SIDE_PX,
        # No 180-degree line classifier: on filing pages it turned whole lines upside down,
        # which then failed recognition and vanished (CER 0.229 with it, 0.009 without).
        use_cls=False,
    )
    # RapidOCR logs every call at INFO on the root handler: a progress display must not fill up.
    logging.getLogger("RapidOCR").setLevel(logging.WARNING)
    return engine


def _fragments(result: Sequence[Any] | None) -> list[_Fragment]:
    fragments = []
    for box, text, score in result or []:
        ys = [float(point[1]) for point in box]
        xs = [float(point[0]) for point in box]
        if str(text).strip():
            fragments.append(_Fragment(str(text).strip(), float(score), min(ys), max(ys), min(xs)))
    return fragments


def _lines(fragments: list[_Fragment]) -> Iterator[list[_Fragment]]:
    """Fragments whose vertical middles fall inside one another's extent share a line."""
    line: list[_Fragment] = []
    for fragment in sorted(fragments, key=lambda f: f.middle):
        if line:
            top = statistics.fmean(f.top for f in line)
            bottom = statistics.fmean(f.bottom for f in line)
            if not (top <= fragment.middle <= bottom):
                yield sorted(line, key=lambda f: f.left)
                line = []
        line.append(fragment)
    if line:
        yield sorted(line, key=lambda f: f.left)


def arrange(result: Sequence[Any] | None) -> PageText:
    """RapidOCR's (box, text, score) list as reading-order text and a page confidence."""
    fragments = _fragments(result)
    if not fragments:
        return PageText("", None)
    parts: list[str] = []
    previous_bottom: float | None = None
    for line in _lines(fragments):
        height = statistics.median(f.height for f in line)
        top = min(f.top for f in line)
        if previous_bottom is not None:
            gap = top - previous_bottom
            parts.append("\n\n" if gap > PARAGRAPH_GAP * height else "\n")
        parts.append(" ".join(f.text for f in line))
        previous_bottom = max(f.bottom for f in line)
    chars = sum(len(f.text) for f in fragments)
    confidence = sum(f.score * len(f.text) for f in fragments) / chars
    return PageText("".join(parts), round(confidence, 4))


class PageImageToText:
    """Reads the text of a page image with RapidOCR; the engine loads on first use, once per
    process. Pages are read one after another: onnxruntime runs in this process."""

    name = "rapidocr"
    concurrent = False

    def __init__(self, threads: int = DEFAULT_THREADS) -> None:
        self.threads = threads

    def read(self, image: Image) -> PageText:
        import numpy as np

        rgb = image.convert("RGB")
        # RapidOCR takes OpenCV's channel order (BGR).
        pixels = np.ascontiguousarray(np.asarray(rgb)[:, :, ::-1])
        result, _ = _engine(self.threads)(pixels)
        return arrange(result)


def render_pdf_pages(path: Path, pages: Sequence[int], dpi: int = PDF_RENDER_DPI) -> Iterator[
    tuple[int, Image]
]:  # fmt: skip
    """(1-based page number, image) for the given pages, rendered with pdfium one at a time."""
    import pypdfium2 as pdfium

    document = pdfium.PdfDocument(str(path))
    try:
        for number in pages:
            page = document[number - 1]
            try:
                bitmap = page.render(scale=dpi / 72, grayscale=True)
                yield number, bitmap.to_pil()
            finally:
                page.close()
    finally:
        document.close()


class TesseractPageReader:
    """Reads the text of a page image with a `tesseract` process (ingest/tesseract.py); pages
    can run concurrently, one process each."""

    name = "tesseract"
    concurrent = True

    def __init__(self, executable: str, timeout_s: float = PAGE_TIMEOUT_S) -> None:
        self.executable = executable
        self.timeout_s = timeout_s

    def read(self, image: Image) -> PageText:
        return PageText(*tesseract.read_image(self.executable, image, self.timeout_s))


PageReader = TesseractPageReader | PageImageToText


@functools.lru_cache(maxsize=1)
def _notice_fallback() -> None:
    """Once per process: the extraction worker's stderr is the terminal's."""
    print(FALLBACK_NOTICE, file=sys.stderr, flush=True)


def choose_reader() -> PageReader:
    """Tesseract when its binary is on PATH, else RapidOCR (with a one-time notice), else the
    IngestError that names what to install."""
    executable = tesseract.binary()
    if executable:
        return TesseractPageReader(executable)
    if importlib.util.find_spec("rapidocr_onnxruntime") is None:
        raise IngestError(
            f"OCR is unavailable: install Tesseract ({tesseract.INSTALL_COMMAND}) "
            f"or RapidOCR ({INSTALL_HINT})"
        )
    _notice_fallback()
    return PageImageToText()


def engine_status() -> dict[str, str | None]:
    """Which engine reads scans here (for `folio doctor`), and what would make it better."""
    executable = tesseract.binary()
    if executable:
        return {
            "engine": "tesseract",
            "version": tesseract.version(executable) or None,
            "path": executable,
            "hint": None,
        }
    if importlib.util.find_spec("rapidocr_onnxruntime") is not None:
        return {
            "engine": "rapidocr",
            "version": None,
            "path": None,
            "hint": f"tesseract is missing: RapidOCR reads scans about 8x slower; "
            f"{tesseract.INSTALL_COMMAND}",
        }
    return {
        "engine": None,
        "version": None,
        "path": None,
        "hint": f"{tesseract.INSTALL_COMMAND} (or {INSTALL_HINT})",
    }


def page_processes() -> int:
    """How many pages of a document are read at once by default (see above)."""
    if hasattr(os, "sched_getaffinity"):  # a pinned process has fewer cores than the machine
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def read_pages(
    images: Iterator[tuple[int, Image]],
    warnings: list[tuple[int | None, str]],
    reader: PageReader | None = None,
    processes: int | None = None,
) -> dict[int, PageText]:
    """OCR each (page number, image), up to `processes` pages at once (Tesseract), the next
    page rendered while they run: at most `processes` + 1 page images in memory. A page OCR
    cannot read is added to `warnings`: reported, never silently empty."""
    reader = reader or choose_reader()
    workers = (processes or page_processes()) if reader.concurrent else 1
    outcomes: dict[int, PageText | str] = {}

    def settle(number: int, future: Future[PageText]) -> None:
        try:
            outcomes[number] = future.result()
        except PageOCRError as exc:
            outcomes[number] = str(exc)

    with ThreadPoolExecutor(workers, thread_name_prefix="ocr") as pool:
        pending: dict[Future[PageText], int] = {}
        for number, image in images:
            if len(pending) >= workers:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    settle(pending.pop(future), future)
            pending[pool.submit(reader.read, image)] = number
        for future, number in pending.items():
            settle(number, future)
    read: dict[int, PageText] = {}
    for number in sorted(outcomes):
        outcome = outcomes[number]
        if isinstance(outcome, str):
            warnings.append((number, outcome))
            outcome = PageText("", None)
        elif not outcome.text:
            warnings.append((number, UNREADABLE_PAGE))
        read[number] = outcome
    return read


def image_frames(path: Path) -> Iterator[tuple[int, Image]]:
    """(1-based frame number, RGB image) for each frame of an image file (a multi-page TIFF has
    several); IngestError with the reason for a damaged file."""
    from PIL import Image as PILImage
    from PIL import ImageSequence, UnidentifiedImageError

    try:
        with PILImage.open(path) as image:
            # One frame at a time: a long multi-page scan never sits in memory whole.
            for number, frame in enumerate(ImageSequence.Iterator(image), start=1):
                yield number, frame.convert("RGB")
    except UnidentifiedImageError:
        raise IngestError("not a readable image (unknown format or damaged file)") from None
    except PILImage.DecompressionBombError:
        raise IngestError("image too large to read safely (over Pillow's pixel limit)") from None
    except (OSError, ValueError, SyntaxError) as exc:  # truncated data, a damaged frame
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        raise IngestError(f"corrupt image ({reason})") from None
