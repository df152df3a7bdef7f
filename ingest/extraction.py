"""Text extraction ahead of embedding, in worker processes: pypdf and torch overlap on the cores."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ingest.documents import ExtractedDocument, IngestError
from ingest.loaders import IMAGE_EXTENSIONS, load_document

LOOKAHEAD = 4  # documents extracted ahead of the embedder: bounds memory


def _exit_with_parent(parent: int) -> None:
    """Workers of a SIGKILLed ingest would otherwise wait on their queue forever. Ctrl-C in a
    terminal reaches the whole process group: the parent handles it, the workers ignore it
    (else each prints a KeyboardInterrupt traceback)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def extract(
    path: str, ocr: bool = True, ocr_processes: int | None = None
) -> ExtractedDocument | str:
    """A document, or the one-line reason it cannot be read (picklable either way). OCR runs
    here, in the worker, so the embedder keeps going meanwhile."""
    try:
        return load_document(Path(path), ocr=ocr, ocr_processes=ocr_processes)
    except IngestError as exc:
        return str(exc)
    except Exception as exc:  # a loader bug must not sink the batch
        return f"could not be read ({type(exc).__name__}: {exc})"


def _may_need_ocr(path: str) -> bool:
    """The cheap check, by extension: whether a PDF has a text layer is only known by reading it."""
    return path.lower().endswith((".pdf", *IMAGE_EXTENSIONS))


def _usable_cores() -> int:
    """Cores this process may run on (a pinned process has fewer than the machine)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 2


class ParallelExtractor:
    """Hands out extracted documents in the order asked, extracting the next ones meanwhile."""

    def __init__(
        self,
        paths: list[str],
        workers: int | None = None,
        ocr: bool = True,
        ocr_processes: int | None = None,
    ) -> None:
        self._ocr = ocr
        self._ocr_processes = ocr_processes
        self._queue = list(paths)
        self._futures: dict[str, Future[ExtractedDocument | str]] = {}
        # As many workers as cores: with int8 embeddings, pypdf's layout extraction is the larger
        # share of an ingest (SEC 10-Qs: ~0.1 s a page against ~0.01 s a chunk to embed), so the
        # embedder waits on one worker; two workers on 2 cores took the 20 filings from 169 s to
        # the README's figure.
        workers = workers or max(1, min(4, _usable_cores()))
        self._pool: ProcessPoolExecutor | None = None
        # One file that may need OCR (a PDF, an image) is read in a worker too: OCR takes seconds
        # a page, and the embedder loads meanwhile instead of after it.
        if len(paths) > 1 or (ocr and any(_may_need_ocr(path) for path in paths)):
            # spawn, not fork: a forked child would inherit the parent's torch/OpenMP threads.
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(
                workers,
                mp_context=context,
                initializer=_exit_with_parent,
                initargs=(os.getpid(),),
            )
            self._fill()  # start at once: the embedder loads while the first files are read

    def _fill(self) -> None:
        assert self._pool is not None
        while self._queue and len(self._futures) < LOOKAHEAD:
            path = self._queue.pop(0)
            self._futures[path] = self._submit(path)

    def _submit(self, path: str) -> Future[ExtractedDocument | str]:
        assert self._pool is not None
        return self._pool.submit(extract, path, self._ocr, self._ocr_processes)

    def get(self, path: str) -> ExtractedDocument:
        if self._pool is None:
            result = extract(path, self._ocr, self._ocr_processes)
        else:
            self._fill()
            future = self._futures.pop(path, None) or self._pool.submit(
                extract, path, self._ocr, self._ocr_processes
            )
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
