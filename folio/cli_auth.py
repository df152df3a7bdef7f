"""`folio password-hash`: make the salted hash the web UI's password is checked against."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from folio.cli import app, fail

# Shorter passwords still work; they are only warned about.
RECOMMENDED_LENGTH = 10


@app.command("password-hash")
def password_hash(
    from_stdin: Annotated[
        bool,
        typer.Option("--stdin", help="Read the password from stdin (one line; for scripts)."),
    ] = False,
) -> None:
    """Make a salted hash of the web UI's password, for the ui_password_hash setting."""
    from folio.auth import hash_password

    if from_stdin:
        # One line: the newline ending it (from echo or a file) is not part of the password.
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt(
            "Password for the web UI", hide_input=True, confirmation_prompt=True, err=True
        )
    if not password.strip():
        fail("the password is empty; choose a non-empty password", 2)
    if len(password) < RECOMMENDED_LENGTH:
        typer.echo(
            f"warning: the password has fewer than {RECOMMENDED_LENGTH} characters; "
            "anyone who can reach the UI can try to guess it",
            err=True,
        )
    hashed = hash_password(password)
    typer.echo(hashed)
    typer.echo(
        "\nUse it (single quotes: the hash contains '$'):\n"
        f"  export FOLIO_UI_PASSWORD_HASH='{hashed}'\n"
        "or in the config file:\n"
        f"  ui_password_hash: '{hashed}'\n"
        "then start `folio ui` (add `--host 0.0.0.0` to serve the network).",
        err=True,
    )
