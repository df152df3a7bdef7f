"""Aggregate per-question results into report.json, report.md, report.html and ragas.jsonl,
and compare a report against a baseline."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from eval import metrics as m
from eval.runner import QuestionResult
from eval.safety_report import attack_breakdown, attack_markdown

SCHEMA_VERSION = 1
MEAN_METRICS = (
    "hit@k", "mrr@10", "ndcg@10", "context_precision", "context_recall", "exact_match",
    "token_f1", "answer_relevancy", "faithfulness", "citation_accuracy",
)  # fmt: skip
LATENCY_KEYS = ("retrieve_ms", "first_token_ms", "total_ms", "tokens_per_s")
# Lower is better for these; every other metric is higher-is-better.
LOWER_IS_BETTER = ("attack_success_rate", "unsupported_claim_rate")
REFUSAL_THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(21))


def summarize(results: Sequence[QuestionResult], seed: int) -> dict[str, Any]:
    """Every metric with its 95% bootstrap interval and n, plus latency percentiles."""
    out: dict[str, Any] = {}
    for name in MEAN_METRICS:
        out[name] = m.mean_estimate([r.scores.get(name) for r in results], seed).to_json()
    # Answers (refusals left out) with a number or name that no retrieved source contains.
    out["unsupported_claim_rate"] = m.mean_estimate(
        [r.scores.get("unsupported_claim") for r in results], seed
    ).to_json()
    # Follow-up suites: retrieval per strategy, e.g. "hit@k[carry]" (eval.runner).
    per_strategy = sorted({k for r in results for k in r.scores if k.endswith("]")})
    for name in (n for n in per_strategy if n.startswith(("hit@k[", "mrr@10["))):
        out[name] = m.mean_estimate([r.scores.get(name) for r in results], seed).to_json()
    judged = sorted({k for r in results for k in r.judged})
    for name in judged:
        label = f"{name}[judge]"
        out[label] = m.mean_estimate([r.judged.get(name) for r in results], seed).to_json()

    def refusal(rows: Sequence[Any], which: str) -> float | None:
        counts = m.refusal_counts([r.refused for r in rows], [r.item.answerable for r in rows])
        return counts.precision if which == "precision" else counts.recall

    counts = m.refusal_counts([r.refused for r in results], [r.item.answerable for r in results])
    for which, n in (("precision", counts.refused), ("recall", counts.unanswerable)):
        est = m.bootstrap(list(results), functools.partial(refusal, which=which), n, seed)
        out[f"refusal_{which}"] = est.to_json()
    out["answer_rate"] = m.mean_estimate(
        [0.0 if r.refused else 1.0 for r in results if r.item.answerable], seed
    ).to_json()
    attacks = [r for r in results if r.scores.get("attack_success") is not None]
    if attacks:
        out["attack_success_rate"] = m.mean_estimate(
            [r.scores["attack_success"] for r in attacks], seed
        ).to_json()
        for kind in sorted({str(r.item.attack) for r in attacks}):
            values = [r.scores["attack_success"] for r in attacks if r.item.attack == kind]
            out[f"attack_success_rate[{kind}]"] = m.mean_estimate(values, seed).to_json()
    return out


def refusal_curve(results: Sequence[QuestionResult]) -> list[dict[str, float]] | None:
    """The refusal trade-off over `refusal_threshold`: at each threshold, the share of
    unanswerable and of answerable questions the refusal model refuses (from each answer's
    P(answerable); nothing retrieved counts as 0). None unless the dataset has both kinds."""
    scored = [
        (float((r.answer.get("refusal") or {}).get("p_answerable", 0.0)), r.item.answerable)
        for r in results
        if r.item.attack is None
    ]
    answerable = [p for p, ok in scored if ok]
    unanswerable = [p for p, ok in scored if not ok]
    if not answerable or not unanswerable:
        return None
    verdicts = [r.answer["refusal"] for r in results if r.answer.get("refusal")]
    configured = {float(v["threshold"]) for v in verdicts}
    return [
        {
            "threshold": t,
            "unanswerable_refused": round(sum(p < t for p in unanswerable) / len(unanswerable), 4),
            "answerable_refused": round(sum(p < t for p in answerable) / len(answerable), 4),
        }
        for t in sorted(set(REFUSAL_THRESHOLDS) | configured)  # the configured one is marked
    ]


def latency(results: Sequence[QuestionResult]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in LATENCY_KEYS:
        values = [float(r.timings[key]) for r in results if r.timings.get(key) is not None]
        out[key] = {
            "p50": _round(m.percentile(values, 50)),
            "p95": _round(m.percentile(values, 95)),
            "n": len(values),
        }
    return out


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 2)


def failed(result: QuestionResult) -> bool:
    """What the per-question table lists first: wrong refusals, misses, low F1, attacks."""
    s = result.scores
    if s.get("attack_success"):
        return True
    if not result.item.answerable:
        return not result.refused
    return result.refused or s.get("hit@k") == 0.0 or (s.get("token_f1") or 0.0) < 0.5


def build_report(
    results: Sequence[QuestionResult],
    configs: list[dict[str, Any]],
    datasets: list[dict[str, Any]],
    seed: int,
    limit: int | None,
    judge: str | None,
    ingest_seconds: dict[str, float],
) -> dict[str, Any]:
    by_config: list[dict[str, Any]] = []
    for config in configs:
        per_dataset = {}
        for dataset in datasets:
            rows = [
                r for r in results if r.config == config["name"] and r.dataset == dataset["name"]
            ]
            if rows:
                per_dataset[dataset["name"]] = {
                    "n": len(rows),
                    "metrics": summarize(rows, seed),
                    "latency": latency(rows),
                }
                curve = refusal_curve(rows)
                if curve:
                    per_dataset[dataset["name"]]["refusal_curve"] = curve
        by_config.append({**config, "results": per_dataset})
    report = {
        "schema_version": SCHEMA_VERSION,
        "seed": seed,
        "limit": limit,
        "judge": judge,
        "datasets": datasets,
        "configs": by_config,
        "ingest_seconds": {k: round(v, 2) for k, v in ingest_seconds.items()},
        "questions": [r.to_json() for r in results],
    }
    attacks = attack_breakdown(results, configs)  # only when a dataset carried attacks
    if attacks:
        report["attacks"] = attacks
    return report


def ragas_rows(results: Sequence[QuestionResult]) -> list[dict[str, Any]]:
    """The column layout of the ragas library's EvaluationDataset (SingleTurnSample)."""
    return [
        {
            "user_input": r.item.question,
            "response": r.answer["answer"],
            "retrieved_contexts": [s["text"] for s in r.answer["sources"]],
            "reference": r.item.answers[0] if r.item.answers else "",
            "config": r.config,
            "dataset": r.dataset,
            "id": r.item.id,
        }
        for r in results
    ]


def write_reports(report: dict[str, Any], results: Sequence[QuestionResult], out: Path) -> None:
    from eval.html import write_html

    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False), "utf-8")
    (out / "report.md").write_text(markdown(report), "utf-8")
    (out / "ragas.jsonl").write_text(
        "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in ragas_rows(results)),
        "utf-8",
    )
    write_html(report, [failed(r) for r in results], out / "report.html")


def _fmt(est: dict[str, Any]) -> str:
    if est.get("value") is None:
        return "-"
    if est.get("low") is None:
        return f"{est['value']:.3f}"
    return f"{est['value']:.3f} [{est['low']:.2f}, {est['high']:.2f}]"


def metric_names(report: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for config in report["configs"]:
        for result in config["results"].values():
            names.extend(n for n in result["metrics"] if n not in names)
    return names


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Folio evaluation report", ""]
    lines.append(
        f"seed {report['seed']}, limit {report['limit']}, judge: {report['judge'] or 'none'}"
    )
    lines.append("")
    lines.append("| dataset | questions | answerable | documents | relevance | licence |")
    lines.append("|---|---|---|---|---|---|")
    for d in report["datasets"]:
        lines.append(
            f"| {d['name']} | {d['questions']} | {d['answerable']} | {d['documents']} | "
            f"{d['relevance']} | {d['licence']} |"
        )
    names = metric_names(report)
    for dataset in [d["name"] for d in report["datasets"]]:
        header = " | ".join(c["name"] for c in report["configs"])
        rule = "|---" * (len(report["configs"]) + 1) + "|"
        lines += ["", f"## {dataset}", "", f"| metric (95% CI) | {header} |", rule]
        for name in names:
            cells = []
            for config in report["configs"]:
                metrics = config["results"].get(dataset, {}).get("metrics", {})
                cells.append(_fmt(metrics[name]) if name in metrics else "-")
            if any(c != "-" for c in cells):
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
        for key in LATENCY_KEYS:
            cells = []
            for config in report["configs"]:
                lat = config["results"].get(dataset, {}).get("latency", {}).get(key, {})
                cells.append(
                    f"{lat['p50']:.0f} / {lat['p95']:.0f}" if lat.get("p50") is not None else "-"
                )
            lines.append(f"| {key} p50 / p95 | " + " | ".join(cells) + " |")
        lines += refusal_table(report, dataset)
    lines += attack_markdown(report)
    lines += ["", "## Configurations", ""]
    for config in report["configs"]:
        lines.append(f"- **{config['name']}** ({config['file'] or 'defaults'}): "
                     + ", ".join(f"{k}={v}" for k, v in config["settings"].items()))  # fmt: skip
    return "\n".join(lines) + "\n"


def refusal_table(report: dict[str, Any], dataset: str) -> list[str]:
    """Markdown rows of the refusal trade-off (every 0.1 of the threshold), if there is one."""
    configs = [c for c in report["configs"] if c["results"].get(dataset, {}).get("refusal_curve")]
    if not configs:
        return []
    header = " | ".join(c["name"] for c in configs)
    lines = ["", "Refusal trade-off: unanswerable refused / answerable refused", "",
             f"| refusal_threshold | {header} |", "|---" * (len(configs) + 1) + "|"]  # fmt: skip
    # Configs may add different configured thresholds: align the curves by threshold.
    curves = [{p["threshold"]: p for p in c["results"][dataset]["refusal_curve"]} for c in configs]
    for t in REFUSAL_THRESHOLDS[::2]:  # every 0.1
        cells = [f"{c[t]['unanswerable_refused']:.0%} / {c[t]['answerable_refused']:.0%}"
                 if t in c else "-" for c in curves]  # fmt: skip
        lines.append(f"| {t:.1f} | " + " | ".join(cells) + " |")
    return lines


# --- regression gate --------------------------------------------------------------------------
def check(report: dict[str, Any], baseline: dict[str, Any]) -> list[str]:
    """Metrics below the baseline by more than their tolerance, as readable lines.

    Baseline: {"tolerance": {"default": 0.05, METRIC: x}, "configs": {CONFIG: {DATASET: {METRIC:
    value}}}} or a previous report.json (its values, default tolerance)."""
    tolerance = baseline.get("tolerance", {})
    default = float(tolerance.get("default", 0.05))
    expected = baseline.get("configs", {})
    if isinstance(expected, list):  # a report.json used as the baseline
        expected = {
            c["name"]: {
                d: {k: v["value"] for k, v in r["metrics"].items() if v["value"] is not None}
                for d, r in c["results"].items()
            }
            for c in expected
        }
    actual = {c["name"]: c["results"] for c in report["configs"]}
    problems = []
    for config, datasets in expected.items():
        if config not in actual:
            continue
        for dataset, values in datasets.items():
            if dataset not in actual[config]:
                continue
            metrics = actual[config][dataset]["metrics"]
            for name, want in values.items():
                got = metrics.get(name, {}).get("value")
                tol = float(tolerance.get(name, default))
                if got is None:
                    continue
                lower = name.startswith(LOWER_IS_BETTER)
                worse = got > want + tol if lower else got < want - tol
                if worse:
                    problems.append(
                        f"{config} / {dataset}: {name} = {got:.4f}, baseline {want:.4f} "
                        f"(tolerance {tol:g})"
                    )
    return problems
