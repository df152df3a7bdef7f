"""A real `folio serve` process on a free loopback port, for the HTTP API tests."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from conftest import free_port
from servers import running

START_TIMEOUT_S = 120


def api_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a test server and of the CLI runs compared with it."""
    return {
        **os.environ,
        "FOLIO_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "FOLIO_N_THREADS": "1",
        "FOLIO_TORCH_THREADS": "1",
        "FOLIO_LOCK_TIMEOUT_S": "120",
        **extra,
    }


@dataclass
class ApiServer:
    url: str
    env: dict[str, str]
    proc: subprocess.Popen[bytes]
    log: Path

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, **{"timeout": 120, **kwargs})

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def run_folio(
    env: dict[str, str], *args: str, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """`folio ARGS` in its own process (it exits, so no store is held open beside the server)."""
    return subprocess.run(
        [sys.executable, "-m", "folio", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@contextmanager
def api_server(env: dict[str, str], log: Path, *args: str) -> Iterator[ApiServer]:
    """`folio serve --port P ARGS`, ready when /healthz answers; terminated afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "folio", "serve", "--port", str(port), *args]
    with running(command, env, log, f"{url}/healthz", timeout=START_TIMEOUT_S) as proc:
        yield ApiServer(url, env, proc, log)


def wait_ready(server: ApiServer, key: str | None = None, timeout: float = 180) -> dict[str, Any]:
    """Wait for /readyz (models loaded) so timing-sensitive tests do not measure loading."""
    deadline = time.monotonic() + timeout
    with server.client(key) as client:
        while True:
            response = client.get("/readyz")
            if response.status_code == 200:
                return dict(response.json())
            if time.monotonic() > deadline:
                raise RuntimeError(f"not ready: {response.text}")
            time.sleep(0.5)


def sse_events(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """(event name, data) pairs from server-sent event lines."""
    name, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield name, "\n".join(data)
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())
