"""The LLM the chain generates with: in-process llama.cpp (default) or an OpenAI-compatible server.

Both backends have one interface (`LLMBackend`), so the chain, the eval judge and the benchmarks
never know which one answers. `settings.llm_url` set means the server (folio.llm_server); else the
GGUF file `settings.llm_model` is loaded in this process (folio.llm_local).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from folio.settings import Settings

if TYPE_CHECKING:
    from folio.llm_local import LocalLLM


class LLMUnavailableError(RuntimeError):
    """The LLM server is down, refused, timed out or failed; the message is one line naming the
    URL and the reason (interfaces show it as it is: HTTP 503, CLI exit 1)."""


@dataclass(frozen=True)
class Prompt:
    """A prompt ready for a backend.

    `text` is what is measured against the context window: the rendered chat template for the
    local model; for a server (which applies its own template) system and user text together."""

    kind: Literal["chat", "completion"]
    system: str
    user: str
    text: str
    stop: list[str]


class LLMBackend(Protocol):
    lock: threading.Lock  # one generation at a time

    @property
    def backend(self) -> str:
        """Which backend: local or server."""
        ...

    @property
    def n_ctx(self) -> int: ...

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` as a prompt (BOS included)."""
        ...

    def completion_tokens(self, text: str) -> int:
        """Tokens of generated `text` (for timings)."""
        ...

    def truncate(self, text: str, max_tokens: int) -> str: ...

    def prompt(
        self, kind: Literal["chat", "completion"], system: str, user: str, stop: list[str]
    ) -> Prompt: ...

    def prompt_tokens(self, prompt: Prompt) -> int: ...

    def stream(self, prompt: Prompt, params: dict[str, Any]) -> Generator[str, None, None]:
        """Generated text as it comes. Closing the iterator early stops the generation."""
        ...

    def invoke(self, prompt: Prompt, params: dict[str, Any]) -> str: ...

    def model_info(self) -> dict[str, Any]: ...


def threads_for(settings: Settings) -> int:
    """Half the cores unless set: the other half stays free for the embedder or an ingest.

    Measured on 2 cores (README, bench.generation_bench): 2 llama.cpp threads give 79 tok/s alone
    but 26 tok/s while an ingest runs (their spinning threads fight torch's); 1 thread gives 54
    tok/s in both cases. OMP_WAIT_POLICY=passive was worse still alone (18 tok/s).
    """
    if settings.n_threads:
        return settings.n_threads
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // 2)


def load_local_llm(settings: Settings) -> LocalLLM:
    """The GGUF model `settings.llm_model` in this process (even when a server is configured:
    the eval judge names a GGUF file on purpose)."""
    from folio.llm_local import load_local
    from folio.models import resolve_llm_path

    path = resolve_llm_path(settings.llm_model, settings.data_dir)
    return load_local(
        path,
        settings.n_ctx,
        str(settings.n_gpu_layers),
        threads_for(settings),
        settings.n_batch,
        settings.seed,
    )


def load_llm(settings: Settings) -> LLMBackend:
    """The configured LLM, set up once per process for the same settings."""
    if settings.llm_url:
        from folio.llm_server import server_llm

        return server_llm(
            settings.llm_url,
            settings.llm_api_key,
            settings.llm_server_model,
            settings.llm_timeout_s,
            settings.n_ctx,
        )
    return load_local_llm(settings)


def configured_model_info(settings: Settings) -> dict[str, Any]:
    """The `model` object before anything is loaded or asked (refusals, quote-only answers)."""
    if settings.llm_url:
        return {
            "url": settings.llm_url,
            "served_model": settings.llm_server_model,
            "backend": "server",
        }
    from folio.models import resolve_llm_path

    path = resolve_llm_path(settings.llm_model, settings.data_dir)
    return {"path": str(path), "n_gpu_layers": settings.n_gpu_layers, "backend": "local"}


def check_llm(settings: Settings) -> dict[str, Any]:
    """For `folio doctor` and /readyz: can the configured LLM answer? Never raises.

    Server: GET /v1/models within `llm_timeout_s`; local: the GGUF file resolves."""
    if settings.llm_url:
        from folio.llm_server import check_server

        return check_server(settings)
    from folio.models import ModelNotFoundError, resolve_llm_path

    report: dict[str, Any] = {"ok": False, "backend": "local", "url": None, "model": None}
    try:
        report["model"] = str(resolve_llm_path(settings.llm_model, settings.data_dir))
        report.update(ok=True, error=None)
    except ModelNotFoundError as exc:
        report["error"] = str(exc)
    return report
