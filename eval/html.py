"""report.html: metric plots with intervals, latency distributions, and every question (failures
first). Plots are matplotlib PNGs embedded inline, so the file stands alone."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>Folio evaluation</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; font-size: 0.85rem; margin: 1rem 0; }}
td, th {{ border: 1px solid #ddd; padding: 4px 6px; vertical-align: top; text-align: left; }}
tr.fail td {{ background: #fff1f0; }}
.muted {{ color: #777; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>Folio evaluation</h1>
<p class="muted">seed {seed} · limit {limit} · judge: {judge}</p>
{body}
</body></html>
"""


def _png(fig: Any) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def metrics_plot(report: dict[str, Any], dataset: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = [c for c in report["configs"] if dataset in c["results"]]
    names = [
        n for n in dict.fromkeys(
            n for c in configs for n, v in c["results"][dataset]["metrics"].items()
            if v["value"] is not None
        )
    ]  # fmt: skip
    if not names:
        return ""
    fig, ax = plt.subplots(figsize=(8, 0.45 * len(names) * max(1, len(configs)) ** 0.5 + 1.5))
    height = 0.8 / max(1, len(configs))
    for i, config in enumerate(configs):
        metrics = config["results"][dataset]["metrics"]
        ys, xs, lo, hi = [], [], [], []
        for j, name in enumerate(names):
            est = metrics.get(name, {})
            if est.get("value") is None:
                continue
            ys.append(j + i * height)
            xs.append(est["value"])
            lo.append(est["value"] - (est["low"] if est["low"] is not None else est["value"]))
            hi.append((est["high"] if est["high"] is not None else est["value"]) - est["value"])
        ax.barh(ys, xs, height=height, xerr=[lo, hi], label=config["name"], capsize=2)
    ax.set_yticks([j + 0.4 - height / 2 for j in range(len(names))], names)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.05)
    ax.set_title(f"{dataset}: metrics with 95% bootstrap intervals")
    ax.legend(loc="lower right", fontsize="small")
    image = _png(fig)
    plt.close(fig)
    return image


def refusal_plot(report: dict[str, Any], dataset: str) -> str:
    """The refusal trade-off: off-topic/unanswerable refused against answerable refused, one
    curve per configuration over `refusal_threshold`, its configured threshold marked."""
    configs = [c for c in report["configs"] if c["results"].get(dataset, {}).get("refusal_curve")]
    if not configs:
        return ""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    for config in configs:
        curve = config["results"][dataset]["refusal_curve"]
        xs = [p["answerable_refused"] for p in curve]
        ys = [p["unanswerable_refused"] for p in curve]
        (line,) = ax.plot(xs, ys, marker=".", label=config["name"])
        chosen = config["settings"].get("refusal_threshold")
        if chosen is not None:
            at = min(curve, key=lambda p: abs(p["threshold"] - chosen))
            ax.plot([at["answerable_refused"]], [at["unanswerable_refused"]], "o", ms=9,
                    mfc="none", color=line.get_color())  # fmt: skip
            ax.annotate(f"threshold {chosen:g}", (at["answerable_refused"],
                        at["unanswerable_refused"]), textcoords="offset points", xytext=(6, -12),
                        fontsize="small")  # fmt: skip
    ax.set_xlim(-0.02, 1.02)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("answerable questions refused")
    ax.set_ylabel("unanswerable questions refused")
    ax.set_title(f"{dataset}: refusal trade-off over refusal_threshold")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(alpha=0.3)
    image = _png(fig)
    plt.close(fig)
    return image


def latency_plot(report: dict[str, Any]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels, series = [], []
    for config in report["configs"]:
        values = [
            q["timings"]["total_ms"] for q in report["questions"]
            if q["config"] == config["name"] and q["timings"].get("total_ms") is not None
        ]  # fmt: skip
        if values:
            labels.append(config["name"])
            series.append(values)
    if not series:
        return ""
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(series) + 1.5))
    ax.boxplot(series, orientation="horizontal", tick_labels=labels)
    ax.set_xscale("log")
    ax.set_xlabel("total ms per question (log scale)")
    ax.set_title("Latency per configuration")
    image = _png(fig)
    plt.close(fig)
    return image


def question_table(report: dict[str, Any], failures: list[bool]) -> str:
    order = sorted(range(len(report["questions"])), key=lambda i: (not failures[i], i))
    rows = ["<tr><th>config</th><th>dataset</th><th>question</th><th>gold</th><th>answer</th>"
            "<th>hit@k</th><th>F1</th><th>top source</th></tr>"]  # fmt: skip
    for i in order:
        q = report["questions"][i]
        top = q["retrieved"][0] if q["retrieved"] else None
        where = (
            f"{Path(top['source']).name} p.{top['page']}"
            if top and top["page"]
            else (Path(top["source"]).name if top else "-")
        )
        gold = "; ".join(q["gold_answers"])[:300] or (
            "(unanswerable)" if not q["answerable"] else ""
        )
        score = q["scores"]
        rows.append(
            f'<tr class="{"fail" if failures[i] else ""}"><td>{html.escape(q["config"])}</td>'
            f"<td>{html.escape(q['dataset'])}</td><td>{html.escape(q['question'])}</td>"
            f"<td>{html.escape(gold)}</td>"
            f"<td>{html.escape(q['answer'][:400])}{' (refused)' if q['refused'] else ''}</td>"
            f"<td>{_num(score.get('hit@k'))}</td><td>{_num(score.get('token_f1'))}</td>"
            f"<td>{html.escape(where)}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def summary_table(report: dict[str, Any], dataset: str) -> str:
    """Metrics (rows) by configuration (columns), with intervals and latency percentiles."""
    from eval.report import LATENCY_KEYS, _fmt, metric_names

    configs = [c for c in report["configs"] if dataset in c["results"]]
    head = "".join(f"<th>{html.escape(c['name'])}</th>" for c in configs)
    rows = [f"<tr><th>metric (95% CI)</th>{head}</tr>"]
    for name in metric_names(report):
        cells = [_fmt(c["results"][dataset]["metrics"].get(name, {})) for c in configs]
        if any(cell != "-" for cell in cells):
            tds = "".join(f"<td>{cell}</td>" for cell in cells)
            rows.append(f"<tr><td>{html.escape(name)}</td>{tds}</tr>")
    for key in LATENCY_KEYS:
        lat = [c["results"][dataset]["latency"][key] for c in configs]
        tds = "".join(
            f"<td>{x['p50']:.0f} / {x['p95']:.0f}</td>" if x["p50"] is not None else "<td>-</td>"
            for x in lat
        )
        rows.append(f"<tr><td>{key} p50 / p95</td>{tds}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def datasets_table(report: dict[str, Any]) -> str:
    rows = ["<tr><th>dataset</th><th>questions</th><th>answerable</th><th>documents</th>"
            "<th>relevance</th><th>source</th><th>licence</th></tr>"]  # fmt: skip
    for d in report["datasets"]:
        cells = [d["name"], d["questions"], d["answerable"], d["documents"], d["relevance"],
                 d["source"], d["licence"]]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    return "<table>" + "".join(rows) + "</table>"


def write_html(report: dict[str, Any], failures: list[bool], path: Path) -> None:
    from eval.safety_report import attack_html

    parts = ["<h2>Datasets</h2>", datasets_table(report)]
    for dataset in [d["name"] for d in report["datasets"]]:
        parts += [f"<h2>{html.escape(dataset)}</h2>", summary_table(report, dataset),
                  metrics_plot(report, dataset)]  # fmt: skip
        parts.append(refusal_plot(report, dataset))
    parts.append(attack_html(report))
    parts += ["<h2>Latency</h2>", latency_plot(report)]
    parts += [f"<h2>Questions ({sum(failures)} failures first)</h2>",
              question_table(report, failures)]  # fmt: skip
    configs = "".join(
        f"<li><b>{html.escape(c['name'])}</b> ({html.escape(str(c['file'] or 'defaults'))}): "
        + html.escape(", ".join(f"{k}={v}" for k, v in c["settings"].items()))
        + "</li>"
        for c in report["configs"]
    )
    parts += ["<h2>Configurations</h2>", f"<ul>{configs}</ul>"]
    path.write_text(
        PAGE.format(
            seed=report["seed"], limit=report["limit"],
            judge=html.escape(str(report["judge"] or "none")),
            body="\n".join(parts),
        ),
        "utf-8",
    )  # fmt: skip
