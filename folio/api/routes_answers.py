"""POST /v1/ask: a grounded answer (`folio ask --json`), or server-sent events while it is made.

Every question goes through the service's one answer queue: a request that waits is not an error
(the stream says `event: queued` with its position), and a client that leaves cancels its job.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from folio.api.calls import answer_or_cancel, call, follow
from folio.api.deps import Service
from folio.api.errors import as_service_error
from folio.api.schemas import ERROR_RESPONSES, AskBody
from folio.api.sse import sse_event, sse_response
from folio.service import AnswerJob, AskRequest, Queued
from retrieval.chain import Answer, Token

router = APIRouter(tags=["answers"], responses=ERROR_RESPONSES)

ASK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The `folio ask --json` object; with `stream: true`, server-sent events: "
        "`queued` {position} while waiting, `token` {text} as generated, then `answer` with the "
        "object (or `error` {error: {code, message}}).",
        "content": {"text/event-stream": {}},
    },
}


def ask_request(body: AskBody) -> AskRequest:
    fields = body.model_dump(exclude={"stream"})
    return AskRequest(**fields)


async def answer_events(job: AnswerJob) -> AsyncIterator[str]:
    try:
        async for event in follow(job):
            if isinstance(event, Queued):
                yield sse_event("queued", {"position": event.position})
            elif isinstance(event, Token):
                yield sse_event("token", {"text": event.text})
            elif isinstance(event, Answer):
                yield sse_event("answer", event.to_json())
    except Exception as exc:  # the response has begun: the error travels as an event
        _, code, message = as_service_error(exc)
        yield sse_event("error", {"error": {"code": code, "message": message}})


@router.post("/v1/ask", responses=ASK_RESPONSES, summary="Answer a question from the documents")
async def ask(body: AskBody, request: Request, service: Service) -> Any:
    """The grounded answer with its quote, citations and sources (as `folio ask --json`).
    `chat` continues (or starts) a saved conversation; `new_chat: true` makes a new id."""
    job = await call(service.submit, ask_request(body))
    if body.stream:
        return sse_response(answer_events(job))
    answer = await answer_or_cancel(job, request)
    return JSONResponse(answer.to_json())
