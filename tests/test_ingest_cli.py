"""`folio ingest`, `sources`, `remove`, `search` through the CLI, on every store backend."""

from __future__ import annotations

from pathlib import Path

from conftest import Folio
from helpers import write_docx, write_pdf

PAGES = [
    "# Harbour report\nThe harbour office opens at seven in the morning.",
    "# Lighthouse\nThe Skerry lighthouse was painted red and white in 1931 by the keeper Ada Lund.",
    "# Ferries\nFerries to the outer islands leave every ninety minutes in summer.",
]
INGEST_KEYS = {
    "added", "updated", "unchanged", "removed", "skipped", "failed",
    "chunks_added", "chunks_removed", "seconds", "warnings",
}  # fmt: skip


def test_pdf_pages_are_cited_and_reingest_embeds_nothing(any_folio: Folio, docs: Path) -> None:
    write_pdf(docs / "harbour.pdf", PAGES, title="Harbour report")
    (docs / "notes.md").write_text("# Notes\n\n## Tides\n\nHigh tide is at noon on Sundays.\n")

    first = any_folio.json("ingest", docs)
    assert set(first) == INGEST_KEYS
    assert (first["added"], first["failed"], first["unchanged"]) == (2, [], 0)
    assert first["chunks_added"] >= 4

    found = any_folio.json("search", "Who painted the lighthouse?", "--k", "3")
    assert found["query"] == "Who painted the lighthouse?"
    top = found["results"][0]
    fields = {
        "rank", "chunk_id", "source", "page", "page_label", "score", "text", "table",
        "ocr", "ocr_confidence",
    }  # fmt: skip
    assert set(top) == fields
    assert top["rank"] == 1 and top["page"] == 2
    assert top["source"] == str(docs / "harbour.pdf")
    assert "Ada Lund" in top["text"]

    tide = any_folio.json("search", "When is high tide?", "--k", "1")["results"][0]
    assert tide["page"] is None and tide["source"].endswith("notes.md")

    again = any_folio.json("ingest", docs)
    assert (again["unchanged"], again["added"], again["chunks_added"]) == (2, 0, 0)
    plain = any_folio("ingest", docs)
    assert plain.exit_code == 0 and "Nothing to embed" in plain.stdout


def test_changed_file_replaces_its_chunks_and_deleted_file_is_pruned(
    any_folio: Folio, docs: Path
) -> None:
    note = docs / "policy.txt"
    note.write_text("The office coffee machine is cleaned on Fridays.")
    (docs / "other.txt").write_text("Visitors sign in at the front desk.")
    any_folio.json("ingest", docs)

    note.write_text("The office coffee machine is cleaned on Tuesdays by facilities.")
    changed = any_folio.json("ingest", docs)
    assert (changed["updated"], changed["unchanged"]) == (1, 1)
    assert changed["chunks_removed"] == 1 and changed["chunks_added"] == 1
    texts = [
        r["text"]
        for r in any_folio.json("search", "coffee machine cleaning", "--k", "5")["results"]
    ]
    assert any("Tuesdays" in t for t in texts) and not any("Fridays" in t for t in texts)

    (docs / "other.txt").unlink()
    kept = any_folio.json("ingest", docs, "--no-prune")
    assert kept["removed"] == 0
    assert len(any_folio.json("sources")["documents"]) == 2

    pruned = any_folio.json("ingest", docs)
    assert pruned["removed"] == 1 and pruned["chunks_removed"] == 1
    sources = any_folio.json("sources")["documents"]
    assert [d["path"] for d in sources] == [str(note)]


def test_identical_files_are_embedded_once(any_folio: Folio, docs: Path) -> None:
    text = "Quarterly revenue rose to 12 million crowns, driven by ferry tickets."
    (docs / "a.txt").write_text(text)
    (docs / "b").mkdir()
    (docs / "b" / "copy.txt").write_text(text)
    report = any_folio.json("ingest", docs)
    assert report["added"] == 2 and report["chunks_added"] == 1
    sources = any_folio.json("sources")["documents"]
    assert len(sources) == 2 and sources[0]["sha256"] == sources[1]["sha256"]

    # Removing the path the shared chunk names must keep it findable under the other path.
    removed = any_folio.json("remove", docs / "a.txt")
    assert removed["chunks_removed"] == 0
    hit = any_folio.json("search", "quarterly revenue", "--k", "1")["results"][0]
    assert hit["source"] == str(docs / "b" / "copy.txt")


def test_sources_and_remove(any_folio: Folio, docs: Path) -> None:
    write_pdf(docs / "harbour.pdf", PAGES)
    (docs / "sub").mkdir()
    (docs / "sub" / "x.md").write_text("# X\n\nThe x-ray room is on floor two.")
    (docs / "sub" / "y.md").write_text("# Y\n\nThe yoga room is on floor three.")
    any_folio.json("ingest", docs)

    listed = any_folio.json("sources")["documents"]
    pdf = next(d for d in listed if d["path"].endswith("harbour.pdf"))
    assert pdf["pages"] == 3 and pdf["chunks"] >= 3 and len(pdf["sha256"]) == 64
    assert {"path", "pages", "chunks", "sha256", "ingested_at"} <= set(pdf)

    human = any_folio("sources")
    assert "harbour.pdf" in human.stdout and "3 pages" in human.stdout

    gone = any_folio.json("remove", docs / "sub")
    assert len(gone["removed"]) == 2 and gone["chunks_removed"] == 2
    results = any_folio.json("search", "yoga room", "--k", "5")["results"]
    assert all("yoga" not in r["text"] for r in results)

    missing = any_folio("remove", docs / "never.txt")
    assert missing.exit_code == 1 and "never.txt: not in collection" in missing.stderr


def test_markdown_html_docx_and_text_keep_their_structure(folio: Folio, docs: Path) -> None:
    (docs / "guide.md").write_text(
        "# Guide\n\nIntro text.\n\n## Install\n\n### Linux\n\nUse the tarball on Linux.\n"
        "```\n# not a heading inside code\n```\n"
    )
    (docs / "page.html").write_text(
        "<html><head><title>Staff page</title><style>.x{color:red}</style></head><body>"
        "<script>var secret = 'zebra-script-token';</script><h1>Staff</h1>"
        "<p>The canteen serves soup on Mondays.</p><div style='display:none'>hidden-walrus</div>"
        "</body></html>"
    )
    write_docx(docs / "memo.docx", "Memo", {"Parking": "Bicycles park behind building C."})
    (docs / "plain.txt").write_text("Plain text about the archive in the basement.")
    report = folio.json("ingest", docs)
    assert report["added"] == 4 and report["failed"] == []

    def top(query: str) -> dict[str, object]:
        return dict(folio.json("search", query, "--k", "1")["results"][0])

    assert "tarball" in str(top("How do I install on Linux?")["text"])
    assert "soup" in str(top("canteen menu")["text"])
    assert "Bicycles" in str(top("where to park a bicycle")["text"])
    for query in ("zebra-script-token", "hidden-walrus"):
        assert all(
            query not in r["text"] for r in folio.json("search", query, "--k", "10")["results"]
        )


def test_unsupported_files_are_skipped_with_a_notice(folio: Folio, docs: Path) -> None:
    (docs / "song.mp3").write_bytes(b"ID3\x03")  # images are read by OCR now; audio is not
    (docs / ".hidden.md").write_text("# secret")
    (docs / "ok.txt").write_text("A fine note about lunch.")
    result = folio("ingest", docs)
    assert result.exit_code == 0
    assert "skipped:" in result.stderr and "song.mp3" in result.stderr
    report = folio.json("ingest", docs)
    assert report["skipped"] == 1 and report["unchanged"] == 1
    assert all(".hidden" not in d["path"] for d in folio.json("sources")["documents"])


def test_usage_errors_exit_2(folio: Folio, docs: Path) -> None:
    assert folio("ingest").exit_code == 2
    assert folio("search").exit_code == 2
    bad = folio("ingest", docs, "--collection", "Bad Name!")
    assert bad.exit_code == 2 and "collection" in bad.stderr


def test_collections_are_separate(folio: Folio, docs: Path) -> None:
    (docs / "a.txt").write_text("Team alpha meets on Mondays.")
    folio.json("ingest", docs / "a.txt", "--collection", "alpha")
    assert folio.json("search", "team meeting", "--collection", "beta")["results"] == []
    assert folio.json("search", "team meeting", "--collection", "alpha")["results"]
