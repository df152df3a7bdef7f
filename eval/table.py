"""A compact comparison table from a report.json: one row per configuration.

    python -m eval.table build/study/retrieval/report.json squad:mrr@10 sec10q:ndcg@10 ...

Each column is DATASET:METRIC (a metric with its 95% interval) or DATASET:latency:KEY (p50).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def cell(config: dict[str, Any], column: str) -> str:
    dataset, _, metric = column.partition(":")
    result = config["results"].get(dataset)
    if result is None:
        return "-"
    if metric.startswith("latency:"):
        p50 = result["latency"][metric.split(":", 1)[1]]["p50"]
        return "-" if p50 is None else f"{p50:.0f}"
    est = result["metrics"].get(metric)
    if not est or est["value"] is None:
        return "-"
    if est["low"] is None:
        return f"{est['value']:.3f}"
    return f"{est['value']:.3f} ({est['low']:.2f}-{est['high']:.2f})"


def table(report: dict[str, Any], columns: list[str]) -> str:
    lines = ["| config | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for config in report["configs"]:
        lines.append(f"| {config['name']} | " + " | ".join(cell(config, c) for c in columns) + " |")
    return "\n".join(lines)


def main() -> None:
    report = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
    print(table(report, sys.argv[2:]))


if __name__ == "__main__":
    main()
