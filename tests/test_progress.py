"""The progress bar shows on a terminal's stderr, and never in --json mode or when piped."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Folio


def run_with_terminal_stderr(folio: Folio, *args: str | Path) -> tuple[int, str, str]:
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "folio", *map(str, args)],
        env={**os.environ, **folio.env, "COLUMNS": "120"},
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
    )
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if not ready:
            if process.poll() is not None:
                break  # exited, and nothing else holds the terminal open
            continue
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: every holder of the terminal closed it
            break
        if not data:
            break
        chunks.append(data)
    stdout = process.stdout.read() if process.stdout else ""
    process.wait(timeout=120)
    os.close(master)
    return process.returncode, stdout, b"".join(chunks).decode(errors="replace")


@pytest.mark.slow
def test_progress_bar_on_a_terminal_only(folio: Folio, docs: Path) -> None:
    for n in range(3):
        (docs / f"n{n}.txt").write_text(f"Note {n} about the quarterly plan. " * 40)
    code, stdout, terminal = run_with_terminal_stderr(folio, "ingest", docs)
    assert code == 0 and "3 added" in stdout
    assert "chunks embedded" in terminal and "files" in terminal

    (docs / "n0.txt").write_text("Changed note.")
    code, stdout, terminal = run_with_terminal_stderr(folio, "ingest", docs, "--json")
    assert code == 0 and '"updated": 1' in stdout
    assert terminal.strip() == ""
