"""Retrieval latency p50/p95 at 1k, 10k and 100k chunks for dense, bm25 and hybrid.

    python -m bench.retrieval_latency [--sizes 1000,10000,100000] [--queries 50]

Chunks are synthetic (sentences from a fixed vocabulary, random unit vectors) and written straight
to the store and manifest: embedding 100k real chunks would take over an hour on 2 cores, and
latency depends on the index size, not on what the vectors mean. Queries are embedded for real.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

WORDS = [
    "harbour",
    "ferry",
    "lighthouse",
    "budget",
    "revenue",
    "engineer",
    "pump",
    "valve",
    "archive",
    "ledger",
    "canteen",
    "soup",
    "island",
    "granite",
    "keeper",
    "schedule",
    "report",
    "quarter",
    "margin",
    "invoice",
    "supplier",
    "contract",
    "policy",
    "warehouse",
    "shipment",
    "customer",
    "service",
    "network",
    "server",
    "storage",
    "backup",
    "audit",
    "risk",
    "compliance",
]


def build(settings: object, n: int, seed: int) -> None:
    from folio.store import ChromaStore
    from ingest.index import CollectionIndex
    from ingest.manifest import DocumentRecord, utc_now

    rng = random.Random(seed)
    store = ChromaStore(settings.data_dir)  # type: ignore[attr-defined]
    index = CollectionIndex(settings, store, "default")  # type: ignore[arg-type]
    per_doc = 100
    for d in range(0, n, per_doc):
        ids = [f"{d:07d}-{i:03d}" for i in range(per_doc)]
        texts = [" ".join(rng.choice(WORDS) for _ in range(40)) for _ in ids]
        vectors = []
        for _ in ids:
            v = [rng.gauss(0, 1) for _ in range(384)]
            norm = sum(x * x for x in v) ** 0.5
            vectors.append([x / norm for x in v])
        path = f"/bench/doc{d:07d}.txt"
        metas = [{"source": path, "chunk_index": i, "start": 0, "end": 1} for i in range(per_doc)]
        store.upsert("default", ids, vectors, texts, metas)  # type: ignore[arg-type]
        record = DocumentRecord(path, f"{d}", 1, 0, path, None, per_doc, utc_now(), "b", "b")
        index.manifest.commit_documents([(record, ids)])
    index.refresh_sparse()
    index.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--out", type=Path, default=Path("bench/results/retrieval_latency.json"))
    args = parser.parse_args()
    from folio.settings import load_settings
    from folio.store import ChromaStore
    from retrieval.search import QueryToChunks, SearchOptions

    rng = random.Random(1)
    queries = [" ".join(rng.choice(WORDS) for _ in range(6)) for _ in range(args.queries)]
    results = {}
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            settings = load_settings(data_dir=Path(tmp))
            started = time.perf_counter()
            build(settings, size, seed=size)
            build_s = time.perf_counter() - started
            retriever = QueryToChunks(settings, ChromaStore(settings.data_dir))
            for mode in ("dense", "bm25", "hybrid"):
                options = SearchOptions(k=5, mode=mode)  # type: ignore[arg-type]
                retriever.search(queries[0], options)  # warm: model and index loads
                times = []
                for q in queries:
                    t = time.perf_counter()
                    retriever.search(q, options)
                    times.append((time.perf_counter() - t) * 1000)
                times.sort()
                results[f"{size} {mode}"] = {
                    "p50_ms": statistics.median(times),
                    "p95_ms": times[int(0.95 * (len(times) - 1))],
                    "build_s": build_s,
                }
            retriever.close()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print("| chunks | mode | p50 ms | p95 ms |")
    print("|---|---|---|---|")
    for key, r in results.items():
        size, mode = key.split()
        print(f"| {int(size):,} | {mode} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} |")


if __name__ == "__main__":
    main()
