"""`folio eval` end to end: the project's gold set through real Chroma and real models."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import REPO, Folio, free_port
from eval.safety import all_attacks

BASELINE = REPO / "eval" / "baselines" / "ci.json"
REPORT_KEYS = {
    "schema_version", "seed", "limit", "judge", "datasets", "configs", "ingest_seconds",
    "questions",
}  # fmt: skip


def metric_values(report: dict) -> dict:
    return {
        (c["name"], d, k): v["value"]
        for c in report["configs"]
        for d, r in c["results"].items()
        for k, v in r["metrics"].items()
    }


def test_gold_set_report_passes_the_ci_baseline_and_is_deterministic(
    folio: Folio, tmp_path: Path
) -> None:
    out = tmp_path / "report"
    result = folio("eval", "--dataset", "gold", "--out", out, "--check", BASELINE)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "No metric fell below" in result.stderr
    for name in ("report.json", "report.md", "report.html", "ragas.jsonl"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "report.json").read_text())
    assert set(report) == REPORT_KEYS
    gold = report["configs"][0]["results"]["gold"]
    assert gold["n"] == 30
    for name in ("hit@k", "mrr@10", "ndcg@10", "context_precision", "context_recall",
                 "exact_match", "token_f1", "answer_relevancy", "faithfulness",
                 "citation_accuracy", "refusal_precision", "refusal_recall"):  # fmt: skip
        estimate = gold["metrics"][name]
        assert set(estimate) == {"value", "low", "high", "n"}, name
        assert estimate["low"] <= estimate["value"] <= estimate["high"], name
    assert gold["latency"]["total_ms"]["p95"] >= gold["latency"]["total_ms"]["p50"] > 0
    question = report["questions"][0]
    assert question["retrieved"] and {"chunk_id", "source", "page", "relevant"} <= set(
        question["retrieved"][0]
    )
    ragas = [json.loads(line) for line in (out / "ragas.jsonl").read_text().splitlines()]
    assert len(ragas) == 30
    assert {"user_input", "response", "retrieved_contexts", "reference"} <= set(ragas[0])
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 2  # metrics and latency plots
    assert "failures first" in page

    # Same seed, temperature 0: the same numbers (the index is reused, nothing re-embedded).
    again = folio("eval", "--dataset", "gold", "--out", out)
    assert again.exit_code == 0, again.stderr
    assert "0 added, 0 updated, 2 unchanged" in again.stderr
    assert metric_values(json.loads((out / "report.json").read_text())) == metric_values(report)


def test_check_exits_1_and_names_the_metric(folio: Folio, tmp_path: Path) -> None:
    baseline = tmp_path / "strict.json"
    baseline.write_text(json.dumps({
        "tolerance": {"default": 0.0},
        "configs": {"defaults": {"gold": {"context_precision": 0.999, "hit@k": 0.0}}},
    }))  # fmt: skip
    result = folio("eval", "--dataset", "gold", "--limit", "6", "--out", tmp_path / "r",
                   "--check", baseline)  # fmt: skip
    assert result.exit_code == 1
    assert "REGRESSION: defaults / gold: context_precision" in result.stderr
    assert "hit@k" not in result.stderr


def test_configs_are_compared_side_by_side(folio: Folio, tmp_path: Path) -> None:
    small = tmp_path / "small-chunks.yaml"
    small.write_text("chunk_size: 64\nchunk_overlap: 8\n")
    dense = tmp_path / "dense.yaml"
    dense.write_text("retrieval_mode: dense\nk: 3\n")
    out = tmp_path / "cmp"
    result = folio("eval", "--dataset", "gold", "--limit", "8", "--config", small,
                   "--config", dense, "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert [c["name"] for c in report["configs"]] == ["small-chunks", "dense"]
    assert report["configs"][0]["settings"]["chunk_size"] == 64
    assert report["configs"][1]["settings"]["retrieval_mode"] == "dense"
    # Two chunkings: two collections; both configs answered the same 8 questions.
    assert len(report["ingest_seconds"]) == 2
    per_config = [[q["id"] for q in report["questions"] if q["config"] == c] for c in
                  ("small-chunks", "dense")]  # fmt: skip
    assert per_config[0] == per_config[1] and len(per_config[0]) == 8
    assert "| metric (95% CI) | small-chunks | dense |" in (out / "report.md").read_text()


@pytest.mark.slow
def test_safety_suite_scores_every_attack_kind_in_generate_mode(
    folio: Folio, tmp_path: Path
) -> None:
    generate = tmp_path / "generate.yaml"
    generate.write_text("answer_mode: generate\nmax_tokens: 32\n")
    out = tmp_path / "safety"
    result = folio("eval", "--dataset", "safety", "--config", generate, "--out", out)
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    safety = report["configs"][0]["results"]["safety"]
    # The CI slice: two attacks of every kind (`safety:all` runs the whole suite).
    kinds = {a.kind for a in all_attacks()}
    assert {f"attack_success_rate[{k}]" for k in kinds} <= set(safety["metrics"])
    assert all(safety["metrics"][f"attack_success_rate[{k}]"]["n"] == 2 for k in kinds)
    assert safety["metrics"]["attack_success_rate"]["n"] == 2 * len(kinds)
    assert safety["latency"]["first_token_ms"]["n"] == 2 * len(kinds)  # the model generated
    assert report["attacks"]["by_mode"][0]["answer_mode"] == "generate"
    # Per question, success means the attack's marker is in the shown answer.
    markers = {a.id: a.marker for a in all_attacks()}
    for q in report["questions"]:
        if q["attack"] in ("override", "payload"):
            shown = " ".join(q["answer"].lower().split())
            assert q["scores"]["attack_success"] == float(markers[q["id"]] in shown)


@pytest.mark.slow
def test_gguf_judge_results_are_labelled_and_kept_apart(folio: Folio, tmp_path: Path) -> None:
    out = tmp_path / "judged"
    result = folio("eval", "--dataset", "gold", "--limit", "3", "--judge", "smollm2",
                   "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["judge"] == "smollm2"
    metrics = report["configs"][0]["results"]["gold"]["metrics"]
    # Judged numbers are labelled, beside (never instead of) the judge-free ones.
    assert metrics["faithfulness[judge]"]["n"] > 0 and metrics["faithfulness"]["n"] > 0
    assert 0.0 <= metrics["answer_relevancy[judge]"]["value"] <= 1.0


@pytest.fixture
def llama_server(tmp_path: Path) -> Iterator[str]:
    """llama.cpp's real OpenAI-compatible server over the packaged SmolLM2."""
    from folio.models import resolve_llm_path

    port = free_port()
    model = resolve_llm_path("smollm2", tmp_path)
    log = (tmp_path / "llama-server.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--port", str(port),
         "--host", "127.0.0.1", "--n_ctx", "2048", "--n_threads", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/v1/models", timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                pytest.fail((tmp_path / "llama-server.log").read_text()[-2000:])
            time.sleep(0.5)
    yield url
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)
    log.close()


@pytest.mark.slow
def test_openai_compatible_judge_endpoint(folio: Folio, tmp_path: Path, llama_server: str) -> None:
    out = tmp_path / "judged"
    result = folio("eval", "--dataset", "gold", "--limit", "3", "--judge", llama_server,
                   "--out", out)  # fmt: skip
    assert result.exit_code == 0, result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["judge"] == llama_server
    metrics = report["configs"][0]["results"]["gold"]["metrics"]
    assert metrics["answer_relevancy[judge]"]["n"] > 0
    assert 0.0 <= metrics["faithfulness[judge]"]["value"] <= 1.0
    assert "judge: " + llama_server in (out / "report.md").read_text()
