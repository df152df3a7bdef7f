"""Tables stay tables: rows with their headers in chunks, and value questions quoted as
`Row label (Column header): value` with verbatim spans, cited with the page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import Folio
from folio.models import load_tokenizer, resolve_embedding_path
from ingest.chunking import SectionsToChunks
from ingest.loaders import load_document

QUESTION = "What was total net sales in the three months ended July 1, 2023?"
ROWS = [
    ["", "Three Months Ended", "Three Months Ended", ""],
    ["", "July 1, 2023", "June 25, 2022", "Change"],
    ["iPhone", "$ 39,669", "$ 40,665", "(2)%"],
    ["Mac", "6,840", "7,382", "(7)%"],
    ["Services", "21,213", "19,604", "8 %"],
    ["Total net sales", "$ 81,797", "$ 82,959", "(1)%"],
]
PROSE = (
    "Example Corp designs phones and computers in Cupertino. Services net sales grew because "
    "of higher advertising and cloud revenue. Mac sales fell because fewer laptops were sold."
)


def write_table_pdf(path: Path) -> Path:
    """Prose on page 1; on page 2 a caption and a table with two header rows, like a 10-Q."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_font("Helvetica", size=11)
    pdf.add_page()
    pdf.multi_cell(0, 6, PROSE, new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    caption = "The following table shows net sales by category (dollars in millions):"
    for line in ("Products and Services Performance", caption):
        pdf.multi_cell(0, 6, line, new_x="LMARGIN", new_y="NEXT")
    with pdf.table(
        num_heading_rows=2,
        col_widths=(50, 40, 40, 25),
        text_align=("LEFT", "RIGHT", "RIGHT", "RIGHT"),
    ) as table:
        for cells in ROWS:
            row = table.row()
            for cell in cells:
                row.cell(cell)
    pdf.output(str(path))
    return path


def assert_row_quote(answer: dict[str, Any], page: int | None) -> None:
    quote = answer["quote"]
    assert quote["text"] == "Total net sales (Three Months Ended July 1, 2023): $ 81,797"
    assert answer["answer"].startswith(quote["text"])
    assert quote["table"] is True and quote["page"] == page
    chunk = next(s for s in answer["sources"] if s["chunk_id"] == quote["chunk_id"])
    assert chunk["table"] is True
    # Every span is verbatim chunk text: label, header pieces, value.
    assert [s["text"] for s in quote["spans"]] == [
        "Total net sales", "Three Months Ended", "July 1, 2023", "$ 81,797",
    ]  # fmt: skip
    for span in quote["spans"]:
        assert chunk["text"][span["start"] : span["end"]] == span["text"]
    citation = answer["citations"][0]
    assert citation["page"] == page and citation["table"] is True


def test_pdf_table_row_is_the_quote_with_headers_and_page(folio: Folio, docs: Path) -> None:
    write_table_pdf(docs / "report.pdf")
    assert folio.json("ingest", docs)["failed"] == []
    assert_row_quote(folio.json("ask", QUESTION), page=2)

    # A prose question keeps a sentence quote, not a row or a table (refusal is not tested here).
    folio.env["FOLIO_REFUSAL_THRESHOLD"] = "0"
    prose = folio.json("ask", "Why did Services net sales grow?")
    assert prose["quote"]["text"] == (
        "Services net sales grew because of higher advertising and cloud revenue."
    )
    assert prose["quote"]["table"] is False and prose["quote"]["page"] == 1
    assert "|" not in prose["quote"]["text"]

    results = folio.json("search", "total net sales", "--k", "3")["results"]
    assert all(isinstance(r["table"], bool) for r in results)
    table_hit = next(r for r in results if r["table"])
    assert "| Total net sales | $ 81,797 | $ 82,959 | (1)% |" in table_hit["text"]
    assert "| | July 1, 2023 | June 25, 2022 | Change |" in table_hit["text"]


def test_markdown_and_html_tables_answer_with_their_rows(folio: Folio, docs: Path) -> None:
    (docs / "sales.md").write_text(
        "# Quarterly sales\n\nThe team met twice in July to review the launch plans.\n\n"
        "Net sales by category (dollars in millions):\n\n"
        "| Category | Three Months Ended July 1, 2023 | Three Months Ended June 25, 2022 |\n"
        "|---|---:|---:|\n"
        "| iPhone | $ 39,669 | $ 40,665 |\n"
        "| Total net sales | $ 81,797 | $ 82,959 |\n"
    )
    (docs / "staff.html").write_text(
        "<html><head><title>Staff</title></head><body><h1>Staff report</h1>"
        "<p>Headcount grew in every office this year.</p>"
        "<table><caption>Employees by office</caption>"
        "<thead><tr><th>Office</th><th>2023</th><th>2022</th></tr></thead>"
        "<tbody><tr><td>Lisbon</td><td>120</td><td>95</td></tr>"
        "<tr><td>Osaka</td><td>87</td><td>80</td></tr></tbody></table></body></html>"
    )
    assert folio.json("ingest", docs)["failed"] == []
    folio.env["FOLIO_REFUSAL_THRESHOLD"] = "0"  # two tiny documents: the quote is tested here
    md = folio.json("ask", QUESTION)["quote"]
    assert md["text"] == "Total net sales (Three Months Ended July 1, 2023): $ 81,797"
    assert md["table"] is True and md["source"].endswith("sales.md")

    html = folio.json("ask", "How many employees did the Osaka office have in 2022?")["quote"]
    assert html["text"] == "Osaka (2022): 80"
    assert html["table"] is True and html["source"].endswith("staff.html")
    assert [s["text"] for s in html["spans"]] == ["Osaka", "2022", "80"]


def test_long_table_is_split_by_rows_with_its_header_repeated(tmp_path: Path) -> None:
    rows = "\n".join(
        f"| Store number {n} in the northern region | {n * 1000:,} | {n}% |" for n in range(60)
    )
    doc = tmp_path / "stores.md"
    doc.write_text(
        "# Stores\n\nRevenue by store (in dollars):\n\n"
        f"| Store | Revenue 2023 | Growth |\n|---|---|---|\n{rows}\n\nAll stores reopened in May.\n"
    )
    tokenizer = load_tokenizer(resolve_embedding_path("all-MiniLM-L6-v2"))
    chunks = SectionsToChunks(tokenizer, 120, 16).split(load_document(doc), "sha")
    tables = [c for c in chunks if c.table]
    assert len(tables) >= 4
    seen = []
    for chunk in tables:
        assert "Revenue by store (in dollars):" in chunk.text  # the caption
        assert "| Store | Revenue 2023 | Growth |\n|---|" in chunk.text  # the header
        assert len(tokenizer.tokenize(chunk.text)) <= 120
        seen += [line for line in chunk.text.splitlines() if line.startswith("| Store number")]
    # Every row once, whole, in order: rows are never cut or repeated.
    assert seen == rows.splitlines()
    prose = [c for c in chunks if not c.table]
    assert any("All stores reopened in May." in c.text for c in prose)
    assert not any("| Store number" in c.text for c in prose)


def test_docx_tables_stay_in_document_order(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_heading("Annual report", level=1)
    document.add_paragraph("Sales by region follow.")
    table = document.add_table(rows=3, cols=2)
    for r, cells in enumerate([["Region", "Sales"], ["North", "1,200"], ["South", "900"]]):
        for c, text in enumerate(cells):
            table.cell(r, c).text = text
    document.add_heading("Outlook", level=2)
    document.add_paragraph("Next year looks steady.")
    path = tmp_path / "report.docx"
    document.save(str(path))
    sections = load_document(path).sections
    assert sections[0].text == (
        "Annual report\nSales by region follow.\n| Region | Sales |\n|---|\n| North | 1,200 |\n"
        "| South | 900 |"
    )
    assert sections[1].heading == "Annual report > Outlook"


def test_page_highlights_each_cell_of_a_table_quote(
    folio: Folio, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    from conftest import REPO

    for key, value in folio.env.items():
        monkeypatch.setenv(key, value)
    write_table_pdf(docs / "report.pdf")
    assert folio.json("ingest", docs)["failed"] == []
    page = AppTest.from_file(str(REPO / "app" / "streamlit_app.py"), default_timeout=180)
    page.run()
    from page_answers import ask  # the service answers; the page follows

    ask(page, QUESTION)
    shown = "\n".join(str(element.proto.body) for element in page.get("html"))
    assert "Total net sales (Three Months Ended July 1, 2023): $ 81,797" in shown
    # The row label, the header pieces and the value are marked where they stand in the table.
    for piece in ("Total net sales", "Three Months Ended", "July 1, 2023", "$ 81,797"):
        assert f"<mark>{piece}</mark>" in shown
    assert "<mark>$ 82,959</mark>" not in shown
