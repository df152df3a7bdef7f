"""Watch folders and files for changes (watchdog), and say what the next sync must look at.

The watcher only collects paths: what changed is decided at sync time by looking at the disk (an
editor's save can be a delete, a create and a rename of temporary files), and the sync itself is
the ordinary ingest, hash-based, so a missed or repeated event costs a rescan, never a wrong index.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.discovery import ignored_name
from ingest.loaders import SUPPORTED_EXTENSIONS

# A folder that never goes quiet (a large copy, a sync client) is still synced this often.
MAX_DELAY_FACTOR = 10
MIN_MAX_DELAY_S = 30.0
CHANGE_EVENTS = frozenset({"created", "modified", "moved", "deleted"})


class WatchError(RuntimeError):
    """The paths cannot be watched; the message says why and what to do."""


@dataclass
class SyncTargets:
    """What one sync looks at: paths to ingest (directories are pruned), paths whose documents
    must go (they are gone from disk), or everything watched (`full`, after a start or a loss)."""

    ingest: list[Path] = field(default_factory=list)
    remove: list[Path] = field(default_factory=list)
    full: bool = False

    def __bool__(self) -> bool:
        return self.full or bool(self.ingest or self.remove)


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def watched_paths(paths: Iterable[Path]) -> list[Path]:
    """Absolute paths as discovery spells them. A directory must exist; a document may be
    missing (deleted while the watcher was down: the sync removes it) if its folder exists."""
    found: list[Path] = []
    for raw in paths:
        path = raw.expanduser().absolute()
        document = path.suffix.lower() in SUPPORTED_EXTENSIONS and path.parent.is_dir()
        if not (path.exists() or document):
            raise WatchError(f"{path}: no such file or directory")
        if path not in found:
            found.append(path)
    return found


class ChangeWatcher:
    """Collects changed paths under the watched ones; `wait` hands them over after a quiet period
    of `debounce_s` (or at the latest `max_delay_s` after the first change)."""

    def __init__(
        self,
        paths: list[Path],
        *,
        ignore: Iterable[Path] = (),
        debounce_s: float = 2.0,
        max_delay_s: float | None = None,
        polling: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.paths = watched_paths(paths)
        self.folders = [p for p in self.paths if p.is_dir()]
        self.files = {p for p in self.paths if p not in self.folders}
        self.ignore = [p.expanduser().absolute() for p in ignore]
        self.debounce_s = debounce_s
        self.max_delay_s = max_delay_s or max(MIN_MAX_DELAY_S, MAX_DELAY_FACTOR * debounce_s)
        self.polling = polling
        self._clock = clock
        self._changed: set[Path] = set()
        self._full = False
        self._first_at = 0.0
        self._last_at = 0.0
        self._hold_until = 0.0
        self._wake = threading.Condition()
        self._observer: Any = None
        self._overflow = _OverflowListener(self)

    # --- the observer -----------------------------------------------------------------------
    def start(self) -> None:
        from watchdog.events import FileSystemEvent, FileSystemEventHandler

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                watcher._on_event(event)

        if self.polling:
            from watchdog.observers.polling import PollingObserver

            # Polling rescans every folder's entries; network shares need it (no inotify there).
            self._observer = PollingObserver(timeout=max(1.0, self.debounce_s))
        else:
            from watchdog.observers import Observer

            self._observer = Observer()
        handler = Handler()
        try:
            for folder in self.folders:
                self._observer.schedule(handler, str(folder), recursive=True)
            for parent in sorted({f.parent for f in self.files} - set(self.folders)):
                self._observer.schedule(handler, str(parent), recursive=False)
            self._observer.start()
            self._overflow.attach()
        except OSError as exc:
            self.stop()
            raise WatchError(_watch_failure(exc)) from None

    def stop(self) -> None:
        self._overflow.detach()
        if self._observer is not None:
            self._observer.stop()
            if self._observer.is_alive():
                self._observer.join(timeout=5)
            self._observer = None

    def __enter__(self) -> ChangeWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _on_event(self, event: Any) -> None:
        if event.event_type not in CHANGE_EVENTS:
            return  # opened/closed: reads, including the sync's own
        if event.is_directory and event.event_type == "modified":
            return  # an entry inside changed: that entry has its own event
        paths = [event.src_path, getattr(event, "dest_path", "")]
        relevant = [p for p in (_as_path(raw) for raw in paths if raw) if self._relevant(p, event)]
        if relevant:
            self.changed(relevant)

    def _relevant(self, path: Path, event: Any) -> bool:
        if any(_under(path, ignored) for ignored in self.ignore):
            return False  # the data dir inside a watched folder: our own writes
        if path in self.files:
            return True
        root = next((f for f in self.folders if _under(path, f)), None)
        if root is None:
            return False  # a neighbour of a watched file
        # What discovery skips: hidden folders and files, editors' and downloads' temporary files.
        parts = path.relative_to(root).parts
        if any(part.startswith(".") for part in parts):
            return False
        if event.is_directory or not parts:
            return True
        return not ignored_name(parts[-1]) and path.suffix.lower() in SUPPORTED_EXTENSIONS

    # --- handing changes over ---------------------------------------------------------------
    def changed(self, paths: Iterable[Path] = (), full: bool = False, hold_s: float = 0.0) -> None:
        """Note changed paths (or that everything must be rescanned); also how a failed sync
        puts its targets back, to be tried again no sooner than `hold_s` from now."""
        with self._wake:
            now = self._clock()
            self._hold_until = max(self._hold_until, now + hold_s)
            if not (self._changed or self._full):
                self._first_at = now
            self._last_at = now
            self._changed.update(paths)
            self._full = self._full or full
            self._wake.notify_all()

    def _due_at(self) -> float | None:
        if not (self._changed or self._full):
            return None
        due = min(self._last_at + self.debounce_s, self._first_at + self.max_delay_s)
        return max(due, self._hold_until)

    def wait(self, timeout: float) -> SyncTargets:
        """The targets of the next sync once the changes went quiet; empty after `timeout`."""
        give_up = self._clock() + timeout
        with self._wake:
            while True:
                now = self._clock()
                due = self._due_at()
                if due is not None and now >= due:
                    changed, full = self._changed, self._full
                    self._changed, self._full = set(), False
                    return self.full() if full else self.targets(changed)
                if now >= give_up:
                    return SyncTargets()
                self._wake.wait(min(give_up, due if due is not None else give_up) - now)

    def full(self) -> SyncTargets:
        """Everything watched: folders rescanned and pruned, watched files ingested or (gone)
        removed. A gone watched folder is reported missing by the ingest: its documents stay."""
        present = [p for p in self.paths if p in self.folders or p.exists()]
        gone = [p for p in self.paths if p not in present]
        return SyncTargets(ingest=present, remove=gone, full=True)

    def targets(self, changed: Iterable[Path]) -> SyncTargets:
        """Changed paths as they are on disk now: folders are rescanned (and pruned), files
        ingested, and what is gone is removed. A gone watched folder stays an ingest target: the
        ingest reports it missing and keeps its documents (an unmounted share is not a delete)."""
        ingest: set[Path] = set()
        remove: set[Path] = set()
        for path in changed:
            if path.exists() or path in self.folders:
                ingest.add(path)
            else:
                remove.add(path)
        folders = {p for p in ingest if p.is_dir() or p in self.folders}

        def covered(path: Path, by: set[Path]) -> bool:
            return any(path != other and _under(path, other) for other in by)

        return SyncTargets(
            ingest=sorted(p for p in ingest if not covered(p, folders)),
            remove=sorted(p for p in remove if not covered(p, folders | remove)),
        )


class _OverflowListener(logging.Handler):
    """When the kernel's event queue overflows, watchdog re-adds its watches but the lost events
    are gone and it only logs that: a full rescan is the one way not to miss what they said."""

    LOGGERS = ("watchdog.observers.inotify", "watchdog.observers.inotify_c")

    def __init__(self, watcher: ChangeWatcher) -> None:
        super().__init__(logging.WARNING)
        self._watcher = watcher

    def attach(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).addHandler(self)

    def detach(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:
        if "overflow" in record.getMessage().lower():
            self._watcher.changed(full=True)


def _as_path(raw: str | bytes) -> Path:
    return Path(os.fsdecode(raw))


def _watch_failure(exc: OSError) -> str:
    if exc.errno == 28 or "inotify watch limit" in str(exc):  # ENOSPC: out of inotify watches
        return (
            "too many folders to watch (inotify limit): raise it with "
            "`sudo sysctl fs.inotify.max_user_watches=524288`, or use --poll"
        )
    if exc.errno == 24 or "inotify instance limit" in str(exc):  # EMFILE
        return (
            "too many watchers on this machine (inotify instances): raise "
            "fs.inotify.max_user_instances, or use --poll"
        )
    return f"cannot watch: {exc.strerror or exc}"
