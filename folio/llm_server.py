"""Generation on any OpenAI-compatible server (llama.cpp, vLLM, Ollama) through langchain-openai.

Chat-kind prompts go to /v1/chat/completions as system + user messages (the server applies the
model's chat template); completion-kind prompts (the base-model variant) to /v1/completions.
Prompt fitting uses the server's tokenizer endpoint when it has one (llama_cpp.server:
/extras/tokenize; llama-server and vLLM: /tokenize), else a deliberately high estimate.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Generator
from typing import Any, Literal

from folio.llm import LLMUnavailableError, Prompt
from folio.settings import Settings

# Tokens the server's chat template adds around the system and user messages (role markers).
CHAT_TEMPLATE_TOKENS = 32
# Sampling parameters of the OpenAI API itself; the others (top_k, repeat_penalty...) go in the
# request body as extras, which llama.cpp's servers and vLLM read.
# Runs of one kind of character: whitespace, digits, ASCII letters, ASCII punctuation, the rest.
_PIECES = re.compile(r"\s+|\d+|[A-Za-z]+|[!-/:-@\[-`{-~]+|[^\sA-Za-z0-9!-/:-@\[-`{-~]+")
OPENAI_PARAMS = frozenset(
    {"temperature", "top_p", "max_tokens", "seed", "logit_bias", "presence_penalty",
     "frequency_penalty"}
)  # fmt: skip


def estimate_tokens(text: str) -> int:
    """A token count that errs high, for servers without a tokenizer endpoint.

    Measured against SmolLM2's tokenizer (A-results.md): digits, ASCII punctuation and each
    UTF-8 byte of other scripts count one token each (tokenizers often split them that far);
    layout whitespace one per 16; letters count one per three; plus 10%."""
    digits = punct = other = letters = runs = 0
    for match in _PIECES.finditer(text):
        piece = match.group()
        if piece[0].isspace():
            if len(piece) > 1:
                runs += math.ceil(len(piece) / 16)
            else:
                letters += 1
        elif piece[0].isdigit():
            digits += len(piece)
        elif piece[0].isascii() and not piece[0].isalnum():
            punct += len(piece)
        elif piece[0].isascii():
            letters += len(piece)
        else:
            other += len(piece.encode("utf-8"))
    return math.ceil(1.1 * (digits + punct + other + runs + letters / 3)) + 1


def _reason(exc: BaseException) -> str:
    """A short reason for a failed request, from the innermost cause (no traceback)."""
    import httpx
    import openai

    if isinstance(exc, openai.APIStatusError):
        detail = " ".join(str(exc.message).split())[:200]
        return f"HTTP {exc.status_code}: {detail}"
    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException)):
        return "timed out"
    cause: BaseException = exc
    while cause.__cause__ is not None or cause.__context__ is not None:
        cause = cause.__cause__ or cause.__context__  # type: ignore[assignment]
    text = str(cause) or type(cause).__name__
    if "refused" in text.lower():
        return "connection refused"
    if "name or service not known" in text.lower() or "nodename nor servname" in text.lower():
        return "host not found"
    return " ".join(text.split())[:200]


def unavailable(url: str, exc: BaseException, timeout_s: float) -> LLMUnavailableError:
    reason = _reason(exc)
    if reason == "timed out":
        return LLMUnavailableError(
            f"LLM server {url} did not answer within {timeout_s:g} s (timed out); check the "
            "server or raise FOLIO_LLM_TIMEOUT_S"
        )
    if reason.startswith("HTTP "):
        status = int(reason.split()[1].rstrip(":"))
        return LLMUnavailableError(f"LLM server {url} returned an error ({reason}){_hint(status)}")
    return LLMUnavailableError(f"LLM server {url} is not reachable ({reason}); check FOLIO_LLM_URL")


def _hint(status: int) -> str:
    """What to check for the HTTP errors a configuration mistake gives."""
    if status in (401, 403):
        return "; check FOLIO_LLM_API_KEY"
    if status == 404:
        return "; FOLIO_LLM_URL should be the OpenAI base URL, usually ending in /v1"
    return ""


def _errors() -> tuple[type[BaseException], ...]:
    import httpx
    import openai

    return (openai.APIError, httpx.HTTPError, OSError)


class ServerLLM:
    """One OpenAI-compatible server; the model name, context size and tokenizer route are asked
    for once, on first use."""

    backend: Literal["server"] = "server"

    def __init__(
        self,
        url: str,
        api_key: str | None,
        model: str | None,
        timeout_s: float,
        n_ctx: int,
        *,
        server_tokenizer: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        # The server's root (its tokenizer and /props live beside /v1, not under it).
        self.root = self.url[: -len("/v1")] if self.url.endswith("/v1") else self.url
        self.api_key = api_key or "not-needed"  # the OpenAI client insists on some key
        self.timeout_s = timeout_s
        self.lock = threading.Lock()
        self._model = model
        self._configured_n_ctx = n_ctx
        self._n_ctx: int | None = None
        # "" once known that the server has no tokenizer endpoint (or told not to use it)
        self._tokenize_route: str | None = None if server_tokenizer else ""
        self._bos_tokens = 0
        self._runnables: dict[str, Any] = {}
        self._client: Any = None  # httpx.Client

    # --- plain HTTP calls to the server -------------------------------------------------------
    def _http(self) -> Any:
        """One keep-alive client for the small requests (model list, tokenizer, props)."""
        import httpx

        if self._client is None:
            self._client = httpx.Client(
                timeout=self.timeout_s, headers={"Authorization": f"Bearer {self.api_key}"}
            )
        return self._client

    def _get_json(self, url: str) -> Any:
        try:
            response = self._http().get(url)
            response.raise_for_status()
            return response.json()
        except _errors() as exc:
            raise self._unavailable(exc) from None
        except ValueError as exc:  # not JSON: not an OpenAI-compatible server
            raise LLMUnavailableError(
                f"LLM server {self.url} answered {url} with non-JSON ({exc})"
            ) from None

    def _unavailable(self, exc: BaseException) -> LLMUnavailableError:
        import httpx

        if isinstance(exc, httpx.HTTPStatusError):
            status = exc.response.status_code
            return LLMUnavailableError(
                f"LLM server {self.url} returned an error (HTTP {status} for "
                f"{exc.request.url.path}){_hint(status)}"
            )
        return unavailable(self.url, exc, self.timeout_s)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def served_models(self) -> list[str]:
        data = self._get_json(f"{self.url}/models")
        return [str(m["id"]) for m in data.get("data", []) if isinstance(m, dict) and "id" in m]

    @property
    def served_model(self) -> str:
        """`llm_server_model`, or the first model the server lists."""
        if self._model is None:
            models = self.served_models()
            if not models:
                raise LLMUnavailableError(f"LLM server {self.url} lists no models at /models")
            self._model = models[0]
        return self._model

    @property
    def n_ctx(self) -> int:
        """The server's context size when it says (llama-server /props, vLLM max_model_len),
        else the `n_ctx` setting."""
        if self._n_ctx is None:
            self._n_ctx = self._reported_n_ctx() or self._configured_n_ctx
        return self._n_ctx

    def _reported_n_ctx(self) -> int | None:
        import httpx

        client = self._http()
        try:
            response = client.get(f"{self.root}/props")
            if response.status_code == 200:
                props = response.json()
                n_ctx = (props.get("default_generation_settings") or {}).get("n_ctx")
                if n_ctx:
                    return int(n_ctx)
            models = client.get(f"{self.url}/models").json().get("data", [])
        except (httpx.TransportError, OSError) as exc:  # down or silent: say so now
            raise self._unavailable(exc) from None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        for model in models:
            if isinstance(model, dict) and self._model in (None, model.get("id")):
                value = model.get("max_model_len")
                return int(value) if value else None
        return None

    # --- tokens -------------------------------------------------------------------------------
    def _tokenize(self, text: str) -> list[int] | None:
        """The server's tokens for `text`, or None when it has no tokenizer endpoint."""
        import httpx

        if self._tokenize_route == "":
            return None
        routes = [self._tokenize_route] if self._tokenize_route else ["extras/tokenize", "tokenize"]
        body = {"input": text, "content": text, "prompt": text, "model": self._model}
        client = self._http()
        empty = {"input": "", "content": "", "prompt": "", "model": self._model}
        try:
            for route in routes:
                response = client.post(f"{self.root}/{route}", json=body)
                if response.status_code != 200:
                    continue
                tokens = response.json().get("tokens")
                if isinstance(tokens, list):
                    if self._tokenize_route is None:  # first use: how many tokens is nothing?
                        self._tokenize_route = route
                        reply = client.post(f"{self.root}/{route}", json=empty).json()
                        self._bos_tokens = len(reply["tokens"])
                    return [int(t) for t in tokens]
        except (httpx.TransportError, OSError) as exc:  # down or silent: say so now
            raise self._unavailable(exc) from None
        except (httpx.HTTPError, ValueError, KeyError, AttributeError):
            pass
        if self._tokenize_route is None:
            self._tokenize_route = ""  # asked once: fall back to the estimate from now on
        return None

    def count_tokens(self, text: str) -> int:
        tokens = self._tokenize(text)
        return estimate_tokens(text) if tokens is None else len(tokens)

    def completion_tokens(self, text: str) -> int:
        if not text:
            return 0
        tokens = self._tokenize(text)
        if tokens is None:
            return estimate_tokens(text) - 1
        return max(1, len(tokens) - self._bos_tokens)

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix (cut in proportion, then checked) of at most `max_tokens` tokens."""
        count = self.count_tokens(text)
        if count <= max_tokens:
            return text
        cut = int(len(text) * max_tokens / count)
        for _ in range(6):
            candidate = text[:cut]
            if self.count_tokens(candidate) <= max_tokens:
                return candidate
            cut = int(cut * 0.85)
        return text[: max(0, max_tokens // 4)]

    # --- prompts and generation ---------------------------------------------------------------
    def prompt(
        self, kind: Literal["chat", "completion"], system: str, user: str, stop: list[str]
    ) -> Prompt:
        if kind == "completion":
            return Prompt(kind, system, user, user, list(stop))
        return Prompt(kind, system, user, f"{system}\n\n{user}" if system else user, list(stop))

    def prompt_tokens(self, prompt: Prompt) -> int:
        if prompt.kind == "completion":
            return self.count_tokens(prompt.text)
        return self.count_tokens(prompt.text) + CHAT_TEMPLATE_TOKENS

    def _runnable(self, kind: str) -> Any:
        """ChatOpenAI for chat prompts, OpenAI (/v1/completions) for completion prompts."""
        if kind not in self._runnables:
            options: dict[str, Any] = {
                "model": self.served_model,
                "base_url": self.url,
                "api_key": self.api_key,
                "timeout": self.timeout_s,
                "max_retries": 0,  # a server that is down should say so now, not after backoff
            }
            if kind == "chat":
                from langchain_openai import ChatOpenAI

                self._runnables[kind] = ChatOpenAI(**options)
            else:
                from langchain_openai import OpenAI

                self._runnables[kind] = OpenAI(**options)
        return self._runnables[kind]

    def _request(self, prompt: Prompt, params: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """(input, keyword arguments) for the runnable of the prompt's kind."""
        kwargs = {k: v for k, v in params.items() if k in OPENAI_PARAMS and v is not None}
        extra = {k: v for k, v in params.items() if k not in OPENAI_PARAMS and v is not None}
        if prompt.kind == "chat":
            from langchain_core.messages import HumanMessage, SystemMessage

            messages = ([SystemMessage(prompt.system)] if prompt.system else []) + [
                HumanMessage(prompt.user)
            ]
            # ChatOpenAI sends max_tokens as max_completion_tokens, which llama_cpp.server
            # ignores: the old name goes along in the body too.
            if "max_tokens" in kwargs:
                extra["max_tokens"] = kwargs["max_tokens"]
            request: Any = messages
        else:
            request = prompt.text
        if extra:
            kwargs["extra_body"] = extra
        if prompt.stop:
            kwargs["stop"] = list(prompt.stop)
        return request, kwargs

    def stream(self, prompt: Prompt, params: dict[str, Any]) -> Generator[str, None, None]:
        """Streamed text; closing the iterator closes the HTTP stream (the server stops)."""
        request, kwargs = self._request(prompt, params)
        runnable = self._runnable(prompt.kind)
        try:
            for chunk in runnable.stream(request, **kwargs):
                text = chunk if isinstance(chunk, str) else chunk.content
                if isinstance(text, str) and text:
                    yield text
        except _errors() as exc:
            raise self._unavailable(exc) from None

    def invoke(self, prompt: Prompt, params: dict[str, Any]) -> str:
        return "".join(self.stream(prompt, params))

    def model_info(self) -> dict[str, Any]:
        return {"url": self.url, "served_model": self._model, "backend": "server"}


@functools.lru_cache(maxsize=4)
def server_llm(
    url: str, api_key: str | None, model: str | None, timeout_s: float, n_ctx: int
) -> ServerLLM:
    """One client per server and settings per process (the model name is asked for once)."""
    return ServerLLM(url, api_key, model, timeout_s, n_ctx)


CHECK_TIMEOUT_S = 5.0


def check_server(settings: Settings) -> dict[str, Any]:
    """{"ok", "backend", "url", "model", "error"}: GET /v1/models within the timeout; the model
    is `llm_server_model` (which must be listed) or the first listed."""
    assert settings.llm_url
    # A probe (doctor, /readyz) answers within seconds even when answers may take minutes.
    timeout_s = min(settings.llm_timeout_s, CHECK_TIMEOUT_S)
    server = ServerLLM(
        settings.llm_url, settings.llm_api_key, settings.llm_server_model, timeout_s,
        settings.n_ctx,
    )  # fmt: skip
    report: dict[str, Any] = {"ok": False, "backend": "server", "url": server.url, "model": None}
    try:
        models = server.served_models()
    except LLMUnavailableError as exc:
        report["error"] = str(exc)
        return report
    finally:
        server.close()
    report["served_models"] = models
    wanted = settings.llm_server_model
    if wanted and wanted not in models:
        report["error"] = (
            f"LLM server {server.url} does not list model {wanted!r} (it lists: "
            f"{', '.join(models) or 'none'}); set FOLIO_LLM_SERVER_MODEL to one of them"
        )
        return report
    if not models and not wanted:
        report["error"] = f"LLM server {server.url} lists no models at /models"
        return report
    report.update(ok=True, model=wanted or models[0], error=None)
    return report
