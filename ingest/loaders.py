"""File-to-text converters, one per format. Each raises IngestError with a one-line reason."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from ingest.documents import ExtractedDocument, IngestError, Section

SECTION_SEPARATOR = "\n\n"
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_MD_FENCE = re.compile(r"^\s*(```|~~~)")
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


def _assemble(parts: Iterable[tuple[str, int | None, str | None]]) -> list[Section]:
    """Sections with offsets into the joined text; empty parts keep no section."""
    sections: list[Section] = []
    offset = 0
    for text, page, heading in parts:
        if not text.strip():
            continue
        if sections:
            offset += len(SECTION_SEPARATOR)
        sections.append(Section(text=text, start=offset, page=page, heading=heading))
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
    for line in read_text_file(path).splitlines():
        if _MD_FENCE.match(line):
            in_fence = not in_fence
        match = None if in_fence else _MD_HEADING.match(line)
        blocks.append((len(match.group(1)), match.group(2)) if match else (None, line))
    sections, h1 = sections_from_blocks(blocks)
    return ExtractedDocument(title=h1 or path.stem, sections=sections)


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
        if line.startswith("\x01") and "\x02" in line:
            level, text = line[1:].split("\x02", 1)
            blocks.append((int(level), text))
        else:
            blocks.append((None, line))
    sections, h1 = sections_from_blocks(blocks)
    return ExtractedDocument(title=title or h1 or path.stem, sections=sections)


def docx_to_document(path: Path) -> ExtractedDocument:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IngestError(f"not a readable DOCX file ({_short(exc)})") from None
    blocks: list[Block] = []
    for paragraph in document.paragraphs:
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
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells]
            if any(cells):
                blocks.append((None, " | ".join(cells)))
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


def pdf_to_document(path: Path) -> ExtractedDocument:
    with pdf_limits():
        return _read_pdf(path)


def _read_pdf(path: Path) -> ExtractedDocument:
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
        pages = [_clean(page.extract_text() or "") for page in reader.pages]
        metadata_title = (reader.metadata.title or "") if reader.metadata else ""
    except IngestError:
        raise
    except Exception as exc:  # pypdf raises many types for damaged files
        raise IngestError(f"corrupt PDF ({_short(exc)})") from None
    if not pages:
        raise IngestError("PDF has no pages")
    if not any(pages):
        raise IngestError("PDF has no text layer (scanned images?); OCR is not supported")
    sections = _assemble((text, number, None) for number, text in enumerate(pages, start=1))
    title = str(metadata_title).strip() or path.stem
    return ExtractedDocument(title=title, sections=sections, pages=len(pages))


LOADERS: dict[str, Callable[[Path], ExtractedDocument]] = {
    ".pdf": pdf_to_document,
    ".md": markdown_to_document,
    ".markdown": markdown_to_document,
    ".txt": text_to_document,
    ".text": text_to_document,
    ".html": html_to_document,
    ".htm": html_to_document,
    ".docx": docx_to_document,
}


def load_document(path: Path) -> ExtractedDocument:
    """Extract a file's text by its extension; IngestError says why when it cannot."""
    loader = LOADERS.get(path.suffix.lower())
    if loader is None:
        raise IngestError(f"unsupported file type '{path.suffix}'")
    document = loader(path)
    if not document.sections:
        raise IngestError("no text to index")
    return document
