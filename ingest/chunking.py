"""Split extracted sections into chunks measured in the embedding model's tokens."""

from __future__ import annotations

import hashlib
from typing import Any

from ingest.documents import Chunk, ExtractedDocument, Section
from ingest.tables import TableBlock, find_tables

# Bump when the splitting rules change: stored chunks then no longer match what we would make.
# v2: tables are extracted as rows (PDF layout mode) and split by rows, headers repeated.
# v3: pages without a text layer and image files are read by OCR (chunks marked `ocr`).
CHUNKER_VERSION = 3


def chunker_fingerprint(chunk_size: int, chunk_overlap: int) -> str:
    return f"tokens-v{CHUNKER_VERSION}:{chunk_size}/{chunk_overlap}"


def chunk_id(document_sha256: str, chunker: str, index: int, text: str) -> str:
    """Stable id from the document's content identity and the chunk's own content."""
    digest = hashlib.sha256(f"{document_sha256}|{chunker}|{index}|{text}".encode())
    return digest.hexdigest()[:32]


class SectionsToChunks:
    """Token-sized chunks that never cross a page or heading section, with character offsets."""

    def __init__(self, tokenizer: Any, chunk_size: int, chunk_overlap: int) -> None:
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        if chunk_overlap >= chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self._tokenizer = tokenizer
        self._splitter = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(
            tokenizer,
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            separators=["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""],
            keep_separator="end",
        )

    @property
    def fingerprint(self) -> str:
        return chunker_fingerprint(self.chunk_size, self.chunk_overlap)

    def split(self, document: ExtractedDocument, document_sha256: str) -> list[Chunk]:
        chunks: list[Chunk] = []
        for section in document.sections:
            cursor = 0
            for table in find_tables(section.text):
                self._prose(section, cursor, table.caption_start, chunks, document_sha256)
                self._table(section, table, chunks, document_sha256)
                cursor = table.end
            self._prose(section, cursor, len(section.text), chunks, document_sha256)
        return chunks

    def _add(
        self, chunks: list[Chunk], sha: str, section: Section, text: str, start: int, end: int,
        table: bool,
    ) -> None:  # fmt: skip
        index = len(chunks)
        chunks.append(
            Chunk(
                chunk_id=chunk_id(sha, self.fingerprint, index, text),
                text=text,
                index=index,
                start=section.start + start,
                end=section.start + end,
                page=section.page,
                heading=section.heading,
                table=table,
                ocr_confidence=section.ocr_confidence,
            )
        )

    def _prose(
        self, section: Section, begin: int, stop: int, chunks: list[Chunk], sha: str
    ) -> None:
        part = section.text[begin:stop]
        if not part.strip():
            return
        # LangChain's add_start_index mixes token overlap with character offsets; find each
        # chunk after the previous one's start instead.
        cursor = 0
        for text in self._splitter.split_text(part):
            found = part.find(text, cursor)
            local = found if found >= 0 else cursor
            cursor = local + 1
            self._add(chunks, sha, section, text, begin + local, begin + local + len(text), False)

    def _tokens(self, text: str) -> int:
        return len(self._tokenizer.tokenize(text))

    def _table(self, section: Section, table: TableBlock, chunks: list[Chunk], sha: str) -> None:
        """Pieces of whole rows; each piece repeats the caption and the header rows, so a row
        is never read without the columns it belongs to."""
        text = section.text
        head_start = table.caption_start
        head = text[head_start : table.header_end]
        # A caption too long to repeat shrinks to the header rows alone.
        if self._tokens(head) > self.chunk_size // 2:
            head_start = table.start
            head = text[head_start : table.header_end]
        budget = max(1, self.chunk_size - self._tokens(head))
        pieces: list[list[tuple[int, int]]] = [[]]
        used = 0
        for row in table.row_spans:
            size = self._tokens(text[row[0] : row[1]])
            if pieces[-1] and used + size > budget:
                pieces.append([])
                used = 0
            pieces[-1].append(row)
            used += size
        for n, rows in enumerate(pieces):
            first, last = rows[0][0], rows[-1][1]
            if n == 0:  # the table as it stands in the text, caption and header included
                self._add(chunks, sha, section, text[head_start:last], head_start, last, True)
            else:
                body = text[first:last]
                piece = f"{head.rstrip(chr(10))}\n{body}" if head else body
                self._add(chunks, sha, section, piece, first, last, True)
