"""The HTTP API (`folio serve`): FastAPI over the service layer.

    create_app(settings) -> FastAPI

Routes parse and validate input, call FolioService, and return the CLI's --json objects. Guards
before routing: the bearer key (when `api_key` is set) and the body limit (`max_upload_mb`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from folio.settings import Settings

if TYPE_CHECKING:
    from folio.service import FolioService

DESCRIPTION = """Grounded answers over your own documents, with page citations.

Bodies mirror the `folio` CLI's `--json` objects. Errors are always
`{"error": {"code": str, "message": str}}`. When the server has an API key (`FOLIO_API_KEY`),
every route except `/healthz` (these docs included) needs `Authorization: Bearer <key>`.
"""


def create_app(settings: Settings, service: FolioService | None = None) -> FastAPI:
    """The API over `service` (a FolioService; made from `settings` when not given, and then
    warmed up at startup and closed at shutdown)."""
    from folio.api import routes_answers, routes_chats, routes_library, routes_openai
    from folio.api.errors import install_error_handlers
    from folio.api.guards import BearerKeyGuard, BodyLimitGuard
    from folio.service import FolioService

    owned = service is None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = app.state.service
        if owned:
            svc.warm_up()
        try:
            yield
        finally:
            if owned:
                svc.close()

    from fastapi_offline import FastAPIOffline

    app = FastAPIOffline(
        title="Folio",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.service = service if service is not None else FolioService(settings)
    install_error_handlers(app)
    for module in (routes_answers, routes_library, routes_chats, routes_openai):
        app.include_router(module.router)
    add_health_routes(app)
    # Starlette runs the last added middleware first: the key is checked before the size.
    app.add_middleware(BodyLimitGuard, limit=settings.max_upload_bytes)
    app.add_middleware(BearerKeyGuard, api_key=settings.api_key)
    document_bearer_auth(app)
    return app


def app_from_environment() -> FastAPI:
    """uvicorn's factory for `folio serve`: settings from FOLIO_* (and FOLIO_CONFIG), read when
    the server starts."""
    import logging

    from folio.settings import load_settings

    settings = load_settings()
    logging.getLogger("uvicorn.error").info("Folio: %s", describe(settings))
    return create_app(settings)


def describe(settings: Settings) -> str:
    """Collections (those with a manifest, and the default), the LLM backend, and the key."""
    manifests = settings.data_dir / "manifests"
    names = sorted({p.stem for p in manifests.glob("*.sqlite3")} | {settings.collection})
    if settings.llm_url:
        served = f" ({settings.llm_server_model})" if settings.llm_server_model else ""
        llm = f"LLM server {settings.llm_url}{served}"
    else:
        llm = f"in-process llama.cpp ({settings.llm_model})"
    key = "API key required" if settings.api_key else "no API key"
    return f"collections: {', '.join(names)} (default '{settings.collection}'); LLM: {llm}; {key}"


def add_health_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["health"], summary="The process is up (no key needed)")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["health"],
        summary="Models loaded, store and LLM reachable (503 until then)",
        responses={503: {"description": "not ready; `checks` says what is missing"}},
    )
    async def readyz() -> JSONResponse:
        from starlette.concurrency import run_in_threadpool

        ok, checks = await run_in_threadpool(app.state.service.ready)
        if ok:
            return JSONResponse({"ready": True, "checks": checks})
        waiting = ", ".join(name for name, check in checks.items() if not check.get("ok"))
        return JSONResponse(
            {
                "ready": False,
                "checks": checks,
                "error": {"code": "not_ready", "message": f"not ready: {waiting}"},
            },
            status_code=503,
        )


def document_bearer_auth(app: FastAPI) -> None:
    """The schema names the bearer scheme, so /docs offers "Authorize" for keyed servers."""
    from fastapi.openapi.utils import get_openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            )  # fmt: skip
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer", "description": "FOLIO_API_KEY"}
            }
            for path, operations in schema.get("paths", {}).items():
                if path != "/healthz":
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
