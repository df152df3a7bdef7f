"""Generation speed: Folio's chain against plain llama-cpp-python, and beside a running ingest.

    python -m bench.generation_bench [--runs 5] [--ingest-dir DIR] [--no-ingest]
    FOLIO_LLM_URL=http://127.0.0.1:8080/v1 python -m bench.generation_bench --no-ingest

1. The same prompt, model and settings through plain `llama_cpp.Llama` and through Folio's
   LangChain LLM, alternating, in one process: time to first token and tokens/s (medians).
   With FOLIO_LLM_URL set, Folio's server backend instead (the server should serve the same
   packaged model: its EOS id is read from the local GGUF to suppress it).
2. `folio ask` end to end (retrieval included) on the bundled samples.
3. Tokens/s while a `folio ingest` runs in another process, with llama.cpp's OpenMP threads
   waiting passively (Folio's default) and actively (OpenMP's default), each in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

QUESTION = "What happens if ingestion is interrupted?"


def _measure(stream: Any) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    count = 0
    for _ in stream:
        if first is None:
            first = time.perf_counter()
        count += 1
    ended = time.perf_counter()
    first = first or ended
    return (first - started) * 1000, count / max(ended - first, 1e-6)


def overhead(runs: int, data_dir: Path) -> dict[str, Any]:
    import llama_cpp

    from folio.llm import load_llm, load_local_llm
    from folio.settings import load_settings
    from folio.store import ChromaStore
    from prompts import load_prompt
    from retrieval.chain import AnswerChain
    from retrieval.search import QueryToChunks

    settings = load_settings(data_dir=data_dir)
    retriever = QueryToChunks(settings, ChromaStore(settings.data_dir))
    chain = AnswerChain(settings, retriever)
    hits = retriever.search(QUESTION)
    prompt, _ = chain.fit_prompt(load_prompt(settings.prompt), QUESTION, hits, 256)
    if settings.llm_url:
        return _server_speed(runs, settings, chain, prompt)
    folio_llm = load_local_llm(settings)
    assert load_llm(settings) is folio_llm
    plain = llama_cpp.Llama(
        model_path=str(folio_llm.path), n_ctx=settings.n_ctx, n_threads=folio_llm.n_threads,
        n_threads_batch=folio_llm.n_threads, n_batch=settings.n_batch, seed=settings.seed,
        n_gpu_layers=folio_llm.gpu.n_gpu_layers, verbose=False,
    )  # fmt: skip
    # EOS suppressed and no stop strings: every run generates exactly max_tokens tokens.
    params = {
        "max_tokens": 256,
        "temperature": 0.0,
        "seed": settings.seed,
        "logit_bias": {plain.token_eos(): -100.0},
    }
    plain_rows, folio_rows, ask_rows = [], [], []
    for _ in range(runs):
        plain.reset()
        plain_rows.append(_measure(plain(prompt.text, stream=True, stop=prompt.stop, **params)))
        folio_llm.client.reset()
        folio_rows.append(_measure(folio_llm.stream(prompt, params)))
        *_, answer = chain.stream(QUESTION, mode="generate")
        ask_rows.append(answer.timings)
    retriever.close()

    def med(rows: list[tuple[float, float]], i: int) -> float:
        return statistics.median(r[i] for r in rows)

    result: dict[str, Any] = {
        "backend": "local",
        "plain_ttft_ms": med(plain_rows, 0),
        "plain_tokens_per_s": med(plain_rows, 1),
        "folio_ttft_ms": med(folio_rows, 0),
        "folio_tokens_per_s": med(folio_rows, 1),
        "ask_retrieve_ms": statistics.median(t["retrieve_ms"] for t in ask_rows),
        "ask_first_token_ms": statistics.median(t["first_token_ms"] for t in ask_rows),
        "ask_tokens_per_s": statistics.median(t["tokens_per_s"] for t in ask_rows),
    }
    result["ttft_overhead"] = result["folio_ttft_ms"] / result["plain_ttft_ms"] - 1
    result["throughput_overhead"] = 1 - result["folio_tokens_per_s"] / result["plain_tokens_per_s"]
    return result


def _server_speed(runs: int, settings: Any, chain: Any, prompt: Any) -> dict[str, Any]:
    """Folio's server backend: the same prompt streamed from the server, then `folio ask`."""
    from folio import llm_runtime
    from folio.llm import load_llm
    from folio.models import resolve_llm_path

    llm = load_llm(settings)
    path = resolve_llm_path(settings.llm_model, settings.data_dir)
    eos = llm_runtime.gguf_metadata(path).get("tokenizer.ggml.eos_token_id")
    params: dict[str, Any] = {"max_tokens": 256, "temperature": 0.0, "seed": settings.seed}
    if eos is not None:
        params["logit_bias"] = {str(eos): -100.0}
    rows, ask_rows = [], []
    for _ in range(runs):
        rows.append(_measure(llm.stream(prompt, params)))
        *_, answer = chain.stream(QUESTION, mode="generate")
        ask_rows.append(answer.timings)
    chain.retriever.close()
    return {
        "backend": "server",
        "model": llm.model_info(),
        "folio_ttft_ms": statistics.median(r[0] for r in rows),
        "folio_tokens_per_s": statistics.median(r[1] for r in rows),
        "ask_retrieve_ms": statistics.median(t["retrieve_ms"] for t in ask_rows),
        "ask_first_token_ms": statistics.median(t["first_token_ms"] for t in ask_rows),
        "ask_tokens_per_s": statistics.median(t["tokens_per_s"] for t in ask_rows),
    }


def beside_ingest(data_dir: Path, ingest_dir: Path, env: dict[str, str]) -> dict[str, float]:
    """tokens/s alone, then while `folio ingest` runs, in a fresh process per configuration."""
    code = (
        "import json,sys,time,subprocess,os;"
        "from bench.generation_bench import _measure, QUESTION;"
        "from folio.llm import load_local_llm; from folio.settings import load_settings;"
        f"s=load_settings(data_dir={str(data_dir)!r}); llm=load_local_llm(s); c=llm.client;"
        "p=lambda: (c.reset(), c('Tell a long story about a lighthouse keeper.', stream=True,"
        " max_tokens=200, temperature=0.0, logit_bias={c.token_eos(): -100.0}))[1];"
        "alone=_measure(p())[1];"
        f"env=dict(os.environ, FOLIO_DATA_DIR={str(data_dir / 'other')!r});"
        "ing=subprocess.Popen([sys.executable,'-m','folio','ingest',"
        f"{str(ingest_dir)!r},'--json'],env=env,stdout=subprocess.DEVNULL,"
        "stderr=subprocess.DEVNULL); time.sleep(12);"
        "busy=_measure(p())[1]; ing.kill(); ing.wait();"
        "print(json.dumps({'alone_tokens_per_s':alone,'during_ingest_tokens_per_s':busy}))"
    )
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "FOLIO_N_THREADS")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--ingest-dir", type=Path, default=None)
    parser.add_argument("--no-ingest", action="store_true", help="only the speed measurements")
    parser.add_argument("--out", type=Path, default=Path("bench/results/generation.json"))
    args = parser.parse_args()
    from folio.samples import build_samples
    from folio.settings import load_settings
    from folio.store import ChromaStore
    from ingest.pipeline import FilesToIndex

    with tempfile.TemporaryDirectory() as tmp:
        samples = Path(tmp) / "samples"
        build_samples(samples)
        data_dir = Path(tmp) / "data"
        settings = load_settings(data_dir=data_dir)
        FilesToIndex(settings, ChromaStore(data_dir)).run([samples])
        results: dict[str, Any] = {"overhead": overhead(args.runs, data_dir)}
        if args.no_ingest or settings.llm_url:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=2))
            print(json.dumps(results, indent=2))
            return
        # A long ingest to compete with: the SEC filings when present, else the samples.
        sec = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "sec10q" / "docs"
        ingest_dir = args.ingest_dir or (sec if sec.is_dir() else samples)
        # OMP_WAIT_POLICY: how llama.cpp's idle OpenMP threads wait ("default" = libgomp's
        # bounded spin); FOLIO_N_THREADS: llama.cpp threads (Folio's default: half the cores).
        configs = {
            "omp default, 2 threads": {"OMP_WAIT_POLICY": "", "FOLIO_N_THREADS": "2"},
            "omp passive, 2 threads": {"OMP_WAIT_POLICY": "passive", "FOLIO_N_THREADS": "2"},
            "omp active, 2 threads": {"OMP_WAIT_POLICY": "active", "FOLIO_N_THREADS": "2"},
            "omp default, 1 thread": {"OMP_WAIT_POLICY": "", "FOLIO_N_THREADS": "1"},
        }
        for name, env in configs.items():
            results[name] = beside_ingest(data_dir, ingest_dir, env)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
