"""Answer modes and prompts measured on SQuAD 2.0 dev answerable questions.

    python -m bench.answer_quality [--questions 40] [--seed 0] [--model smollm2]

For each configuration: share of answers containing a gold answer, SQuAD token F1, exact match,
mean grounding support, refusal rate, and seconds per question.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from bench.squad_retrieval import SQUAD, load_squad, write_articles
from eval.metrics import exact_match, normalize, token_f1

CONFIGS = [
    ("quote", "grounded-qa"),
    ("generate", "grounded-qa"),
    ("generate", "grounded-qa-fewshot"),
    ("generate", "grounded-qa-completion"),
    ("quote+generate", "grounded-qa"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--questions", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--out", type=Path, default=Path("bench/results/answer_quality.json"))
    args = parser.parse_args()
    if not args.squad.is_file():
        print(f"skipped: {args.squad} not found")
        return
    from folio.settings import load_settings
    from folio.store import ChromaStore
    from ingest.pipeline import FilesToIndex
    from retrieval.chain import AnswerChain
    from retrieval.search import QueryToChunks

    articles, questions = load_squad(args.squad, args.questions, args.seed)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_articles(articles, Path(tmp) / "articles")
        settings = load_settings(data_dir=Path(tmp) / "data", llm_model=args.model)
        store = ChromaStore(settings.data_dir)
        FilesToIndex(settings, store).run([folder])
        retriever = QueryToChunks(settings, store)
        chain = AnswerChain(settings, retriever)
        for mode, prompt in CONFIGS:
            rows = []
            started = time.perf_counter()
            for q in questions:
                *_, answer = chain.stream(q["question"], mode=mode, prompt=prompt)
                text = answer.answer
                rows.append(
                    {
                        "contains": any(normalize(g) in normalize(text) for g in q["answers"]),
                        "f1": token_f1(text, q["answers"]),
                        "em": bool(exact_match(text, q["answers"])),
                        "support": answer.support,
                        "refused": answer.refused,
                    }
                )
            n = len(rows)
            results[f"{mode} / {prompt}"] = {
                "contains_gold": sum(r["contains"] for r in rows) / n,
                "f1": sum(r["f1"] for r in rows) / n,
                "exact_match": sum(r["em"] for r in rows) / n,
                "support": sum(r["support"] for r in rows) / n,
                "refused": sum(r["refused"] for r in rows) / n,
                "s_per_question": (time.perf_counter() - started) / n,
            }
        retriever.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"SQuAD 2.0 dev, {len(questions)} answerable questions, seed {args.seed}, {args.model}")
    print("| mode / prompt | contains gold | token F1 | EM | support | refused | s/question |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        cells = [r[m] for m in ("contains_gold", "f1", "exact_match", "support", "refused")]
        print(
            f"| {name} | "
            + " | ".join(f"{c:.3f}" for c in cells)
            + f" | {r['s_per_question']:.1f} |"
        )


if __name__ == "__main__":
    main()
