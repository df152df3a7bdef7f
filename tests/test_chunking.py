"""Chunks: token-sized, offsets into the extracted text, page and heading kept, stable ids."""

from __future__ import annotations

from pathlib import Path

from folio.models import load_tokenizer, resolve_embedding_path
from helpers import write_pdf
from ingest.chunking import SectionsToChunks
from ingest.loaders import SECTION_SEPARATOR, load_document


def splitter(size: int = 60, overlap: int = 10) -> SectionsToChunks:
    return SectionsToChunks(
        load_tokenizer(resolve_embedding_path("all-MiniLM-L6-v2")), size, overlap
    )


def test_offsets_headings_and_token_limits(tmp_path: Path) -> None:
    guide = tmp_path / "guide.md"
    body = " ".join(f"Sentence {i} explains the setup." for i in range(40))
    guide.write_text(
        f"# Guide\n\nIntro.\n\n## Setup\n\n### Linux\n\n{body}\n\n## Usage\n\nRun it.\n"
    )
    document = load_document(guide)
    full = SECTION_SEPARATOR.join(s.text for s in document.sections)
    chunks = splitter().split(document, "sha")
    tokenizer = load_tokenizer(resolve_embedding_path("all-MiniLM-L6-v2"))
    assert len(chunks) > 3
    for chunk in chunks:
        assert full[chunk.start : chunk.end] == chunk.text
        assert len(tokenizer.tokenize(chunk.text)) <= 60
    assert {c.heading for c in chunks} == {"Guide", "Guide > Setup > Linux", "Guide > Usage"}
    assert [c.index for c in chunks] == list(range(len(chunks)))


def test_pdf_chunks_keep_pages_and_ids_are_stable(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "r.pdf", ["First page text.", "Second page: " + "words " * 150])
    document = load_document(pdf)
    assert document.pages == 2
    first = splitter().split(document, "abc")
    assert first[0].page == 1 and {c.page for c in first[1:]} == {2}
    again = splitter().split(load_document(pdf), "abc")
    assert [c.chunk_id for c in first] == [c.chunk_id for c in again]
    other_doc = splitter().split(document, "different-sha")
    assert not {c.chunk_id for c in first} & {c.chunk_id for c in other_doc}
