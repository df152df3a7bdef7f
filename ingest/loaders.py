"""File-to-text converters, one per format. Each raises IngestError with a one-line reason."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ingest.documents import ExtractedDocument, IngestError, Section
from ingest.tables import is_number as _is_number
from ingest.tables import layout_to_text, render_table

SECTION_SEPARATOR = "\n\n"
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^\s*(```|~~~)")
_MD_DELIMITER = re.compile(r"^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$")
_BLANK_RUNS = re.compile(r"\n{3,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")

Block = tuple[int | None, str]  # (heading level or None for body text, text)


def _clean(text: str) -> str:
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_RUNS.sub("\n\n", text).strip()


def _short(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return message[:120]


Part = tuple[str, int | None, str | None] | tuple[str, int | None, str | None, float | None]


def _assemble(parts: Iterable[Part]) -> list[Section]:
    """Sections with offsets into the joined text; empty parts keep no section. A part is
    (text, page, heading) or, read by OCR, (text, page, heading, OCR confidence)."""
    sections: list[Section] = []
    offset = 0
    for part in parts:
        text, page, heading = part[:3]
        if not text.strip():
            continue
        if sections:
            offset += len(SECTION_SEPARATOR)
        confidence = part[3] if len(part) > 3 else None
        sections.append(
            Section(text=text, start=offset, page=page, heading=heading, ocr_confidence=confidence)
        )
        offset += len(text)
    return sections


def sections_from_blocks(blocks: Iterable[Block]) -> tuple[list[Section], str | None]:
    """Group body blocks under the heading path above them. Returns sections and the first H1."""
    stack: list[tuple[int, str]] = []
    first_h1: str | None = None
    parts: list[tuple[str, int | None, str | None]] = []
    current: list[str] = []
    has_body = False
    heading: str | None = None

    def flush() -> None:
        if current:
            parts.append((_clean("\n".join(current)), None, heading))
            current.clear()

    for level, text in blocks:
        if level is None:
            current.append(text)
            has_body = has_body or bool(text.strip())
            continue
        # A heading with no body of its own stays with the section below it.
        if has_body:
            flush()
            has_body = False
        title = " ".join(text.split())
        if level == 1 and first_h1 is None:
            first_h1 = title
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        heading = " > ".join(name for _, name in stack)
        current.append(title)
    flush()
    return _assemble(parts), first_h1


def read_text_file(path: Path) -> str:
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise IngestError("binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise IngestError(f"not UTF-8 text (invalid byte at offset {exc.start})") from None


def markdown_to_document(path: Path) -> ExtractedDocument:
    blocks: list[Block] = []
    in_fence = False
    lines = read_text_file(path).splitlines()
    at = 0
    while at < len(lines):
        line = lines[at]
        if _MD_FENCE.match(line):
            in_fence = not in_fence
        table = None if in_fence else markdown_table(lines, at)
        if table is not None:
            text, at = table
            blocks.append((None, text))
            continue
        match = None if in_fence else _MD_HEADING.match(line)
        blocks.append((len(match.group(1)), match.group(2)) if match else (None, line))
        at += 1
    sections, h1 = sections_from_blocks(blocks)
    return ExtractedDocument(title=h1 or path.stem, sections=sections)


def _pipe_cells(line: str) -> list[str]:
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") and not body.endswith("\\|") else body
    return [cell.strip().replace("\\|", "/") for cell in re.split(r"(?<!\\)\|", body)]


def markdown_table(lines: list[str], at: int) -> tuple[str, int] | None:
    """A pipe table starting at line `at` (header row, then a `---|---` delimiter row) in our
    table text, and the line after it; None when no table starts there."""
    if at + 1 >= len(lines) or "|" not in lines[at] or "|" not in lines[at + 1]:
        return None
    if not _MD_DELIMITER.match(lines[at + 1]):
        return None
    header = _pipe_cells(lines[at])
    rows: list[list[str]] = []
    end = at + 2
    while end < len(lines) and "|" in lines[end] and lines[end].strip():
        rows.append(_pipe_cells(lines[end]))
        end += 1
    return render_table([header], rows), end


def text_to_document(path: Path) -> ExtractedDocument:
    return ExtractedDocument(
        title=path.stem, sections=_assemble([(_clean(read_text_file(path)), None, None)])
    )


_HTML_HIDDEN = ("script", "style", "noscript", "template", "head", "svg", "iframe", "object")
_HTML_HEADINGS = {f"h{level}": level for level in range(1, 7)}
_HTML_BLOCKS = (
    "p", "div", "li", "pre", "blockquote", "td", "th", "dt", "dd", "section", "article",
    "header", "footer", "main", "aside", "nav", "figcaption", "caption", "tr", "table", "ul", "ol",
)  # fmt: skip


def html_to_document(path: Path) -> ExtractedDocument:
    from bs4 import BeautifulSoup, Comment

    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise IngestError("binary data, not HTML")
    soup = BeautifulSoup(data, "html.parser")
    title_tag = soup.find("title")
    title = " ".join(title_tag.get_text().split()) if title_tag else ""
    for tag in soup.find_all(_HTML_HIDDEN):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    for tag in soup.find_all(style=re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden")):
        tag.decompose()
    for tag in soup.find_all(hidden=True):
        tag.decompose()
    # Tables first: their rows become our table text, kept line by line below.
    for table in reversed(soup.find_all("table")):
        if table.find_parent("table") is None:
            table.replace_with(f"\n\x03{html_table(table)}\n")
    blocks: list[Block] = []
    # Headings become heading blocks; the text between them is body text.
    for tag in soup.find_all(list(_HTML_HEADINGS)):
        tag.replace_with(f"\n\x01{_HTML_HEADINGS[tag.name]}\x02{tag.get_text(' ', strip=True)}\n")
    for tag in soup.find_all(_HTML_BLOCKS):
        tag.insert_before("\n")
        tag.insert_after("\n")
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for raw_line in soup.get_text().splitlines():
        line = " ".join(raw_line.split())
        if not line:
            continue
        if line.startswith("\x03"):
            blocks.append((None, line[1:].replace("\x04", "\n")))
            continue
        if line.startswith("\x01") and "\x02" in line:
            level, text = line[1:].split("\x02", 1)
            blocks.append((int(level), text))
        else:
            blocks.append((None, line))
    sections, h1 = sections_from_blocks(blocks)
    return ExtractedDocument(title=title or h1 or path.stem, sections=sections)


def html_table(table: Any) -> str:
    """A <table>'s text: <thead> rows and leading all-<th> rows are the header; colspan repeats a
    cell; a <caption> goes on the line above. Newlines are \\x04 until the lines are split."""
    grid: list[tuple[bool, list[str]]] = []
    for tr in table.find_all("tr"):
        if tr.find_parent("table") is not table:
            continue
        cells: list[str] = []
        all_th = True
        for cell in tr.find_all(["td", "th"], recursive=False):
            all_th = all_th and cell.name == "th"
            span = int(cell.get("colspan", 1) or 1) if str(cell.get("colspan", 1)).isdigit() else 1
            cells.extend([cell.get_text(" ", strip=True)] * max(1, min(span, 50)))
        if cells:
            in_head = tr.find_parent("thead") is not None
            grid.append((in_head or all_th, cells))
    heads = 0
    while heads < len(grid) and grid[heads][0]:
        heads += 1
    if heads == 0 and len(grid) > 1 and not any(_is_number(c) for c in grid[0][1]):
        heads = 1  # an unmarked first row of labels reads as the header
    caption = table.find("caption")
    text = render_table([c for _, c in grid[:heads]], [c for _, c in grid[heads:]])
    if caption is not None and caption.get_text(strip=True):
        text = " ".join(caption.get_text(" ").split()) + "\n" + text
    return text.replace("\n", "\x04")


def docx_to_document(path: Path) -> ExtractedDocument:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IngestError(f"not a readable DOCX file ({_short(exc)})") from None
    from docx.table import Table

    blocks: list[Block] = []
    # In document order: a table stays under the heading and after the text that introduces it.
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            rows = [[cell.text.strip() for cell in row.cells] for row in item.rows]
            rows = [row for row in rows if any(row)]
            if rows:
                header = rows[:1] if len(rows) > 1 else []
                blocks.append((None, render_table(header, rows[len(header) :])))
            continue
        paragraph = item
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        text = paragraph.text.strip()
        if not text:
            continue
        match = re.match(r"Heading (\d)", style)
        if style == "Title":
            blocks.append((1, text))
        elif match:
            blocks.append((int(match.group(1)), text))
        else:
            blocks.append((None, text))
    sections, h1 = sections_from_blocks(blocks)
    title = (document.core_properties.title or "").strip() or h1 or path.stem
    return ExtractedDocument(title=title, sections=sections)


def pdf_limits() -> AbstractContextManager[object]:
    """pypdf's default 100,000-element array limit rejects real filings (two of the SEC 10-Qs);
    raise it, still bounded against hostile files."""
    from pypdf import apply_configuration

    return apply_configuration(
        array_maximum_element_count=5_000_000, dictionary_maximum_element_count=1_000_000
    )


def pdf_to_document(
    path: Path, ocr: bool = True, ocr_processes: int | None = None
) -> ExtractedDocument:
    """Text per page; with `ocr`, pages without a text layer are rendered and read by OCR."""
    with pdf_limits():
        return _read_pdf(path, ocr, ocr_processes)


NO_TEXT_LAYER = "PDF has no text layer (scanned images?)"


def _read_pdf(path: Path, ocr: bool, ocr_processes: int | None) -> ExtractedDocument:
    from pypdf import PasswordType, PdfReader
    from pypdf.errors import DependencyError

    logging.getLogger("pypdf").setLevel(logging.ERROR)
    with path.open("rb") as handle:
        head = handle.read(1024)
        handle.seek(max(0, path.stat().st_size - 2048))
        tail = handle.read()
    if b"%PDF-" not in head:
        raise IngestError("not a PDF file (no %PDF header)")
    if b"%%EOF" not in tail:
        raise IngestError("truncated or corrupt PDF (no end-of-file marker)")
    try:
        reader = PdfReader(str(path), strict=False)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except DependencyError:
                raise IngestError(
                    "encrypted PDF needs AES support: pip install 'pypdf[crypto]'"
                ) from None
            if opened == PasswordType.NOT_DECRYPTED:
                raise IngestError("encrypted with a password; remove the password and ingest again")
        pages = [_page_text(page) for page in reader.pages]
        metadata_title = (reader.metadata.title or "") if reader.metadata else ""
    except IngestError:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files
        raise IngestError(f"corrupt PDF ({_short(exc)})") from None
    if not pages:
        raise IngestError("PDF has no pages")
    empty = [number for number, text in enumerate(pages, start=1) if not text]
    if len(empty) == len(pages) and not ocr:
        # The message of the releases without OCR, and what turns it on.
        raise IngestError(f"{NO_TEXT_LAYER}; OCR is not supported while the setting ocr is off")
    confidences: dict[int, float] = {}
    warnings: list[tuple[int | None, str]] = []
    if empty and ocr:
        from ingest.ocr import read_pages, render_pdf_pages

        read = read_pages(render_pdf_pages(path, empty), warnings, processes=ocr_processes)
        for number, page_text in read.items():
            pages[number - 1] = page_text.text
            if page_text.confidence is not None:
                confidences[number] = page_text.confidence
        if not any(pages):
            raise IngestError(f"{NO_TEXT_LAYER} and OCR found no text on its {len(pages)} page(s)")
    sections = _assemble(
        (text, number, None, confidences.get(number)) for number, text in enumerate(pages, start=1)
    )
    title = str(metadata_title).strip() or path.stem
    return ExtractedDocument(title=title, sections=sections, pages=len(pages), warnings=warnings)


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".tif", ".tiff")


def image_to_document(
    path: Path, ocr: bool = True, ocr_processes: int | None = None
) -> ExtractedDocument:
    """An image file read by OCR, one page per frame (multi-page TIFF), titled by its name."""
    if not ocr:
        raise IngestError("an image file needs OCR, which is turned off (setting ocr)")
    from ingest.ocr import image_frames, read_pages

    warnings: list[tuple[int | None, str]] = []
    read = read_pages(image_frames(path), warnings, processes=ocr_processes)
    if not any(page_text.text for page_text in read.values()):
        raise IngestError(f"OCR found no text in the image ({len(read)} page(s))")
    sections = _assemble(
        (page_text.text, number, None, page_text.confidence) for number, page_text in read.items()
    )
    return ExtractedDocument(title=path.stem, sections=sections, pages=len(read), warnings=warnings)


def _page_text(page: Any) -> str:
    """Layout mode keeps each table row on one line (label and values) under its column
    headers; `layout_to_text` turns those into table rows and single-spaces the prose."""
    try:
        layout = page.extract_text(extraction_mode="layout")
    except Exception:  # layout mode fails on some damaged pages where plain mode copes
        layout = None
    text = _clean(layout_to_text(layout)) if layout else ""
    # Layout mode returns nothing for some pages that plain mode reads (the cover pages of 12 of
    # the 20 SEC filings): never lose a page's text to the table-preserving mode.
    return text or _clean(page.extract_text() or "")


LOADERS: dict[str, Callable[[Path], ExtractedDocument]] = {
    ".md": markdown_to_document,
    ".markdown": markdown_to_document,
    ".txt": text_to_document,
    ".text": text_to_document,
    ".html": html_to_document,
    ".htm": html_to_document,
    ".docx": docx_to_document,
}
# Formats that may need OCR take the `ocr` setting.
OCR_LOADERS: dict[str, Callable[[Path, bool, int | None], ExtractedDocument]] = {
    ".pdf": pdf_to_document,
    **{extension: image_to_document for extension in IMAGE_EXTENSIONS},
}
SUPPORTED_EXTENSIONS = frozenset(LOADERS) | frozenset(OCR_LOADERS)


def load_document(
    path: Path, ocr: bool = True, ocr_processes: int | None = None
) -> ExtractedDocument:
    """Extract a file's text by its extension; IngestError says why when it cannot."""
    extension = path.suffix.lower()
    if extension in OCR_LOADERS:
        document = OCR_LOADERS[extension](path, ocr, ocr_processes)
    elif extension in LOADERS:
        document = LOADERS[extension](path)
    else:
        raise IngestError(f"unsupported file type '{path.suffix}'")
    if not document.sections:
        raise IngestError("no text to index")
    return document
