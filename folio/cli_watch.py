"""`folio ingest PATH... --watch`: a catch-up sync, then one sync per burst of changes.

Each sync is the ordinary ingest (hash-based, write lock, one-line errors) over what changed, so
the watcher adds no state of its own: stopping it at any point, even with SIGKILL, leaves what
the ingest leaves, and the next start's catch-up sync applies whatever changed meanwhile.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

import typer

from folio.cli import emit_json, fail, ingest_summary, open_service, user_errors
from folio.settings import Settings

RETRY_AFTER_S = 10.0  # a sync that found the index locked or the store down tries again then
POLL_S = 1.0  # how often the idle loop wakes (signals are handled at once regardless)


class Terminated(BaseException):
    """SIGTERM: stop like Ctrl-C, but as a clean exit (service managers send it to stop). A
    BaseException, like KeyboardInterrupt, so no `except Exception` on the way swallows it."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def watch(
    settings: Settings,
    paths: list[Path],
    *,
    as_json: bool,
    prune: bool,
    rebuild: bool,
    debounce_s: float,
    polling: bool,
) -> int:
    """Sync until stopped; the exit code: 130 after Ctrl-C, 0 after SIGTERM."""
    from ingest.watch import ChangeWatcher, WatchError

    try:
        watcher = ChangeWatcher(
            paths, ignore=[settings.data_dir], debounce_s=debounce_s, polling=polling
        )
        watcher.start()  # before the catch-up sync: what changes during it is synced after it
    except WatchError as exc:
        fail(str(exc), 2)
    previous = signal.signal(signal.SIGTERM, _terminate)
    session = _Session()
    try:
        typer.echo(
            f"watching {len(watcher.paths)} path(s) for changes into '{settings.collection}' "
            f"(debounce {debounce_s:g}s{', polling' if polling else ''}); Ctrl-C stops",
            err=True,
        )
        _sync_until_stopped(
            settings, watcher, session, as_json=as_json, prune=prune, rebuild=rebuild
        )
    except (KeyboardInterrupt, Terminated) as stop:
        # A sync under way is abandoned where it stood: what it committed stays, what it only
        # journalled is rolled back by the next command, as after a crash.
        abandoned = "; the sync under way stopped, the next start completes it"
        typer.echo(f"stopped watching{abandoned if session.syncing else ''}", err=True)
        return 0 if isinstance(stop, Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        watcher.stop()
    return 0  # not reached: only a signal ends the loop


@dataclass
class _Session:
    syncing: bool = False


def _sync_until_stopped(
    settings: Settings,
    watcher: Any,
    session: _Session,
    *,
    as_json: bool,
    prune: bool,
    rebuild: bool,
) -> None:
    from folio.store import StoreUnavailableError
    from ingest.index import IndexLockedError

    targets = watcher.full()
    trigger = "start"
    count = 0
    while True:
        if targets:
            with user_errors():  # other failures (a config mismatch, ...) end the watch
                try:
                    session.syncing = True
                    report = _sync(settings, targets, prune=prune, rebuild=rebuild, tty=not as_json)
                    session.syncing = False
                except (IndexLockedError, StoreUnavailableError) as exc:
                    typer.echo(f"error: {exc}; trying again in {RETRY_AFTER_S:.0f}s", err=True)
                    watcher.changed([*targets.ingest, *targets.remove], full=targets.full,
                                    hold_s=RETRY_AFTER_S)  # fmt: skip
                    report = None
                    session.syncing = False
            if report is not None:
                count += 1
                rebuild = False
                if as_json:
                    emit_json({**report.to_json(), "sync": count, "trigger": trigger})
                else:
                    stamp = datetime.now().strftime("%H:%M:%S")
                    summary = ingest_summary(report, settings.collection)
                    typer.echo(f"[{stamp}] sync {count} ({trigger}): {summary}")
                trigger = "change"
        targets = watcher.wait(POLL_S)


def _sync(settings: Settings, targets: Any, *, prune: bool, rebuild: bool, tty: bool) -> Any:
    """One ingest over the targets, plus the removal of documents whose files are gone. Chroma
    is opened for the sync and closed after it: an embedded store held open between syncs would
    not see what other processes (a `folio ingest`, the web UI) wrote meanwhile. The models stay
    loaded (they are cached per process)."""
    from folio.progress import ingest_progress
    from ingest.pipeline import IngestReport

    started = time.perf_counter()
    report = IngestReport()
    service = open_service(settings)
    with ingest_progress(enabled=tty and sys.stderr.isatty()) as progress, _closing(service):
        if targets.ingest or rebuild:
            report = service.ingest(
                None, targets.ingest, prune=prune, rebuild=rebuild, progress=progress
            )
        if targets.remove and prune:
            gone = service.remove(None, [str(p) for p in targets.remove], on_wait=progress.notice)
            report.removed += len(gone["removed"])
            report.chunks_removed += gone["chunks_removed"]
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def _closing(service: Any) -> Iterator[None]:
    try:
        yield
    finally:
        service.close()
        if "store" in vars(service):  # connected during the sync (a cached property)
            service.store.close()
