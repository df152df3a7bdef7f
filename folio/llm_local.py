"""In-process llama.cpp: a GGUF model behind a small LangChain LLM of our own, loaded once.

langchain_community's `LlamaCpp` is being sunset and warns on every answer; this class is the
part of it Folio used: streaming, stop sequences and per-request sampling over `llama_cpp.Llama`.
"""

from __future__ import annotations

import atexit
import functools
import logging
import threading
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.llms import LLM
from langchain_core.outputs import GenerationChunk

from folio import llm_runtime
from folio.llm import Prompt
from folio.models import ModelNotFoundError

log = logging.getLogger("folio.llm")

# What `llama_cpp.Llama.create_completion` takes per request (anything else is not passed on).
SAMPLING_KEYS = frozenset(
    {"temperature", "top_p", "top_k", "repeat_penalty", "max_tokens", "seed", "min_p",
     "logit_bias", "presence_penalty", "frequency_penalty"}
)  # fmt: skip


class LlamaCppLLM(LLM):
    """A LangChain LLM over one loaded `llama_cpp.Llama` (`client`).

    The defaults are those of the `LlamaCpp` class it replaces, so calls that name only some
    parameters (the condense rewrite) sample exactly as before."""

    client: Any = None  # llama_cpp.Llama
    temperature: float = 0.8
    top_p: float = 0.95
    top_k: int = 40
    repeat_penalty: float = 1.1
    max_tokens: int = 256

    @property
    def _llm_type(self) -> str:
        return "folio-llama-cpp"

    def _params(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        params: dict[str, Any] = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "repeat_penalty": self.repeat_penalty,
            "max_tokens": self.max_tokens,
        }
        params.update({k: v for k, v in kwargs.items() if k in SAMPLING_KEYS and v is not None})
        params["stop"] = list(stop or [])
        return params

    def _call(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> str:
        return "".join(chunk.text for chunk in self._stream(prompt, stop, run_manager, **kwargs))

    def _stream(
        self,
        prompt: str,
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[GenerationChunk]:
        pieces = self.client.create_completion(prompt, stream=True, **self._params(stop, kwargs))
        try:
            for part in pieces:
                chunk = GenerationChunk(text=part["choices"][0]["text"])
                if run_manager:
                    run_manager.on_llm_new_token(chunk.text, chunk=chunk)
                yield chunk
        finally:
            # A consumer that stops early (a cancelled answer) stops llama.cpp here: the
            # completion generator evaluates one token per step, so closing it ends the work.
            pieces.close()


@dataclass
class LocalLLM:
    """The GGUF model in this process, with what the chain needs: token counts, the model's own
    chat template, streaming, and a lock (llama.cpp is not thread-safe)."""

    path: Path
    runnable: LlamaCppLLM
    gpu: llm_runtime.GpuPlan
    n_ctx: int
    n_threads: int
    lock: threading.Lock
    backend: Literal["local"] = "local"

    @property
    def client(self) -> Any:
        """The `llama_cpp.Llama` itself (benchmarks call it directly)."""
        return self.runnable.client

    def count_tokens(self, text: str) -> int:
        return len(self.client.tokenize(text.encode("utf-8"), add_bos=True, special=True))

    def completion_tokens(self, text: str) -> int:
        return len(self.client.tokenize(text.encode("utf-8"), add_bos=False)) if text else 0

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

    def prompt(
        self, kind: Literal["chat", "completion"], system: str, user: str, stop: list[str]
    ) -> Prompt:
        if kind == "completion":
            return Prompt(kind, system, user, user, list(stop))
        text, template_stop = self.chat_prompt(system, user)
        return Prompt(kind, system, user, text, list(stop) + template_stop)

    def prompt_tokens(self, prompt: Prompt) -> int:
        return self.count_tokens(prompt.text)

    def stream(self, prompt: Prompt, params: dict[str, Any]) -> Generator[str, None, None]:
        """Generated text as it comes; closing the iterator stops llama.cpp at once."""
        yield from self.runnable.stream(prompt.text, stop=prompt.stop, **params)

    def invoke(self, prompt: Prompt, params: dict[str, Any]) -> str:
        return str(self.runnable.invoke(prompt.text, stop=prompt.stop, **params))

    def model_info(self) -> dict[str, Any]:
        return {"path": str(self.path), "n_gpu_layers": self.gpu.n_gpu_layers, "backend": "local"}


@functools.lru_cache(maxsize=2)
def load_local(
    path: Path, n_ctx: int, n_gpu: str, n_threads: int, n_batch: int, seed: int
) -> LocalLLM:
    """The model at `path`, loaded once per process for the same runtime settings."""
    llama_cpp = llm_runtime.llama_cpp_module()
    try:
        layers = llm_runtime.layer_count(path)
    except ValueError as exc:
        raise ModelNotFoundError(f"{path}: not a loadable GGUF model ({exc})") from None
    gpu = llm_runtime.plan_gpu_layers("auto" if n_gpu == "auto" else int(n_gpu), layers)
    log.info("loading %s: %s", path.name, gpu.reason)
    client = llama_cpp.Llama(
        model_path=str(path),
        n_ctx=n_ctx,
        n_gpu_layers=gpu.n_gpu_layers,
        n_threads=n_threads,
        n_threads_batch=n_threads,
        n_batch=n_batch,
        seed=seed,
        verbose=False,
    )
    # Free the model before interpreter teardown: llama.cpp's own __del__ fails that late.
    atexit.register(client.close)
    return LocalLLM(path, LlamaCppLLM(client=client), gpu, n_ctx, n_threads, threading.Lock())
