"""Calling the service from async routes without blocking the event loop.

Service calls run in the thread pool; an answer job is followed by a thread of its own that hands
events to the loop, so a waiting or disconnected client never holds a pool thread and a client
that goes away cancels its job at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncGenerator, Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from folio.service import AnswerJob, Queued, Unavailable, error_for
from retrieval.chain import Answer, Token

T = TypeVar("T")

DISCONNECT_POLL_S = 0.25


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking service call in the thread pool; Folio's known failures (store down,
    index locked ...) become ServiceErrors, which the error handlers turn into their status."""
    try:
        return await run_in_threadpool(fn, *args, **kwargs)
    except Exception as exc:
        mapped = error_for(exc)
        if mapped is None or mapped is exc:
            raise
        raise mapped from exc


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_DONE = object()


async def follow(job: AnswerJob) -> AsyncGenerator[Queued | Token | Answer, None]:
    """The job's events (Queued, Token, Answer) as they happen. Leaving early (a client went
    away, a consumer stopped) cancels the job: waiting, it is dropped; running, it stops."""
    loop = asyncio.get_running_loop()
    events: asyncio.Queue[Any] = asyncio.Queue()

    def hand_over(item: Any) -> None:
        # RuntimeError: the loop is gone (the server is shutting down): nobody to tell.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(events.put_nowait, item)

    def pump() -> None:
        try:
            for event in job.follow():
                hand_over(event)
        except BaseException as exc:  # handed to the route, which reports it
            hand_over(_Failed(exc))
        else:
            hand_over(_DONE)

    threading.Thread(target=pump, name=f"folio-follow-{job.id[:8]}", daemon=True).start()
    finished = False
    try:
        while True:
            item = await events.get()
            if item is _DONE:
                finished = True
                return
            if isinstance(item, _Failed):
                finished = True
                raise item.exc
            finished = isinstance(item, Answer)  # the last event: nothing left to cancel
            yield item
    finally:
        if not finished:
            job.cancel()


async def answer_or_cancel(job: AnswerJob, request: Request) -> Answer:
    """The job's Answer; cancels the job when the client disconnects while waiting for it."""

    async def watch() -> None:
        while True:
            await asyncio.sleep(DISCONNECT_POLL_S)
            if await request.is_disconnected():
                job.cancel()
                return

    watcher = asyncio.create_task(watch())
    try:
        async with contextlib.aclosing(follow(job)) as events:
            async for event in events:
                if isinstance(event, Answer):
                    return event
    finally:
        watcher.cancel()
    # Only a shutdown cancels a question whose client is still there.
    raise Unavailable("cancelled", "the question was cancelled before it was answered")
