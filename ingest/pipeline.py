"""Files to index: discover, hash, compare with the manifest, extract, chunk, embed, commit."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from folio.models import EmbeddingModel, embedder_fingerprint
from folio.settings import Settings
from folio.store import ChromaStore
from ingest.chunking import SectionsToChunks, chunker_fingerprint
from ingest.discovery import discover, hash_file
from ingest.documents import Chunk, IngestError, SourceFile
from ingest.extraction import ParallelExtractor
from ingest.index import CollectionIndex, PreparedDocument, write_lock

EMBED_STEP = 256  # chunks per embedding call: the progress bar's step


@dataclass
class IngestReport:
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    chunks_added: int = 0
    chunks_removed: int = 0
    seconds: float = 0.0
    warnings: list[dict[str, Any]] = field(default_factory=list)  # {"path", "page", "warning"}

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


class IngestProgress:
    """Callbacks for a progress display; the default shows nothing."""

    def notice(self, message: str) -> None: ...

    def failed(self, path: str, error: str) -> None: ...

    def start_files(self, total: int) -> None: ...

    def file_done(self, path: str) -> None: ...

    def chunks_queued(self, count: int) -> None: ...

    def chunks_embedded(self, count: int) -> None: ...


def _under(path: str, directory: Path) -> bool:
    return path.startswith(str(directory).rstrip(os.sep) + os.sep)


class FilesToIndex:
    """Ingests files into one collection, incrementally and crash-safely."""

    def __init__(
        self,
        settings: Settings,
        store: ChromaStore,
        collection: str | None = None,
        progress: IngestProgress | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.collection = collection or settings.collection
        self.progress = progress or IngestProgress()
        self._embedding: EmbeddingModel | None = None
        self._chunker: SectionsToChunks | None = None

    # Models load only when something must be embedded: re-ingesting an unchanged corpus is fast.
    def _models(self) -> tuple[EmbeddingModel, SectionsToChunks]:
        if self._embedding is None or self._chunker is None:
            from folio.models import load_embedding_model

            self._embedding = load_embedding_model(self.settings)
            self._chunker = SectionsToChunks(
                self._embedding.tokenizer, self.settings.chunk_size, self.settings.chunk_overlap
            )
        return self._embedding, self._chunker

    def run(self, paths: list[Path], *, prune: bool = True, rebuild: bool = False) -> IngestReport:
        started = time.perf_counter()
        report = IngestReport()
        with write_lock(self.settings, on_wait=self.progress.notice):
            index = CollectionIndex(self.settings, self.store, self.collection)
            try:
                self._run_locked(index, paths, prune, rebuild, report)
            finally:
                index.close()
        report.seconds = time.perf_counter() - started
        return report

    def _run_locked(
        self,
        index: CollectionIndex,
        paths: list[Path],
        prune: bool,
        rebuild: bool,
        report: IngestReport,
    ) -> None:
        index.recover()
        manifest = index.manifest
        embedder = embedder_fingerprint(self.settings)
        chunker = chunker_fingerprint(self.settings.chunk_size, self.settings.chunk_overlap)
        # A rebuild re-ingests every document it wipes; the list survives a crash in the meta table.
        carried = json.loads(manifest.get_meta("rebuild_paths") or "[]")
        if rebuild:
            carried = sorted({*carried, *(d.path for d in manifest.documents())})
            manifest.set_meta({"rebuild_paths": json.dumps(carried)})
            index.wipe()
            manifest.set_meta({"rebuild_paths": json.dumps(carried)})
        index.check_config(embedder, chunker)
        extra = [Path(p) for p in carried if Path(p).exists()]

        found = discover([*paths, *extra])
        report.skipped = len(found.skipped)
        for path, notice in found.skipped:
            self.progress.notice(f"skipped: {path}: {notice}")
        for path, error in found.failed:
            self._fail(report, path, error)

        self.progress.start_files(len(found.files))
        to_process: list[tuple[SourceFile, bool]] = []
        for file in found.files:
            try:
                source = hash_file(file, self.settings.max_file_bytes)
            except IngestError as exc:
                self._fail(report, str(file), str(exc))
                self.progress.file_done(str(file))
                continue
            existing = manifest.document(source.path)
            if existing is not None and existing.sha256 == source.sha256:
                report.unchanged += 1
                self.progress.file_done(source.path)
            else:
                to_process.append((source, existing is not None))

        if prune:
            on_disk = {str(f) for f in found.files}
            gone = [
                d.path
                for d in manifest.documents()
                if any(_under(d.path, directory) for directory in found.directories)
                and d.path not in on_disk
            ]
            if gone:
                report.chunks_removed += index.remove(gone)
                report.removed += len(gone)

        self._process(index, to_process, embedder, chunker, report)
        index.refresh_sparse()
        if carried:
            manifest.delete_meta("rebuild_paths")

    def _warn(self, report: IngestReport, source: SourceFile) -> None:
        for page, warning in source.warnings:  # pages OCR could not read: said, not skipped
            report.warnings.append({"path": source.path, "page": page, "warning": warning})
            self.progress.notice(f"warning: {source.path}: page {page}: {warning}")

    def _fail(self, report: IngestReport, path: str, error: str) -> None:
        report.failed.append({"path": path, "error": error})
        self.progress.failed(path, error)

    def _process(
        self,
        index: CollectionIndex,
        to_process: list[tuple[SourceFile, bool]],
        embedder: str,
        chunker: str,
        report: IngestReport,
    ) -> None:
        group: list[tuple[SourceFile, PreparedDocument, bool]] = []
        group_chunks = 0
        by_sha: dict[str, PreparedDocument] = {}
        to_extract = self._needs_extraction(index, to_process)
        extractor = ParallelExtractor(
            to_extract, ocr=self.settings.ocr, ocr_processes=self.settings.ocr_processes
        )
        try:
            if to_extract:
                self._models()  # loads while the extraction worker reads the first files
            for source, is_update in to_process:
                try:
                    prepared = self._prepare(index, source, by_sha, extractor, embedder, chunker)
                except IngestError as exc:
                    self._fail(report, source.path, str(exc))
                    self.progress.file_done(source.path)
                    continue
                by_sha.setdefault(source.sha256, prepared)
                self._warn(report, source)
                group.append((source, prepared, is_update))
                group_chunks += len(prepared.new_chunks)
                if group_chunks >= self.settings.commit_every_chunks:
                    self._commit(index, group, report)
                    group, group_chunks = [], 0
            if group:
                self._commit(index, group, report)
        finally:
            extractor.close()

    @staticmethod
    def _needs_extraction(
        index: CollectionIndex, to_process: list[tuple[SourceFile, bool]]
    ) -> list[str]:
        """Files whose content is not indexed yet (nor earlier in this batch)."""
        seen: set[str] = set()
        paths = []
        for source, _ in to_process:
            if source.sha256 in seen or any(
                p != source.path for p in index.manifest.paths_with_sha(source.sha256)
            ):
                continue
            seen.add(source.sha256)
            paths.append(source.path)
        return paths

    def _prepare(
        self,
        index: CollectionIndex,
        source: SourceFile,
        by_sha: dict[str, PreparedDocument],
        extractor: ParallelExtractor,
        embedder: str,
        chunker: str,
    ) -> PreparedDocument:
        # Identical content already indexed (here or under another path): share its chunks.
        twin = by_sha.get(source.sha256)
        if twin is not None:
            source.title, source.pages = twin.record.title, twin.record.pages
            record = index.new_record(source, len(twin.chunk_ids), embedder, chunker)
            return PreparedDocument(record, twin.chunk_ids, [])
        for other in index.manifest.paths_with_sha(source.sha256):
            other_record = index.manifest.document(other)
            if other_record is not None and other != source.path:
                source.title, source.pages = other_record.title, other_record.pages
                ids = index.manifest.chunk_ids(other)
                return PreparedDocument(
                    index.new_record(source, len(ids), embedder, chunker), ids, []
                )
        document = extractor.get(source.path)
        _, splitter = self._models()
        chunks = splitter.split(document, source.sha256)
        source.title, source.pages = document.title, document.pages
        source.warnings = document.warnings
        ids = [chunk.chunk_id for chunk in chunks]
        self.progress.chunks_queued(len(chunks))
        return PreparedDocument(index.new_record(source, len(ids), embedder, chunker), ids, chunks)

    def _embed(self, chunks: list[Chunk]) -> list[list[float]]:
        embedding, _ = self._models()
        vectors: dict[str, list[float]] = {}
        # Longest first in fixed steps: little padding waste, and the progress bar moves evenly.
        ordered = sorted(chunks, key=lambda chunk: len(chunk.text), reverse=True)
        for start in range(0, len(ordered), EMBED_STEP):
            step = ordered[start : start + EMBED_STEP]
            embedded = embedding.embed(
                [chunk.text for chunk in step], batch_size=self.settings.embedding_batch_size
            )
            vectors.update(zip((chunk.chunk_id for chunk in step), embedded, strict=True))
            self.progress.chunks_embedded(len(step))
        return [vectors[chunk.chunk_id] for chunk in chunks]

    def _commit(
        self,
        index: CollectionIndex,
        group: list[tuple[SourceFile, PreparedDocument, bool]],
        report: IngestReport,
    ) -> None:
        written, deleted = index.commit([(s, p) for s, p, _ in group], self._embed)
        report.chunks_added += written
        report.chunks_removed += deleted
        for source, _, is_update in group:
            if is_update:
                report.updated += 1
            else:
                report.added += 1
            self.progress.file_done(source.path)
