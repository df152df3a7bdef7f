"""Request bodies. Field names are the settings' names, limits are the settings' limits, and
unknown fields are refused (a typo in an option must not be silently ignored)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# The settings' own patterns (folio.settings.COLLECTION_NAME, folio.conversations.CHAT_ID).
COLLECTION = r"^[a-z0-9][a-z0-9_-]{0,59}$"
CHAT_ID = r"^[A-Za-z0-9_-]{1,64}$"
# Prompts by name only: the CLI also takes a file path, which a remote client must not choose.
PROMPT_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"

CollectionName = Annotated[str, Field(pattern=COLLECTION, description="collection name")]
ChatId = Annotated[str, Field(pattern=CHAT_ID, description="conversation id")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class Sampling(Strict):
    temperature: float | None = Field(default=None, ge=0, le=5)
    top_p: float | None = Field(default=None, gt=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    repeat_penalty: float | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    seed: int | None = None


class AskBody(Sampling):
    question: str = Field(min_length=1, max_length=8000)
    collection: CollectionName | None = None
    chat: ChatId | None = Field(default=None, description="continue (or start) this saved chat")
    new_chat: bool = Field(default=False, description="start a new saved chat (id in `chat`)")
    k: int | None = Field(default=None, ge=1, le=100)
    retrieval_mode: Literal["dense", "bm25", "hybrid"] | None = None
    source: str | None = Field(default=None, max_length=500, description="source path glob")
    answer_mode: Literal["quote", "generate", "quote+generate"] | None = None
    prompt: str | None = Field(default=None, pattern=PROMPT_NAME)
    stream: bool = Field(default=False, description="server-sent events: token..., answer")

    _question = field_validator("question")(_not_blank)


class SearchBody(Strict):
    query: str = Field(min_length=1, max_length=8000)
    collection: CollectionName | None = None
    k: int | None = Field(default=None, ge=1, le=100)
    mode: Literal["dense", "bm25", "hybrid"] | None = None
    source: str | None = Field(default=None, max_length=500)

    _query = field_validator("query")(_not_blank)


class CollectionBody(Strict):
    name: CollectionName


class ChatPatch(Strict):
    title: str = Field(min_length=1, max_length=200)

    _title = field_validator("title")(_not_blank)


class FeedbackBody(Strict):
    answer_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    rating: Literal["up", "down"]
    comment: str = Field(default="", max_length=4000)


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text; content parts other than text (images) are ignored."""
        if isinstance(self.content, list):
            return " ".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatCompletionBody(BaseModel):
    """OpenAI's chat completion request. Parameters Folio has no use for (n, tools, logprobs,
    presence_penalty ...) are accepted and ignored, as OpenAI-compatible servers do; Folio's own
    options may ride along (`extra_body` in the openai client)."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(pattern=r"^folio(/[a-z0-9][a-z0-9_-]{0,59})?$")
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0, le=5)
    top_p: float | None = Field(default=None, gt=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1, le=8192)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=8192)
    seed: int | None = None
    n: int = Field(default=1, ge=1, le=1, description="one answer per request (only 1)")
    # Folio's options (extra_body)
    k: int | None = Field(default=None, ge=1, le=100)
    top_k: int | None = Field(default=None, ge=0)
    repeat_penalty: float | None = Field(default=None, gt=0)
    retrieval_mode: Literal["dense", "bm25", "hybrid"] | None = None
    answer_mode: Literal["quote", "generate", "quote+generate"] | None = None
    source: str | None = Field(default=None, max_length=500)
    prompt: str | None = Field(default=None, pattern=PROMPT_NAME)


class ErrorDetail(BaseModel):
    code: str = Field(description="stable, machine-readable: k_out_of_range, chat_not_found ...")
    message: str = Field(description="one plain line for a person")


class ErrorResponse(BaseModel):
    """Every 4xx and 5xx body."""

    error: ErrorDetail


# Documented on every route (it replaces FastAPI's default 422 schema, which Folio never sends).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": {"model": ErrorResponse, "description": "bad request, unknown id, missing key"},
    "5XX": {"model": ErrorResponse, "description": "a component is down (503) or a bug (500)"},
}
