"""One error shape for every failure: {"error": {"code": str, "message": str}}, never a traceback.

Pydantic's validation errors get the same codes the service uses for the same mistakes
(`k_out_of_range`, `empty_question`, `invalid_collection` ...), so a client sees one code per
mistake whichever layer caught it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("folio.api")

# Codes for plain HTTP statuses (unknown route, wrong method, ...).
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal",
    503: "unavailable",
}

# A failed field -> the code the service gives the same mistake. (For the text fields only an
# empty value is that mistake: see EMPTY_ERRORS.)
FIELD_CODES = {
    "question": "empty_question",
    "query": "empty_query",
    "messages": "empty_question",
    "k": "k_out_of_range",
    "collection": "invalid_collection",
    "name": "invalid_collection",
    "chat": "invalid_chat_id",
    "chat_id": "invalid_chat_id",
    "rating": "invalid_rating",
    "model": "model_not_found",
}


TEXT_FIELDS = ("question", "query", "messages")
EMPTY_ERRORS = ("string_too_short", "too_short", "value_error")


RANGE_ERRORS = ("greater_than_equal", "less_than_equal", "greater_than", "less_than")


def _field_code(names: list[str], error_type: str) -> str:
    for name in reversed(names):
        if name in FIELD_CODES:
            if name in TEXT_FIELDS and error_type not in EMPTY_ERRORS:
                return "invalid_request"
            if name == "k" and error_type not in RANGE_ERRORS:  # "five" is not out of range
                return "invalid_request"
            return FIELD_CODES[name]
    return "invalid_request"


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(error_body(code, message), status_code=status, headers=headers)


def describe_validation(errors: Sequence[Any]) -> tuple[int, str, str]:
    """(status, code, message) for pydantic/FastAPI validation errors."""
    if any(e.get("type") == "json_invalid" for e in errors):
        detail = next(e for e in errors if e.get("type") == "json_invalid")
        reason = (detail.get("ctx") or {}).get("error", "invalid JSON")
        return 400, "malformed_json", f"the request body is not valid JSON ({reason})"
    parts = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ())]
        if loc and loc[0] in ("body", "query", "path", "header"):  # where, not which field
            loc = loc[1:]
        field = ".".join(loc) or "body"
        msg = str(err.get("msg", "invalid"))
        if err.get("type") == "missing":
            msg = "required"
        parts.append(f"{field}: {msg}")
    first = errors[0] if errors else {}
    names = [str(p) for p in first.get("loc", ())[1:] if isinstance(p, str)]
    if first.get("type") == "missing":
        code = "missing_field"
    else:
        code = _field_code(names, str(first.get("type", "")))
    return 422, code, "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    from folio.service import ServiceError, error_for

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        content_type = request.headers.get("content-type", "")
        body_unread = any(tuple(e.get("loc", ())) == ("body",) for e in errors)
        if body_unread and "json" not in content_type and request.method in ("POST", "PATCH"):
            # curl -d sends a form by default: the body never became JSON.
            return error_response(
                415, "unsupported_media_type",
                f"send the body as JSON with Content-Type: application/json "
                f"(not {content_type or 'no content type'})",
            )  # fmt: skip
        status, code, message = describe_validation(errors)
        return error_response(status, code, message)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = STATUS_CODES.get(exc.status_code, "error")
        detail = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"no route {request.method} {request.url.path}"
        if exc.status_code == 405:
            detail = f"{request.method} is not allowed on {request.url.path}"
        return error_response(exc.status_code, code, detail, headers=exc.headers)

    async def on_service(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return error_response(exc.status, exc.code, exc.message)

    async def on_anything(request: Request, exc: Exception) -> JSONResponse:
        # Folio's known failures (store down, model missing, index locked, LLM server down)
        # are the user's to fix and get their message; anything else is logged, never shown.
        mapped = error_for(exc)
        if mapped is not None:
            return error_response(mapped.status, mapped.code, mapped.message)
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; the server log has the details")

    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(ServiceError, on_service)
    app.add_exception_handler(Exception, on_anything)


def as_service_error(exc: BaseException) -> tuple[int, str, str]:
    """(status, code, message) for an exception met while streaming (the response has begun)."""
    from folio.service import ServiceError, error_for

    if isinstance(exc, ServiceError):
        return exc.status, exc.code, exc.message
    mapped = error_for(exc) if isinstance(exc, Exception) else None
    if mapped is not None:
        return mapped.status, mapped.code, mapped.message
    log.error("unexpected error while streaming", exc_info=exc)
    return 500, "internal", "internal error; the server log has the details"
