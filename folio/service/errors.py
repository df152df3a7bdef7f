"""Errors every interface reports the same way: a code, one plain line, and an HTTP status."""

from __future__ import annotations


class ServiceError(Exception):
    """A request Folio cannot fulfil; `message` names the file, setting or server involved."""

    status = 500

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def to_json(self) -> dict[str, dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


class BadRequest(ServiceError):
    """The request itself is invalid (an empty question, k out of range, a bad name)."""

    status = 422


class NotFound(ServiceError):
    status = 404


class Conflict(ServiceError):
    """The index is busy (another writer holds the lock) or built with other settings."""

    status = 409


class Unavailable(ServiceError):
    """A component Folio needs (the store, a model, the LLM server) is missing or down."""

    status = 503


def error_for(exc: BaseException) -> ServiceError | None:
    """Folio's known failures as ServiceErrors; None for a bug (which is logged, not shown)."""
    from folio.llm import LLMUnavailableError
    from folio.models import ModelNotFoundError
    from folio.store import StoreUnavailableError
    from ingest.index import ConfigMismatchError, IndexLockedError

    if isinstance(exc, ServiceError):
        return exc
    if isinstance(exc, ConfigMismatchError):
        return Conflict("config_mismatch", str(exc))
    if isinstance(exc, IndexLockedError):
        return Conflict("index_locked", str(exc))
    if isinstance(exc, ModelNotFoundError):
        return Unavailable("model_not_found", str(exc))
    if isinstance(exc, StoreUnavailableError):
        return Unavailable("store_unavailable", str(exc))
    if isinstance(exc, LLMUnavailableError):
        return Unavailable("llm_unavailable", str(exc))
    return None
