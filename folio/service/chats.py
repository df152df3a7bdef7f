"""Saved conversations and answer feedback, as FolioService offers them to every interface."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from folio.service.errors import BadRequest, NotFound
from folio.settings import Settings
from retrieval.chain import Answer


class ConversationsAndFeedback:
    """FolioService's conversation and feedback methods (the store is folio.conversations)."""

    settings: Settings
    _recent: OrderedDict[str, tuple[str, Answer]]  # answer id -> (collection, answer)

    def for_collection(self, collection: str | None, **overrides: Any) -> Settings:
        raise NotImplementedError

    def chats(self, collection: str | None = None) -> dict[str, Any]:
        from folio.conversations import list_conversations

        if collection is not None:
            self.for_collection(collection)
        found = list_conversations(self.settings.data_dir, collection)
        return {"chats": [c.summary() for c in found]}

    def _find_chat(self, chat_id: str) -> Any:
        from folio.conversations import ChatIdError, find_conversation

        try:
            found = find_conversation(self.settings.data_dir, chat_id)
        except ChatIdError as exc:
            raise BadRequest("invalid_chat_id", str(exc)) from None
        if found is None:
            raise NotFound("chat_not_found", f"no saved chat '{chat_id[:80]}'")
        return found

    def chat(self, chat_id: str) -> dict[str, Any]:
        return self._find_chat(chat_id).transcript()

    def rename_chat(self, chat_id: str, title: str) -> dict[str, Any]:
        from folio.conversations import ConversationStore

        if not title.strip():
            raise BadRequest("empty_title", "the title is empty")
        found = self._find_chat(chat_id)
        ConversationStore(self.settings.data_dir, found.collection).rename(chat_id, title)
        return dict(self._find_chat(chat_id).summary())

    def delete_chat(self, chat_id: str) -> None:
        from folio.conversations import ConversationStore

        found = self._find_chat(chat_id)
        ConversationStore(self.settings.data_dir, found.collection).delete(chat_id)

    def feedback(self, answer_id: str, rating: str | None, comment: str = "") -> None:
        from folio.feedback import record_answer_feedback

        if rating not in ("up", "down", None):
            raise BadRequest("invalid_rating", "rating must be 'up' or 'down'")
        if rating is None and not comment.strip():
            raise BadRequest("empty_feedback", "give a rating or a comment")
        from folio.conversations import find_turn

        recent = self._recent.get(answer_id)
        found = (recent[0], recent[1].to_json()) if recent else None
        found = found or find_turn(self.settings.data_dir, answer_id)
        if found is None:
            raise NotFound("answer_not_found", f"no answer '{answer_id[:80]}' to give feedback on")
        record_answer_feedback(self.settings, found[1], found[0], rating, comment.strip())
