"""Real servers for the tests: start a process, wait until its health URL answers, stop it (and
everything it started) afterwards. Used for `folio ui`, `folio serve` and llama_cpp.server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from conftest import free_port


@contextmanager
def running(
    command: list[str], env: dict[str, str] | None, log_path: Path, health_url: str,
    timeout: float = 120,
) -> Iterator[subprocess.Popen[bytes]]:  # fmt: skip
    """`command` in its own process group, logging to `log_path`, once `health_url` gives 200."""
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + timeout
            while not _answers(health_url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{' '.join(command[:4])} did not start within {timeout:.0f} s:\n"
                        + log_path.read_text(errors="replace")[-3000:]
                    )
                time.sleep(0.3)
            yield proc
        finally:
            _stop(proc)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the whole group (a server and anything it started), SIGKILL if it lingers."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def folio_ui(env: dict[str, str], log_path: Path) -> Iterator[tuple[str, int]]:
    """A real `folio ui` on a free port: (url, pid)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "folio", "ui", "--port", str(port)]
    with running(command, env, log_path, f"{url}/_stcore/health", timeout=90) as proc:
        yield url, proc.pid
