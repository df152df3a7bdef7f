"""Real LLM servers for the backend tests: llama_cpp.server with the packaged model, and a server
that accepts connections and never answers (for timeouts). Import the fixtures into a test module.
"""

from __future__ import annotations

import http.server
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import free_port
from servers import running


@dataclass
class LlamaServer:
    url: str  # the OpenAI base URL, .../v1
    log: Path  # the server's output: its access log shows which routes were called
    model_path: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_s: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if text in self.log_text():
                return True
            time.sleep(0.1)
        return False


# The running server, shared by every module that imports the fixture (each import is its own
# session fixture to pytest; the first to run starts the server, the others reuse it).
_RUNNING: dict[str, LlamaServer] = {}


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """`python -m llama_cpp.server` with the packaged SmolLM2 on a free loopback port, one
    thread (the in-process model and the embedder share the same 2 cores)."""
    from folio.models import resolve_llm_path

    if "smollm2" in _RUNNING:
        yield _RUNNING["smollm2"]
        return

    folder = tmp_path_factory.mktemp("llama-server")
    model = resolve_llm_path("smollm2", folder)
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(model),
               "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
               "--n_threads", "1", "--n_threads_batch", "1",
               # Queue requests: by default a second request cuts off a streaming answer.
               "--interrupt_requests", "false"]  # fmt: skip
    log_path = folder / "server.log"
    with running(command, None, log_path, f"{url}/models"):
        _RUNNING["smollm2"] = LlamaServer(url, log_path, model)
        yield _RUNNING["smollm2"]
        del _RUNNING["smollm2"]


@pytest.fixture
def silent_server() -> Iterator[str]:
    """An HTTP server that accepts every request and never answers: the OpenAI base URL."""
    release = threading.Event()

    class Silent(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            release.wait(60)

        do_POST = do_GET

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    release.set()
    server.shutdown()
    server.server_close()
