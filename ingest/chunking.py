"""Split extracted sections into chunks measured in the embedding model's tokens."""

from __future__ import annotations

import hashlib
from typing import Any

from ingest.documents import Chunk, ExtractedDocument

# Bump when the splitting rules change: stored chunks then no longer match what we would make.
CHUNKER_VERSION = 1


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
        fingerprint = self.fingerprint
        for section in document.sections:
            # LangChain's add_start_index mixes token overlap with character offsets; find each
            # chunk after the previous one's start instead.
            cursor = 0
            for text in self._splitter.split_text(section.text):
                found = section.text.find(text, cursor)
                local = found if found >= 0 else cursor
                cursor = local + 1
                start = section.start + local
                index = len(chunks)
                chunks.append(
                    Chunk(
                        chunk_id=chunk_id(document_sha256, fingerprint, index, text),
                        text=text,
                        index=index,
                        start=start,
                        end=start + len(text),
                        page=section.page,
                        heading=section.heading,
                    )
                )
        return chunks
