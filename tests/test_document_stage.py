"""The document-level stage: in a collection of look-alike reports, a question that names a
company and a quarter is answered from that report; a question that names nothing is not
affected; `--source` still narrows the search."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import Folio
from helpers import write_pdf
from retrieval.documents import Period, QuestionSignals, periods_in

COMPANIES = {"ACME": "Acme Robotics", "BORL": "Borealis Freight", "CBLT": "Cobalt Mining"}
QUARTERS = {(2023, 2): "June 30, 2023", (2023, 3): "September 30, 2023"}


def write_reports(folder: Path) -> dict[tuple[str, int], str]:
    """Six quarterly reports that read alike: same sentences, different figures. Returns each
    report's net sales figure by (ticker, quarter)."""
    figures = {}
    for n, (ticker, company) in enumerate(COMPANIES.items()):
        for (year, quarter), ended in QUARTERS.items():
            sales = f"{410 + 37 * n + 5 * quarter},{n}{quarter}5"
            figures[(ticker, quarter)] = sales
            (folder / f"{year} Q{quarter} {ticker}.md").write_text(
                f"# {company} Inc. quarterly report\n\n"
                f"Form 10-Q for the quarterly period ended {ended}. {company} Inc., "
                "incorporated in Delaware. Commission file number 001-0000.\n\n"
                "## Results of operations\n\n"
                f"Total net sales were ${sales} thousand for the quarter, compared with "
                f"${300 + n},000 thousand a year earlier. Operating expenses rose by "
                f"{4 + n + quarter} percent, mainly from research and development.\n\n"
                "## Liquidity\n\n"
                "Cash and cash equivalents are sufficient for the next twelve months. The "
                "company repurchased shares and paid a quarterly dividend.\n"
            )
    return figures


@pytest.fixture
def staged(base_env: dict[str, str]) -> Folio:
    """The CLI with the document stage on (the default), said explicitly."""
    return Folio({**base_env, "FOLIO_DOCUMENT_STAGE": "true"})


@pytest.fixture
def unstaged(base_env: dict[str, str]) -> Folio:
    """The same data dir with the document stage switched off."""
    return Folio({**base_env, "FOLIO_DOCUMENT_STAGE": "false"})


def top(folio: Folio, question: str, *options: str) -> list[dict[str, object]]:
    return list(folio.json("search", question, "--k", "3", *options)["results"])


def test_a_question_naming_company_and_quarter_is_answered_from_that_report(
    staged: Folio, docs: Path
) -> None:
    figures = write_reports(docs)
    staged.json("ingest", docs)
    questions = {
        ("BORL", 3): "What were Borealis's total net sales in the third quarter of 2023?",
        ("ACME", 2): "Total net sales of Acme Robotics in Q2 2023?",
        ("CBLT", 3): "CBLT 2023 Q3: how much were total net sales?",
        ("CBLT", 2): "What did Cobalt Mining report as total net sales for 2Q23?",
    }
    for (ticker, quarter), question in questions.items():
        first = top(staged, question)[0]
        assert str(first["source"]).endswith(f"2023 Q{quarter} {ticker}.md"), (question, first)
        assert figures[(ticker, quarter)] in str(first["text"])


def test_a_question_naming_nothing_is_unaffected(
    staged: Folio, unstaged: Folio, docs: Path
) -> None:
    write_reports(docs)
    staged.json("ingest", docs)
    for question in (
        "How did total net sales change compared with a year earlier?",
        "Is cash sufficient for the next twelve months?",
        "What drove the rise in operating expenses?",
    ):
        plain = top(unstaged, question, "--k", "6")
        assert [r["chunk_id"] for r in plain] == [
            r["chunk_id"] for r in top(staged, question, "--k", "6")
        ]


def test_source_glob_still_narrows_the_search(staged: Folio, docs: Path) -> None:
    write_reports(docs)
    staged.json("ingest", docs)
    # The glob wins over the company the question names; the quarter still picks the report.
    results = top(staged, "Acme total net sales in Q3 2023", "--source", "*BORL*")
    assert results and all("BORL" in str(r["source"]) for r in results)
    assert str(results[0]["source"]).endswith("2023 Q3 BORL.md")
    assert top(staged, "Acme total net sales", "--source", "*.nothing") == []


def test_company_named_only_on_the_first_page_of_a_pdf(staged: Folio, docs: Path) -> None:
    body = (
        "Revenue for the quarter was {x} million dollars, up from the prior quarter, "
        "driven by higher shipments to data center customers."
    )
    for name, company, revenue in (("filing-1", "Umbra Holdings", "812"), ("filing-2", "Vesper"
                                   " Systems", "377")):  # fmt: skip
        write_pdf(
            docs / f"{name}.pdf",
            [f"{company} Inc.\nQuarterly report on Form 10-Q", body.format(x=revenue)],
        )
    staged.json("ingest", docs)
    for company, file, revenue in (("Vesper", "filing-2", "377"), ("Umbra", "filing-1", "812")):
        first = top(staged, f"What was {company}'s revenue for the quarter?")[0]
        assert str(first["source"]).endswith(f"{file}.pdf") and first["page"] == 2
        assert revenue in str(first["text"])


def test_periods_and_names_are_read_from_questions() -> None:
    assert periods_in("Q3 2023")[0] == {Period(2023, 3)}
    assert periods_in("the third quarter of 2023")[0] == {Period(2023, 3)}
    assert periods_in("2023 Q3 AAPL.pdf")[0] == {Period(2023, 3)}
    assert periods_in("3Q23 and fiscal 2022")[0] == {Period(2023, 3), Period(2022, None)}
    signals = QuestionSignals.parse("Apple's net sales in the latest 10-Q versus NVDA?")
    assert signals.names == {"appl", "nvda"} and signals.recent
    assert QuestionSignals.parse("How did net sales change?").names == frozenset()
