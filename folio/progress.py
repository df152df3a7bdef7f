"""Terminal progress for ingestion: a rich progress bar on stderr, or plain notice lines."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from ingest.pipeline import IngestProgress


class PlainProgress(IngestProgress):
    """Notices and per-file errors as single lines on stderr; no bar."""

    def notice(self, message: str) -> None:
        typer.echo(message, err=True)

    def failed(self, path: str, error: str) -> None:
        typer.echo(f"error: {path}: {error}", err=True)


class RichProgress(PlainProgress):
    """Two bars on stderr: files done, and chunks embedded."""

    def __init__(self, progress: Any) -> None:
        self._progress = progress
        self._files = progress.add_task("files", total=None)
        self._chunks = progress.add_task("chunks embedded", total=0)

    def notice(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)

    def failed(self, path: str, error: str) -> None:
        self._progress.console.print(f"error: {path}: {error}", markup=False, highlight=False)

    def start_files(self, total: int) -> None:
        self._progress.update(self._files, total=total)

    def file_done(self, path: str) -> None:
        self._progress.advance(self._files)

    def chunks_queued(self, count: int) -> None:
        task = self._progress.tasks[self._chunks]
        self._progress.update(self._chunks, total=(task.total or 0) + count)

    def chunks_embedded(self, count: int) -> None:
        self._progress.advance(self._chunks, count)


@contextmanager
def ingest_progress(enabled: bool) -> Iterator[IngestProgress]:
    if not enabled:
        yield PlainProgress()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        yield RichProgress(progress)
