"""The local LLM: a GGUF model through llama.cpp, wrapped as a LangChain LLM, loaded once."""

from __future__ import annotations

import atexit
import functools
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from folio import llm_runtime
from folio.models import ModelNotFoundError, resolve_llm_path
from folio.settings import Settings

log = logging.getLogger("folio.llm")


@dataclass
class LocalLLM:
    """The LangChain runnable plus what the chain needs: token counts and the chat template."""

    path: Path
    runnable: Any  # langchain_community.llms.LlamaCpp
    gpu: llm_runtime.GpuPlan
    n_ctx: int
    n_threads: int
    lock: threading.Lock  # llama.cpp is not thread-safe: one generation at a time

    @property
    def client(self) -> Any:
        return self.runnable.client

    def count_tokens(self, text: str) -> int:
        return len(self.client.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def truncate(self, text: str, max_tokens: int) -> str:
        tokens = self.client.tokenize(text.encode("utf-8"), add_bos=False, special=False)
        if len(tokens) <= max_tokens:
            return text
        return str(self.client.detokenize(tokens[:max_tokens]).decode("utf-8", errors="ignore"))

    def chat_prompt(self, system: str, user: str) -> tuple[str, list[str]]:
        """Render the model's own chat template (from the GGUF); plain text if it has none."""
        template = self.client.metadata.get("tokenizer.chat_template")
        if not template:
            return f"{system}\n\n{user}\n\nAnswer:", ["\n\n"]
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        eos = self.client.detokenize([self.client.token_eos()]).decode(errors="ignore")
        bos = self.client.detokenize([self.client.token_bos()]).decode(errors="ignore")
        formatter = Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
        messages: list[Any] = ([{"role": "system", "content": system}] if system else []) + [
            {"role": "user", "content": user}
        ]
        try:
            rendered = formatter(messages=messages)
        except Exception:  # templates without a system role (gemma): fold it into the user turn
            rendered = formatter(messages=[{"role": "user", "content": f"{system}\n\n{user}"}])
        stop = rendered.stop if isinstance(rendered.stop, list) else [rendered.stop]
        return rendered.prompt, [s for s in stop if s]

    def model_info(self) -> dict[str, Any]:
        return {"path": str(self.path), "n_gpu_layers": self.gpu.n_gpu_layers}


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


@functools.lru_cache(maxsize=2)
def _load(path: Path, n_ctx: int, n_gpu: str, n_threads: int, n_batch: int, seed: int) -> LocalLLM:
    from langchain_community.llms import LlamaCpp

    try:
        layers = llm_runtime.layer_count(path)
    except ValueError as exc:
        raise ModelNotFoundError(f"{path}: not a loadable GGUF model ({exc})") from None
    gpu = llm_runtime.plan_gpu_layers("auto" if n_gpu == "auto" else int(n_gpu), layers)
    log.info("loading %s: %s", path.name, gpu.reason)
    runnable = LlamaCpp(
        model_path=str(path),
        n_ctx=n_ctx,
        n_gpu_layers=gpu.n_gpu_layers,
        n_threads=n_threads,
        n_batch=n_batch,
        seed=seed,
        verbose=False,
        model_kwargs={"n_threads_batch": n_threads},
    )
    # Free the model before interpreter teardown: llama.cpp's own __del__ fails that late.
    atexit.register(runnable.client.close)
    return LocalLLM(path, runnable, gpu, n_ctx, n_threads, threading.Lock())


def load_llm(settings: Settings) -> LocalLLM:
    """The configured LLM, loaded once per process for the same model and runtime settings."""
    path = resolve_llm_path(settings.llm_model, settings.data_dir)
    return _load(
        path,
        settings.n_ctx,
        str(settings.n_gpu_layers),
        threads_for(settings),
        settings.n_batch,
        settings.seed,
    )
