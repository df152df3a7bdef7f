"""Terminal progress for ingestion: a rich progress bar on stderr, or plain notice lines."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

from ingest.pipeline import IngestProgress

MIN_ESTIMATE_S = 2.0  # before this much embedding time, a rate is mostly model warm-up noise


class IngestEta:
    """Time left in an ingest: the embedding throughput so far, applied to the chunks still to
    embed (those queued, and the files not read yet at the chunks-per-file seen so far).

    Files that were unchanged (or failed) before any chunk was queued are left out: they go by in
    a burst while hashing and would make the rest look fast. The clock starts at the first queued
    chunk, after the model loaded, so a one-off load is not spread over the estimate."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.files_total = 0
        self.files_done = 0
        self.files_read = 0  # files whose chunks were queued
        self.chunks_queued = 0
        self.chunks_embedded = 0
        self._started_at: float | None = None
        self._done_before_start = 0

    def start_files(self, total: int) -> None:
        self.files_total = total

    def file_done(self) -> None:
        self.files_done += 1

    def queued(self, count: int) -> None:
        if self._started_at is None:
            self._started_at = self._clock()
            self._done_before_start = self.files_done
        self.files_read += 1
        self.chunks_queued += count

    def embedded(self, count: int) -> None:
        self.chunks_embedded += count

    def seconds_left(self) -> float | None:
        """None until enough work was measured to say."""
        if self.files_total and self.files_done >= self.files_total:
            return 0.0
        if self._started_at is None or self.chunks_embedded == 0 or self.files_read == 0:
            return None
        elapsed = self._clock() - self._started_at
        if elapsed < MIN_ESTIMATE_S:
            return None
        committed = self.files_done - self._done_before_start
        read_not_committed = max(0, self.files_read - committed)
        unread = max(0, self.files_total - self.files_done - read_not_committed)
        chunks_left = (self.chunks_queued - self.chunks_embedded) + unread * (
            self.chunks_queued / self.files_read
        )
        return max(0.0, chunks_left) / (self.chunks_embedded / elapsed)


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return "time left: estimating"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"time left: {hours}:{rest // 60:02d}:{rest % 60:02d}"


class PlainProgress(IngestProgress):
    """Notices and per-file errors as single lines on stderr; no bar."""

    def notice(self, message: str) -> None:
        typer.echo(message, err=True)

    def failed(self, path: str, error: str) -> None:
        typer.echo(f"error: {path}: {error}", err=True)


class RichProgress(PlainProgress):
    """Two bars on stderr: files done (with the time left), and chunks embedded."""

    def __init__(self, progress: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self._progress = progress
        self.eta = IngestEta(clock)
        # The files row shows the time left, recomputed at each refresh (a stall shows as such).
        self._files = progress.add_task("files", total=None, eta=self.eta)
        self._chunks = progress.add_task("chunks embedded", total=0, eta=None)

    def notice(self, message: str) -> None:
        self._progress.console.print(message, markup=False, highlight=False)

    def failed(self, path: str, error: str) -> None:
        self._progress.console.print(f"error: {path}: {error}", markup=False, highlight=False)

    def start_files(self, total: int) -> None:
        self.eta.start_files(total)
        self._progress.update(self._files, total=total)

    def file_done(self, path: str) -> None:
        self.eta.file_done()
        self._progress.advance(self._files)

    def chunks_queued(self, count: int) -> None:
        self.eta.queued(count)
        task = self._progress.tasks[self._chunks]
        self._progress.update(self._chunks, total=(task.total or 0) + count)

    def chunks_embedded(self, count: int) -> None:
        self.eta.embedded(count)
        self._progress.advance(self._chunks, count)


def progress_columns() -> tuple[Any, ...]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.text import Text

    class TimeLeftColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            eta = task.fields.get("eta")
            if not isinstance(eta, IngestEta):
                return Text("")
            return Text(format_eta(eta.seconds_left()), style="progress.remaining")

    return (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeLeftColumn(),
    )


@contextmanager
def ingest_progress(enabled: bool) -> Iterator[IngestProgress]:
    if not enabled:
        yield PlainProgress()
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(*progress_columns(), console=Console(stderr=True), transient=True) as progress:
        yield RichProgress(progress)
