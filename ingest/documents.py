"""Typed values passed between the ingestion components."""

from __future__ import annotations

from dataclasses import dataclass, field


class IngestError(Exception):
    """A file cannot be ingested; the message is the one-line reason shown to the user."""


@dataclass(frozen=True)
class Section:
    """A run of extracted text with one location: a PDF page or a heading path."""

    text: str
    start: int  # character offset of this section in the document's extracted text
    page: int | None = None  # 1-based
    heading: str | None = None  # "Top > Sub > Subsub"
    ocr_confidence: float | None = None  # read by OCR with this confidence (0..1); None: not OCR


# (page or None, warning): something the user should know about a document that still went in.
PageWarning = tuple[int | None, str]


@dataclass
class ExtractedDocument:
    title: str
    sections: list[Section]
    pages: int | None = None
    warnings: list[PageWarning] = field(default_factory=list)  # pages OCR could not read

    @property
    def text_length(self) -> int:
        return sum(len(s.text) for s in self.sections)


@dataclass(frozen=True)
class Chunk:
    """One embedded unit. `start`/`end` are offsets into the document's extracted text."""

    chunk_id: str
    text: str
    index: int
    start: int
    end: int
    page: int | None
    heading: str | None
    table: bool = False  # holds (part of) a table, with its caption and header rows repeated
    ocr_confidence: float | None = None  # its section was read by OCR with this confidence


@dataclass
class SourceFile:
    """A file found on disk and hashed, ready to compare with the manifest."""

    path: str
    size: int
    mtime_ns: int
    sha256: str
    extension: str
    chunks: list[Chunk] = field(default_factory=list)
    title: str = ""
    pages: int | None = None
    warnings: list[PageWarning] = field(default_factory=list)
