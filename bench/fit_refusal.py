"""Fit the refusal model (retrieval/refusal.py) on one split of SQuAD 2.0 dev, report on another.

    python -m bench.fit_refusal [--per-class 600] [--seed 0] [--work DIR] [--no-write] [--swap]
                                [--committed]

Every other SQuAD article is ingested (the index); the rest are held out, and their answerable
questions are off-topic: the collection cannot answer them, so they must be refused. Articles are
split again for fitting and reporting, so the reported numbers come from articles (in the index
and held out) that the fit never saw. Two one-article collections join the fit, so the model also
sees a tiny collection's feature values. The decision threshold is the one that refuses at most
`--max-refused` of the fit split's answerable questions; the report gives, on the report split,
how many off-topic questions it refuses and how many answerable ones, the whole trade-off curve,
and the cosine-only rule at the same 5% for comparison. With `--sec`, the same numbers on the SEC
10-Q filings: a few filings are ingested, questions about companies not ingested must be refused.

Writes retrieval/refusal_model.json (the committed parameters) and bench/results/fit_refusal.json.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from bench.squad_retrieval import SQUAD
from retrieval.refusal import FEATURES, MODEL_FILE, RefusalModel, load_model

SEC = SQUAD.parents[1] / "sec10q"
SEC_INGESTED = ("2023 Q3 AAPL.pdf", "2023 Q3 NVDA.pdf", "2023 Q3 INTC.pdf", "2023 Q2 AAPL.pdf")
CURVE = tuple(round(0.05 * i, 2) for i in range(1, 20))

Row = dict[str, Any]  # {"features": {...}, "answerable": bool, "split": str, "set": str}


# --- data -------------------------------------------------------------------------------------
def answerable_questions(article: dict[str, Any]) -> list[str]:
    return [
        qa["question"]
        for p in article["paragraphs"]
        for qa in p["qas"]
        if not qa.get("is_impossible") and qa.get("answers")
    ]


def write_articles(articles: list[dict[str, Any]], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for article in articles:
        path = folder / (re.sub(r"[^A-Za-z0-9._-]+", "_", article["title"]) + ".txt")
        path.write_text("\n\n".join(p["context"] for p in article["paragraphs"]), "utf-8")
        paths.append(path)
    return paths


def featurize(
    work: Path, name: str, documents: list[Path], questions: list[tuple[str, bool]]
) -> list[tuple[dict[str, float], bool]]:
    """Ingest the documents into their own collection, then each question's refusal features."""
    from folio.settings import load_settings
    from folio.store import ChromaStore
    from ingest.pipeline import FilesToIndex
    from retrieval.refusal import question_features
    from retrieval.search import QueryToChunks, SearchOptions

    settings = load_settings(data_dir=work / "data", collection=name)
    store = ChromaStore(settings.data_dir)
    report = FilesToIndex(settings, store).run(documents, prune=False)
    print(f"  {name}: {len(documents)} documents ({report.added} added, {report.seconds:.0f}s)")
    retriever = QueryToChunks(settings, store)
    options = SearchOptions.from_settings(settings)
    rows = []
    try:
        for question, answerable in questions:
            hits = retriever.search(question, options)
            rows.append((question_features(retriever, question, hits), answerable))
    finally:
        retriever.close()
    return rows


def squad_rows(path: Path, work: Path, per_class: int, seed: int) -> list[Row]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    inside, outside = data[::2], data[1::2]
    # Fit and report use different articles, on both sides of the index.
    split = {
        "fit": (inside[::2], outside[::2]),
        "report": (inside[1::2], outside[1::2]),
    }
    rng = random.Random(seed)
    documents = write_articles(inside, work / "squad-index")
    rows: list[Row] = []
    big: list[tuple[str, bool, str]] = []
    for name, (ins, outs) in split.items():
        on = rng.sample([q for a in ins for q in answerable_questions(a)], per_class)
        off = rng.sample([q for a in outs for q in answerable_questions(a)], per_class)
        big += [(q, True, name) for q in on] + [(q, False, name) for q in off]
    features = featurize(work, "squad-index", documents, [(q, a) for q, a, _ in big])
    rows += [
        {"features": f, "answerable": a, "split": s, "set": "squad"}
        for (f, a), (_, _, s) in zip(features, big, strict=True)
    ]
    # Tiny collections: one in-index article each; other held-out articles are off-topic.
    for name, (ins, outs) in split.items():
        for n, article in enumerate(ins[:2] if name == "fit" else ins[:1]):
            doc = write_articles([article], work / f"squad-one-{name}-{n}")
            on = rng.sample(answerable_questions(article), min(60, per_class // 4))
            off = rng.sample([q for a in outs for q in answerable_questions(a)], len(on))
            qs = [(q, True) for q in on] + [(q, False) for q in off]
            for f, a in featurize(work, f"squad-one-{name}-{n}", doc, qs):
                rows.append({"features": f, "answerable": a, "split": name, "set": "squad-one"})
    return rows


def sec_rows(folder: Path, work: Path) -> list[Row]:
    """Ingested filings' questions must be answered; questions about companies with no filing
    in the collection must be refused. Questions about an ingested company's other filings are
    left out (they are neither clearly answerable nor clearly off-topic)."""
    docs = folder / "docs"
    every = sorted(p.name for p in docs.glob("*.pdf"))
    ingested = [n for n in every if n in SEC_INGESTED]
    companies = {n.rsplit(" ", 1)[-1].removesuffix(".pdf") for n in ingested}
    questions = []
    with (folder / "qna_data.csv").open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            matched = [n for n in every if fnmatch.fnmatch(n, row["Source Docs"].strip())]
            if matched and all(n in ingested for n in matched):
                questions.append((row["Question"].strip(), True))
            elif matched and not any(c in n for n in matched for c in companies):
                questions.append((row["Question"].strip(), False))
    features = featurize(work, "sec-subset", [docs / n for n in ingested], questions)
    return [
        {"features": f, "answerable": a, "split": "report", "set": "sec10q"} for f, a in features
    ]


# --- model ------------------------------------------------------------------------------------
def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> tuple[np.ndarray, float]:
    """Newton's method (IRLS) with an L2 penalty on the weights; x is standardised."""
    design = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(design.shape[1])
    penalty = np.eye(design.shape[1]) * l2
    penalty[-1, -1] = 0.0
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -60, 60)))
        gradient = design.T @ (p - y) + penalty @ w
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hessian, gradient)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def fit(rows: list[Row], max_refused: float, about: str) -> RefusalModel:
    train = [r for r in rows if r["split"] == "fit"]
    x = np.array([[r["features"][f] for f in FEATURES] for r in train])
    y = np.array([1.0 if r["answerable"] else 0.0 for r in train])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    weights, bias = fit_logistic((x - mean) / scale, y)
    model = RefusalModel(tuple(FEATURES), tuple(mean), tuple(scale), tuple(weights), bias, 0.5,
                         about)  # fmt: skip
    # The threshold: refuse at most `max_refused` of the fit split's answerable questions
    # (in the multi-article index, the case the target is set for).
    on = sorted(
        model.probability(r["features"]) for r in train if r["answerable"] and r["set"] == "squad"
    )
    threshold = on[int(len(on) * max_refused)] if on else 0.5
    return RefusalModel(model.features, model.mean, model.scale, model.weights, model.bias,
                        round(float(threshold) - 1e-4, 4), about)  # fmt: skip


def rates(scores: list[tuple[float, bool]], threshold: float) -> dict[str, float]:
    """Refused shares at a threshold (refuse when the score is below it)."""
    on = [s for s, a in scores if a]
    off = [s for s, a in scores if not a]
    return {
        "off_topic_refused": round(sum(s < threshold for s in off) / max(1, len(off)), 3),
        "answerable_refused": round(sum(s < threshold for s in on) / max(1, len(on)), 3),
    }


def at_answerable_rate(scores: list[tuple[float, bool]], rate: float) -> dict[str, float]:
    """The best threshold chosen in hindsight on these very questions (an upper bound)."""
    on = sorted(s for s, a in scores if a)
    threshold = on[int(len(on) * rate)] if on else 0.0
    return {"threshold": round(threshold, 4), **rates(scores, threshold)}


def report(rows: list[Row], model: RefusalModel, cosine_threshold: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in sorted({r["set"] for r in rows}):
        for split in ("fit", "report"):
            part = [r for r in rows if r["set"] == name and r["split"] == split]
            if not part:
                continue
            scored = [(model.probability(r["features"]), r["answerable"]) for r in part]
            cosine = [(r["features"]["dense_top"], r["answerable"]) for r in part]
            out[f"{name}/{split}"] = {
                "n_answerable": sum(r["answerable"] for r in part),
                "n_off_topic": sum(not r["answerable"] for r in part),
                "model_at_threshold": {"threshold": model.threshold,
                                       **rates(scored, model.threshold)},
                "model_at_5pct_hindsight": at_answerable_rate(scored, 0.05),
                "cosine_at_fit_5pct": {"threshold": cosine_threshold,
                                       **rates(cosine, cosine_threshold)},
                "cosine_at_5pct_hindsight": at_answerable_rate(cosine, 0.05),
                "curve": [
                    {"threshold": t, **rates(scored, t)}
                    for t in sorted({*CURVE, model.threshold})
                ],
                # The cosine-only rule's curve, over the same questions, for the plot.
                "cosine_curve": [
                    {"threshold": t, **rates(cosine, t)} for t in np.linspace(-0.1, 0.9, 101)
                ],
            }  # fmt: skip
    return out


def plot(results: dict[str, Any], threshold: float, path: Path) -> None:
    """The trade-off curves of the report split: the model's against the cosine-only rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in results if n.endswith("/report")]
    fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 4.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for key, label in (("curve", "refusal model"), ("cosine_curve", "best cosine only")):
            xs = [p["answerable_refused"] for p in results[name][key]]
            ys = [p["off_topic_refused"] for p in results[name][key]]
            ax.plot(xs, ys, marker=".", ms=3, label=label)
        at = results[name]["model_at_threshold"]
        ax.plot([at["answerable_refused"]], [at["off_topic_refused"]], "o", mfc="none", ms=10,
                color="black", label=f"threshold {threshold:g}")  # fmt: skip
        ax.axvline(0.05, color="grey", lw=0.8, ls="--")
        ax.axhline(0.9, color="grey", lw=0.8, ls="--")
        ax.set_xlim(-0.01, 0.4)
        ax.set_ylim(0, 1.01)
        ax.set_title(name)
        ax.set_xlabel("answerable questions refused")
        ax.set_ylabel("off-topic questions refused")
        ax.legend(loc="lower right", fontsize="small")
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--squad", type=Path, default=SQUAD)
    parser.add_argument("--sec", type=Path, default=SEC)
    parser.add_argument("--per-class", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-refused", type=float, default=0.04)
    parser.add_argument("--work", type=Path, default=None, help="reuse this folder's indexes")
    parser.add_argument("--out", type=Path, default=MODEL_FILE)
    parser.add_argument("--results", type=Path, default=Path("bench/results/fit_refusal.json"))
    parser.add_argument("--no-write", action="store_true", help="report only, keep the model")
    parser.add_argument(
        "--swap", action="store_true", help="fit on the report split and report on the fit one"
    )
    parser.add_argument(
        "--committed",
        action="store_true",
        help="fit nothing: report the committed model on these features (does it still hold "
        "after an embedder change? FOLIO_EMBEDDING_BACKEND=onnx-int8 ... --committed)",
    )
    args = parser.parse_args()
    if not args.squad.is_file():
        print(f"skipped: {args.squad} not found")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        cache = work / f"features-{args.per_class}-{args.seed}.json"
        if cache.is_file():
            rows = json.loads(cache.read_text())
        else:
            rows = squad_rows(args.squad, work, args.per_class, args.seed)
            if (args.sec / "qna_data.csv").is_file():
                rows += sec_rows(args.sec, work)
            cache.write_text(json.dumps(rows))
    command = "python -m bench.fit_refusal " + (
        f"--per-class {args.per_class} --seed {args.seed} --max-refused {args.max_refused}"
    )
    about = (
        f"P(answerable) from retrieval features; fitted by `{command}` on SQuAD 2.0 dev "
        "(every other article ingested, held-out articles' questions as off-topic)"
    )
    if args.swap:  # the other direction of a two-fold check (SEC stays report-only)
        flip = {"fit": "report", "report": "fit"}
        rows = [{**r, "split": flip[r["split"]]} if r["set"] != "sec10q" else r for r in rows]
    model = load_model(args.out) if args.committed else fit(rows, args.max_refused, about)
    on = sorted(
        r["features"]["dense_top"]
        for r in rows
        if r["split"] == "fit" and r["set"] == "squad" and r["answerable"]
    )
    cosine_threshold = round(on[int(len(on) * args.max_refused)], 4)
    results: dict[str, Any] = {"command": command, "model": model.to_json(),
               "results": report(rows, model, cosine_threshold)}  # fmt: skip
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=2))
    plot(results["results"], model.threshold, args.results.with_suffix(".png"))
    if not args.no_write and not args.committed:
        args.out.write_text(json.dumps(model.to_json(), indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
