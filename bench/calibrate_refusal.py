"""Calibrate the refusal threshold on SQuAD 2.0 dev.

    python -m bench.calibrate_refusal [--questions 1000] [--seed 0]

Half of the articles (every other one) are ingested. In-domain questions are answerable questions
about ingested articles; off-topic questions are answerable questions about the held-out ones,
whose answers are not in the collection. For each, the best retrieved chunk's cosine similarity is
the score the refusal rule compares with `refusal_threshold`. The suggested threshold keeps 99% of
in-domain questions (1% wrongly refused); the report gives how many off-topic ones it refuses.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
from pathlib import Path

from bench.squad_retrieval import SQUAD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--questions", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", type=float, default=0.99)
    args = parser.parse_args()
    if not args.squad.is_file():
        print(f"skipped: {args.squad} not found")
        return
    from folio.settings import load_settings
    from folio.store import ChromaStore
    from ingest.pipeline import FilesToIndex
    from retrieval.search import QueryToChunks, SearchOptions

    data = json.loads(args.squad.read_text(encoding="utf-8"))["data"]
    inside, outside = data[::2], data[1::2]

    def answerable(articles: list[dict]) -> list[str]:
        return [
            qa["question"]
            for a in articles
            for p in a["paragraphs"]
            for qa in p["qas"]
            if not qa.get("is_impossible")
        ]

    rng = random.Random(args.seed)
    in_q = rng.sample(answerable(inside), args.questions // 2)
    out_q = rng.sample(answerable(outside), args.questions // 2)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "articles"
        folder.mkdir()
        for article in inside:
            text = "\n\n".join(p["context"] for p in article["paragraphs"])
            (folder / f"{article['title']}.txt").write_text(text, encoding="utf-8")
        settings = load_settings(data_dir=Path(tmp) / "data")
        store = ChromaStore(settings.data_dir)
        FilesToIndex(settings, store).run([folder])
        retriever = QueryToChunks(settings, store)
        options = SearchOptions.from_settings(settings)

        def best(question: str) -> float:
            hits = retriever.search(question, options)
            return max((h.score for h in hits), default=-1.0)

        in_scores = sorted(best(q) for q in in_q)
        out_scores = sorted(best(q) for q in out_q)
        retriever.close()
    threshold = in_scores[int(len(in_scores) * (1 - args.keep))]
    kept = sum(s >= threshold for s in in_scores) / len(in_scores)
    refused = sum(s < threshold for s in out_scores) / len(out_scores)
    result = {
        "threshold": round(threshold, 3),
        "in_domain_answered": round(kept, 3),
        "off_topic_refused": round(refused, 3),
        "in_domain_median": round(in_scores[len(in_scores) // 2], 3),
        "off_topic_median": round(out_scores[len(out_scores) // 2], 3),
        "n": [len(in_scores), len(out_scores)],
    }
    for candidate in (0.15, 0.2, 0.25, 0.3, 0.35):
        result[f"at {candidate}"] = {
            "in_domain_answered": round(sum(s >= candidate for s in in_scores) / len(in_scores), 3),
            "off_topic_refused": round(sum(s < candidate for s in out_scores) / len(out_scores), 3),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
