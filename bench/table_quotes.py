"""Do quotes carry the figure? SEC 10-Q questions whose gold answer holds figures, asked in quote
mode over their filings; the share whose quote contains a gold figure.

    python bench/table_quotes.py quotes [--filings "2023 Q3"] [--out FILE]
    python bench/table_quotes.py extractors [--filings "2023 Q3"]   # pypdf layout vs pdfplumber
    python bench/table_quotes.py values --work DIR   # 5 direct value questions, index of `quotes`

`quotes` drives the `folio` CLI in subprocesses, so the code measured is whatever `folio` the
environment imports: run it with PYTHONPATH pointing at another checkout to measure that one.
Refusal is switched off (FOLIO_REFUSAL_THRESHOLD=0): this measures the quote, not the refusal.

Gold figures: the numbers in the gold Answer, normalised (no `$`, no thousands commas, no
trailing `.0`), leaving out years, days of dates and single digits. Filings report in millions
while the answers often say billions: a figure followed by "billion" also matches the amount in
millions that rounds to it (`$14.51 billion` matches `14,514`), and the other way round.
It skips cleanly when ../shared/datasets is absent.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO.parent / "shared" / "datasets" / "sec10q"
_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
)
_FIGURE = re.compile(
    r"(?<![\w.])(" + _MONTH + r"\s+)?\$?\s?(\d[\d,]*(?:\.\d+)?)(?![-A-Za-z\d])"
    r"\s*(%|percent)?(\s*(?:billion|million))?",
    re.IGNORECASE,
)


def figures(text: str) -> list[tuple[float, int, str]]:
    """(value, decimals, scale) of each figure; scale is 'billion', 'million' or ''."""
    found = []
    for match in _FIGURE.finditer(text):
        month, number, percent, scale = match.groups()
        plain = number.replace(",", "").rstrip(".")
        if month or not plain:
            continue  # a day of a date
        if re.fullmatch(r"(?:19|20)\d\d", plain) and not percent:
            continue  # a year
        if re.fullmatch(r"\d", plain) and not percent:
            continue
        value = float(plain)
        decimals = len(plain.split(".")[1].rstrip("0")) if "." in plain else 0
        found.append((value, decimals, (scale or "").strip().lower()))
    return found


def _normal(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


def quote_has_gold(quote: str, gold: list[tuple[float, int, str]]) -> bool:
    mine = figures(quote)
    for g_value, g_dec, g_scale in gold:
        for q_value, q_dec, q_scale in mine:
            if _normal(g_value, g_dec) == _normal(q_value, g_dec) and q_dec <= max(g_dec, 2):
                return True
            # billions in the answer, millions in the table (or the reverse)
            if g_scale == "billion" != q_scale and _normal(q_value / 1000, g_dec) == _normal(
                g_value, g_dec
            ):
                return True
            if q_scale == "billion" != g_scale and _normal(g_value / 1000, q_dec) == _normal(
                q_value, q_dec
            ):
                return True
    return False


def questions(filings: list[Path]) -> list[dict[str, object]]:
    names = [f.name for f in filings]
    chosen = []
    with (DATASET / "qna_data.csv").open(encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            matches = [n for n in names if fnmatch.fnmatch(n, row["Source Docs"].strip())]
            all_matches = [
                p.name for p in (DATASET / "docs").glob("*.pdf")
                if fnmatch.fnmatch(p.name, row["Source Docs"].strip())
            ]  # fmt: skip
            gold = figures(row["Answer"])
            if len(matches) == 1 and len(all_matches) == 1 and gold:
                chosen.append({
                    "question": row["Question"], "filing": matches[0], "gold": gold,
                    "chunk_type": row["Source Chunk Type"],
                })  # fmt: skip
    return chosen


def folio(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        # Not from the checkout's folder: `-m` would import the modules found there first.
        [sys.executable, "-m", "folio", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
    )


def measure_quotes(filings: list[Path], out: Path | None, work: Path | None) -> None:
    items = questions(filings)
    work = work or Path(tempfile.mkdtemp(prefix="table-quotes-"))
    docs = work / "docs"
    docs.mkdir(exist_ok=True)
    for filing in filings:
        if not (docs / filing.name).exists():
            (docs / filing.name).symlink_to(filing)
    env = {
        **os.environ,
        "FOLIO_DATA_DIR": str(work / "data"),
        "FOLIO_REFUSAL_THRESHOLD": "0",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    started = time.perf_counter()
    ingested = folio(["ingest", str(docs), "--json"], env)
    ingest_s = time.perf_counter() - started
    if ingested.returncode != 0:
        sys.exit(f"ingest failed: {ingested.stderr[-2000:]}")
    started = time.perf_counter()
    # Mixed: every filing in one collection, as a user would ask. Own filing: the question asked
    # with --source set to its filing, so finding the document (issue part 5) is taken out.
    mixed = ask(items, [], work / "mixed.jsonl", env)
    own: list[dict[str, object]] = []
    for filing in filings:
        group = [i for i in items if i["filing"] == filing.name]
        own += ask(group, ["--source", f"*{filing.name}"], work / "own.jsonl", env) if group else []
    by_question = {str(r["question"]): r for r in own}
    own = [by_question[str(i["question"])] for i in items]
    summary = {
        "filings": [f.name for f in filings],
        "mixed_collection": score(mixed),
        "own_filing": score(own),
        "ingest_s": round(ingest_s, 1),
        "ask_s": round(time.perf_counter() - started, 1),
        "code": subprocess.run(
            [sys.executable, "-c", "import ingest; print(ingest.__file__)"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tempfile.gettempdir(),
        ).stdout.strip(),
    }
    print(json.dumps(summary, indent=2))
    if out is not None:
        out.write_text(json.dumps({"summary": summary, "rows": mixed, "own": own}, indent=1))


def ask(
    items: list[dict[str, object]], extra: list[str], batch: Path, env: dict[str, str]
) -> list[dict[str, object]]:
    """Quote-mode answers to the items, scored."""
    batch.write_text("".join(json.dumps({"question": i["question"]}) + "\n" for i in items))
    asked = folio(["ask", "--batch", str(batch), "--json", "--answer-mode", "quote", *extra], env)
    answers = [json.loads(line) for line in asked.stdout.splitlines() if line.strip()]
    if len(answers) != len(items):
        sys.exit(f"expected {len(items)} answers, got {len(answers)}: {asked.stderr[-2000:]}")
    rows = []
    for item, answer in zip(items, answers, strict=True):
        quote = answer.get("quote") or {}
        gold = item["gold"]
        assert isinstance(gold, list)
        rows.append({
            "question": item["question"], "filing": item["filing"],
            "quote": quote.get("text", ""), "chunk_type": item["chunk_type"],
            "right_filing": str(quote.get("source", "")).endswith(str(item["filing"])),
            "table": quote.get("table"),
            "has_gold_figure": quote_has_gold(quote.get("text", ""), gold),
        })  # fmt: skip
    return rows


WALL = 8  # a quote with more figures than this is a run of table cells, not an answer


def score(rows: list[dict[str, object]]) -> dict[str, object]:
    """Shares of quotes holding a gold figure: all, without walls of numbers, and by the gold
    chunk type of the question (Table or Text)."""

    def share(subset: list[dict[str, object]], focused: bool = False) -> str:
        good = [
            r for r in subset
            if r["has_gold_figure"] and (not focused or len(figures(str(r["quote"]))) <= WALL)
        ]  # fmt: skip
        return f"{len(good)}/{len(subset)} = {len(good) / max(1, len(subset)):.3f}"

    tables = [r for r in rows if r.get("chunk_type") == "Table"]
    return {
        "questions": len(rows),
        "quote_has_gold_figure": share(rows),
        "focused_quote_has_gold_figure": share(rows, focused=True),
        "table_questions_quote_has_gold_figure": share(tables),
        "table_questions_focused": share(tables, focused=True),
        "quote_from_right_filing": sum(bool(r["right_filing"]) for r in rows),
        "table_quotes": sum(bool(r["table"]) for r in rows),
    }


def rescore(result: Path) -> None:
    """Score a saved run again (after a change of the scoring rules)."""
    data = json.loads(result.read_text())
    kinds = {}
    with (DATASET / "qna_data.csv").open(encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            kinds[row["Question"]] = (row["Source Chunk Type"], figures(row["Answer"]))
    scores = {}
    for key in ("rows", "own"):
        for row in data.get(key, []):
            row["chunk_type"], gold = kinds[row["question"]]
            row["has_gold_figure"] = quote_has_gold(row["quote"], gold)
        scores[key] = score(data.get(key, []))
    print(json.dumps(scores, indent=2))


# Direct value questions written for this check (the example and its kind), with the
# figure each filing's table states. All five filings in one collection.
VALUE_QUESTIONS = [
    ("What was Apple's total net sales in the three months ended July 1, 2023?", "81,797"),
    ("What was NVIDIA's Data Center revenue in the three months ended October 29, 2023?",
     "14,514"),
    ("What was Microsoft's More Personal Computing revenue in the three months ended September "
     "30, 2023?", "13,666"),
    ("What were Amazon's AWS net sales in the three months ended September 30, 2023?", "23,059"),
    ("What was Intel's total revenue in the three months ended September 30, 2023?", "14,158"),
]  # fmt: skip


def measure_value_questions(work: Path) -> None:
    env = {**os.environ, "FOLIO_DATA_DIR": str(work / "data"), "FOLIO_REFUSAL_THRESHOLD": "0"}
    batch = work / "values.jsonl"
    batch.write_text("".join(json.dumps({"question": q}) + "\n" for q, _ in VALUE_QUESTIONS))
    asked = folio(["ask", "--batch", str(batch), "--json", "--answer-mode", "quote"], env)
    answers = [json.loads(line) for line in asked.stdout.splitlines() if line.strip()]
    right = 0
    for (question, figure), answer in zip(VALUE_QUESTIONS, answers, strict=True):
        quote = answer.get("quote") or {}
        ok = figure in quote.get("text", "") and len(figures(quote.get("text", ""))) <= WALL
        right += ok
        print(json.dumps({"question": question, "figure": figure, "ok": ok,
                          "quote": quote.get("text"), "page": quote.get("page"),
                          "source": Path(str(quote.get("source"))).name}))  # fmt: skip
    print(f"value questions whose quote holds the figure: {right}/{len(VALUE_QUESTIONS)}")


def measure_extractors(filings: list[Path]) -> None:
    """Per page: seconds; tables found; body rows with a label and a value on one row; tables
    whose column headers were recovered. pdfplumber is optional (not a dependency)."""
    from pypdf import PdfReader

    from ingest.loaders import pdf_limits
    from ingest.tables import find_tables, layout_to_text

    pages = rows = labelled = tables = headed = 0
    seconds = 0.0
    for filing in filings:
        with pdf_limits():
            reader = PdfReader(str(filing))
            for page in reader.pages:
                started = time.perf_counter()
                text = layout_to_text(page.extract_text(extraction_mode="layout"))
                seconds += time.perf_counter() - started
                pages += 1
                for table in find_tables(text):
                    tables += 1
                    headed += bool(table.header)
                    for cells in table.rows:
                        if len([c for c in cells[1:] if c.text]):
                            rows += 1
                            labelled += bool(cells[0].text)
    print(json.dumps({"extractor": "pypdf layout + ingest.tables", "pages": pages,
                      "s_per_page": round(seconds / pages, 3), "tables": tables,
                      "tables_with_headers": headed, "value_rows": rows,
                      "value_rows_with_label": labelled}))  # fmt: skip
    try:
        import pdfplumber
    except ImportError:
        print("pdfplumber is not installed: pip install pdfplumber to compare")
        return
    pages = rows = labelled = tables = headed = 0
    seconds = 0.0
    number = re.compile(r"^\$?\s?\(?[\d,.]+\)?%?$")
    for filing in filings:
        with pdfplumber.open(str(filing)) as pdf:
            for plumber_page in pdf.pages:
                started = time.perf_counter()
                found = [t.extract() for t in plumber_page.find_tables()]
                seconds += time.perf_counter() - started
                pages += 1
                for grid in found:
                    tables += 1
                    first = [c or "" for c in grid[0]] if grid else []
                    # headers: a first row of text (not numbers) over the value columns
                    headed += bool(first[1:]) and any(
                        c.strip() and not number.match(c.strip()) for c in first[1:]
                    )
                    for raw in grid:
                        texts = [(c or "").strip() for c in raw]
                        if any(number.match(c) for c in texts[1:] if c):
                            rows += 1
                            labelled += bool(texts[0]) and not number.match(texts[0])
                plumber_page.close()
    print(json.dumps({"extractor": "pdfplumber find_tables (default)", "pages": pages,
                      "s_per_page": round(seconds / pages, 3), "tables": tables,
                      "tables_with_headers": headed, "value_rows": rows,
                      "value_rows_with_label": labelled}))  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["quotes", "extractors", "rescore", "values"])
    parser.add_argument("--filings", default="2023 Q3", help="file names containing this")
    parser.add_argument("--out", type=Path, help="quotes: where to save; rescore: the saved run")
    parser.add_argument("--work", type=Path, help="reuse this folder's index (same code only)")
    args = parser.parse_args()
    if not DATASET.is_dir():
        print(f"skipped: {DATASET} is absent (the SEC 10-Q set sits beside the checkout)")
        return
    filings = sorted(p for p in (DATASET / "docs").glob("*.pdf") if args.filings in p.name)
    if args.what == "quotes":
        measure_quotes(filings, args.out, args.work)
    elif args.what == "rescore":
        rescore(args.out)
    elif args.what == "values":  # over an index made by `quotes` (--work)
        measure_value_questions(args.work)
    else:
        measure_extractors(filings)


if __name__ == "__main__":
    main()
