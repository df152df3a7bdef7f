"""Text extraction ahead of embedding, in worker processes: pypdf and torch overlap on the cores."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ingest.documents import ExtractedDocument, IngestError
from ingest.loaders import load_document

LOOKAHEAD = 4  # documents extracted ahead of the embedder: bounds memory


def _exit_with_parent(parent: int) -> None:
    """Workers of a SIGKILLed ingest would otherwise wait on their queue forever."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def extract(path: str) -> ExtractedDocument | str:
    """A document, or the one-line reason it cannot be read (picklable either way)."""
    try:
        return load_document(Path(path))
    except IngestError as exc:
        return str(exc)
    except Exception as exc:  # a loader bug must not sink the batch
        return f"could not be read ({type(exc).__name__}: {exc})"


class ParallelExtractor:
    """Hands out extracted documents in the order asked, extracting the next ones meanwhile."""

    def __init__(self, paths: list[str], workers: int | None = None) -> None:
        self._queue = list(paths)
        self._futures: dict[str, Future[ExtractedDocument | str]] = {}
        workers = workers or max(1, min(4, (os.cpu_count() or 2) - 1))
        self._pool: ProcessPoolExecutor | None = None
        if len(paths) > 1:
            # spawn, not fork: a forked child would inherit the parent's torch/OpenMP threads.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=context,
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )

    def _fill(self) -> None:
        assert self._pool is not None
        while self._queue and len(self._futures) < LOOKAHEAD:
            path = self._queue.pop(0)
            self._futures[path] = self._pool.submit(extract, path)

    def get(self, path: str) -> ExtractedDocument:
        if self._pool is None:
            result = extract(path)
        else:
            self._fill()
            future = self._futures.pop(path, None) or self._pool.submit(extract, path)
            try:
                result = future.result()
            except BrokenProcessPool:
                result = "the extraction worker crashed on this file"
            self._fill()
        if isinstance(result, str):
            raise IngestError(result)
        return result

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
