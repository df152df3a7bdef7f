"""Server-sent events stay open while a question waits: a comment line keeps proxies from
closing a silent stream, and a client that leaves stops the events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from folio.api.sse import with_keepalive


def test_a_silent_stream_gets_keepalive_comments_and_closing_stops_the_events() -> None:
    stopped: list[bool] = []

    async def slow_events() -> AsyncIterator[str]:
        try:
            yield "event: queued\ndata: {}\n\n"
            await asyncio.sleep(0.35)  # a question waiting behind another one
            yield "event: answer\ndata: {}\n\n"
            await asyncio.sleep(10)
            yield "never sent"
        finally:
            stopped.append(True)

    async def read_until_answer() -> list[str]:
        received: list[str] = []
        stream = with_keepalive(slow_events(), every=0.1)
        async for item in stream:
            received.append(item)
            if item.startswith("event: answer"):
                break
        await stream.aclose()  # the client goes away
        return received

    received = asyncio.run(read_until_answer())
    assert received[0].startswith("event: queued") and received[-1].startswith("event: answer")
    assert 2 <= received.count(": keep-alive\n\n") <= 4  # about one per 0.1 s of silence
    assert stopped == [True]  # the underlying events were closed, not left running
