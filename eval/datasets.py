"""Evaluation datasets: questions, gold answers and gold evidence, plus the documents they need.

Formats: SQuAD JSON (v1 and v2), the SEC 10-Q CSV (document-level gold from a glob), and a generic
JSONL (see README "Evaluation datasets"). Built-in names: `gold` (Folio's own set over the bundled
samples), `squad` and `sec10q` (slices of ../shared/datasets), `safety` (prompt-injection suite).
"""

from __future__ import annotations

import csv
import fnmatch
import functools
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EVAL_DIR = Path(__file__).resolve().parent
GOLD_SET = EVAL_DIR / "gold" / "folio-guide.jsonl"


class DatasetError(ValueError):
    """A dataset cannot be loaded; the message names the file and the reason."""


@dataclass(frozen=True)
class Evidence:
    """Where the answer is: a document (path, file name or glob), optionally one page."""

    source: str
    page: int | None = None

    def matches(self, path: str, page: int | None) -> bool:
        name = path.rsplit("/", 1)[-1]
        same_doc = (
            path == self.source
            or path.endswith("/" + self.source.lstrip("/"))
            or fnmatch.fnmatch(name, self.source)
            or fnmatch.fnmatch(path, self.source)
        )
        return same_doc and (self.page is None or page == self.page)

    def to_json(self) -> dict[str, Any]:
        return {"source": self.source, "page": self.page}


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answers: tuple[str, ...]
    answerable: bool
    evidence: tuple[Evidence, ...]
    # Safety items: the attack kind and the marker whose presence means the attack worked.
    attack: str | None = None
    payload: str | None = None
    # Follow-up items: the earlier questions of the conversation, oldest first.
    history: tuple[str, ...] = ()


@dataclass
class EvalDataset:
    name: str
    items: list[EvalItem]
    documents: list[Path]
    # "answer": a chunk is relevant when it is in a gold document and contains a gold answer
    # (pages, when given, must match too); "document": being in a gold document is enough.
    relevance: str = "answer"
    source: str = ""
    licence: str = ""
    notes: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "licence": self.licence,
            "relevance": self.relevance,
            "questions": len(self.items),
            "answerable": sum(1 for i in self.items if i.answerable),
            "documents": len(self.documents),
            "notes": self.notes,
        }


def _safe_name(title: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", title).strip("._")[:120] or "untitled"


def _sample(items: list[EvalItem], limit: int | None, seed: int) -> list[EvalItem]:
    if limit is None or limit >= len(items):
        return items
    return random.Random(seed).sample(items, limit)


# --- SQuAD ---------------------------------------------------------------------------------------
def load_squad(
    path: Path, work_dir: Path, limit: int | None, seed: int, articles: int | None = None
) -> EvalDataset:
    """SQuAD v1/v2 JSON. Each article becomes one text document; `articles` picks a seeded slice
    of them (the questions come from those articles only). v2's unanswerable questions test
    refusal."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))["data"]
        if not isinstance(data, list):
            raise ValueError("'data' is not a list of articles")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DatasetError(f"{path}: not SQuAD JSON ({exc.__class__.__name__}: {exc})") from None
    if articles is not None and articles < len(data):
        data = random.Random(seed).sample(data, articles)
    folder = work_dir / f"squad-{path.stem}"
    folder.mkdir(parents=True, exist_ok=True)
    documents, items = [], []
    for article in data:
        name = f"{_safe_name(article['title'])}.txt"
        text = "\n\n".join(p["context"] for p in article["paragraphs"])
        doc = folder / name
        if not doc.exists() or doc.read_text(encoding="utf-8") != text:
            doc.write_text(text, encoding="utf-8")
        documents.append(doc)
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", [])))
                answerable = not qa.get("is_impossible", False) and bool(answers)
                items.append(
                    EvalItem(
                        id=str(qa["id"]),
                        question=qa["question"],
                        answers=answers if answerable else (),
                        answerable=answerable,
                        evidence=(Evidence(name),) if answerable else (),
                    )
                )
    return EvalDataset(
        name="squad",
        items=_sample(items, limit, seed),
        documents=documents,
        relevance="answer",
        source=str(path),
        licence="CC BY-SA 4.0 (SQuAD 2.0, Wikipedia text)",
        notes=[f"{len(documents)} articles as documents (seeded slice)"] if articles else [],
    )


# --- SEC 10-Q ------------------------------------------------------------------------------------
def load_sec10q(
    folder: Path, limit: int | None, seed: int, documents_glob: str | None = None
) -> EvalDataset:
    """docugami's SEC 10-Q set: qna_data.csv + docs/*.pdf. Gold is document-level (the glob).
    `documents_glob` narrows the PDFs (and keeps only questions answerable from them)."""
    csv_path, docs_dir = folder / "qna_data.csv", folder / "docs"
    if not csv_path.is_file() or not docs_dir.is_dir():
        raise DatasetError(f"{folder}: expected qna_data.csv and docs/")
    pdfs = sorted(docs_dir.glob("*.pdf"))
    if documents_glob:
        pdfs = [p for p in pdfs if fnmatch.fnmatch(p.name, documents_glob)]
    names = {p.name for p in pdfs}
    items = []
    with csv_path.open(encoding="utf-8-sig", newline="") as handle:
        for n, row in enumerate(csv.DictReader(handle), start=1):
            pattern = row["Source Docs"].strip()
            matched = sorted(name for name in names if fnmatch.fnmatch(name, pattern))
            every = [p.name for p in docs_dir.glob("*.pdf") if fnmatch.fnmatch(p.name, pattern)]
            if not matched or len(matched) != len(every):
                continue  # its gold documents are not all in this slice
            items.append(
                EvalItem(
                    id=f"sec-{n:03d}",
                    question=row["Question"].strip(),
                    answers=(row["Answer"].strip(),),
                    answerable=True,
                    evidence=tuple(Evidence(name) for name in matched),
                )
            )
    return EvalDataset(
        name="sec10q",
        items=_sample(items, limit, seed),
        documents=pdfs,
        relevance="document",
        source=str(folder),
        licence="MIT (docugami KG-RAG-datasets)",
        notes=["gold answers are long-form, so EM/F1 are low by construction"],
    )


# --- generic JSONL -------------------------------------------------------------------------------
def load_jsonl(
    path: Path,
    limit: int | None,
    seed: int,
    samples_dir: Path | None = None,
    shared: Path | None = None,
    work_dir: Path | None = None,
) -> EvalDataset:
    """One question per line: {question, answers, evidence: [{source, page?}], answerable?, id?,
    history?: [earlier questions]}. An optional first line {"dataset": NAME, "documents": [paths,
    relative to the file]} names the documents; without it they are the evidence sources that
    exist as files. "@samples" stands for Folio's bundled sample documents, "@sec10q:FILE" for a
    filing of ../shared/datasets/sec10q/docs and "@squad:TITLE" for a SQuAD 2.0 dev article
    (written as TITLE.txt under work_dir)."""
    try:
        lines = [
            json.loads(line)
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: not JSON lines ({exc})") from None
    header: dict[str, Any] = {}
    if lines and "question" not in lines[0]:
        header = lines.pop(0)
    items, documents = [], []
    for n, row in enumerate(lines, start=1):
        if "question" not in row:
            raise DatasetError(f"{path}: line {n} has no 'question'")
        answers = tuple(str(a) for a in row.get("answers") or ())
        evidence = tuple(
            Evidence(str(e["source"]), int(e["page"]) if e.get("page") is not None else None)
            for e in row.get("evidence") or ()
        )
        answerable = row.get("answerable")
        items.append(
            EvalItem(
                id=str(row.get("id") or f"{path.stem}-{n}"),
                question=str(row["question"]),
                answers=answers,
                answerable=bool(answers or evidence) if answerable is None else bool(answerable),
                evidence=evidence,
                attack=row.get("attack"),
                payload=row.get("payload"),
                history=tuple(str(q) for q in row.get("history") or ()),
            )
        )
    for entry in header.get("documents", []):
        if entry == "@samples":
            from folio.samples import build_samples

            documents.extend(build_samples(samples_dir or path.parent / "samples"))
            continue
        if entry.startswith(("@sec10q:", "@squad:")):
            documents.append(_shared_document(entry, shared, work_dir or path.parent / "work"))
            continue
        doc = (path.parent / entry).resolve()
        if not doc.exists():
            raise DatasetError(f"{path}: document {entry} not found")
        documents.append(doc)
    if not header.get("documents"):
        documents = sorted(
            {Path(e.source) for i in items for e in i.evidence if Path(e.source).is_file()}
        )
    if not documents:
        raise DatasetError(f"{path}: names no documents that exist")
    return EvalDataset(
        name=str(header.get("dataset") or path.stem),
        items=_sample(items, limit, seed),
        documents=documents,
        relevance=str(header.get("relevance") or "answer"),
        source=str(path),
        licence=str(header.get("licence") or ""),
        notes=[str(header["description"])] if header.get("description") else [],
    )


def _shared_document(entry: str, shared: Path | None, work_dir: Path) -> Path:
    """A document of ../shared/datasets named by a JSONL header ("@sec10q:FILE", "@squad:T")."""
    kind, _, name = entry.partition(":")
    if shared is None or not shared.is_dir():
        raise DatasetError(f"{entry}: needs ../shared/datasets, which is not there")
    if kind == "@sec10q":
        pdf = shared / "sec10q" / "docs" / name
        if not pdf.is_file():
            raise DatasetError(f"{pdf}: not found")
        return pdf
    squad = shared / "squad2-dev" / "dev-v2.0.json"
    if not squad.is_file():
        raise DatasetError(f"{squad}: SQuAD 2.0 dev is not there")
    articles = _squad_articles(squad)
    if name not in articles:
        raise DatasetError(f"{entry}: no such SQuAD article")
    doc = work_dir / "followups" / f"{_safe_name(name)}.txt"
    doc.parent.mkdir(parents=True, exist_ok=True)
    if not doc.exists() or doc.read_text(encoding="utf-8") != articles[name]:
        doc.write_text(articles[name], encoding="utf-8")
    return doc


@functools.lru_cache(maxsize=2)
def _squad_articles(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    return {a["title"]: "\n\n".join(p["context"] for p in a["paragraphs"]) for a in data}


FOLLOWUP_PARTS = ("samples", "sec10q", "squad")  # eval/followups/<part>.jsonl


def load_followups(work_dir: Path, shared: Path, limit: int | None, seed: int) -> EvalDataset:
    """The follow-up suite: every part in one collection (look-alike documents side by side).
    The SEC and SQuAD parts need ../shared/datasets and are skipped, with a note, without it."""
    items: list[EvalItem] = []
    documents: list[Path] = []
    notes = ["conversations of 2-3 turns; evidence is the last turn's"]
    for part in FOLLOWUP_PARTS:
        try:
            loaded = load_jsonl(
                EVAL_DIR / "followups" / f"{part}.jsonl", None, seed,
                samples_dir=work_dir / "samples", shared=shared, work_dir=work_dir,
            )  # fmt: skip
        except DatasetError as exc:
            if part == "samples":
                raise
            notes.append(f"part {part} skipped: {exc}")
            continue
        items.extend(loaded.items)
        documents.extend(d for d in loaded.documents if d not in documents)
    return EvalDataset(
        name="followups",
        items=_sample(items, limit, seed),
        documents=documents,
        relevance="answer",
        source=str(EVAL_DIR / "followups"),
        licence="own text; SQuAD 2.0 CC BY-SA 4.0; SEC 10-Q MIT (docugami)",
        notes=notes,
    )


def load_dataset(
    spec: str, work_dir: Path, shared: Path, limit: int | None, seed: int
) -> EvalDataset:
    """A dataset by built-in name or by path (.json SQuAD, .csv/folder SEC 10-Q, .jsonl generic)."""
    if spec == "gold":
        return load_jsonl(GOLD_SET, limit, seed, samples_dir=work_dir / "samples")
    if spec == "followups":
        return load_followups(work_dir, shared, limit, seed)
    if spec == "safety" or spec.startswith("safety:"):
        # safety = two attacks of each kind (CI); safety:N = N of each kind; safety:all = all.
        from eval.safety import safety_dataset

        return safety_dataset(work_dir / "safety", spec, limit)
    if spec == "squad" or spec.startswith("squad:"):
        # squad = a seeded slice of 12 articles; squad:N = N articles; squad:all = all 35.
        path = shared / "squad2-dev" / "dev-v2.0.json"
        if not path.is_file():
            raise DatasetError(f"{path}: SQuAD 2.0 dev is not there (../shared/datasets)")
        count = spec.partition(":")[2] or "12"
        if count != "all" and not count.isdigit():
            raise DatasetError(f"{spec}: use squad, squad:N (articles) or squad:all")
        articles = None if count == "all" else int(count)
        return load_squad(path, work_dir, limit if limit is not None else 150, seed, articles)
    if spec == "sec10q":
        folder = shared / "sec10q"
        if not folder.is_dir():
            raise DatasetError(f"{folder}: the SEC 10-Q set is not there (../shared/datasets)")
        return load_sec10q(folder, limit if limit is not None else 40, seed, "*2023 Q3*")
    path = Path(spec)
    if path.is_dir() and (path / "qna_data.csv").is_file():
        return load_sec10q(path, limit, seed)
    if not path.is_file():
        raise DatasetError(
            f"{spec}: no such dataset (built-in: gold, squad, sec10q, safety, followups)"
        )
    if path.suffix == ".json":
        return load_squad(path, work_dir, limit, seed)
    if path.suffix == ".csv":
        return load_sec10q(path.parent, limit, seed)
    if path.suffix == ".jsonl":
        return load_jsonl(path, limit, seed)
    raise DatasetError(f"{spec}: unknown dataset format (use .json, .csv or .jsonl)")
