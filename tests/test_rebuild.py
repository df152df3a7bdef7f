"""A change of embedding model or chunking is refused until `--rebuild`, which loses nothing."""

from __future__ import annotations

from pathlib import Path

from conftest import Folio
from folio.models import resolve_embedding_path
from ingest.chunking import chunker_fingerprint


def test_chunking_change_is_refused_then_rebuilt(folio: Folio, docs: Path, tmp_path: Path) -> None:
    (docs / "a.md").write_text("# A\n\n" + "Alpha facts about the archive. " * 80)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "b.txt").write_text("The basement archive holds the 1950 ledgers.")
    folio.json("ingest", docs)
    folio.json("ingest", elsewhere)
    before = folio.json("sources")["documents"]

    folio.env["FOLIO_CHUNK_SIZE"] = "64"
    refused = folio("ingest", docs)
    assert refused.exit_code == 2
    assert "--rebuild" in refused.stderr and chunker_fingerprint(200, 32) in refused.stderr
    assert folio.json("sources")["documents"] == before

    rebuilt = folio.json("ingest", docs, "--rebuild")
    assert rebuilt["failed"] == [] and rebuilt["chunks_added"] > len(before)
    after = folio.json("sources")["documents"]
    # The document from the other folder was re-embedded too, not dropped.
    assert [d["path"] for d in after] == [d["path"] for d in before]
    assert folio.json("ingest", docs)["unchanged"] == 1
    hit = folio.json("search", "1950 ledgers", "--k", "1")["results"][0]
    assert hit["source"].endswith("b.txt")


def test_embedding_model_change_is_refused(folio: Folio, docs: Path, tmp_path: Path) -> None:
    (docs / "a.txt").write_text("Some words.")
    folio.json("ingest", docs)
    # Another model directory (same files under another name) counts as another model.
    other = tmp_path / "other-minilm"
    source = resolve_embedding_path("all-MiniLM-L6-v2")
    for file in source.rglob("*"):
        if file.is_file():
            target = other / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file)
    folio.env["FOLIO_EMBEDDING_MODEL"] = str(other)
    refused = folio("ingest", docs)
    assert (
        refused.exit_code == 2
        and "other-minilm@" in refused.stderr
        and "--rebuild" in refused.stderr
    )
