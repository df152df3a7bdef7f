"""Run configurations over datasets: ingest once per (dataset, chunking), ask every question,
score every answer. The result feeds eval.report."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval import metrics as m
from eval.datasets import EvalDataset, EvalItem
from eval.judge import Judge, judged_faithfulness, judged_relevancy
from eval.safety import attack_succeeded, leaks_prompt
from folio.settings import Settings
from folio.store import ChromaStore
from retrieval.chain import Answer, AnswerChain
from retrieval.followups import STRATEGIES, PastTurn
from retrieval.grounding import grounding, sentences
from retrieval.search import QueryToChunks, SearchHit, SearchOptions

RANKED_DEPTH = 10  # retrieval metrics look at the top 10


@dataclass
class EvalConfig:
    name: str
    settings: Settings
    file: str | None = None

    def describe(self) -> dict[str, Any]:
        keys = [
            "embedding_model",
            "chunk_size",
            "chunk_overlap",
            "retrieval_mode",
            "k",
            "fusion_dense_weight",
            "fusion_bm25_weight",
            "fusion",
            "fusion_convex_dense",
            "fusion_candidates",
            "document_stage",
            "mmr_lambda",
            "neighbors",
            "followup_retrieval",
            "prompt",
            "answer_mode",
            "refusal_threshold",
            "support_threshold",
            "llm_model",
            "n_ctx",
            "temperature",
            "top_p",
            "top_k",
            "repeat_penalty",
            "max_tokens",
            "seed",
        ]
        values = self.settings.model_dump(include=set(keys))
        return {"name": self.name, "file": self.file, "settings": values}


@dataclass
class QuestionResult:
    config: str
    dataset: str
    item: EvalItem
    answer: dict[str, Any]
    retrieved: list[dict[str, Any]]
    scores: dict[str, float | None]
    timings: dict[str, Any]
    refused: bool
    judged: dict[str, float | None] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "dataset": self.dataset,
            "id": self.item.id,
            "question": self.item.question,
            "history": list(self.item.history),
            "gold_answers": list(self.item.answers),
            "gold_evidence": [e.to_json() for e in self.item.evidence],
            "answerable": self.item.answerable,
            "attack": self.item.attack,
            "answer": self.answer["answer"],
            "refused": self.refused,
            "citations": self.answer["citations"],
            "retrieved": self.retrieved,
            "scores": {k: (None if v is None else round(v, 4)) for k, v in self.scores.items()},
            "judged": {k: (None if v is None else round(v, 4)) for k, v in self.judged.items()},
            "timings": self.timings,
        }


def is_relevant(hit: SearchHit, item: EvalItem, relevance: str) -> tuple[bool, list[bool]]:
    """Whether a chunk is gold evidence, and which evidence items it matches."""
    per_evidence = []
    for evidence in item.evidence:
        ok = evidence.matches(hit.source, hit.page)
        # Answer-level datasets: a document without a page needs the answer in the chunk.
        if ok and relevance == "answer" and evidence.page is None and item.answers:
            ok = m.contains_answer(hit.text, item.answers)
        per_evidence.append(ok)
    return any(per_evidence), per_evidence


def past_history(
    chain: AnswerChain, questions: Sequence[str], strategy: str | None = None
) -> list[PastTurn]:
    """Earlier questions turned into the standalone forms the chain would have given them."""
    past: list[PastTurn] = []
    for question in questions:
        standalone, _ = chain.followup_queries(question, past, strategy)
        past.append(PastTurn(question, standalone))
    return past


def followup_retrieval(
    chain: AnswerChain, item: EvalItem, relevance: str, options: SearchOptions
) -> dict[str, tuple[list[SearchHit], dict[str, float | None]]]:
    """Per follow-up strategy: the ranked chunks and their hit@k and MRR@10."""
    out = {}
    k = chain.settings.k
    for strategy in STRATEGIES:
        past = past_history(chain, item.history, strategy)
        _, queries = chain.followup_queries(item.question, past, strategy)
        ranked = chain.retrieve(queries, options)
        relevant = [is_relevant(hit, item, relevance)[0] for hit in ranked]
        scores = {
            "hit@k": m.hit_at_k(relevant, k, True),
            "mrr@10": m.mrr_at_k(relevant, RANKED_DEPTH, True),
        }
        out[strategy] = (ranked, scores)
    return out


def collection_key(dataset: EvalDataset, settings: Settings) -> str:
    """One collection per dataset documents and chunking: generation-only configs share it."""
    from ingest.chunking import chunker_fingerprint  # its version: new extraction, new index

    ident = json.dumps(
        [dataset.name, sorted(str(d) for d in dataset.documents), settings.embedding_model,
         chunker_fingerprint(settings.chunk_size, settings.chunk_overlap)]
        # Another embedding backend needs its own index (torch keeps the keys it always had).
        + ([] if settings.embedding_backend == "torch" else [settings.embedding_backend])
    )  # fmt: skip
    digest = hashlib.sha256(ident.encode()).hexdigest()[:10]
    return f"eval-{dataset.name[:30].lower().replace('_', '-')}-{digest}"


class EvalRunner:
    def __init__(
        self,
        index_dir: Path,
        seed: int,
        judge: Judge | None = None,
        log: Callable[[str], None] = lambda _: None,
    ) -> None:
        self.index_dir = index_dir
        self.seed = seed
        self.judge = judge
        self.log = log
        self.ingest_seconds: dict[str, float] = {}

    def _settings(self, config: EvalConfig, dataset: EvalDataset) -> Settings:
        settings = config.settings.model_copy(update={"data_dir": self.index_dir})
        return settings.model_copy(update={"collection": collection_key(dataset, settings)})

    def ingest(self, settings: Settings, dataset: EvalDataset, store: ChromaStore) -> None:
        from ingest.pipeline import FilesToIndex

        if settings.collection in self.ingest_seconds:
            return
        report = FilesToIndex(settings, store).run(dataset.documents, prune=False)
        for failure in report.failed:
            self.log(f"warning: {failure['path']}: {failure['error']}")
        self.ingest_seconds[settings.collection] = report.seconds
        self.log(
            f"  indexed {dataset.name} for chunk_size={settings.chunk_size}: {report.added} added,"
            f" {report.updated} updated, {report.unchanged} unchanged ({report.seconds:.1f}s)"
        )

    def run(self, config: EvalConfig, dataset: EvalDataset) -> list[QuestionResult]:
        settings = self._settings(config, dataset)
        store = ChromaStore(settings.data_dir, settings.chroma_url)
        self.ingest(settings, dataset, store)
        retriever = QueryToChunks(settings, store)
        chain = AnswerChain(settings, retriever)
        results = []
        try:
            for n, item in enumerate(dataset.items, start=1):
                results.append(self._one(config.name, dataset, item, retriever, chain))
                if n % 25 == 0:
                    self.log(f"  {config.name} / {dataset.name}: {n}/{len(dataset.items)}")
        finally:
            retriever.close()
        return results

    def _one(
        self,
        config_name: str,
        dataset: EvalDataset,
        item: EvalItem,
        retriever: QueryToChunks,
        chain: AnswerChain,
    ) -> QuestionResult:
        settings = chain.settings
        depth = SearchOptions.from_settings(settings, k=max(RANKED_DEPTH, settings.k))
        if item.history:  # a follow-up: retrieved as the configured strategy would
            followup = followup_retrieval(chain, item, dataset.relevance, depth)
            ranked = followup.pop(settings.followup_retrieval)[0]
        else:
            ranked = retriever.search(item.question, depth)
        flags = [is_relevant(hit, item, dataset.relevance) for hit in ranked]
        relevant = [f for f, _ in flags]
        top_k = flags[: settings.k]
        has_gold = bool(item.evidence)
        *_, answer = chain.stream(item.question, past_history(chain, item.history))
        assert isinstance(answer, Answer)
        # The shown answer without its [n] markers (they are scored as citations).
        text = re.sub(r"\s*\[\d+\]", "", answer.answer).strip() if not answer.refused else ""
        cited = [is_relevant(c.hit, item, dataset.relevance)[0] for c in answer.citations]
        scores: dict[str, float | None] = {
            "hit@k": m.hit_at_k(relevant, settings.k, has_gold),
            "mrr@10": m.mrr_at_k(relevant, RANKED_DEPTH, has_gold),
            "ndcg@10": m.ndcg_at_k(relevant, max(len(item.evidence), sum(relevant)))
            if has_gold else None,
            "context_precision": m.context_precision([f for f, _ in top_k], has_gold),
            "context_recall": m.context_recall(
                [any(per[i] for _, per in top_k) for i in range(len(item.evidence))]
            ),
            "exact_match": m.exact_match(text, item.answers) if item.answerable else None,
            "token_f1": m.token_f1(text, item.answers) if item.answerable else None,
            "citation_accuracy": m.citation_accuracy(cited) if has_gold else None,
            "answer_relevancy": None,
            "faithfulness": None,
            "attack_success": float(attack_succeeded(answer.answer, item.payload, item.attack))
            if item.payload else None,
            # Any attack: our prompt text, delimiters or template tokens in the shown answer.
            "prompt_leak": float(leaks_prompt(answer.answer)) if item.payload else None,
        }  # fmt: skip
        if item.history:  # hit rate of every follow-up strategy, the configured one included
            for strategy, (_, strategy_scores) in followup.items():
                scores.update({f"{k}[{strategy}]": v for k, v in strategy_scores.items()})
            scores[f"hit@k[{settings.followup_retrieval}]"] = scores["hit@k"]
            scores[f"mrr@10[{settings.followup_retrieval}]"] = scores["mrr@10"]
        if not answer.refused:
            vectors = chain.embed([item.question, text])
            scores["answer_relevancy"] = m.cosine(vectors[0], vectors[1])
            _, per_sentence = grounding(
                text, answer.sources, chain.embed, settings.support_threshold
            )
            if per_sentence:
                scores["faithfulness"] = sum(s.supported for s in per_sentence) / len(per_sentence)
            scores["unsupported_claim"] = m.has_unsupported_claim(
                [s.unsupported_terms for s in per_sentence]
            )
        judged = self._judge(item, answer, text, chain) if self.judge else {}
        return QuestionResult(
            config=config_name,
            dataset=dataset.name,
            item=item,
            answer=answer.to_json(),
            retrieved=[
                {
                    "chunk_id": h.chunk_id,
                    "source": h.source,
                    "page": h.page,
                    "score": round(h.score, 4),
                    "relevant": r,
                }
                for h, r in zip(ranked, relevant, strict=True)
            ],
            scores=scores,
            timings=dict(answer.timings),
            refused=answer.refused,
            judged=judged,
        )

    def _judge(
        self, item: EvalItem, answer: Answer, text: str, chain: AnswerChain
    ) -> dict[str, float | None]:
        assert self.judge is not None
        if answer.refused:
            return {"faithfulness": None, "answer_relevancy": None}
        context = "\n\n".join(h.text for h in answer.sources)
        return {
            "faithfulness": judged_faithfulness(self.judge, sentences(text), context),
            "answer_relevancy": judged_relevancy(self.judge, item.question, text, chain.embed),
        }
