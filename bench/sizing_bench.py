"""Sizing: memory (RSS), disk and search latency of Chroma (dense) and BM25 at 1k ... 1M chunks.

    python -m bench.sizing_bench [--sizes 1000,10000,100000] [--queries 200]
    nice -n 10 python -m bench.sizing_bench --sizes 1000000 --queries 100   # the one-off 1M run

Chunks are synthetic: random 384-d unit vectors (all-MiniLM-L6-v2's size), ~150-word texts drawn
from a Zipf-distributed vocabulary of 30,000 pseudo-words (about 1,000 characters, one 200-token
chunk), Folio's metadata fields, and Folio's manifest rows (documents of 100 chunks, the BM25
token cache). Embedding a million real chunks would take days on 2 cores; size, not meaning,
drives memory, disk and latency.

Each size is built by one process and measured by a fresh one, so RSS is what a server holding
that index needs: the process's RSS after imports, after the first Chroma query (HNSW loaded),
and after loading BM25. Latencies: Chroma `query` (k=20, Folio's fusion pool) and bm25s
`retrieve` (k=20, 5-term queries), each alone; the question's embedding (~12 ms) and Folio's
manifest filter come on top (bench/retrieval_latency.py and bench/serve_bench.py measure those).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DIM = 384
VOCABULARY = 30_000
WORDS_PER_CHUNK = 150
CHUNKS_PER_DOCUMENT = 100
BATCH = 5000
POOL = 20  # Folio's fusion candidates per retriever at k=5


def vocabulary(seed: int = 7) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    syllables = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"]
    lengths = rng.integers(2, 5, VOCABULARY)
    words = {"".join(rng.choice(syllables, n)) for n in lengths}
    return sorted(words)


def word_sampler(words: list[str], seed: int) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(words) + 1)
    weights = 1.0 / ranks**1.07  # English-like Zipf
    weights /= weights.sum()

    def sample(n: int) -> list[str]:
        # The vocabulary's own str objects: a million chunks' tokens then cost a pointer each.
        return [words[i] for i in rng.choice(len(words), size=n, p=weights).tolist()]

    return rng, sample


def build(folder: Path, size: int) -> dict[str, float]:
    """Write `size` synthetic chunks to an embedded Chroma, a Folio manifest and a BM25 index."""
    import bm25s
    import chromadb
    import numpy as np
    from chromadb.config import Settings as ChromaSettings

    from ingest.manifest import DocumentRecord, Manifest, utc_now

    started = time.perf_counter()
    client = chromadb.PersistentClient(
        path=str(folder / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.get_or_create_collection(
        "folio_sizing", metadata={"hnsw:space": "cosine"}, embedding_function=None
    )
    manifest = Manifest(folder / "manifests" / "sizing.sqlite3")
    manifest._db.execute(
        "CREATE TABLE IF NOT EXISTS bm25_tokens (chunk_id TEXT PRIMARY KEY, tokens TEXT)"
    )
    rng, sample = word_sampler(vocabulary(), seed=size)
    batch = min(BATCH, int(client.get_max_batch_size()))
    all_tokens: list[list[str]] = []
    chroma_s = 0.0
    for start in range(0, size, batch):
        n = min(batch, size - start)
        ids = [f"{start + i:08d}" for i in range(n)]
        vectors = rng.standard_normal((n, DIM), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        flat = sample(n * WORDS_PER_CHUNK)
        tokens = [flat[i : i + WORDS_PER_CHUNK] for i in range(0, len(flat), WORDS_PER_CHUNK)]
        texts = [" ".join(t) for t in tokens]
        metas: list[Any] = []
        for i, cid in enumerate(ids):
            doc = (start + i) // CHUNKS_PER_DOCUMENT
            source = f"/data/uploads/default/report-{doc:06d}.pdf"
            metas.append(
                {"source": source, "filename": source.rsplit("/", 1)[1], "title": f"Report {doc}",
                 "sha256": f"{doc:064d}", "chunk_index": int(cid) % CHUNKS_PER_DOCUMENT,
                 "start": 0, "end": len(texts[i]), "table": False, "page": 1 + i % 40}
            )  # fmt: skip
        t = time.perf_counter()
        collection.upsert(ids=ids, embeddings=vectors.tolist(), documents=texts, metadatas=metas)
        chroma_s += time.perf_counter() - t
        records = []
        for doc_start in range(start, start + n, CHUNKS_PER_DOCUMENT):
            doc = doc_start // CHUNKS_PER_DOCUMENT
            doc_ids = ids[doc_start - start : doc_start - start + CHUNKS_PER_DOCUMENT]
            path = f"/data/uploads/default/report-{doc:06d}.pdf"
            record = DocumentRecord(
                path, f"{doc:064d}", 1, 0, f"Report {doc}", 40, len(doc_ids), utc_now(), "c", "e"
            )
            records.append((record, doc_ids))
        manifest.commit_documents(records)
        with manifest.transaction() as db:
            db.executemany(
                "INSERT INTO bm25_tokens VALUES (?, ?)",
                ((cid, json.dumps(t)) for cid, t in zip(ids, tokens, strict=True)),
            )
        all_tokens.extend(tokens)
        print(f"  {start + n:,} / {size:,} chunks", file=sys.stderr, flush=True)
    manifest.close()
    t = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(all_tokens, show_progress=False)
    retriever.save(str(folder / "bm25"), show_progress=False)
    bm25_s = time.perf_counter() - t
    return {
        "build_s": time.perf_counter() - started,
        "chroma_write_s": chroma_s,
        "bm25_build_s": bm25_s,
    }


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentiles(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 2),
    }


def measure(folder: Path, queries: int) -> dict[str, Any]:
    """In a fresh process: RSS at each step, then latency of each retriever alone."""
    import bm25s
    import chromadb
    import numpy as np
    from chromadb.config import Settings as ChromaSettings

    base = rss_mb()
    client = chromadb.PersistentClient(
        path=str(folder / "chroma"), settings=ChromaSettings(anonymized_telemetry=False)
    )
    collection = client.get_collection("folio_sizing")
    rng = np.random.default_rng(99)
    vectors = rng.standard_normal((queries + 1, DIM), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    t = time.perf_counter()
    collection.query(query_embeddings=[vectors[0].tolist()], n_results=POOL)
    first_query_ms = (time.perf_counter() - t) * 1000
    after_chroma = rss_mb()
    dense = []
    for vector in vectors[1:]:
        t = time.perf_counter()
        collection.query(
            query_embeddings=[vector.tolist()], n_results=POOL,
            include=["documents", "metadatas", "distances"],
        )  # fmt: skip
        dense.append((time.perf_counter() - t) * 1000)
    after_dense = rss_mb()

    t = time.perf_counter()
    retriever = bm25s.BM25.load(str(folder / "bm25"), show_progress=False, verbosity=0)
    bm25_load_ms = (time.perf_counter() - t) * 1000
    after_bm25 = rss_mb()
    _, sample = word_sampler(vocabulary(), seed=5)
    sparse = []
    for _ in range(queries):
        words = sample(5)
        t = time.perf_counter()
        retriever.retrieve([words], k=POOL, show_progress=False)
        sparse.append((time.perf_counter() - t) * 1000)
    return {
        "rss_base_mb": round(base, 1),
        "rss_chroma_mb": round(max(after_chroma, after_dense) - base, 1),
        "rss_bm25_mb": round(after_bm25 - after_dense, 1),
        "chroma_first_query_ms": round(first_query_ms, 1),
        "bm25_load_ms": round(bm25_load_ms, 1),
        "dense": percentiles(dense),
        "bm25": percentiles(sparse),
    }


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1048576


def run_size(size: int, queries: int, workdir: Path | None) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix=f"sizing-{size}-", dir=workdir))
    try:
        me = [sys.executable, "-m", "bench.sizing_bench"]
        built = subprocess.run(
            [*me, "--build", str(size), "--dir", str(folder)], check=True, capture_output=True,
            text=True,
        )  # fmt: skip
        result: dict[str, Any] = {"chunks": size, **json.loads(built.stdout)}
        result["disk_mb"] = {
            "chroma": round(disk_mb(folder / "chroma"), 1),
            "manifest": round(disk_mb(folder / "manifests"), 1),
            "bm25": round(disk_mb(folder / "bm25"), 1),
        }
        measured = subprocess.run(
            [*me, "--measure", str(queries), "--dir", str(folder)], check=True,
            capture_output=True, text=True,
        )  # fmt: skip
        result.update(json.loads(measured.stdout))
        return result
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def table(results: list[dict[str, Any]]) -> str:
    lines = [
        "| chunks | disk MB (chroma / manifest / bm25) | RSS MB (chroma / bm25) "
        "| dense p50 / p95 ms | bm25 p50 / p95 ms | build s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        d = r["disk_mb"]
        lines.append(
            f"| {r['chunks']:,} | {d['chroma']:,.1f} / {d['manifest']:,.1f} / {d['bm25']:,.1f} "
            f"| {r['rss_chroma_mb']:,.1f} / {r['rss_bm25_mb']:,.1f} "
            f"| {r['dense']['p50_ms']:.1f} / {r['dense']['p95_ms']:.1f} "
            f"| {r['bm25']['p50_ms']:.1f} / {r['bm25']['p95_ms']:.1f} | {r['build_s']:,.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--workdir", type=Path, default=None, help="where to build (default: /tmp)")
    parser.add_argument("--out", type=Path, default=Path("bench/results/sizing.json"))
    parser.add_argument("--build", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build is not None:
        print(json.dumps(build(args.dir, args.build)))
        return
    if args.measure is not None:
        print(json.dumps(measure(args.dir, args.measure)))
        return
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"building {size:,} chunks ...", file=sys.stderr, flush=True)
        results.append(run_size(size, args.queries, args.workdir))
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    previous.update({str(r["chunks"]): r for r in results})
    args.out.write_text(json.dumps(previous, indent=2))
    print(table(results))


if __name__ == "__main__":
    main()
