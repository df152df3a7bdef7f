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
        str, typer.Option("--host", help="Address to bind (0.0.0.0 to serve the network).")
    ] = "127.0.0.1",
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open a browser tab when ready.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Start the web UI (Streamlit): chat, sources, uploads and feedback."""
    settings = settings_from(config)  # fail early, with the CLI's message, on bad settings
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
        "--global.developmentMode", "false",
    ]  # fmt: skip
    typer.echo(f"Folio UI on http://{host}:{port}  (collection '{settings.collection}')", err=True)
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
