"""The answering chain: condense -> retrieve -> refuse or prompt -> generate -> cite and ground.

LangChain runnables carry the LLM calls; retrieval, refusal, quotes, citations and the grounding
check are our own code, so answer quality never depends on the model being smart.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from folio.llm import LLMBackend, Prompt, configured_model_info, load_llm
from folio.models import load_embedding_model
from folio.settings import Settings
from prompts import PromptSpec, load_prompt
from retrieval.followups import (
    PastTurn,
    carry_subject,
    keeps_subject,
    past_turns,
    refers_back,
)
from retrieval.grounding import (
    Citation,
    Quote,
    SentenceSupport,
    clean_source,
    grounding,
    neutralise,
    parse_citations,
    says_it_cannot_answer,
)
from retrieval.injection import strip_scaffolding
from retrieval.refusal import Assessment, assess
from retrieval.search import QueryToChunks, SearchHit, SearchOptions, rrf
from retrieval.tables import answer_quote

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
    chat: str | None = None  # the saved conversation this answer belongs to, if any
    answer_id: str = field(default_factory=lambda: uuid.uuid4().hex)  # feedback refers to it
    refusal: Assessment | None = None  # the refusal model's verdict (None: nothing retrieved)
    stopped: bool = False  # generation was cancelled; the answer holds what came before

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
            "sentences": [s.to_json() for s in self.sentences],
            "chat": self.chat,
            "answer_id": self.answer_id,
            "refusal": self.refusal.to_json() if self.refusal else None,
            "stopped": self.stopped,
            "generated": self.generated,
        }


@dataclass(frozen=True)
class Token:
    text: str


Turn = tuple[str, str]  # (user question, answer)


def format_context(hits: Sequence[SearchHit]) -> str:
    """Numbered, delimited, declared-as-data sources; sentences that address the assistant
    (injected instructions) left out, template tokens inside them defused."""
    blocks = []
    for n, hit in enumerate(hits, start=1):
        where = hit.source.rsplit("/", 1)[-1] + (f", page {hit.page}" if hit.page else "")
        body = neutralise(clean_source(hit.context or hit.text))
        blocks.append(f"<<<SOURCE {n}: {neutralise(where)}>>>\n{body}\n<<<END SOURCE {n}>>>")
    return "\n\n".join(blocks)


class AnswerChain:
    """Answers questions over one collection. Models load once per process and are shared."""

    def __init__(self, settings: Settings, retriever: QueryToChunks) -> None:
        self.settings = settings
        self.retriever = retriever
        self._llm: LLMBackend | None = None
        # Per answer: the quote and the grounding check embed the same retrieved sentences.
        self._vectors: dict[str, list[float]] = {}
        # LLM rewrites of follow-ups, per (question, previous standalone question).
        self._rewrites: dict[tuple[str, tuple[str, ...]], str] = {}

    @property
    def llm(self) -> LLMBackend:
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
    def condense(self, question: str, history: Sequence[Turn | PastTurn]) -> str:
        """The standalone question: the question itself unless it refers back to the history."""
        return self.followup_queries(question, history)[0]

    def followup_queries(
        self, question: str, history: Sequence[Turn | PastTurn], strategy: str | None = None
    ) -> tuple[str, list[str]]:
        """(standalone question, retrieval queries) for `followup_retrieval` (or `strategy`).

        Earlier answers are never used: only earlier questions and their standalone forms."""
        past = past_turns(history)
        strategy = strategy or self.settings.followup_retrieval
        if not past or strategy == "bare" or not refers_back(question):
            return question, [question]
        previous = past[-1].standalone
        carried = carry_subject(question, previous)
        if strategy == "carry":
            return carried, [carried]
        rewritten = self.rewrite(question, past)
        if strategy == "rewrite":
            return rewritten, [rewritten]
        if strategy == "fusion":  # the rewrite fused with "previous question + this one"
            return rewritten, [rewritten, f"{past[-1].question} {question}"]
        # carry+rewrite: a rewrite that lost the subject is not used at all.
        if rewritten == question or not keeps_subject(rewritten, question, previous):
            return carried, [carried]
        return rewritten, [rewritten, carried]

    def rewrite(self, question: str, past: Sequence[PastTurn]) -> str:
        """The LLM's standalone rewrite of a follow-up (the question itself when it fails)."""
        key = (question, tuple(p.standalone for p in past[-1:]))
        if key in self._rewrites:
            return self._rewrites[key]
        spec = load_prompt("condense-question")
        previous = " ".join(past[-1].standalone.split())
        text = spec.render(history=previous, question=question)
        prompt = self.llm.prompt("completion", "", text, list(spec.stop))
        with self.llm.lock:
            generated = self.llm.invoke(prompt, {"max_tokens": 64, "temperature": 0.0})
        rewritten = " ".join(generated.split())
        # A tiny model may return nothing useful: fall back to the question itself.
        if not rewritten or len(rewritten) > 3 * len(question) + 120:
            rewritten = question
        self._rewrites[key] = rewritten
        return rewritten

    def retrieve(self, queries: Sequence[str], options: SearchOptions) -> list[SearchHit]:
        """One query searched as it is; several fused by reciprocal rank fusion."""
        if len(queries) == 1:
            return self.retriever.search(queries[0], options)
        wide = replace(options, k=options.k * 2)
        lists = [self.retriever.search(query, wide) for query in queries]
        fused = rrf([([h.chunk_id for h in hits], 1.0) for hits in lists])
        by_id: dict[str, SearchHit] = {}
        for hits in lists:  # the first query's hit (and its similarity) wins for shared chunks
            for hit in hits:
                by_id.setdefault(hit.chunk_id, hit)
        ranked = sorted(fused, key=lambda c: -fused[c])[: options.k]
        return [replace(by_id[c], rank=n) for n, c in enumerate(ranked, start=1)]

    def build_prompt(
        self, spec: PromptSpec, question: str, hits: list[SearchHit], max_tokens: int
    ) -> tuple[str, list[str], list[SearchHit]]:
        """(prompt text, stop sequences, sources kept): `fit_prompt` as plain text."""
        prompt, kept = self.fit_prompt(spec, question, hits, max_tokens)
        return prompt.text, prompt.stop, kept

    def fit_prompt(
        self, spec: PromptSpec, question: str, hits: list[SearchHit], max_tokens: int
    ) -> tuple[Prompt, list[SearchHit]]:
        """The prompt that fits n_ctx: lowest-ranked sources dropped, then the last one cut.

        Tokens are counted by the backend: the local model's tokenizer, or the server's
        tokenizer endpoint (or a high estimate when it has none)."""
        llm = self.llm
        question = llm.truncate(question, max(32, llm.n_ctx // 8))
        budget = llm.n_ctx - max_tokens
        kept = list(hits)
        while True:
            prompt = self._render(spec, question, kept)
            size = llm.prompt_tokens(prompt)
            if size <= budget or not kept:
                return prompt, kept
            if len(kept) > 1:
                kept.pop()
                continue
            overflow = size - budget
            body = kept[0].context or kept[0].text
            room = llm.count_tokens(body) - overflow - 8
            if room < 16:
                kept = []
                continue
            kept = [replace(kept[0], context=llm.truncate(body, room))]

    def _render(self, spec: PromptSpec, question: str, hits: list[SearchHit]) -> Prompt:
        user = spec.render(context=format_context(hits), question=neutralise(question))
        return self.llm.prompt(spec.kind, spec.system, user, list(spec.stop))

    # --- the whole answer ---------------------------------------------------------------------
    def stream(
        self,
        question: str,
        history: Sequence[Turn | PastTurn] = (),
        options: SearchOptions | None = None,
        *,
        cancel: threading.Event | None = None,
        **sampling: Any,
    ) -> Iterator[Token | Answer]:
        """Yield generated tokens as they come, then the final Answer.

        `cancel` set during generation stops it at once: the text so far is finished like any
        answer (citations, grounding) with `stopped` true. Set before, nothing is generated."""
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
        # Earlier turns shape only the retrieval query; the prompt sees the standalone question.
        standalone, queries = self.followup_queries(question, history)
        hits = self.retrieve(queries, options)
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
            model=configured_model_info(settings),
            timings={"retrieve_ms": round(retrieve_ms, 1), "first_token_ms": None,
                     "total_ms": None, "completion_tokens": 0, "tokens_per_s": None},
        )  # fmt: skip
        # Refusal: the collection cannot answer, so the model is not even asked. A follow-up is
        # judged by the most answerable of its retrieval queries.
        if hits:
            threshold = settings.refusal_threshold
            verdicts = [assess(self.retriever, q, hits, threshold) for q in queries]
            answer.refusal = max(verdicts, key=lambda v: v.p_answerable)
        if answer.refusal is None or answer.refusal.refused:
            answer.timings["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
            yield answer
            return
        answer.refused = False
        if mode != "quote":
            yield from self._generate(answer, spec, standalone, hits, params, started, cancel)
            if self._llm is not None:
                answer.model = self._llm.model_info()
        # The quote comes from the sources the answer lists (after fitting the context window).
        answer.quote = answer_quote(standalone, answer.sources, self.embed)
        self._finish(answer, mode)
        answer.timings["total_ms"] = round((time.perf_counter() - started) * 1000, 1)
        yield answer

    def _generate(
        self,
        answer: Answer,
        spec: PromptSpec,
        question: str,
        hits: list[SearchHit],
        params: dict[str, Any],
        started: float,
        cancel: threading.Event | None = None,
    ) -> Iterator[Token]:
        if cancel is not None and cancel.is_set():  # cancelled while waiting: load nothing
            answer.stopped = True
            return
        llm = self.llm
        max_tokens = min(int(params["max_tokens"]), llm.n_ctx // 2)
        params["max_tokens"] = max_tokens
        prompt, kept = self.fit_prompt(spec, question, hits, max_tokens)
        answer.sources = [replace(h, rank=n) for n, h in enumerate(kept, 1)]
        if not kept:
            return
        pieces: list[str] = []
        first: float | None = None
        with llm.lock:
            gen_started = time.perf_counter()
            generation = llm.stream(prompt, params)
            try:
                for piece in generation:
                    if first is None:
                        first = time.perf_counter()
                    pieces.append(piece)
                    yield Token(piece)
                    if cancel is not None and cancel.is_set():
                        answer.stopped = True
                        break
            finally:
                # Stops llama.cpp / closes the HTTP stream now, also when our consumer stops.
                generation.close()
            gen_ended = time.perf_counter()
        text = "".join(pieces).strip()
        tokens = llm.completion_tokens(text)
        answer.generated = text
        answer.timings.update(
            first_token_ms=round(((first or gen_ended) - started) * 1000, 1),
            completion_tokens=tokens,
            tokens_per_s=round(tokens / max(gen_ended - gen_started, 1e-6), 2),
        )

    def _finish(self, answer: Answer, mode: str) -> None:
        """Citations, grounding, refusal by the model, and which text becomes the answer.

        Every generated sentence is checked (similarity, numbers and names, injected text). In
        `generate` (and for a stopped answer) unsupported sentences are flagged; in
        `quote+generate` they are dropped, and when none is left the quote is the answer. Prompt
        scaffolding is never shown."""
        quote = answer.quote
        quoted = f"{quote.text} [{quote.hit.rank}]" if quote else NOT_FOUND
        quote_citations = [Citation(quote.hit.rank, quote.hit)] if quote else []
        quote_sentences = (
            [SentenceSupport(quote.text, 1.0, True, quote.text, quote.hit.chunk_id, [],
                             quote.hit.rank, quoted)]
            if quote else []
        )  # fmt: skip
        if mode == "quote":
            answer.answer, answer.citations = quoted, quote_citations
            answer.support = 1.0 if quote else 0.0
            answer.sentences = quote_sentences
            return
        if answer.stopped and not answer.generated.strip():
            # Cancelled before any text: nothing to show but the quote (quote+generate); this
            # is not the model refusing, so no "not found".
            if mode == "quote+generate" and quote:
                answer.answer, answer.citations = quoted, quote_citations
                answer.sentences = quote_sentences
            else:
                answer.answer = ""
            return
        spec = answer.prompt
        raw = answer.generated
        answer.generated = strip_scaffolding(raw, f"{spec.system}\n{spec.template}")
        generated, citations = parse_citations(answer.generated, answer.sources)
        if says_it_cannot_answer(generated):
            if mode == "quote+generate" and quote and raw.strip() and not generated.strip():
                # The model wrote nothing but prompt scaffolding: the quote is the answer.
                answer.answer, answer.citations = quoted, quote_citations
                answer.sentences = quote_sentences
                return
            answer.refused, answer.answer, answer.support = True, NOT_FOUND, 0.0
            return
        threshold = self.settings.support_threshold
        support, per_sentence = grounding(generated, answer.sources, self.embed, threshold)
        answer.support = support
        by_source = sorted({s.source for s in per_sentence if s.supported and s.source})
        supported_citations = [Citation(n, answer.sources[n - 1]) for n in by_source]
        if mode == "generate" or answer.stopped:
            # A stopped answer keeps what was written (the user saw it stream), flagged like
            # `generate`, in quote+generate too: its last sentence is cut, not unsupported.
            answer.answer, answer.sentences = generated, per_sentence
            answer.citations = citations or (supported_citations if support >= threshold else [])
            return
        kept = [s for s in per_sentence if s.supported]
        if not kept:  # quote+generate and nothing the sources support: the quote is the answer
            answer.answer, answer.citations = quoted, quote_citations
            answer.sentences = quote_sentences
            return
        shown, citations = parse_citations(" ".join(s.text for s in kept), answer.sources)
        answer.answer, answer.sentences = shown, kept
        answer.citations = citations or supported_citations
