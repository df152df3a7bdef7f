"""Saved conversations and feedback on answers."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response

from folio.api.calls import call
from folio.api.deps import Service
from folio.api.schemas import CHAT_ID, COLLECTION, ERROR_RESPONSES, ChatPatch, FeedbackBody

router = APIRouter(tags=["chats"], responses=ERROR_RESPONSES)

ChatIdPath = Annotated[str, Path(pattern=CHAT_ID, description="conversation id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "no such chat"}}


@router.get("/v1/chats", summary="Saved conversations (`folio chats --json`)")
async def list_chats(
    service: Service,
    collection: Annotated[
        str | None, Query(pattern=COLLECTION, description="only this collection's")
    ] = None,
) -> dict[str, Any]:
    return await call(service.chats, collection)


@router.get("/v1/chats/{chat_id}", responses=NOT_FOUND, summary="A conversation with its answers")
async def get_chat(chat_id: ChatIdPath, service: Service) -> dict[str, Any]:
    return await call(service.chat, chat_id)


@router.patch("/v1/chats/{chat_id}", responses=NOT_FOUND, summary="Rename a conversation")
async def rename_chat(chat_id: ChatIdPath, body: ChatPatch, service: Service) -> dict[str, Any]:
    return await call(service.rename_chat, chat_id, body.title)


@router.delete(
    "/v1/chats/{chat_id}", status_code=204, responses=NOT_FOUND, summary="Delete a conversation"
)
async def delete_chat(chat_id: ChatIdPath, service: Service) -> Response:
    await call(service.delete_chat, chat_id)
    return Response(status_code=204)


@router.post(
    "/v1/feedback",
    status_code=204,
    responses={404: {"description": "no such answer"}},
    summary="Rate an answer (saved to DATA_DIR/feedback.jsonl, one record per answer)",
)
async def feedback(body: FeedbackBody, service: Service) -> Response:
    await call(service.feedback, body.answer_id, body.rating, body.comment)
    return Response(status_code=204)
