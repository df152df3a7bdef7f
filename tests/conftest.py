"""Shared fixtures: a temp data dir, the real CLI, real files, and a real Chroma server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from folio.cli import app

REPO = Path(__file__).resolve().parent.parent
SHARED_DATASETS = REPO.parent / "shared" / "datasets"


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)


class Folio:
    """Runs `folio` in-process through Typer's runner, with the test's environment."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self._runner = CliRunner()

    def __call__(self, *args: str | Path, input: str | None = None) -> CliResult:
        result = self._runner.invoke(app, [str(a) for a in args], env=self.env, input=input)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return CliResult(result.exit_code, result.stdout, result.stderr)

    def json(self, *args: str | Path) -> Any:
        result = self(*args, "--json")
        assert result.exit_code in (0, 1), result.stderr
        return result.json()

    def subprocess(self, *args: str | Path, **kwargs: Any) -> subprocess.Popen[str]:
        """A real `folio` process (for kill and concurrency tests)."""
        return subprocess.Popen(
            [sys.executable, "-m", "folio", *map(str, args)],
            env={**os.environ, **self.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            **kwargs,
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `chroma run` server on a free loopback port, for the server-mode runs."""
    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent)) or shutil.which("chroma")
    if chroma is None:
        pytest.fail("the chroma CLI is missing: run `make install`")
    port = free_port()
    path = tmp_path_factory.mktemp("chroma-server")
    log = (path / "server.log").open("w")
    proc = subprocess.Popen(
        [chroma, "run", "--path", str(path / "db"), "--port", str(port), "--host", "127.0.0.1"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                pytest.fail(f"chroma server exited: {(path / 'server.log').read_text()[-2000:]}")
            time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("chroma server did not start within 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)
    log.close()


@pytest.fixture
def base_env(tmp_path: Path) -> dict[str, str]:
    return {
        "FOLIO_DATA_DIR": str(tmp_path / "data"),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "FOLIO_LOCK_TIMEOUT_S": "120",
    }


@pytest.fixture
def folio(base_env: dict[str, str]) -> Folio:
    """The CLI over embedded Chroma in a fresh data dir."""
    return Folio(base_env)


@pytest.fixture(params=["embedded", "server"])
def any_folio(request: pytest.FixtureRequest, base_env: dict[str, str], tmp_path: Path) -> Folio:
    """The CLI over each store backend: the same contract must hold for both."""
    env = dict(base_env)
    if request.param == "server":
        env["FOLIO_CHROMA_URL"] = request.getfixturevalue("chroma_server")
        # Collections on the shared server must not collide between tests.
        env["FOLIO_COLLECTION"] = f"t{abs(hash(str(tmp_path))) % 10**9}"
    return Folio(env)


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    return folder
