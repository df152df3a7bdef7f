"""The progress bar shows on a terminal's stderr (with the time left), and never in --json mode or
when piped."""

from __future__ import annotations

import io
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import Folio
from folio.progress import IngestEta, RichProgress, progress_columns


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
    assert "chunks embedded" in terminal and "files" in terminal and "time left" in terminal

    (docs / "n0.txt").write_text("Changed note.")
    code, stdout, terminal = run_with_terminal_stderr(folio, "ingest", docs, "--json")
    assert code == 0 and '"updated": 1' in stdout
    assert terminal.strip() == ""


def test_eta_from_the_embedding_rate_leaves_out_unchanged_files() -> None:
    now = [0.0]
    eta = IngestEta(clock=lambda: now[0])
    eta.start_files(10)
    for _ in range(4):  # unchanged files go by in a burst while hashing
        eta.file_done()
    assert eta.seconds_left() is None
    now[0] = 5.0  # the model loaded; the first file is read
    eta.queued(100)
    eta.queued(100)
    now[0] = 15.0
    eta.embedded(200)
    eta.file_done()
    eta.file_done()
    # 6 files to do, 2 done at 20 chunks/s; 4 left at 100 chunks each.
    assert eta.seconds_left() == pytest.approx(20.0)
    now[0] = 25.0  # a stall shows: the rate so far drops, the time left grows
    assert eta.seconds_left() == pytest.approx(40.0)
    for _ in range(4):
        eta.file_done()
    assert eta.seconds_left() == 0.0


def test_the_files_bar_shows_the_time_left() -> None:
    from rich.console import Console
    from rich.progress import Progress

    now = [100.0]
    console = Console(file=io.StringIO(), width=120, color_system=None)
    with Progress(*progress_columns(), console=console, auto_refresh=False) as bars:
        display = RichProgress(bars, clock=lambda: now[0])
        display.start_files(3)
        display.chunks_queued(50)

        def shown() -> str:
            capture = Console(file=io.StringIO(), width=120, color_system=None)
            capture.print(bars.get_renderable())
            return capture.file.getvalue()  # type: ignore[attr-defined]

        assert "time left: estimating" in shown()
        now[0] = 110.0
        display.chunks_embedded(50)
        display.file_done("a.txt")
        # 50 chunks in 10 s; 2 files of ~50 chunks left: 20 s.
        assert "time left: 0:00:20" in shown()
