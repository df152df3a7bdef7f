"""Retrieval quality on SQuAD 2.0 dev: Folio's retrieval modes against the naive LangChain pipeline.

    python -m bench.squad_retrieval [--questions 2000] [--seed 0]

Each article is one document (paragraphs joined by blank lines). A retrieved chunk is relevant when
it comes from the gold article and contains a gold answer. Reports hit@1, hit@4 and MRR@10.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "squad2-dev" / "dev-v2.0.json"


def load_squad(path: Path, n: int, seed: int) -> tuple[dict[str, str], list[dict[str, Any]]]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    articles: dict[str, str] = {}
    questions: list[dict[str, Any]] = []
    for article in data:
        title = article["title"]
        articles[title] = "\n\n".join(p["context"] for p in article["paragraphs"])
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                if not qa.get("is_impossible") and qa["answers"]:
                    answers = sorted({a["text"] for a in qa["answers"]})
                    questions.append(
                        {"question": qa["question"], "title": title, "answers": answers}
                    )
    return articles, random.Random(seed).sample(questions, min(n, len(questions)))


def write_articles(articles: dict[str, str], folder: Path) -> Path:
    """Each article as one text document named after its title."""
    folder.mkdir(parents=True, exist_ok=True)
    for title, text in articles.items():
        (folder / f"{title}.txt").write_text(text, encoding="utf-8")
    return folder


def score(ranked: list[tuple[str, str]], question: dict[str, Any]) -> tuple[int, int, float]:
    """hit@1, hit@4, reciprocal rank within 10, for [(article title, chunk text)]."""
    for rank, (title, text) in enumerate(ranked[:10], start=1):
        if title == question["title"] and any(a in text for a in question["answers"]):
            return int(rank == 1), int(rank <= 4), 1.0 / rank
    return 0, 0, 0.0


def summarize(rows: list[tuple[int, int, float]], seconds: float) -> dict[str, float]:
    n = len(rows)
    return {
        "hit@1": sum(r[0] for r in rows) / n,
        "hit@4": sum(r[1] for r in rows) / n,
        "mrr@10": sum(r[2] for r in rows) / n,
        "query_ms": 1000 * seconds / n,
    }


def run_naive(folder: Path, questions: list[dict[str, Any]], workdir: Path) -> dict[str, float]:
    from langchain_chroma import Chroma
    from langchain_community.document_loaders import TextLoader
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from folio.models import resolve_embedding_path

    documents = [TextLoader(str(f), encoding="utf-8").load()[0] for f in sorted(folder.iterdir())]
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(
        documents
    )
    embeddings = HuggingFaceEmbeddings(model_name=str(resolve_embedding_path("all-MiniLM-L6-v2")))
    store = Chroma.from_documents(chunks, embeddings, persist_directory=str(workdir / "naive"))
    started = time.perf_counter()
    rows = []
    for q in questions:
        found = store.similarity_search(q["question"], k=10)
        rows.append(score([(Path(d.metadata["source"]).stem, d.page_content) for d in found], q))
    return summarize(rows, time.perf_counter() - started)


def run_folio(
    folder: Path, questions: list[dict[str, Any]], workdir: Path, modes: list[str]
) -> dict[str, dict[str, float]]:
    from folio.settings import load_settings
    from folio.store import ChromaStore
    from ingest.pipeline import FilesToIndex
    from retrieval.search import QueryToChunks, SearchOptions

    settings = load_settings(data_dir=workdir / "folio")
    store = ChromaStore(settings.data_dir)
    FilesToIndex(settings, store).run([folder])
    retriever = QueryToChunks(settings, store)
    results = {}
    for mode in modes:
        options = SearchOptions.from_settings(settings, k=10, mode=mode)
        started = time.perf_counter()
        rows = []
        for q in questions:
            hits = retriever.search(q["question"], options)
            rows.append(score([(Path(h.source).stem, h.text) for h in hits], q))
        results[f"folio {mode}"] = summarize(rows, time.perf_counter() - started)
    retriever.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--modes", default="dense,bm25,hybrid")
    parser.add_argument("--out", type=Path, default=Path("bench/results/squad_retrieval.json"))
    args = parser.parse_args()
    if not args.squad.is_file():
        print(f"skipped: {args.squad} not found (the shared datasets are not beside this checkout)")
        return
    articles, questions = load_squad(args.squad, args.questions, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_articles(articles, Path(tmp) / "articles")
        results = run_folio(folder, questions, Path(tmp), args.modes.split(","))
        results["naive LangChain"] = run_naive(folder, questions, Path(tmp))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"SQuAD 2.0 dev, {len(questions)} answerable questions, seed {args.seed}")
    print("| retrieval | hit@1 | hit@4 | MRR@10 | ms/query |")
    print("|---|---|---|---|---|")
    for name, r in results.items():
        cells = [f"{r[m]:.3f}" for m in ("hit@1", "hit@4", "mrr@10")] + [f"{r['query_ms']:.0f}"]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
