"""`folio ui` (the web page) and `folio feedback export` (its ratings as an eval dataset)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

from folio.cli import ConfigOption, _State, app, emit_json, fail, settings_from


@app.command()
def ui(
    port: Annotated[int, typer.Option("--port", "-p", help="Port to listen on.")] = 8501,
    host: Annotated[
        str,
        typer.Option(
            "--host", help="Address to bind (0.0.0.0 serves the network: needs a password)."
        ),
    ] = "127.0.0.1",
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open a browser tab when ready.")
    ] = False,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Serve a non-loopback address without a password (anyone there gets in).",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Start the web UI (Streamlit): chat, sources, uploads and feedback.

    With ui_password_hash set (see `folio password-hash`) the page asks for the password first.
    """
    from folio.auth import OpenBindError, is_loopback, parse_password_hash, refuse_open_bind

    settings = settings_from(config)  # fail early, with the CLI's message, on bad settings
    password_hash = settings.ui_password_hash
    if password_hash:  # an empty value counts as unset, as for the other optional settings
        try:  # a malformed hash would lock everyone out of the page: say so now
            parse_password_hash(password_hash)
        except ValueError as exc:
            fail(str(exc), 2)
    try:
        refuse_open_bind(
            host,
            secured=bool(password_hash),
            insecure=insecure,
            how="make a password hash with `folio password-hash` and set FOLIO_UI_PASSWORD_HASH "
            "(or ui_password_hash in the config file)",
            missing="a password",
        )
    except OpenBindError as exc:
        fail(str(exc), 2)
    if insecure and not password_hash and not is_loopback(host):
        typer.echo(f"warning: serving {host} with no password (--insecure)", err=True)
    spec = importlib.util.find_spec("app.streamlit_app")
    if spec is None or spec.origin is None:
        fail("the web UI is not installed (reinstall folio-rag)")
    env = dict(os.environ)
    config_file = config or _State.config
    if config_file is not None:
        env["FOLIO_CONFIG"] = str(Path(config_file).absolute())
    env.setdefault("HF_HUB_OFFLINE", "1")
    command = [
        sys.executable, "-m", "streamlit", "run", spec.origin,
        "--server.port", str(port),
        "--server.address", host,
        # Always headless: otherwise Streamlit's first run asks for an e-mail on stdin.
        "--server.headless", "true",
        "--server.fileWatcherType", "none",
        "--server.maxUploadSize", str(max(1, int(settings.max_file_mb + 0.999))),
        "--browser.gatherUsageStats", "false",
        "--client.toolbarMode", "minimal",
        # A bug's traceback goes to the server's log, not to every browser (known errors are
        # shown as one line by the page itself).
        "--client.showErrorDetails", "none",
        "--global.developmentMode", "false",
    ]  # fmt: skip
    # The hash reaches Streamlit through the environment or FOLIO_CONFIG (as every setting does),
    # never on its command line, which `ps` shows to every local user.
    access = "password required" if password_hash else "no password"
    typer.echo(
        f"Folio UI on http://{host}:{port}  (collection '{settings.collection}', {access})",
        err=True,
    )
    sys.stderr.flush()
    if open_browser:  # a detached helper opens the tab once the server had time to start
        url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}"
        subprocess.Popen(
            [sys.executable, "-c",
             f"import time, webbrowser; time.sleep(4); webbrowser.open({url!r})"],
            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    # Become the server (no wrapper process): signals and exit codes reach Streamlit directly.
    os.execve(sys.executable, command, env)


feedback_app = typer.Typer(
    help="Ratings and comments left on answers in the web UI.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
)
app.add_typer(feedback_app, name="feedback")


@feedback_app.command("export")
def feedback_export(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write JSON lines here (default stdout).")
    ] = None,
    include_down: Annotated[
        bool,
        typer.Option("--include-down", help="Also export thumbs-down answers, marked for review."),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Turn feedback into an eval dataset (generic JSONL: question, answers, evidence)."""
    import json

    from folio.feedback import feedback_path, read_feedback, to_eval_items

    settings = settings_from(config)
    rows = list(to_eval_items(read_feedback(feedback_path(settings)), include_down))
    if out is None:
        for row in rows:
            emit_json(row)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
        typer.echo(f"Wrote {len(rows)} question(s) to {out}", err=True)
