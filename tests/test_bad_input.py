"""Bad files: one clear line each, the rest of the batch goes in, nothing indexed is lost."""

from __future__ import annotations

from pathlib import Path

from conftest import Folio
from helpers import (
    write_encrypted_pdf,
    write_image_only_pdf,
    write_pdf,
    write_truncated_pdf,
)


def test_each_bad_file_gets_one_line_and_the_batch_goes_in(folio: Folio, docs: Path) -> None:
    write_pdf(docs / "good.pdf", ["Page one.", "The vault code is kept by the treasurer."])
    write_encrypted_pdf(docs / "locked.pdf", ["Secret plans."], user_password="hunter2")
    write_truncated_pdf(docs / "truncated.pdf", ["Cut short " * 200] * 3)
    (docs / "corrupt.pdf").write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >>\ngarbage\n%%EOF\n")
    write_image_only_pdf(docs / "scan.pdf")
    (docs / "empty.md").write_bytes(b"")
    (docs / "latin1.txt").write_bytes("Caf\xe9 cr\xe8me".encode("latin-1"))
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02\x03" * 100)
    (docs / "huge.txt").write_text("big " * 300_000)  # about 1.1 MB
    (docs / "fine.md").write_text("# Fine\n\nThe fire drill is on Thursday.")

    result = folio("ingest", docs, "--max-file-mb", "1")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    reasons = {Path(line.split(": ")[1]).name: line for line in errors}
    assert set(reasons) == {
        "locked.pdf", "truncated.pdf", "corrupt.pdf", "scan.pdf", "empty.md",
        "latin1.txt", "binary.txt", "huge.txt",
    }  # fmt: skip
    assert "password" in reasons["locked.pdf"]
    assert "truncated" in reasons["truncated.pdf"]
    assert "corrupt" in reasons["corrupt.pdf"]
    assert "no text layer" in reasons["scan.pdf"] and "OCR found no text" in reasons["scan.pdf"]
    assert "empty file" in reasons["empty.md"]
    assert "not UTF-8" in reasons["latin1.txt"]
    assert "binary" in reasons["binary.txt"]
    assert "limit" in reasons["huge.txt"] and "--max-file-mb" in reasons["huge.txt"]

    listed = {Path(d["path"]).name for d in folio.json("sources")["documents"]}
    assert listed == {"good.pdf", "fine.md"}
    hit = folio.json("search", "who keeps the vault code", "--k", "1")["results"][0]
    assert hit["page"] == 2

    report = folio.json("ingest", docs, "--max-file-mb", "1")
    assert report["unchanged"] == 2 and len(report["failed"]) == 8
    assert {"path", "error"} == set(report["failed"][0])


def test_pdf_with_empty_user_password_opens(folio: Folio, docs: Path) -> None:
    write_encrypted_pdf(docs / "filing.pdf", ["Cover", "Net revenue was 42 million."], "")
    report = folio.json("ingest", docs)
    assert report["added"] == 1 and report["failed"] == []
    hit = folio.json("search", "net revenue", "--k", "1")["results"][0]
    assert hit["page"] == 2 and "42 million" in hit["text"]


def test_a_good_file_turned_bad_keeps_its_indexed_version(folio: Folio, docs: Path) -> None:
    report_pdf = write_pdf(docs / "report.pdf", ["Budget", "The boiler was replaced in March."])
    assert folio.json("ingest", docs)["added"] == 1
    before = folio.json("sources")["documents"]

    write_truncated_pdf(report_pdf, ["Something else entirely " * 100] * 4)
    result = folio.json("ingest", docs)
    assert [Path(f["path"]).name for f in result["failed"]] == ["report.pdf"]
    assert result["removed"] == 0 and result["chunks_removed"] == 0
    assert folio.json("sources")["documents"] == before
    assert "boiler" in folio.json("search", "boiler", "--k", "1")["results"][0]["text"]


def test_missing_path_is_a_file_error_not_a_crash(folio: Folio, docs: Path) -> None:
    (docs / "a.txt").write_text("Alpha.")
    result = folio.json("ingest", docs / "a.txt", docs / "nope.pdf")
    assert result["added"] == 1
    assert result["failed"] == [
        {"path": str(docs / "nope.pdf"), "error": "no such file or directory"}
    ]
