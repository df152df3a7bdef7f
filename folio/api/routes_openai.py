"""OpenAI-compatible chat completions: any OpenAI client or chat front end can use Folio as a
"model". The model is `folio/<collection>`, the grounded answer is the assistant message, and the
whole `folio ask --json` object rides along in an extra field `folio` (of the last chunk when
streaming)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from folio.api.calls import answer_or_cancel, call, follow
from folio.api.deps import Config, Service
from folio.api.errors import as_service_error
from folio.api.schemas import ERROR_RESPONSES, ChatCompletionBody
from folio.api.sse import sse_event, sse_response
from folio.service import AnswerJob, AskRequest, BadRequest, FolioService, NotFound
from retrieval.chain import Answer, Token
from retrieval.followups import PastTurn

router = APIRouter(tags=["openai"], responses=ERROR_RESPONSES)

MODEL_PREFIX = "folio/"


def ask_request(body: ChatCompletionBody, default_collection: str) -> AskRequest:
    """The last user message is the question; earlier user messages are the conversation that
    retrieval resolves follow-ups against (assistant turns never reach a prompt, as in Folio)."""
    questions = [m.text().strip() for m in body.messages if m.role == "user"]
    questions = [q for q in questions if q]
    if not questions:
        raise BadRequest("empty_question", "messages: no user message with text")
    collection = body.model[len(MODEL_PREFIX) :] if "/" in body.model else default_collection
    return AskRequest(
        questions[-1],
        collection=collection,
        history=[PastTurn(q, q) for q in questions[:-1]],
        k=body.k,
        retrieval_mode=body.retrieval_mode,
        source=body.source,
        answer_mode=body.answer_mode,
        prompt=body.prompt,
        temperature=body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        repeat_penalty=body.repeat_penalty,
        max_tokens=body.max_completion_tokens or body.max_tokens,
        seed=body.seed,
    )


def sources_note(answer: Answer) -> str:
    """The cited sources as a last paragraph: a generic chat front end shows only the message,
    and `[n]` must lead somewhere there too (the full objects are in `folio`)."""
    if answer.refused or not answer.citations:
        return ""
    cited = []
    for citation in sorted(answer.citations, key=lambda c: c.n):
        hit = citation.hit
        where = hit.source.rsplit("/", 1)[-1] + (f", page {hit.page}" if hit.page else "")
        where += f" (printed {hit.page_label})" if hit.page and hit.page_label else ""
        cited.append(f"[{citation.n}] {where}")
    return "\n\nSources: " + "; ".join(cited)


def finish_reason(answer: Answer, job: AnswerJob) -> str:
    """ "length" when generation stopped at max_tokens, as OpenAI says; else "stop"."""
    limit = job.settings.max_tokens if job.settings else None
    produced = int(answer.timings.get("completion_tokens") or 0)
    return "length" if answer.generated and limit and produced >= limit else "stop"


def usage(answer: Answer) -> dict[str, int]:
    completion = int(answer.timings.get("completion_tokens") or 0)
    return {"prompt_tokens": 0, "completion_tokens": completion, "total_tokens": completion}


async def known_collection(service: FolioService, name: str) -> None:
    if name not in await call(service.collection_names):
        raise NotFound("model_not_found", f"no model '{MODEL_PREFIX}{name}': GET /v1/models")


@router.get("/v1/models", summary="One model per collection (OpenAI-compatible)")
async def models(service: Service) -> dict[str, Any]:
    names = await call(service.collection_names)
    return {
        "object": "list",
        "data": [
            {"id": f"{MODEL_PREFIX}{name}", "object": "model", "created": 0, "owned_by": "folio"}
            for name in names
        ],
    }


@router.post(
    "/v1/chat/completions",
    summary="OpenAI-compatible chat completion: the grounded answer, the ask object in `folio`",
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def chat_completions(
    body: ChatCompletionBody, request: Request, service: Service, settings: Config
) -> Any:
    folio_request = ask_request(body, settings.collection)
    assert folio_request.collection is not None
    await known_collection(service, folio_request.collection)
    job = await call(service.submit, folio_request)
    completion_id = f"chatcmpl-{job.id}"
    created = int(time.time())
    if body.stream:
        live = (folio_request.answer_mode or settings.answer_mode) == "generate"
        return sse_response(chunks(job, completion_id, created, body.model, live))
    answer = await answer_or_cancel(job, request)
    return JSONResponse(
        {
            "id": completion_id,
            "object": "chat.completion",
            "created": created,
            "model": body.model,
            "choices": [
                {
                    "index": 0,
                    "message": {
                        "role": "assistant",
                        "content": answer.answer + sources_note(answer),
                    },
                    "finish_reason": finish_reason(answer, job),
                }
            ],
            "usage": usage(answer),
            "folio": answer.to_json(),
        }
    )


async def chunks(
    job: AnswerJob, completion_id: str, created: int, model: str, live: bool
) -> AsyncIterator[str]:
    """`chat.completion.chunk` events, then `[DONE]`. Tokens stream live only in `generate` mode,
    where they are the answer; in the quote modes the checked answer comes in one piece (a draft
    that the grounding check may drop is not shown)."""

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        return sse_event(
            None,
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            },
        )

    yield chunk({"role": "assistant", "content": ""})
    streamed = ""
    try:
        async for event in follow(job):
            if isinstance(event, Token) and live:
                streamed += event.text
                yield chunk({"content": event.text})
            elif isinstance(event, Answer):
                rest, shown = event.answer, streamed.strip()
                if shown:  # what was streamed stands; a checked answer that differs follows it
                    same = event.answer.startswith(shown)
                    rest = event.answer[len(shown) :] if same else "\n\n" + event.answer
                rest += sources_note(event)
                if rest:
                    yield chunk({"content": rest})
                finish = finish_reason(event, job)
                yield chunk({}, finish, usage=usage(event), folio=event.to_json())
    except Exception as exc:  # the stream has begun: OpenAI clients read an `error` payload
        _, code, message = as_service_error(exc)
        yield sse_event(None, {"error": {"code": code, "message": message}})
    yield sse_event(None, "[DONE]")
