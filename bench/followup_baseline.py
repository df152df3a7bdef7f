"""The follow-up suite under the pre-issue-8 chain, for a faithful baseline.

Before issue 8 every question with history was rewritten by the LLM with condense-question v1
(which saw earlier answers), and retrieval fused that rewrite with "previous question + this one".
This replays that on eval/followups: earlier turns are answered in quote mode (the default) so the
v1 prompt gets the answers it used to see, then the last turn is retrieved the old way.

    python bench/followup_baseline.py --index build/eval/work/index

The index is the one `folio eval -d followups --out build/eval` built (it is reused as it is).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

V1_TEMPLATE = """Rewrite the follow-up question as a standalone question that names its subject.

Chat history:
{history}

Follow-up question: {question}
Standalone question:"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True, help="folio eval's work/index")
    parser.add_argument(
        "--shared", type=Path, default=Path(__file__).parents[2] / "shared/datasets"
    )
    args = parser.parse_args()

    from eval import metrics as m
    from eval.datasets import load_followups
    from eval.runner import RANKED_DEPTH, is_relevant
    from folio.settings import load_settings
    from folio.store import ChromaStore
    from retrieval.chain import AnswerChain
    from retrieval.search import QueryToChunks, SearchOptions, rrf
    from retrieval.tables import answer_quote

    collection = next(p.stem for p in (args.index / "manifests").glob("eval-followups-*.sqlite3"))
    settings = load_settings(data_dir=args.index, collection=collection)
    dataset = load_followups(args.index.parent / "datasets", args.shared, None, 0)
    retriever = QueryToChunks(settings, ChromaStore(settings.data_dir))
    chain = AnswerChain(settings, retriever)
    depth = SearchOptions.from_settings(settings, k=RANKED_DEPTH)

    def condense_v1(question: str, history: list[tuple[str, str]]) -> str:
        lines = "\n".join(f"User: {q}\nAssistant: {a}" for q, a in history[-3:])
        out = chain.llm.client.create_completion(
            V1_TEMPLATE.format(history=lines, question=question),
            max_tokens=64, temperature=0.0, stop=["\n"],
        )  # fmt: skip
        text = " ".join(out["choices"][0]["text"].split())
        return question if not text or len(text) > 3 * len(question) + 120 else text

    def retrieve_v1(question: str, history: list[tuple[str, str]], k: int) -> list:
        if not history:
            return retriever.search(question, replace(depth, k=k))
        standalone = condense_v1(question, history)
        wide = replace(depth, k=k * 2)
        lists = [
            retriever.search(standalone, wide),
            retriever.search(f"{history[-1][0]} {question}", wide),
        ]
        fused = rrf([([h.chunk_id for h in hits], 1.0) for hits in lists])
        by_id = {h.chunk_id: h for hits in lists for h in hits}
        return [by_id[c] for c in sorted(fused, key=lambda c: -fused[c])[:k]]

    hits_at_k, mrrs = [], []
    for item in dataset.items:
        history: list[tuple[str, str]] = []
        for question in item.history:  # earlier turns, answered as the old chain did (quote)
            sources = retrieve_v1(question, history, settings.k)
            chain._vectors = {}
            quote = answer_quote(question, sources, chain.embed)
            history.append((question, quote.text if quote else "Not found in your documents."))
        ranked = retrieve_v1(item.question, history, RANKED_DEPTH)
        relevant = [is_relevant(h, item, dataset.relevance)[0] for h in ranked]
        hits_at_k.append(m.hit_at_k(relevant, settings.k, True))
        mrrs.append(m.mrr_at_k(relevant, RANKED_DEPTH, True))
    retriever.close()
    n = len(dataset.items)
    print(json.dumps({
        "strategy": "fusion-v1 (pre-issue-8 baseline)", "questions": n,
        "hit@k": round(sum(hits_at_k) / n, 3), "mrr@10": round(sum(mrrs) / n, 3),
        "per_item": {
            i.id: {"hit@k": h, "mrr@10": r}
            for i, h, r in zip(dataset.items, hits_at_k, mrrs, strict=True)
        },
    }))  # fmt: skip


if __name__ == "__main__":
    main()
