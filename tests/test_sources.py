"""Sources people can check: printed page labels in the JSON contracts, relevance shown as a
labelled bar in rank order, `[n]` linked to its source, and a readable page image with the cited
passage highlighted. Real files, real Chroma, the real embedding model."""

from __future__ import annotations

import io
import os
import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO, Folio
from helpers import write_labelled_pdf as write_labelled
from helpers import write_pdf

PAGE = str(REPO / "app" / "streamlit_app.py")
PAGES = [
    "# Preface\nThis report describes the harbour of Skerry and its buildings.",
    "# Lighthouse\nThe Skerry lighthouse was built in 1887 from local granite.",
    "# Ferries\nFerries to the outer islands leave every ninety minutes in summer.",
]


def write_labelled_pdf(path: Path) -> Path:
    """The report, its printed page numbers i, 15, 16."""
    return write_labelled(path, PAGES)


@pytest.fixture
def labelled_docs(docs: Path) -> Path:
    write_labelled_pdf(docs / "report.pdf")
    write_pdf(docs / "plain.pdf", ["# Canteen\nThe canteen serves soup at noon on Fridays."])
    (docs / "notes.md").write_text("# Tides\n\nHigh tide at the pier is at six in the evening.\n")
    return docs


def test_page_label_is_read_from_the_pdf_and_follows_file_changes(tmp_path: Path) -> None:
    from retrieval.page_labels import page_label

    pdf = write_labelled_pdf(tmp_path / "report.pdf")
    assert [page_label(str(pdf), n) for n in (1, 2, 3, 4)] == ["i", "15", "16", None]
    plain = write_pdf(tmp_path / "plain.pdf", PAGES)
    assert page_label(str(plain), 2) is None  # the label would only repeat the index
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n")
    assert page_label(str(notes), 1) is None
    assert page_label(str(tmp_path / "gone.pdf"), 1) is None
    # The file is replaced by an unlabelled version: the cached labels are not used.
    time.sleep(0.01)
    write_pdf(pdf, PAGES)
    os.utime(pdf, ns=(time.time_ns(), time.time_ns()))
    assert page_label(str(pdf), 2) is None


def test_printed_page_numbers_label_pdfs_without_a_label_tree(tmp_path: Path) -> None:
    """Like SEC filings: no /PageLabels, the number printed in the footer is the page's name."""
    from retrieval.page_labels import page_label

    body = "The harbour office opens at seven."
    pages = [
        "# Cover\nHarbour report 2025",
        f"{body}\nHarbour report | 1",
        f"{body}\nHarbour report | 2",
        f"{body}\nHarbour report | 3",
        f"{body}\n| Total | 304,182 |",  # a table's last figure is not a page number
    ]
    pdf = write_pdf(tmp_path / "footers.pdf", pages)
    assert [page_label(str(pdf), n) for n in range(1, 6)] == [None, "1", "2", "3", None]
    # Numbers that match the index add nothing.
    same = write_pdf(tmp_path / "same.pdf", [f"{body}\n{n}" for n in (1, 2, 3)])
    assert [page_label(str(same), n) for n in (1, 2, 3)] == [None, None, None]


def test_search_and_ask_json_carry_page_labels(folio: Folio, labelled_docs: Path) -> None:
    assert folio.json("ingest", labelled_docs)["added"] == 3
    found = folio.json("search", "When was the Skerry lighthouse built?", "--k", "4")["results"]
    by_source = {(Path(r["source"]).name, r["page"]): r["page_label"] for r in found}
    assert by_source[("report.pdf", 2)] == "15"
    assert all(label is None for (name, _), label in by_source.items() if name != "report.pdf"), (
        by_source
    )  # Markdown has no pages; plain.pdf's labels are just its page numbers
    hits = folio.json("search", "ferries to the outer islands", "--k", "1")["results"]
    assert (hits[0]["page"], hits[0]["page_label"]) == (3, "16")

    asked = folio.json("ask", "When was the Skerry lighthouse built?")
    assert asked["quote"]["page"] == 2 and asked["quote"]["page_label"] == "15"
    assert asked["citations"] and asked["citations"][0]["page_label"] == "15"
    for source in asked["sources"]:
        assert "page_label" in source
        assert source["page_label"] in (None, "i", "15", "16")


def test_ask_object_and_answer_render_the_same(folio: Folio, labelled_docs: Path) -> None:
    """A saved conversation's ask object shows the same linked answer as the live Answer."""
    from app.render import answer_html, as_answer, where

    folio.json("ingest", labelled_docs)
    asked = folio.json("ask", "When was the Skerry lighthouse built?")
    rebuilt = as_answer(asked)
    assert rebuilt.to_json()["citations"] == asked["citations"]
    assert rebuilt.to_json()["sources"] == asked["sources"]
    assert rebuilt.to_json()["quote"] == asked["quote"]
    n = asked["citations"][0]["n"]
    html = answer_html(asked)
    assert f'href="#src-{asked["answer_id"]}-{n}"' in html, html
    cited = next(h for h in rebuilt.sources if h.rank == n)
    assert where(cited) == "report.pdf, page 2 (printed 15)"


def test_generated_answer_is_safe_markdown_with_linked_citations() -> None:
    from app.render import answer_html

    text = "Built in 1887. See https://skerry.example/history"
    source = {"n": 1, "chunk_id": "c1", "source": "/d/report.pdf", "page": 2,
              "page_label": "15", "score": 0.7, "text": text, "table": False}  # fmt: skip
    sentence = {"support": 0.9, "supported": True, "unsupported_terms": [], "source": 1,
                "evidence": "Built in 1887.", "chunk_id": "c1"}  # fmt: skip
    asked = {
        "question": "q", "answer_id": "abc", "mode": "generate", "refused": False,
        "answer": "It was **built in 1887** [1].\n\n- granite <b>walls</b>\n- see "
        "[history](https://skerry.example/history) or [prizes](https://evil.example/)\n\n"
        "It cost 4 million pounds.",
        "sources": [source], "citations": [{**source}],
        "sentences": [
            {**sentence, "text": "It was **built in 1887** [1].", "sentence": "It was built"},
            {**sentence, "supported": False, "text": "It cost 4 million pounds.",
             "sentence": "It cost 4 million pounds."},
        ],
    }  # fmt: skip
    shown = answer_html(asked)
    assert "<strong>built in 1887</strong>" in shown and "<li>" in shown
    assert '<a class="folio-cite" href="#src-abc-1"' in shown
    assert "&lt;b&gt;walls&lt;/b&gt;" in shown  # raw HTML from the model stays text
    assert 'href="https://skerry.example/history"' in shown  # the document has that URL
    assert "evil.example" not in re.sub(r"\[prizes\]\(https://evil\.example/\)", "", shown)
    assert re.search(r'class="folio-unsupported"[^>]*>It cost 4 million pounds\.</span>', shown)


def test_relevance_is_a_label_never_a_negative_number() -> None:
    from app.render import relevance, relevance_html

    assert relevance(0.71)[0] == "strong match"
    assert relevance(0.45)[0] == "fair match"
    assert relevance(0.2)[0] == "weak match"
    bar = relevance_html(-0.23)
    assert "weak match" in bar and "width:0%" in bar and "-0" not in bar
    assert "similarity 1.00" in relevance_html(1.2)


def test_page_image_is_readable_and_highlights_the_passage(tmp_path: Path) -> None:
    from PIL import Image

    from app.previews import HIGHLIGHT_ON_WHITE, render_pdf_page

    pdf = write_labelled_pdf(tmp_path / "report.pdf")
    preview = render_pdf_page(str(pdf), 2, ["Skerry lighthouse was built in 1887"])
    assert preview is not None
    image = Image.open(io.BytesIO(preview.png)).convert("RGB")
    assert image.width >= 1200 and preview.width == image.width
    assert len(preview.highlights) == 1
    left, top, right, bottom = preview.highlights[0]
    inside = [image.getpixel((x, y)) for x in range(left, right) for y in range(top, bottom)]
    share = sum(pixel == HIGHLIGHT_ON_WHITE for pixel in inside) / len(inside)
    assert share > 0.5, share  # the paper under the passage is tinted, its text stays dark
    outside = [image.getpixel((x, bottom + 40)) for x in range(left, right)]
    assert HIGHLIGHT_ON_WHITE not in outside
    # A passage that is not on the page marks nothing.
    assert render_pdf_page(str(pdf), 2, ["ninety minutes in summer"]).highlights == ()  # type: ignore[union-attr]


def test_table_quote_marks_its_row_and_column_not_every_repeat() -> None:
    """A table value's row label and column header are marked where they line up with the
    value, not wherever else the page repeats them (in PDF points: y grows upwards)."""
    from app.previews import _nearest_occurrences

    value = [(400.0, 500.0, 440.0, 510.0)]
    label_in_row, label_in_prose = [(40.0, 500.0, 120.0, 510.0)], [(40.0, 300.0, 120.0, 310.0)]
    header_above, date_in_prose = [(390.0, 600.0, 450.0, 610.0)], [(395.0, 450.0, 455.0, 460.0)]
    date_elsewhere = [(100.0, 200.0, 160.0, 210.0)]
    found = [[label_in_prose, label_in_row], [date_in_prose, header_above], [value]]
    assert _nearest_occurrences(found) == [label_in_row, header_above, value]
    # Repeated, and never in line with the value: left unmarked rather than marked wrongly.
    assert _nearest_occurrences([[date_in_prose, date_elsewhere], [value]]) == [value]
    # A single passage (a quoted sentence): every occurrence.
    assert _nearest_occurrences([[label_in_row, label_in_prose]]) == [label_in_row, label_in_prose]


@pytest.fixture
def page(folio: Folio, labelled_docs: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    for key, value in folio.env.items():
        monkeypatch.setenv(key, value)
    assert folio.json("ingest", labelled_docs)["added"] == 3
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def source_labels(at: AppTest, timeout: float = 120) -> list[str]:
    """The source expanders' labels once the answer is in (the service's worker answers the
    question as a job; the page shows it on a rerun after it finished)."""
    deadline = time.monotonic() + timeout
    while True:
        assert not at.exception, at.exception
        labels = [e.label for e in at.expander if e.label.startswith("[")]
        if labels or time.monotonic() > deadline:
            return labels
        time.sleep(0.3)
        at.run()


def test_page_lists_sources_by_rank_with_relevance_labels(page: AppTest) -> None:
    page.chat_input[0].set_value("When was the Skerry lighthouse built?").run()
    labels = source_labels(page)
    ranks = [int(re.match(r"\[(\d+)\]", label).group(1)) for label in labels]  # type: ignore[union-attr]
    assert ranks == sorted(ranks) and ranks[0] == 1, labels
    assert all(re.search(r"· (strong|fair|weak) match", label) for label in labels), labels
    assert any("report.pdf, page 2 (printed 15)" in label for label in labels), labels
    shown = "\n".join(labels) + "\n".join(str(h.proto.body) for h in page.get("html"))
    assert not re.search(r"(?<![\w#-])-\d", shown), "a negative number is shown"
    assert re.search(r'<a class="folio-cite" href="#src-\w+-\d+"', shown)
    assert any("best ranked first" in c.value for c in page.caption)
