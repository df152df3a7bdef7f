"""An optional judge model for RAGAS's LLM-judged metrics: any GGUF file or an OpenAI-compatible
endpoint. Judged numbers carry the judge's name and are never mixed with judge-free ones."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from folio.settings import Settings

FAITHFULNESS_PROMPT = """Decide whether the statement can be inferred from the context.

Context:
{context}

Statement: {statement}
Can the statement be inferred from the context? Answer yes or no.
Answer:"""

QUESTION_PROMPT = """Write question number {i} of 3 that the following answer responds to.

Answer: {answer}
Question:"""


class JudgeError(RuntimeError):
    pass


class Judge(Protocol):
    name: str

    def complete(self, prompt: str, max_tokens: int) -> str: ...


@dataclass
class GgufJudge:
    """A local GGUF model through Folio's llama.cpp loader (greedy, seeded)."""

    name: str
    settings: Settings

    def complete(self, prompt: str, max_tokens: int) -> str:
        from folio.llm import load_local_llm

        # The named GGUF file, in this process, even when answers go to an LLM server.
        llm = load_local_llm(self.settings)
        with llm.lock:
            text = llm.truncate(prompt, llm.n_ctx - max_tokens - 8)
            return llm.invoke(
                llm.prompt("completion", "", text, ["\n"]),
                {"temperature": 0.0, "max_tokens": max_tokens},
            )


@dataclass
class OpenAIJudge:
    """An OpenAI-compatible /v1/completions endpoint (llama.cpp's server, vLLM, Ollama...)."""

    name: str
    url: str
    model: str = "judge"
    timeout_s: float = 120.0

    def complete(self, prompt: str, max_tokens: int) -> str:
        body = {
            "model": self.model, "prompt": prompt, "max_tokens": max_tokens,
            "temperature": 0.0, "stop": ["\n"], "seed": 0,
        }  # fmt: skip
        request = urllib.request.Request(
            self.url.rstrip("/") + "/v1/completions",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                data = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise JudgeError(f"judge endpoint {self.url}: {exc}") from None
        return str(data["choices"][0]["text"])


def make_judge(spec: str, settings: Settings) -> Judge:
    """`http(s)://host:port[#model]` for an endpoint, else a GGUF path or packaged model name."""
    if spec.startswith(("http://", "https://")):
        url, _, model = spec.partition("#")
        return OpenAIJudge(name=spec, url=url, model=model or "judge")
    from folio.models import resolve_llm_path

    path = resolve_llm_path(spec, settings.data_dir)  # raises ModelNotFoundError with a hint
    return GgufJudge(name=Path(path).name, settings=settings.model_copy(update={"llm_model": spec}))


def _yes(text: str) -> bool:
    return bool(re.match(r"\s*(yes|true|1)\b", text.lower()))


def judged_faithfulness(judge: Judge, statements: Sequence[str], context: str) -> float | None:
    """RAGAS faithfulness: share of the answer's statements the judge infers from the context."""
    if not statements:
        return None
    verdicts = [
        _yes(judge.complete(FAITHFULNESS_PROMPT.format(context=context, statement=s), 3))
        for s in statements
    ]
    return sum(verdicts) / len(verdicts)


def judged_relevancy(
    judge: Judge,
    question: str,
    answer: str,
    embed: Callable[[list[str]], list[list[float]]],
    n: int = 3,
) -> float | None:
    """RAGAS answer relevancy: mean cosine between the question and questions the judge writes
    for the answer (greedy decoding: the prompt is numbered so the n questions can differ)."""
    from eval.metrics import cosine

    generated = []
    for i in range(n):
        text = judge.complete(QUESTION_PROMPT.format(i=i + 1, answer=answer), 48).strip()
        if text:
            generated.append(text)
    if not generated:
        return 0.0
    vectors = embed([question, *generated])
    # A question on another subject scores 0, not below: MiniLM's cosine of unrelated texts
    # can dip just under 0, and the metric is a 0..1 share like the others.
    return sum(max(0.0, cosine(vectors[0], v)) for v in vectors[1:]) / len(generated)
