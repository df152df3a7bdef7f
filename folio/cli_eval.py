"""`folio eval`: score configurations on datasets and write report.json, report.md and
report.html; `--check BASELINE.json` turns it into a regression gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from folio.cli import _State, app, fail, settings_from, user_errors

DEFAULT_DATASETS = ("gold", "squad", "sec10q", "safety")


def shared_datasets() -> Path:
    """../shared/datasets beside the checkout, unless FOLIO_SHARED_DATASETS says otherwise."""
    import os

    configured = os.environ.get("FOLIO_SHARED_DATASETS")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[2] / "shared" / "datasets"


@app.command("eval")
def eval_command(
    dataset: Annotated[
        list[str] | None,
        typer.Option(
            "--dataset",
            "-d",
            help="gold, squad, sec10q, safety, followups, or a .json (SQuAD), "
            ".csv (SEC 10-Q) or .jsonl file. Default: all that are present. safety runs two "
            "attacks of each kind; safety:N, N of each kind; safety:all, the whole suite.",
        ),
    ] = None,
    config: Annotated[
        list[Path] | None,
        typer.Option(
            "--config",
            "-c",
            help="A settings YAML per configuration to compare.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", min=1, help="Questions per dataset.")
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="Sampling and bootstrap seed.")] = 0,
    out: Annotated[Path, typer.Option("--out", "-o", help="Report folder.")] = Path("build/eval"),
    check: Annotated[
        Path | None,
        typer.Option(
            "--check",
            help="Baseline JSON: exit 1 when a metric falls below it.",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    judge: Annotated[
        str | None,
        typer.Option("--judge", help="Judge model: a GGUF path/name or http://host:port[#model]."),
    ] = None,
) -> None:
    """Evaluate retrieval, answers, refusal, citations, safety and latency; compare configs."""
    from eval.datasets import DatasetError, load_dataset
    from eval.judge import make_judge
    from eval.report import build_report, write_reports
    from eval.report import check as check_baseline
    from eval.runner import EvalConfig, EvalRunner

    base = settings_from(None)
    configs = [
        EvalConfig(path.stem, settings_from(path), str(path)) for path in (config or [])
    ] or [EvalConfig("defaults", base, str(_State.config) if _State.config else None)]
    if len({c.name for c in configs}) != len(configs):
        fail("two --config files have the same name; rename one", 2)
    shared = shared_datasets()
    specs = list(dataset or DEFAULT_DATASETS)
    work = out / "work"
    datasets = []
    for spec in specs:
        try:
            datasets.append(load_dataset(spec, work / "datasets", shared, limit, seed))
        except DatasetError as exc:
            if dataset:  # asked for by name: an error
                fail(str(exc), 2)
            typer.echo(f"skipped dataset {spec}: {exc}", err=True)
    log = lambda message: typer.echo(message, err=True)  # noqa: E731
    with user_errors():
        runner = EvalRunner(
            work / "index", seed, make_judge(judge, base) if judge else None, log=log
        )
        results = []
        for data in datasets:
            for cfg in configs:
                log(f"{cfg.name} / {data.name}: {len(data.items)} questions")
                results.extend(runner.run(cfg, data))
    report = build_report(
        results, [c.describe() for c in configs], [d.describe() for d in datasets],
        seed, limit, judge, runner.ingest_seconds,
    )  # fmt: skip
    write_reports(report, results, out)
    typer.echo((out / "report.md").read_text(encoding="utf-8"))
    typer.echo(f"Reports: {out / 'report.json'}, {out / 'report.md'}, {out / 'report.html'}")
    if check is not None:
        problems = check_baseline(report, json.loads(check.read_text(encoding="utf-8")))
        for problem in problems:
            typer.echo(f"REGRESSION: {problem}", err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo(f"No metric fell below {check}.", err=True)
