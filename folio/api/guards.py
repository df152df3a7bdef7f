"""Pure ASGI guards that run before routing: the bearer key and the request body limit.

Both act before any body is read, so an unauthenticated or oversized request costs nothing.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from folio.api.errors import error_body

# Routes that answer without the key: a load balancer's liveness probe carries no secret.
OPEN_PATHS = frozenset({"/healthz"})


async def send_error(
    send: Send, status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> None:
    body = json.dumps(error_body(code, message), separators=(",", ":")).encode()
    raw_headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ] + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def bearer_token(headers: Headers) -> str | None:
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def key_matches(given: str | None, expected: str) -> bool:
    from folio.auth import api_key_matches

    return api_key_matches(given, expected)


class BearerKeyGuard:
    """When an API key is set, every request but /healthz needs `Authorization: Bearer KEY`,
    unknown routes and the OpenAPI docs included (nothing about the server leaks without it)."""

    def __init__(self, app: ASGIApp, api_key: str | None) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.api_key or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = bearer_token(Headers(scope=scope))
        if key_matches(given, self.api_key):
            await self.app(scope, receive, send)
            return
        message = (
            "missing API key: send Authorization: Bearer <key>"
            if given is None
            else "wrong API key"
        )
        await send_error(
            send, 401, "unauthorized", message, {"WWW-Authenticate": 'Bearer realm="folio"'}
        )


JSON_BODY_LIMIT = 1024 * 1024


class _BodyTooLarge(Exception):
    pass


class BodyLimitGuard:
    """Refuses a body over `limit` bytes with 413: from Content-Length before reading anything,
    or, when the header is absent (chunked), as soon as the bytes received pass the limit; the
    route never runs, so nothing is stored."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        # Only uploads (multipart) may be large; a question or a search fits in a megabyte.
        if headers.get("content-type", "").startswith("multipart/"):
            limit, why = self.limit, "max_upload_mb"
        else:
            limit, why = min(self.limit, JSON_BODY_LIMIT), "for requests other than uploads"
        too_large = f"the request body is over the {limit / 1024 / 1024:g} MB limit ({why})"
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await send_error(send, 413, "too_large", too_large, {"Connection": "close"})
            return
        received = 0
        exceeded = False
        started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's reaction to the aborted read is replaced by the 413 below
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            if started:
                raise
        if exceeded and not started:
            await send_error(send, 413, "too_large", too_large, {"Connection": "close"})
