"""Answer feedback: JSON lines in the data dir, one line per answer, exportable as an eval dataset.

A thumb and a later comment on the same answer are one record: saving merges the new rating or
comment into the answer's line and rewrites the file. Writers take an exclusive lock on a lock
file beside it and replace the file in one rename, so several processes (the web UI, the API)
never lose each other's records and a reader never sees half a file. Files written before kept
one line per change; reading still merges those, the latest line winning.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from folio.settings import Settings


@dataclass
class FeedbackRecord:
    answer_id: str
    rating: int | None  # 1 = thumbs up, 0 = thumbs down, None = comment only
    comment: str
    question: str
    answer: str
    refused: bool
    collection: str
    sources: list[dict[str, Any]]
    citations: list[dict[str, Any]]
    prompt: dict[str, Any]
    model: dict[str, Any]
    created_at: str = ""
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def feedback_path(settings: Settings) -> Path:
    return settings.data_dir / "feedback.jsonl"


def new_answer_id() -> str:
    return uuid.uuid4().hex


def record_feedback(settings: Settings, record: FeedbackRecord) -> None:
    """Save `record`, merged into the answer's existing record (one line per answer id)."""
    from ingest.manifest import utc_now

    record.created_at = record.created_at or utc_now()
    item = asdict(record)
    path = feedback_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        lines = path.read_bytes().splitlines(keepends=True) if path.exists() else []
        # Each line starts with its answer id (asdict keeps the field order), so this answer's
        # lines are found without parsing the others: saving stays fast in a large file.
        head = ('{"answer_id": ' + json.dumps(record.answer_id, ensure_ascii=False) + ",").encode()
        mine = [n for n, line in enumerate(lines) if line.startswith(head)]
        if not mine:  # a new answer: one appended line
            broken_tail = bool(lines) and not lines[-1].endswith(b"\n")  # a crash mid-line
            _append(path, (b"\n" if broken_tail else b"") + _line(item))
            return
        previous: dict[str, Any] = {}
        first_saved = ""
        for n in mine:  # files from before kept a line per change: merge them, latest last
            try:
                previous = _merged(previous, json.loads(lines[n]))
            except ValueError:
                continue
            first_saved = first_saved or previous.get("created_at", "")
        item = _merged(previous, item)
        item["created_at"] = first_saved or item["created_at"]
        item["updated_at"] = utc_now()
        lines[mine[0]] = _line(item)
        for n in reversed(mine[1:]):
            del lines[n]
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_bytes(b"".join(lines))
        os.replace(temporary, path)  # readers see the old file or the new one, never half


def _line(item: dict[str, Any]) -> bytes:
    return (json.dumps(item, ensure_ascii=False) + "\n").encode("utf-8")


def _append(path: Path, data: bytes) -> None:
    # One write call with O_APPEND: a reader never sees two records interleaved.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """One writer at a time across processes (an advisory lock the kernel drops on exit)."""
    import fcntl

    fd = os.open(path.with_name(path.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _merged(previous: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
    item = dict(item)
    # A comment without a thumb keeps the earlier thumb; a thumb without a comment keeps the
    # earlier comment: the page sends each change on its own.
    if item.get("rating") is None and previous.get("rating") is not None:
        item["rating"] = previous["rating"]
    if not item.get("comment") and previous.get("comment"):
        item["comment"] = previous["comment"]
    return item


def read_feedback(path: Path) -> list[dict[str, Any]]:
    """One record per answer, in first-seen order; damaged lines are skipped."""
    latest: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
            key = str(item["answer_id"])
        except (ValueError, KeyError, TypeError):
            continue
        previous = latest.get(key)
        latest[key] = _merged(previous, item) if previous else item
    return list(latest.values())


def to_eval_items(records: list[dict[str, Any]], include_down: bool = False) -> Iterator[dict]:
    """Generic eval JSONL rows (see README): liked answers become gold answers and evidence.

    A thumbs-down answer is not a gold answer; with include_down it is exported with no answers
    and `needs_review`, so an evaluator can fill in the right one.
    """
    for item in records:
        rating = item.get("rating")
        if rating is None or (rating == 0 and not include_down):
            continue
        liked = rating == 1
        cited = {int(c["n"]) for c in item.get("citations", [])}
        evidence = [
            {"source": s["source"], "page": s.get("page")}
            for s in item.get("sources", [])
            if int(s.get("n", 0)) in cited
        ]
        row: dict[str, Any] = {
            "id": item["answer_id"],
            "question": item["question"],
            "answers": [item["answer"]] if liked and not item.get("refused") else [],
            "evidence": evidence if liked else [],
            "answerable": not item.get("refused") if liked else None,
            "comment": item.get("comment", ""),
            "collection": item.get("collection"),
        }
        if not liked:
            row["needs_review"] = True
        yield row


def record_answer_feedback(
    settings: Settings, ask: dict[str, Any], collection: str, rating: str | None, comment: str
) -> None:
    """One record for a rating and/or comment on an answer (its `folio ask --json` object)."""
    record_feedback(
        settings,
        FeedbackRecord(
            answer_id=str(ask["answer_id"]),
            rating={"up": 1, "down": 0}.get(rating) if rating else None,
            comment=comment,
            question=str(ask["question"]),
            answer=str(ask["answer"]),
            refused=bool(ask["refused"]),
            collection=collection,
            sources=list(ask.get("sources", [])),
            citations=list(ask.get("citations", [])),
            prompt=dict(ask.get("prompt", {})),
            model=dict(ask.get("model", {})),
        ),
    )
