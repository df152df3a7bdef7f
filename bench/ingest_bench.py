"""Ingestion benchmark: Folio against the naive LangChain tutorial pipeline, same files and model.

    python -m bench.ingest_bench [--docs DIR] [--out bench/results/ingest.json]

Each measurement runs in its own process (models loaded inside it) so peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DOCS = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sec10q" / "docs"


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_naive(docs: Path, workdir: Path) -> dict[str, float]:
    """PyPDFLoader, RecursiveCharacterTextSplitter(1000, 200), HuggingFaceEmbeddings, Chroma."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    from langchain_chroma import Chroma
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    from folio.models import resolve_embedding_path
    from ingest.loaders import pdf_limits

    pages = []
    # Same pypdf limits as Folio, or two of the 20 filings fail to open at all.
    with pdf_limits():
        for pdf in sorted(docs.glob("*.pdf")):
            pages.extend(PyPDFLoader(str(pdf)).load())
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(
        pages
    )
    embeddings = HuggingFaceEmbeddings(model_name=str(resolve_embedding_path("all-MiniLM-L6-v2")))
    Chroma.from_documents(chunks, embeddings, persist_directory=str(workdir / "naive-chroma"))
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "pages": len(pages), "chunks": len(chunks), "peak_mb": _peak_mb()}


def run_folio(docs: Path, workdir: Path) -> dict[str, float]:
    """`folio ingest` twice into a fresh data dir: the first run, then the unchanged re-run."""
    env = {**os.environ, "FOLIO_DATA_DIR": str(workdir / "folio-data")}
    timings = []
    for _ in range(2):
        started = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "folio", "ingest", str(docs), "--json"],
            env=env, capture_output=True, text=True, check=True,
        )  # fmt: skip
        timings.append((time.perf_counter() - started, json.loads(out.stdout)))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    (first_s, first), (second_s, second) = timings
    from ingest.manifest import Manifest

    manifest = Manifest(workdir / "folio-data" / "manifests" / "default.sqlite3")
    pages = sum(d.pages or 0 for d in manifest.documents())
    manifest.close()
    return {
        "seconds": first_s,
        "pages": pages,
        "chunks": first["chunks_added"],
        "peak_mb": peak,
        "second_seconds": second_s,
        "second_unchanged": second["unchanged"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--out", type=Path, default=Path("bench/results/ingest.json"))
    parser.add_argument("--only", choices=["naive", "folio"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not args.docs.is_dir():
        print(f"skipped: {args.docs} not found (the shared datasets are not beside this checkout)")
        return
    if args.only:
        with tempfile.TemporaryDirectory() as tmp:
            runner = run_naive if args.only == "naive" else run_folio
            print(json.dumps(runner(args.docs, Path(tmp))))
        return
    results = {}
    for name in ("folio", "naive"):
        proc = subprocess.run(
            [sys.executable, "-m", "bench.ingest_bench", "--docs", str(args.docs), "--only", name],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
    for data in results.values():
        data["pages_per_s"] = data["pages"] / data["seconds"]
        data["chunks_per_s"] = data["chunks"] / data["seconds"]
    folio, naive = results["folio"], results["naive"]
    results["summary"] = {
        "speedup_vs_naive": naive["seconds"] / folio["seconds"],
        "second_run_share": folio["second_seconds"] / folio["seconds"],
        "cpu_count": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print("| pipeline | seconds | pages/s | chunks | chunks/s | peak MB |")
    print("|---|---|---|---|---|---|")
    for name in ("folio", "naive"):
        d = results[name]
        print(
            f"| {name} | {d['seconds']:.1f} | {d['pages_per_s']:.2f} | {d['chunks']:.0f} | "
            f"{d['chunks_per_s']:.1f} | {d['peak_mb']:.0f} |"
        )
    s = results["summary"]
    print(
        f"\nFolio is {s['speedup_vs_naive']:.2f}x the naive pipeline's speed; the unchanged re-run "
        f"took {folio['second_seconds']:.2f}s = {100 * s['second_run_share']:.2f}% of the first."
    )


if __name__ == "__main__":
    main()
