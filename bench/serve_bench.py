"""`folio serve` under concurrent clients: /v1/search throughput and latency, /v1/ask as the
queue grows, with embedded Chroma and with a Chroma server.

    nice -n 10 python -m bench.serve_bench [--filings 3] [--clients 1,4,16] [--requests 20]
        [--queue 1,2,4,8] [--modes quote,generate] [--backends embedded,server]

The corpus is the first N SEC 10-Q filings of ../shared/datasets/sec10q/docs, ingested once into
embedded Chroma; the Chroma server gets a copy of the same vectors (and the data dir a copy of
the manifest and BM25 index), so both backends serve the same index. The server runs on
localhost with one torch and one llama.cpp thread (FOLIO_N_THREADS=1, FOLIO_TORCH_THREADS=1),
as in the tests; the clients run in this process (threads), so they share the 2 cores with it.

Search: both backends run at once and take turns (R rounds each, the median kept), so outside
load falls on both alike; each of C clients sends R queries back to back (hybrid, k=5, questions
from the dataset's qna_data.csv that name the chosen filings); requests/s = all requests / wall
time. Ask: Q questions sent at once; each one's total latency and the time it waited in the queue
(timings.queue_ms); `generate` answers use max_tokens=64 at temperature 0.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fnmatch
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SEC = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sec10q"
GENERIC = [
    "What was the total net sales for the quarter?",
    "What are the main risk factors related to the supply chain?",
    "How much cash and cash equivalents did the company hold?",
    "What was the operating income?",
    "How did research and development expenses change?",
    "What legal proceedings are disclosed?",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FOLIO_DATA_DIR": str(data_dir),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "ANONYMIZED_TELEMETRY": "False",
        "FOLIO_N_THREADS": "1",
        "FOLIO_TORCH_THREADS": "1",
        **extra,
    }


@contextmanager
def process(
    command: list[str], env: dict[str, str], log: Path, health: str
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` until the block ends, once `health` answers 200 (within 5 minutes)."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 300
            while True:
                try:
                    with urllib.request.urlopen(health, timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[:4]} did not start: {log.read_text()[-2000:]}")
                time.sleep(0.5)
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def questions_for(filings: list[Path]) -> list[str]:
    names = [f.name for f in filings]
    found = []
    with (SEC / "qna_data.csv").open(encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            if any(fnmatch.fnmatch(n, row["Source Docs"].strip()) for n in names):
                found.append(row["Question"].strip())
    return found or GENERIC


def copy_to_server(data_dir: Path, target: Path, chroma_url: str) -> None:
    """The embedded index, copied into a Chroma server (vectors as they are) and a new data dir."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    local = chromadb.PersistentClient(path=str(data_dir / "chroma"), settings=settings)
    port = int(chroma_url.rsplit(":", 1)[1])
    remote = chromadb.HttpClient(host="127.0.0.1", port=port, settings=settings)
    source = local.get_collection("folio_default")
    copy = remote.get_or_create_collection(
        "folio_default", metadata={"hnsw:space": "cosine"}, embedding_function=None
    )
    everything: Any = source.get(include=["embeddings", "documents", "metadatas"])
    step = 1000
    for start in range(0, len(everything["ids"]), step):
        part = slice(start, start + step)
        copy.upsert(
            ids=everything["ids"][part],
            embeddings=everything["embeddings"][part],
            documents=everything["documents"][part],
            metadatas=everything["metadatas"][part],
        )
    for folder in ("manifests", "bm25"):
        shutil.copytree(data_dir / folder, target / folder)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def post(url: str, body: dict[str, Any], timeout: float = 600) -> tuple[float, dict[str, Any]]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=timeout) as response:
        payload = json.loads(response.read())
    return (time.perf_counter() - started) * 1000, payload


def summary(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "p50_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
        "max_ms": round(times[-1], 1),
    }


def search_load(url: str, queries: list[str], clients: int, per_client: int) -> dict[str, Any]:
    errors = 0
    times: list[float] = []
    lock = threading.Lock()
    start = threading.Barrier(clients)

    def client(offset: int) -> None:
        nonlocal errors
        start.wait()
        for i in range(per_client):
            query = queries[(offset * per_client + i) % len(queries)]
            try:
                ms, _ = post(f"{url}/v1/search", {"query": query, "k": 5, "mode": "hybrid"})
            except OSError:
                with lock:
                    errors += 1
                continue
            with lock:
                times.append(ms)

    began = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, range(clients)))
    wall = time.perf_counter() - began
    return {"clients": clients, "requests": len(times), "errors": errors,
            "rps": round(len(times) / wall, 2), **summary(times)}  # fmt: skip


def ask_queue(url: str, questions: list[str], depth: int, mode: str) -> dict[str, Any]:
    start = threading.Barrier(depth)

    def ask(question: str) -> tuple[float, dict[str, Any]]:
        start.wait()
        body: dict[str, Any] = {"question": question, "answer_mode": mode}
        if mode != "quote":
            body.update(max_tokens=64, temperature=0)
        return post(f"{url}/v1/ask", body)

    with ThreadPoolExecutor(depth) as pool:
        replies = list(pool.map(ask, questions[:depth]))
    times = [ms for ms, _ in replies]
    waited = [float(a["timings"].get("queue_ms", 0.0)) for _, a in replies]
    return {"depth": depth, "mode": mode, **summary(times),
            "mean_queue_ms": round(statistics.mean(waited), 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--filings", type=int, default=3)
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--requests", type=int, default=20, help="searches per client")
    parser.add_argument("--queue", default="1,2,4,8")
    parser.add_argument("--modes", default="quote,generate")
    parser.add_argument("--backends", default="embedded,server")
    parser.add_argument("--rounds", type=int, default=3, help="search rounds per backend")
    parser.add_argument("--out", type=Path, default=Path("bench/results/serve_bench.json"))
    args = parser.parse_args()
    if not (SEC / "docs").is_dir():
        sys.exit(f"skipped: the SEC filings are not at {SEC / 'docs'}")
    filings = sorted((SEC / "docs").glob("*.pdf"))[: args.filings]
    queries = questions_for(filings)
    clients = [int(c) for c in args.clients.split(",")]
    root = Path(tempfile.mkdtemp(prefix="serve-bench-"))
    results: dict[str, Any] = {"filings": [f.name for f in filings], "search": [], "ask": []}
    try:
        embedded = root / "embedded"
        ingest = subprocess.run(
            [sys.executable, "-m", "folio", "ingest", *map(str, filings), "--json"],
            env=base_env(embedded), capture_output=True, text=True, check=True,
        )  # fmt: skip
        results["ingest"] = json.loads(ingest.stdout)
        print(f"ingested {results['ingest']['chunks_added']} chunks", file=sys.stderr)
        backends = args.backends.split(",")
        with contextlib.ExitStack() as stack:
            urls, pids = {}, {}
            for backend in backends:  # all up at once: their rounds alternate below
                extra: dict[str, str] = {}
                data_dir = embedded
                if backend == "server":
                    port = free_port()
                    chroma = shutil.which("chroma", path=str(Path(sys.executable).parent))
                    stack.enter_context(process(
                        [chroma or "chroma", "run", "--path", str(root / "chroma-server"),
                         "--port", str(port), "--host", "127.0.0.1"],
                        base_env(root), root / "chroma.log",
                        f"http://127.0.0.1:{port}/api/v2/heartbeat",
                    ))  # fmt: skip
                    extra["FOLIO_CHROMA_URL"] = f"http://127.0.0.1:{port}"
                    data_dir = root / "server"
                    copy_to_server(embedded, data_dir, extra["FOLIO_CHROMA_URL"])
                port = free_port()
                urls[backend] = url = f"http://127.0.0.1:{port}"
                pids[backend] = stack.enter_context(process(
                    [sys.executable, "-m", "folio", "serve", "--port", str(port)],
                    base_env(data_dir, **extra), root / f"serve-{backend}.log", f"{url}/readyz",
                )).pid  # fmt: skip
                for query in queries[:3]:  # warm: the first search opens the indexes
                    post(f"{url}/v1/search", {"query": query})
                results[f"rss_ready_mb_{backend}"] = rss_mb(pids[backend])
            # Interleaved: each client count runs on every backend in turn, `rounds` times, so
            # load from outside the benchmark falls on both alike; the median round is kept.
            for n in clients:
                rounds: dict[str, list[dict[str, Any]]] = {b: [] for b in backends}
                for _ in range(args.rounds):
                    for backend in backends:
                        load = search_load(urls[backend], queries, n, args.requests)
                        rounds[backend].append(load)
                for backend, runs in rounds.items():
                    median = sorted(runs, key=lambda r: r["rps"])[len(runs) // 2]
                    row = {"backend": backend, **median}
                    results["search"].append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
            url = urls[backends[0]]
            for mode in [m for m in args.modes.split(",") if m]:
                post(f"{url}/v1/ask", {"question": queries[0], "answer_mode": mode,
                                       "max_tokens": 8})  # fmt: skip
                for depth in (int(d) for d in args.queue.split(",")):
                    row = {"backend": backends[0], **ask_queue(url, queries, depth, mode)}
                    results["ask"].append(row)
                    print(json.dumps(row), file=sys.stderr, flush=True)
            for backend in backends:
                results[f"rss_after_mb_{backend}"] = rss_mb(pids[backend])
    finally:
        shutil.rmtree(root, ignore_errors=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(tables(results))


def tables(results: dict[str, Any]) -> str:
    lines = [
        "| backend | clients | requests/s | p50 ms | p95 ms | errors |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["search"]:
        lines.append(
            f"| {r['backend']} | {r['clients']} | {r['rps']:.1f} | {r['p50_ms']:.0f} "
            f"| {r['p95_ms']:.0f} | {r['errors']} |"
        )
    if not results["ask"]:
        return "\n".join(lines)
    lines += ["", "| mode | questions at once | p50 ms | max ms | mean wait in queue ms |",
              "|---|---|---|---|---|"]  # fmt: skip
    for r in results["ask"]:
        lines.append(
            f"| {r['mode']} | {r['depth']} | {r['p50_ms']:.0f} | {r['max_ms']:.0f} "
            f"| {r['mean_queue_ms']:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
