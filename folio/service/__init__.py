"""The service layer below every interface (CLI, web UI, HTTP API): see core.FolioService."""

from folio.service.answers import AnswerJob, AskRequest, Queued, empty_collection_answer
from folio.service.core import FolioService
from folio.service.documents import UPLOAD_TYPES, Upload, UploadError, UploadResult
from folio.service.errors import (
    BadRequest,
    Conflict,
    NotFound,
    ServiceError,
    Unavailable,
    error_for,
)

__all__ = [
    "UPLOAD_TYPES",
    "AnswerJob",
    "AskRequest",
    "BadRequest",
    "Conflict",
    "FolioService",
    "NotFound",
    "Queued",
    "ServiceError",
    "Unavailable",
    "Upload",
    "UploadError",
    "UploadResult",
    "empty_collection_answer",
    "error_for",
]
