"""Server-sent events: `event: NAME` and one line of JSON data per event."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import StreamingResponse

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Proxies close a stream that stays silent for a minute (nginx's default proxy_read_timeout):
# a question waiting in the queue sends a comment line this often, which clients ignore.
KEEPALIVE_S = 15.0


def sse_event(name: str | None, data: Any) -> str:
    payload = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n"


async def with_keepalive(
    events: AsyncIterator[str], every: float = KEEPALIVE_S
) -> AsyncIterator[str]:
    """The events, with `: keep-alive` between any two that are `every` seconds apart."""
    pending = asyncio.ensure_future(anext(events))
    try:
        while True:
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield ": keep-alive\n\n"
                continue
            try:
                item = pending.result()
            except StopAsyncIteration:
                return
            yield item
            pending = asyncio.ensure_future(anext(events))
    finally:  # the client left: stop the events (whose own cleanup cancels the question)
        pending.cancel()
        with contextlib.suppress(BaseException):
            await pending
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


def sse_response(events: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(
        with_keepalive(events), media_type="text/event-stream", headers=SSE_HEADERS
    )
