"""Real input files written by the tests."""

from __future__ import annotations

from pathlib import Path

from folio.samples import pages_to_pdf


def write_pdf(path: Path, pages: list[str], title: str = "") -> Path:
    return pages_to_pdf(pages, path, title=title)


def write_encrypted_pdf(path: Path, pages: list[str], user_password: str) -> Path:
    """AES-256 encrypted; an empty user password opens it without asking (like many filings)."""
    from pypdf import PdfReader, PdfWriter

    plain = write_pdf(path.with_suffix(".plain.pdf"), pages)
    writer = PdfWriter(clone_from=PdfReader(str(plain)))
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    with path.open("wb") as handle:
        writer.write(handle)
    plain.unlink()
    return path


def write_truncated_pdf(path: Path, pages: list[str]) -> Path:
    write_pdf(path, pages)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def write_image_only_pdf(path: Path) -> Path:
    """A 'scanned' PDF: drawings only, no text layer."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_fill_color(40, 40, 40)
    for row in range(10):
        pdf.rect(20, 20 + row * 12, 150, 6, style="F")
    pdf.output(str(path))
    return path


def write_docx(path: Path, title: str, sections: dict[str, str]) -> Path:
    import docx

    document = docx.Document()
    document.add_heading(title, level=1)
    for heading, body in sections.items():
        document.add_heading(heading, level=2)
        document.add_paragraph(body)
    document.save(str(path))
    return path


def write_labelled_pdf(path: Path, pages: list[str]) -> Path:
    """A PDF whose printed page numbers differ from the page index: i, then 15, 16, ..."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.constants import PageLabelStyle

    plain = write_pdf(path.with_suffix(".plain.pdf"), pages)
    writer = PdfWriter(clone_from=PdfReader(str(plain)))
    writer.set_page_label(0, 0, style=PageLabelStyle.LOWERCASE_ROMAN)
    if len(pages) > 1:
        writer.set_page_label(1, len(pages) - 1, style=PageLabelStyle.DECIMAL, start=15)
    with path.open("wb") as handle:
        writer.write(handle)
    plain.unlink()
    return path
