"""The bundled sample documents: the user guide in Markdown, and a PDF made from it."""

from __future__ import annotations

import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent / "sample_docs"  # package data: works installed too
GUIDE = "folio-user-guide.md"


def pages_to_pdf(pages: list[str], out: Path, title: str = "") -> Path:
    """A PDF with one text page per item (text layer, core font): real input for tests and demos."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    # A fixed date makes the same pages give the same bytes (and sha256): no needless re-embed.
    pdf.set_creation_date(datetime(2025, 1, 1, tzinfo=UTC))
    pdf.set_auto_page_break(auto=True, margin=15)
    for text in pages:
        pdf.add_page()
        for line in text.splitlines():
            heading = line.startswith("#")
            pdf.set_font("Helvetica", "B" if heading else "", 14 if heading else 11)
            pdf.multi_cell(0, 7 if heading else 6, line.lstrip("# ") or " ")
            pdf.set_x(pdf.l_margin)
    out.parent.mkdir(parents=True, exist_ok=True)
    pdf.output(str(out))
    return out


def markdown_to_pdf(markdown: str, out: Path) -> Path:
    """Each second-level section starts a new page, so answers cite distinct pages."""
    pages: list[str] = []
    for line in markdown.splitlines():
        if not pages or line.startswith("## "):
            pages.append("")
        pages[-1] += line + "\n"
    title = markdown.splitlines()[0].lstrip("# ") if markdown else ""
    return pages_to_pdf(pages, out, title=title)


def build_samples(out_dir: Path) -> list[Path]:
    """Copy the guide and generate its PDF into out_dir (the PDF is never committed)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    guide = SAMPLES_DIR / GUIDE
    md_copy = out_dir / GUIDE
    shutil.copyfile(guide, md_copy)
    pdf = markdown_to_pdf(guide.read_text(encoding="utf-8"), out_dir / "folio-user-guide.pdf")
    return [md_copy, pdf]


if __name__ == "__main__":
    for path in build_samples(Path(sys.argv[1] if len(sys.argv) > 1 else "build/samples")):
        print(path)
