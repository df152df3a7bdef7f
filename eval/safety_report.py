"""The attack section of the evaluation report: attack success per kind, per configuration and
per answer mode (report.json "attacks", a table in report.md and report.html).

Besides an attack's own success (eval.safety.attack_succeeded) it counts prompt leaks: shown
answers with our prompt's text, source delimiters or chat-template tokens, whatever the kind.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from eval.runner import QuestionResult


def _tally(rows: Sequence[QuestionResult]) -> dict[str, Any]:
    succeeded = [r for r in rows if r.scores.get("attack_success")]
    leaks = sum(1 for r in rows if r.scores.get("prompt_leak"))
    return {
        "n": len(rows),
        "succeeded": len(succeeded),
        "rate": round(len(succeeded) / len(rows), 4) if rows else None,
        "prompt_leaks": leaks,
        "succeeded_ids": [r.item.id for r in succeeded],
    }


def _by_kind(rows: Sequence[QuestionResult], kinds: list[str]) -> dict[str, Any]:
    return {k: _tally([r for r in rows if r.item.attack == k]) for k in kinds}


def attack_breakdown(
    results: Sequence[QuestionResult], configs: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Attack success per kind for every (configuration, dataset) and per answer mode (all
    configurations with that mode together). None when no question carried an attack."""
    attacked = [r for r in results if r.scores.get("attack_success") is not None]
    if not attacked:
        return None
    kinds = list(dict.fromkeys(str(r.item.attack) for r in attacked))
    settings = {c["name"]: c.get("settings", {}) for c in configs}
    by_config = []
    for config in configs:
        for dataset in dict.fromkeys(r.dataset for r in attacked):
            rows = [r for r in attacked if r.config == config["name"] and r.dataset == dataset]
            if rows:
                by_config.append({
                    "config": config["name"], "dataset": dataset,
                    "answer_mode": settings[config["name"]].get("answer_mode"),
                    "llm_model": settings[config["name"]].get("llm_model"),
                    "prompt": settings[config["name"]].get("prompt"),
                    **_tally(rows), "by_kind": _by_kind(rows, kinds),
                })  # fmt: skip
    by_mode = []
    for mode in dict.fromkeys(settings[r.config].get("answer_mode") for r in attacked):
        rows = [r for r in attacked if settings[r.config].get("answer_mode") == mode]
        names = list(dict.fromkeys(r.config for r in rows))
        by_mode.append({"answer_mode": mode, "configs": names, **_tally(rows),
                        "by_kind": _by_kind(rows, kinds)})  # fmt: skip
    return {"kinds": kinds, "by_config": by_config, "by_mode": by_mode}


def _cell(tally: dict[str, Any]) -> str:
    if not tally["n"]:
        return "-"
    return f"{tally['succeeded']}/{tally['n']} ({100 * tally['rate']:.0f}%)"


def _table(attacks: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    """(per-configuration table, per-mode table) as rows of cells, header row first."""
    kinds = attacks["kinds"]
    tables = []
    for key, label in (("by_config", "config"), ("by_mode", "answer_mode")):
        columns = attacks[key]
        if key == "by_config":
            head = [f"{c['config']} / {c['dataset']} ({c['answer_mode']}, {c['llm_model']})"
                    for c in columns]  # fmt: skip
        else:
            head = [f"{c['answer_mode']} ({', '.join(c['configs'])})" for c in columns]
        rows = [[f"attack kind \\ {label}", *head]]
        rows += [[kind, *(_cell(c["by_kind"][kind]) for c in columns)] for kind in kinds]
        rows.append(["all kinds", *(_cell(c) for c in columns)])
        rows.append(
            ["prompt leaks (any kind)", *(f"{c['prompt_leaks']}/{c['n']}" for c in columns)]
        )
        tables.append(rows)
    return tables[0], tables[1]


def attack_markdown(report: dict[str, Any]) -> list[str]:
    attacks = report.get("attacks")
    if not attacks:
        return []
    lines = ["", "## Attack success by kind and answer mode", "",
             "Attacks that succeeded / attacks (lower is better). A prompt leak is a shown answer "
             "with our prompt's text, delimiters or chat-template tokens."]  # fmt: skip
    for title, rows in zip(("By configuration", "By answer mode"), _table(attacks), strict=True):
        lines += ["", f"{title}:", "", "| " + " | ".join(rows[0]) + " |",
                  "|---" * len(rows[0]) + "|"]  # fmt: skip
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return lines


def attack_html(report: dict[str, Any]) -> str:
    attacks = report.get("attacks")
    if not attacks:
        return ""
    parts = [
        "<h2>Attack success by kind and answer mode</h2>",
        '<p class="muted">attacks that succeeded / attacks (lower is better); a prompt leak is a '
        "shown answer with our prompt's text, delimiters or chat-template tokens</p>",
    ]
    for rows in _table(attacks):
        head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in rows[1:]
        )
        parts.append(f"<table><tr>{head}</tr>{body}</table>")
    return "\n".join(parts)
