"""The answering chain: condense -> retrieve -> refuse or prompt -> generate -> cite and ground.

LangChain runnables carry the LLM calls; retrieval, refusal, quotes, citations and the grounding
check are our own code, so answer quality never depends on the model being smart.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from folio.llm import LocalLLM, load_llm
from folio.models import load_embedding_model
from folio.settings import Settings
from prompts import PromptSpec, load_prompt
from retrieval.grounding import (
    Citation,
    Quote,
    SentenceSupport,
    best_quote,
    grounding,
    neutralise,
    parse_citations,
    says_it_cannot_answer,
)
from retrieval.search import QueryToChunks, SearchHit, SearchOptions, rrf

NOT_FOUND = "Not found in your documents."


@dataclass
class Answer:
    question: str
    standalone_question: str
    answer: str
    mode: str
    refused: bool
    support: float
    quote: Quote | None
    citations: list[Citation]
    sources: list[SearchHit]
    prompt: PromptSpec
    model: dict[str, Any]
    timings: dict[str, float | int | None]
    generated: str = ""  # the model's own text, shown beside the quote when supported
    sentences: list[SentenceSupport] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.answer,
            "quote": self.quote.to_json() if self.quote else None,
            "mode": self.mode,
            "refused": self.refused,
            "support": round(self.support, 4),
            "citations": [c.to_json() for c in self.citations],
            "sources": [
                {"n": h.rank, **{k: v for k, v in h.to_json().items() if k != "rank"}}
                for h in self.sources
            ],
            "prompt": self.prompt.to_json(),
            "model": self.model,
            "timings": self.timings,
        }


@dataclass(frozen=True)
class Token:
    text: str


Turn = tuple[str, str]  # (user question, answer)


def format_context(hits: Sequence[SearchHit]) -> str:
    """Numbered, delimited, declared-as-data sources; template tokens inside them defused."""
    blocks = []
    for n, hit in enumerate(hits, start=1):
        where = hit.source.rsplit("/", 1)[-1] + (f", page {hit.page}" if hit.page else "")
        body = neutralise(hit.context or hit.text)
        blocks.append(f"<<<SOURCE {n}: {neutralise(where)}>>>\n{body}\n<<<END SOURCE {n}>>>")
    return "\n\n".join(blocks)


class AnswerChain:
    """Answers questions over one collection. Models load once per process and are shared."""

    def __init__(self, settings: Settings, retriever: QueryToChunks) -> None:
        self.settings = settings
        self.retriever = retriever
        self._llm: LocalLLM | None = None
        # Per answer: the quote and the grounding check embed the same retrieved sentences.
        self._vectors: dict[str, list[float]] = {}

    @property
    def llm(self) -> LocalLLM:
        if self._llm is None:
            self._llm = load_llm(self.settings)
        return self._llm

    def embed(self, texts: list[str]) -> list[list[float]]:
        """Embeddings cached for the current answer (quote, grounding and eval share them)."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._vectors))
        if missing:
            vectors = load_embedding_model(self.settings).embed(missing)
            self._vectors.update(zip(missing, vectors, strict=True))
        return [self._vectors[t] for t in texts]

    # --- steps --------------------------------------------------------------------------------
    def condense(self, question: str, history: Sequence[Turn]) -> str:
        if not history:
            return question
        from langchain_core.output_parsers import StrOutputParser
        from langchain_core.runnables import RunnableLambda

        spec = load_prompt("condense-question")
        lines = [f"User: {q}\nAssistant: {a}" for q, a in history[-3:]]
        chain = (
            RunnableLambda(lambda q: spec.render(history="\n".join(lines), question=q))
            | self.llm.runnable.bind(stop=list(spec.stop), max_tokens=64, temperature=0.0)
            | StrOutputParser()
        )
        with self.llm.lock:
            rewritten = " ".join(chain.invoke(question).split())
        # A tiny model may return nothing useful: fall back to the question itself.
        if not rewritten or len(rewritten) > 3 * len(question) + 120:
            return question
        return rewritten

    def retrieve(
        self, question: str, standalone: str, history: Sequence[Turn], options: SearchOptions
    ) -> list[SearchHit]:
        if not history:
            return self.retriever.search(question, options)
        # Follow-ups: fuse the rewritten question with the previous question + this one, so a
        # poor rewrite by a small model cannot lose the subject.
        wide = replace(options, k=options.k * 2)
        lists = [
            self.retriever.search(standalone, wide),
            self.retriever.search(f"{history[-1][0]} {question}", wide),
        ]
        fused = rrf([([h.chunk_id for h in hits], 1.0) for hits in lists])
        by_id = {h.chunk_id: h for hits in lists for h in hits}
        ranked = sorted(fused, key=lambda c: -fused[c])[: options.k]
        return [replace(by_id[c], rank=n) for n, c in enumerate(ranked, start=1)]

    def build_prompt(
        self, spec: PromptSpec, question: str, hits: list[SearchHit], max_tokens: int
    ) -> tuple[str, list[str], list[SearchHit]]:
        """The prompt that fits n_ctx: lowest-ranked sources dropped, then the last one cut."""
        llm = self.llm
        question = llm.truncate(question, max(32, llm.n_ctx // 8))
        budget = llm.n_ctx - max_tokens
        kept = list(hits)
        while True:
            prompt, stop = self._render(spec, question, kept)
            if llm.count_tokens(prompt) <= budget or not kept:
                return prompt, stop, kept
            if len(kept) > 1:
                kept.pop()
                continue
            overflow = llm.count_tokens(prompt) - budget
            body = kept[0].context or kept[0].text
            room = llm.count_tokens(body) - overflow - 8
            if room < 16:
                kept = []
                continue
            kept = [replace(kept[0], context=llm.truncate(body, room))]

    def _render(
        self, spec: PromptSpec, question: str, hits: list[SearchHit]
    ) -> tuple[str, list[str]]:
        user = spec.render(context=format_context(hits), question=neutralise(question))
        if spec.kind == "completion":
            return user, list(spec.stop)
        prompt, stop = self.llm.chat_prompt(spec.system, user)
        return prompt, list(spec.stop) + stop

    # --- the whole answer ---------------------------------------------------------------------
    def stream(
        self,
        question: str,
        history: Sequence[Turn] = (),
        options: SearchOptions | None = None,
        **sampling: Any,
    ) -> Iterator[Token | Answer]:
        """Yield generated tokens as they come, then the final Answer."""
        settings = self.settings
        started = time.perf_counter()
        self._vectors = {}
        options = options or SearchOptions.from_settings(settings)
        spec = load_prompt(sampling.pop("prompt", None) or settings.prompt)
        mode = sampling.pop("mode", None) or settings.answer_mode
        params = {
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "top_k": settings.top_k,
            "repeat_penalty": settings.repeat_penalty,
            "max_tokens": settings.max_tokens,
            "seed": settings.seed,
        }
        params.update({k: v for k, v in sampling.items() if v is not None})
        standalone = self.condense(question, history)
        hits = self.retrieve(question, standalone, history, options)
        retrieve_ms = (time.perf_counter() - started) * 1000
        answer = Answer(
            question=question,
            standalone_question=standalone,
            answer=NOT_FOUND,
            mode=mode,
            refused=True,
            support=0.0,
            quote=None,
            citations=[],
            sources=hits,
            prompt=spec,
            model=self._model_info(),
            timings={"retrieve_ms": round(retrieve_ms, 1), "first_token_ms": None,
                     "total_ms": None, "completion_tokens": 0, "tokens_per_s": None},
        )  # fmt: skip
        # Refusal: nothing relevant enough, so the model is not even asked.
        if not hits or max(h.score for h in hits) < settings.refusal_threshold:
            answer.timings["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
            yield answer
            return
        answer.refused = False
        if mode != "quote":
            yield from self._generate(answer, spec, standalone, hits, params, started)
            answer.model = self._model_info()
        # The quote comes from the sources the answer lists (after fitting the context window).
        answer.quote = best_quote(standalone, answer.sources, self.embed)
        self._finish(answer, mode)
        answer.timings["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
        yield answer

    def _model_info(self) -> dict[str, Any]:
        """The loaded model's facts; before loading (refusals, quotes) only what is configured."""
        if self._llm is not None:
            return self._llm.model_info()
        from folio.models import resolve_llm_path

        path = resolve_llm_path(self.settings.llm_model, self.settings.data_dir)
        return {"path": str(path), "n_gpu_layers": self.settings.n_gpu_layers}

    def _generate(
        self,
        answer: Answer,
        spec: PromptSpec,
        question: str,
        hits: list[SearchHit],
        params: dict[str, Any],
        started: float,
    ) -> Iterator[Token]:
        max_tokens = min(int(params["max_tokens"]), self.llm.n_ctx // 2)
        params["max_tokens"] = max_tokens
        prompt, stop, kept = self.build_prompt(spec, question, hits, max_tokens)
        answer.sources = [replace(h, rank=n) for n, h in enumerate(kept, 1)]
        if not kept:
            return
        pieces: list[str] = []
        first: float | None = None
        with self.llm.lock:
            gen_started = time.perf_counter()
            for piece in self.llm.runnable.stream(prompt, stop=stop, **params):
                if first is None:
                    first = time.perf_counter()
                pieces.append(piece)
                yield Token(piece)
            gen_ended = time.perf_counter()
        text = "".join(pieces).strip()
        tokens = len(self.llm.client.tokenize(text.encode(), add_bos=False)) if text else 0
        answer.generated = text
        answer.timings.update(
            first_token_ms=round(((first or gen_ended) - started) * 1000, 1),
            completion_tokens=tokens,
            tokens_per_s=round(tokens / max(gen_ended - gen_started, 1e-6), 2),
        )

    def _finish(self, answer: Answer, mode: str) -> None:
        """Citations, grounding, refusal by the model, and which text becomes the answer."""
        quote = answer.quote
        quoted = f"{quote.text} [{quote.hit.rank}]" if quote else NOT_FOUND
        if mode == "quote":
            answer.answer = quoted
            answer.citations = [Citation(quote.hit.rank, quote.hit)] if quote else []
            answer.support = 1.0 if quote else 0.0
            return
        generated, citations = parse_citations(answer.generated, answer.sources)
        if says_it_cannot_answer(generated):
            answer.refused, answer.answer, answer.support = True, NOT_FOUND, 0.0
            return
        support, per_sentence = grounding(
            generated, answer.sources, self.embed, self.settings.support_threshold
        )
        answer.support, answer.sentences = support, per_sentence
        passes = support >= self.settings.support_threshold
        if mode == "generate" or passes:
            answer.answer = generated
            answer.citations = citations or (
                [Citation(quote.hit.rank, quote.hit)] if quote and passes else []
            )
        else:  # quote+generate with an unsupported generation: the quote is the answer
            answer.answer = quoted
            answer.citations = [Citation(quote.hit.rank, quote.hit)] if quote else []
