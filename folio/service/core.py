"""FolioService: what every interface (CLI, web UI, HTTP API) calls. One per process.

Interfaces parse input, call these methods and format the result; the JSON objects returned here
are the CLI's `--json` contracts, so every interface says the same thing.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from folio.service.answers import AnswerJob, AnswerQueue, AskRequest, empty_collection_answer
from folio.service.chats import ConversationsAndFeedback
from folio.service.documents import (
    Upload,
    UploadResult,
    document_path,
    match_documents,
    stage_uploads,
    uploads_lock,
)
from folio.service.errors import BadRequest, Conflict, NotFound, ServiceError
from folio.settings import Settings, check_collection_name, one_line_error
from ingest.pipeline import IngestProgress, IngestReport
from retrieval.chain import Answer, AnswerChain, Token
from retrieval.followups import PastTurn
from retrieval.search import QueryToChunks, SearchOptions

LANES = ("generate", "quote")
NO_LLM_FOLLOWUPS = ("bare", "carry")  # follow-up strategies that never call the LLM
RECENT_ANSWERS_KEPT = 1000  # answers feedback can refer to without a saved conversation


class FolioService(ConversationsAndFeedback):
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # Two lanes, each one worker with its own chains: answers that generate wait for the one
        # LLM; quotes (no LLM, a fraction of a second) never wait behind a long generation.
        self._queues = {lane: AnswerQueue(self._answerer(lane)) for lane in LANES}
        # Retrievers and chains: each lane's own, and the searches' (locked).
        self._chains: dict[str, dict[tuple[str, str], AnswerChain]] = {lane: {} for lane in LANES}
        self._searchers: dict[str, QueryToChunks] = {}
        self._search_lock = threading.Lock()
        self._upload_lock = threading.Lock()
        self._stale_lock = threading.Lock()
        self._stale_answers: dict[str, set[str]] = {lane: set() for lane in LANES}
        self._recent: OrderedDict[str, tuple[str, Answer]] = OrderedDict()
        self._warm: dict[str, bool] = {}

    @functools.cached_property
    def store(self) -> Any:  # folio.store.ChromaStore, connected on first use
        from folio.store import ChromaStore

        return ChromaStore(self.settings.data_dir, self.settings.chroma_url)

    def close(self) -> None:
        for lane, queue in self._queues.items():
            if queue.close():  # else the worker still uses its chains: the process ends anyway
                for chain in self._chains[lane].values():
                    chain.retriever.close()
        with self._search_lock:
            for retriever in self._searchers.values():
                retriever.close()
            self._searchers.clear()

    def warm_up(self, llm: bool = True) -> threading.Thread:
        """Load the embedder (and the local LLM) in the background: the first question is not
        kept waiting, and `ready()` says when it is done."""

        # Chroma (and numpy under it) is imported here, on the caller's thread: numpy imported by
        # two threads at once (torch's import beside chromadb's) deadlocks into "cannot import
        # name ... from partially initialized module", as the web page once showed.
        import chromadb  # noqa: F401

        def load() -> None:
            from folio.models import load_embedding_model

            load_embedding_model(self.settings)
            self._warm["embedder"] = True
            if llm and not self.settings.llm_url:
                from folio.llm import load_llm

                load_llm(self.settings)
                self._warm["llm"] = True

        thread = threading.Thread(target=load, name="folio-warm-up", daemon=True)
        thread.start()
        return thread

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Whether answers can be served now: models loaded, store and LLM server reachable."""
        checks: dict[str, Any] = {"embedder": {"ok": self._warm.get("embedder", False)}}
        try:
            self.store.collections()
            checks["store"] = {"ok": True, "location": self.store.location}
        except Exception as exc:  # the store's own message names the server
            checks["store"] = {"ok": False, "error": str(exc)}
        if self.settings.llm_url and self._queues["generate"].busy():
            # The server is generating for us right now: a probe would only wait behind it.
            checks["llm"] = {"ok": True, "backend": "server", "url": self.settings.llm_url,
                             "busy": True}  # fmt: skip
        elif self.settings.llm_url:
            from folio.llm import check_llm

            checks["llm"] = check_llm(self.settings)
        else:
            checks["llm"] = {"ok": self._warm.get("llm", False), "backend": "local"}
        return all(c.get("ok") for c in checks.values()), checks

    # --- settings per request -----------------------------------------------------------------
    def for_collection(self, collection: str | None, **overrides: Any) -> Settings:
        """The settings for one collection and request; bad values are a BadRequest."""
        name = collection or self.settings.collection
        try:
            check_collection_name(name)
        except ValueError as exc:
            raise BadRequest("invalid_collection", f"collection '{name[:80]}': {exc}") from None
        values = {k: v for k, v in overrides.items() if v is not None}
        try:
            return Settings.model_validate(
                {**self.settings.model_dump(), "collection": name, **values}
            )
        except ValueError as exc:
            raise BadRequest("invalid_option", one_line_error(exc)) from None

    # --- collections and documents ------------------------------------------------------------
    def collection_names(self) -> list[str]:
        on_disk = {p.stem for p in (self.settings.data_dir / "manifests").glob("*.sqlite3")}
        return sorted(on_disk | set(self.store.collections()) | {self.settings.collection})

    def collections(self) -> list[dict[str, Any]]:
        found = []
        for name in self.collection_names():
            documents = self._documents(name)
            found.append(
                {"name": name, "documents": len(documents),
                 "chunks": sum(d.chunks for d in documents)}
            )  # fmt: skip
        return found

    def create_collection(self, name: str) -> bool:
        """True when created, False when it already existed."""
        from ingest.index import CollectionIndex, manifest_path

        settings = self.for_collection(name)
        existed = manifest_path(settings, name).exists() or name in self.store.collections()
        CollectionIndex(settings, self.store, name).close()
        return not existed

    def _exists(self, collection: str) -> bool:
        from ingest.index import manifest_path

        return manifest_path(self.settings, collection).exists()

    def _documents(self, collection: str) -> list[Any]:
        from ingest.index import CollectionIndex, recover_if_idle

        settings = self.for_collection(collection)
        if not self._exists(collection):
            return []
        recover_if_idle(settings, self.store, collection)
        index = CollectionIndex(settings, self.store, collection)
        try:
            return index.documents()
        finally:
            index.close()

    def sources(self, collection: str | None = None) -> dict[str, Any]:
        name = self.for_collection(collection).collection
        return {"collection": name, "documents": [d.to_json() for d in self._documents(name)]}

    def ingest(
        self,
        collection: str | None,
        paths: list[Path],
        *,
        prune: bool = True,
        rebuild: bool = False,
        progress: IngestProgress | None = None,
        **overrides: Any,
    ) -> IngestReport:
        from ingest.pipeline import FilesToIndex

        settings = self.for_collection(collection, **overrides)
        try:
            return FilesToIndex(settings, self.store, settings.collection, progress).run(
                paths, prune=prune, rebuild=rebuild
            )
        finally:
            self._changed(settings.collection)

    def upload_dir(self, collection: str) -> Path:
        return self.settings.data_dir / "uploads" / collection

    def upload(
        self, collection: str | None, uploads: list[Upload], progress: IngestProgress | None = None
    ) -> UploadResult:
        """Save and ingest uploaded files; each bad file is reported and the rest go in. A file
        that fails, or an ingest that cannot run (index locked, store down), leaves the collection
        and its folder as they were."""
        settings = self.for_collection(collection)
        name = settings.collection
        # Two uploads of one name must not swap each other's backups, in this process or in
        # another replica sharing the data dir (held while the ingest waits for the write lock).
        with self._upload_lock, uploads_lock(settings, self.upload_dir(name)):
            staged, rejected = stage_uploads(
                uploads, self.upload_dir(name), settings.max_file_bytes
            )
            report = IngestReport()
            try:
                if staged:
                    paths = [s.path for s in staged]
                    report = self.ingest(name, paths, prune=False, progress=progress)
            except BaseException:
                for item in staged:
                    item.undo()
                raise
            failed = {f["path"]: f["error"] for f in report.failed}
            errors = [f"{upload_name}: {reason}" for upload_name, reason in rejected]
            refused = [{"path": n, "error": r} for n, r in rejected]
            for item in staged:
                if str(item.path) in failed:
                    errors.append(f"{item.name}: {failed[str(item.path)]}")
                    refused.append({"path": item.name, "error": failed[str(item.path)]})
                    item.undo()
                else:
                    item.keep()
        # Every failure is named as the client named the file (not by a path on this server).
        report.failed = refused
        return UploadResult(report, errors)

    def remove(
        self,
        collection: str | None,
        paths: list[str],
        on_wait: Callable[[str], None] | None = None,
        all_or_nothing: bool = False,
    ) -> dict[str, Any]:
        """`folio remove --json`: documents matched by stored path or by the absolute path of a
        folder above them. With all_or_nothing, a path that matches nothing is a NotFound and
        nothing is removed."""
        from ingest.index import CollectionIndex, write_lock

        settings = self.for_collection(collection)
        uploads = self.upload_dir(settings.collection)
        paths = [document_path(path, uploads) for path in paths]
        with write_lock(settings, on_wait=on_wait):
            index = CollectionIndex(settings, self.store, settings.collection)
            try:
                index.recover()
                matched, missing = match_documents([d.path for d in index.documents()], paths)
                if missing and all_or_nothing:
                    raise NotFound(
                        "document_not_found",
                        f"not in collection '{settings.collection}': {', '.join(missing)[:500]}",
                    )
                chunks_removed = index.remove(matched) if matched else 0
                index.refresh_sparse()
            finally:
                index.close()
            for path in matched:  # an uploaded copy is Folio's own: it goes with its document
                if Path(path).parent == uploads:
                    Path(path).unlink(missing_ok=True)
        self._changed(settings.collection)
        return {"removed": matched, "not_found": missing, "chunks_removed": chunks_removed}

    def _changed(self, collection: str) -> None:
        """A write changed the BM25 index: searches and answers reopen it."""
        with self._stale_lock:
            for stale in self._stale_answers.values():
                stale.add(collection)
        with self._search_lock:
            retriever = self._searchers.pop(collection, None)
            if retriever is not None:
                retriever.close()

    # --- search -------------------------------------------------------------------------------
    def search(self, collection: str | None, query: str, **options: Any) -> dict[str, Any]:
        """`folio search --json`. Options: k, mode, source, mmr, neighbors."""
        if not query.strip():
            raise BadRequest("empty_query", "the query is empty")
        settings = self.for_collection(
            collection, k=options.get("k"), retrieval_mode=options.get("mode"),
            mmr_lambda=options.get("mmr"), neighbors=options.get("neighbors"),
        )  # fmt: skip
        search_options = SearchOptions.from_settings(settings, source_glob=options.get("source"))
        if not self._exists(settings.collection):  # searching never creates a collection
            return {"query": query, "results": []}
        with self._search_lock:
            retriever = self._searchers.get(settings.collection)
            if retriever is None:
                retriever = self._open_retriever(settings)
                self._searchers[settings.collection] = retriever
            hits = retriever.search(query, search_options)
        return {"query": query, "results": [hit.to_json() for hit in hits]}

    def _open_retriever(self, settings: Settings) -> QueryToChunks:
        from ingest.index import recover_if_idle

        recover_if_idle(settings, self.store, settings.collection)
        return QueryToChunks(settings, self.store, settings.collection)

    # --- answers ------------------------------------------------------------------------------
    def submit(self, request: AskRequest) -> AnswerJob:
        """Queue a question (validated first); follow the job for positions, tokens, answer."""
        from folio.conversations import ChatIdError, find_conversation, new_chat_id

        if not request.question.strip():
            raise BadRequest("empty_question", "the question is empty")
        if request.k is not None and not 1 <= request.k <= 100:
            raise BadRequest("k_out_of_range", f"k must be between 1 and 100, not {request.k}")
        settings = self.for_collection(
            request.collection, k=request.k, retrieval_mode=request.retrieval_mode,
            answer_mode=request.answer_mode, llm_model=request.llm_model, **request.sampling(),
        )  # fmt: skip
        if request.prompt is not None:
            self._check_prompt(request.prompt)
        chat = request.chat
        if chat is not None:
            try:
                found = find_conversation(self.settings.data_dir, chat)
            except ChatIdError as exc:
                raise BadRequest("invalid_chat_id", str(exc)) from None
            if found is not None and found.collection != settings.collection:
                raise Conflict(
                    "chat_in_other_collection",
                    f"chat '{chat}' belongs to collection '{found.collection}'",
                )
        elif request.new_chat:
            chat = new_chat_id()
        job = AnswerJob(request, settings.collection, chat, settings=settings)
        quick = settings.answer_mode == "quote" and settings.followup_retrieval in NO_LLM_FOLLOWUPS
        return self._queues["quote" if quick else "generate"].submit(job)

    def _check_prompt(self, prompt: str) -> None:
        from prompts import PromptNotFoundError, load_prompt

        try:
            load_prompt(prompt)
        except PromptNotFoundError as exc:
            raise BadRequest("invalid_option", str(exc)) from None

    def job(self, job_id: str) -> AnswerJob | None:
        return next((j for q in self._queues.values() if (j := q.get(job_id))), None)

    def chat_jobs(self, chat_id: str) -> list[AnswerJob]:
        """Questions of a conversation not answered yet (waiting or generating), in order."""
        jobs = [job for queue in self._queues.values() for job in queue.unfinished(chat_id)]
        return sorted(jobs, key=lambda job: job.submitted_at)

    def ask(self, request: AskRequest) -> Answer:
        return self.submit(request).result()

    def _answerer(self, lane: str) -> Callable[[AnswerJob], Any]:
        return lambda job: self._answer(job, lane)

    def _answer(self, job: AnswerJob, lane: str) -> Any:
        """Run by the worker thread: the chain's tokens, then the answer, saved to its chat."""
        from folio.conversations import ConversationStore

        request, settings = job.request, job.settings
        assert settings is not None and job.started_at is not None
        queue_ms = round((job.started_at - job.submitted_at) * 1000, 1)
        store = ConversationStore(settings.data_dir, job.collection) if job.chat else None
        history = list(request.history or [])
        if store is not None and job.chat is not None:
            conversation = store.get(job.chat)
            history = [
                PastTurn(t.question, t.standalone_question)
                for t in (conversation.turns if conversation else [])
            ]
        answer: Answer | None = None
        if not self._documents(job.collection):
            answer = empty_collection_answer(request.question, settings)
        else:
            chain = self._chain(settings, lane)
            options = SearchOptions.from_settings(settings, source_glob=request.source)
            for event in chain.stream(
                request.question, history, options, cancel=job.cancel_event,
                prompt=request.prompt, mode=request.answer_mode, **request.sampling(),
            ):  # fmt: skip
                if isinstance(event, Token):
                    yield event
                else:
                    answer = event
        assert answer is not None
        answer.timings["queue_ms"] = queue_ms
        answer.chat = job.chat
        if (
            store is not None
            and job.chat is not None
            and not (answer.stopped and not answer.answer.strip())
        ):  # a question stopped before any word is not a turn of the conversation
            store.append(job.chat, answer)
        self._recent[answer.answer_id] = (job.collection, answer)
        while len(self._recent) > RECENT_ANSWERS_KEPT:
            self._recent.popitem(last=False)
        yield answer

    def _chain(self, settings: Settings, lane: str) -> AnswerChain:
        """The lane's chain for a collection and model (reopened after a write)."""
        collection, chains = settings.collection, self._chains[lane]
        with self._stale_lock:
            stale = collection in self._stale_answers[lane]
            self._stale_answers[lane].discard(collection)
        for key in [k for k in chains if k[0] == collection and stale]:
            chains.pop(key).retriever.close()
        key = (collection, settings.llm_model)
        if key not in chains:
            chains[key] = AnswerChain(settings, self._open_retriever(settings))
        chain = chains[key]
        chain.settings = settings  # per-request settings (sampling, k, mode) on a shared chain
        return chain


__all__ = ["FolioService", "ServiceError"]
