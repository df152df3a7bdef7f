"""The answer queue: one worker thread owns generation; every interface follows its jobs.

llama.cpp (and the chain's per-answer state) serve one answer at a time, and on a small machine
two generations would only slow each other down. So questions from every session, CLI call and
HTTP request become jobs, answered in order by one worker. A job keeps its events (queue
positions, tokens, the answer), so a client can follow it from the start, reconnect, or cancel it;
a question is never dropped because another one arrived.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Literal

from folio.service.errors import ServiceError, Unavailable, error_for
from folio.settings import Settings
from retrieval.chain import Answer, Token
from retrieval.followups import PastTurn

log = logging.getLogger("folio.service")

SAMPLING = ("temperature", "top_p", "top_k", "repeat_penalty", "max_tokens", "seed")
FINISHED_JOBS_KEPT = 256  # finished jobs stay followable until this many newer ones finished
MAX_WAITING = 100  # more waiting questions than this are refused (503), not queued for hours


@dataclass
class AskRequest:
    """One question and its per-request settings (None: the configured setting)."""

    question: str
    collection: str | None = None
    chat: str | None = None  # continued and saved (created when new)
    new_chat: bool = False  # with no chat: start a new saved conversation
    history: list[PastTurn] | None = None  # earlier turns a client keeps itself (no chat)
    k: int | None = None
    retrieval_mode: str | None = None
    source: str | None = None
    answer_mode: str | None = None
    prompt: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repeat_penalty: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    llm_model: str | None = None

    def sampling(self) -> dict[str, float | int]:
        return {name: v for name in SAMPLING if (v := getattr(self, name)) is not None}


@dataclass(frozen=True)
class Queued:
    """The job waits: `position` 1 is next."""

    position: int


Event = Queued | Token | Answer
JobState = Literal["queued", "running", "done", "failed", "cancelled"]


@dataclass(eq=False)
class AnswerJob:
    request: AskRequest
    collection: str
    chat: str | None
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: JobState = "queued"
    submitted_at: float = field(default_factory=time.perf_counter)
    started_at: float | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    events: list[Token | Answer] = field(default_factory=list)
    error: ServiceError | None = None
    queue: AnswerQueue | None = None
    settings: Settings | None = None  # validated at submission

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    @property
    def position(self) -> int:
        return self.queue.position(self) if self.queue else 0

    @property
    def answer(self) -> Answer | None:
        last = self.events[-1] if self.events else None
        return last if isinstance(last, Answer) else None

    def cancel(self) -> None:
        """Waiting: dropped. Generating: stops at once; the partial answer is kept, stopped."""
        if self.queue is not None:
            self.queue.cancel(self)

    def follow(self) -> Iterator[Event]:
        """Every event from the start: queue positions while waiting, tokens, then the Answer.
        Ends without an Answer when cancelled while waiting; raises the job's error."""
        assert self.queue is not None
        yield from self.queue.follow(self)

    def result(self) -> Answer:
        for event in self.follow():
            if isinstance(event, Answer):
                return event
        raise Unavailable("cancelled", "the question was cancelled before it was answered")


class AnswerQueue:
    """Jobs in submission order, run one at a time by a worker thread started on demand."""

    def __init__(self, run: Callable[[AnswerJob], Iterator[Token | Answer]]) -> None:
        self._run = run
        self._changed = threading.Condition()
        self._waiting: deque[AnswerJob] = deque()
        self._jobs: OrderedDict[str, AnswerJob] = OrderedDict()
        self._worker: threading.Thread | None = None
        self._closed = False

    def submit(self, job: AnswerJob) -> AnswerJob:
        with self._changed:
            if self._closed:
                raise Unavailable("shutting_down", "Folio is shutting down")
            if len(self._waiting) >= MAX_WAITING:
                raise Unavailable(
                    "queue_full", f"{MAX_WAITING} questions are waiting already; try again soon"
                )
            job.queue = self
            self._waiting.append(job)
            self._jobs[job.id] = job
            self._forget_old_jobs()
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=self._work, name="folio-answers", daemon=True
                )
                self._worker.start()
            self._changed.notify_all()
        return job

    def position(self, job: AnswerJob) -> int:
        with self._changed:
            try:
                return self._waiting.index(job) + 1
            except ValueError:
                return 0

    def cancel(self, job: AnswerJob) -> None:
        with self._changed:
            job.cancel_event.set()
            if job in self._waiting:
                self._waiting.remove(job)
                job.state = "cancelled"
            self._changed.notify_all()

    def get(self, job_id: str) -> AnswerJob | None:
        """A job by id while it is kept (the web page follows its jobs across reruns)."""
        with self._changed:
            return self._jobs.get(job_id)

    def unfinished(self, chat: str) -> list[AnswerJob]:
        """The jobs of one conversation still waiting or being answered, in order (a reloaded
        page finds the questions it sent)."""
        with self._changed:
            return [job for job in self._jobs.values() if job.chat == chat and not job.finished]

    def busy(self) -> bool:
        """A question is being answered now."""
        with self._changed:
            return any(job.state == "running" for job in self._jobs.values())

    def close(self) -> bool:
        """Stop taking questions, cancel the waiting and the running one; True once the worker
        has stopped (a prompt still being read by llama.cpp may take it a few seconds more)."""
        with self._changed:
            self._closed = True
            for job in list(self._waiting):
                job.state = "cancelled"
            self._waiting.clear()
            for job in self._jobs.values():  # the running one stops at its next token
                job.cancel_event.set()
            running = self._worker
            self._changed.notify_all()
        if running is not None and running is not threading.current_thread():
            running.join(timeout=5)
            return not running.is_alive()
        return True

    def follow(self, job: AnswerJob) -> Iterator[Event]:
        seen = 0
        announced = 0
        while True:
            with self._changed:
                while True:
                    position = self.position(job)
                    if seen < len(job.events) or job.finished:
                        break
                    if position and position != announced:
                        break
                    self._changed.wait(timeout=1.0)
                fresh = job.events[seen:]
                seen += len(fresh)
                finished, error = job.finished, job.error
            if not fresh and position and position != announced:
                announced = position
                yield Queued(position)
                continue
            yield from fresh
            if finished and seen == len(job.events):
                if error is not None:
                    raise error
                return

    def _work(self) -> None:
        while True:
            with self._changed:
                while not self._waiting and not self._closed:
                    self._changed.wait()
                if self._closed:
                    return
                job = self._waiting.popleft()
                job.state = "running"
                job.started_at = time.perf_counter()
                self._changed.notify_all()
            state: JobState = "done"
            try:
                for event in self._run(job):
                    with self._changed:
                        job.events.append(event)
                        self._changed.notify_all()
            except Exception as exc:  # reported to whoever follows the job, never lost
                job.error = error_for(exc)
                if job.error is None:
                    log.exception("answering %r failed", job.request.question[:80])
                    job.error = ServiceError("internal", f"answering failed: {type(exc).__name__}")
                state = "failed"
            with self._changed:
                job.state = state
                self._changed.notify_all()

    def _forget_old_jobs(self) -> None:
        finished = [key for key, job in self._jobs.items() if job.finished]
        for key in finished[: max(0, len(finished) - FINISHED_JOBS_KEPT)]:
            del self._jobs[key]


def empty_collection_answer(question: str, settings: Settings) -> Answer:
    """What asking a collection with no documents says, in every interface."""
    from prompts import load_prompt

    name = settings.collection
    where = "" if name == "default" else f" --collection {name}"
    return Answer(
        question=question,
        standalone_question=question,
        answer=(
            f"The collection '{name}' is empty: add documents first (upload them, or run "
            f"`folio ingest PATH{where}`)."
        ),
        mode=settings.answer_mode,
        refused=True,
        support=0.0,
        quote=None,
        citations=[],
        sources=[],
        prompt=load_prompt(settings.prompt),
        model={},
        timings={"retrieve_ms": 0.0, "first_token_ms": None, "total_ms": 0.0,
                 "completion_tokens": 0, "tokens_per_s": None},
    )  # fmt: skip
