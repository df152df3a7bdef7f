"""`folio serve`: the HTTP API (FastAPI under uvicorn), one process, one answer queue."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from folio.cli import ConfigOption, _State, app, fail, settings_from


@app.command()
def serve(
    host: Annotated[
        str, typer.Option("--host", help="Address to bind (0.0.0.0 serves the network).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port.")] = 8000,
    insecure: Annotated[
        bool,
        typer.Option("--insecure", help="Serve a non-loopback address without an API key."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs). Set FOLIO_API_KEY to require
    `Authorization: Bearer KEY` on every route but /healthz."""
    from folio.auth import OpenBindError, is_loopback, refuse_open_bind

    settings = settings_from(config)
    try:
        refuse_open_bind(
            host,
            secured=bool(settings.api_key),
            insecure=insecure,
            how="set FOLIO_API_KEY (or api_key in the config file)",
            missing="an API key",
        )
    except OpenBindError as exc:
        fail(str(exc), 2)
    if settings.api_key and len(settings.api_key) < 16:
        typer.echo("warning: the API key is short; use 16 or more random characters", err=True)
    if insecure and not settings.api_key and not is_loopback(host):
        typer.echo(f"warning: serving {host} without an API key (--insecure)", err=True)

    import uvicorn

    config_file = config or _State.config
    if config_file is not None:  # the API reads its settings itself, as the web UI does
        os.environ["FOLIO_CONFIG"] = str(Path(config_file).absolute())
    shown = f"[{host}]" if ":" in host else host
    typer.echo(f"Folio API on http://{shown}:{port} (docs /docs)", err=True)
    # One worker: the answer queue (and the loaded models) live in this process.
    uvicorn.run(
        "folio.api.app:app_from_environment", factory=True, host=host, port=port, workers=1,
        log_level="info",
    )  # fmt: skip
