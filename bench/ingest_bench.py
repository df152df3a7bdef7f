"""Ingestion benchmark: Folio against the naive LangChain tutorial pipeline, same files and model.

    python -m bench.ingest_bench [--docs DIR] [--cores 1,2] [--backends torch,onnx-int8]
                                 [--scanned-pages 100] [--out bench/results/ingest.json]

For each core count the pipelines run one after the other in the same run (Folio with each
embedding backend, then the naive pipeline), each in its own process pinned to the first N cores
(sched_setaffinity, inherited by Folio's extraction workers), models loaded inside it, so peak
memory is its own and the comparison shares the machine's state. With `--scanned-pages N`, N pages
of the filings are rasterised into an image-only PDF (no text layer) and ingested the same way,
which measures OCR. The int8 ONNX export is made before timing (a one-time cost at first use,
reported as `onnx_export_seconds`).
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
from typing import Any

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
    if chunks:  # a scanned PDF gives the naive pipeline no text at all
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
        "failed": len(first["failed"]),
    }


def make_scanned_pdf(docs: Path, pages: int, target: Path, dpi: int = 200) -> Path:
    """An image-only PDF of the filings' first `pages` pages (rendered at `dpi`, no text layer)."""
    import pypdfium2

    images: list[Any] = []
    for pdf_path in sorted(docs.glob("*.pdf")):
        pdf = pypdfium2.PdfDocument(str(pdf_path))
        for index in range(len(pdf)):
            if len(images) == pages:
                break
            images.append(pdf[index].render(scale=dpi / 72, grayscale=True).to_pil())
        pdf.close()
        if len(images) == pages:
            break
    target.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(target, save_all=True, append_images=images[1:], resolution=dpi)
    return target


def export_onnx() -> float:
    """Make (or find) the cached int8 ONNX export, so the timed runs measure ingestion alone."""
    from folio.models import embedding_fingerprint, resolve_embedding_path
    from folio.onnx_embedding import ensure_export

    started = time.perf_counter()
    path = resolve_embedding_path("all-MiniLM-L6-v2")
    ensure_export(path, embedding_fingerprint(path))
    return time.perf_counter() - started


def _measure(name: str, docs: Path, cpus: set[int], backend: str | None) -> dict[str, Any]:
    env = dict(os.environ)
    if backend:
        env["FOLIO_EMBEDDING_BACKEND"] = backend
    proc = subprocess.run(
        [sys.executable, "-m", "bench.ingest_bench", "--docs", str(docs), "--only", name],
        capture_output=True, text=True, check=True, env=env,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )  # fmt: skip
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    data["pages_per_s"] = data["pages"] / data["seconds"]
    data["chunks_per_s"] = data["chunks"] / data["seconds"]
    return data


def _table(results: dict[str, dict[str, Any]]) -> None:
    print(
        "| corpus | cores | pipeline | seconds | pages/s | chunks | chunks/s | peak MB | vs naive |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for key, d in results.items():
        corpus, cores, name = key.split("/")
        naive = results.get(f"{corpus}/{cores}/naive")
        ratio = f"{naive['seconds'] / d['seconds']:.2f}x" if naive and name != "naive" else ""
        print(
            f"| {corpus} | {cores} | {name} | {d['seconds']:.1f} | {d['pages_per_s']:.2f} | "
            f"{d['chunks']:.0f} | {d['chunks_per_s']:.1f} | {d['peak_mb']:.0f} | {ratio} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, default=DEFAULT_DOCS)
    parser.add_argument("--out", type=Path, default=Path("bench/results/ingest.json"))
    parser.add_argument("--cores", default="1,2", help="core counts to pin the runs to")
    parser.add_argument("--backends", default="torch,onnx-int8", help="Folio embedding backends")
    parser.add_argument("--scanned-pages", type=int, default=0, help="also an N-page scanned PDF")
    parser.add_argument("--no-naive", action="store_true", help="Folio only")
    parser.add_argument("--scanned-only", action="store_true", help="only the scanned PDF")
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
    backends = [b for b in args.backends.split(",") if b]
    available = sorted(os.sched_getaffinity(0))
    summary: dict[str, Any] = {"cpu_count": os.cpu_count(), "started": time.ctime()}
    if "onnx-int8" in backends:
        summary["onnx_export_seconds"] = round(export_onnx(), 1)
    with tempfile.TemporaryDirectory() as tmp:
        corpora = {} if args.scanned_only else {"sec10q": args.docs}
        if args.scanned_pages:
            scanned = Path(tmp) / "scanned"
            make_scanned_pdf(args.docs, args.scanned_pages, scanned / "scanned.pdf")
            corpora["scanned"] = scanned
        results: dict[str, dict[str, Any]] = {}
        for corpus, folder in corpora.items():
            for cores in (int(c) for c in args.cores.split(",")):
                cpus = set(available[:cores])
                # Interleaved in one run: each pipeline sees the same machine state.
                for backend in backends:
                    key = f"{corpus}/{cores}/folio {backend}"
                    results[key] = _measure("folio", folder, cpus, backend)
                    print(f"{key}: {results[key]['seconds']:.1f}s", file=sys.stderr)
                if not args.no_naive:
                    results[f"{corpus}/{cores}/naive"] = _measure("naive", folder, cpus, None)
                    print(f"{corpus}/{cores}/naive done", file=sys.stderr)
    summary["finished"] = time.ctime()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"results": results, "summary": summary}, indent=2))
    _table(results)
    for key, d in results.items():
        if "second_seconds" in d:
            share = 100 * d["second_seconds"] / d["seconds"]
            print(f"{key}: unchanged re-run {d['second_seconds']:.2f}s = {share:.2f}% of the first")


if __name__ == "__main__":
    main()
