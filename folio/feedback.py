"""Answer feedback: JSON lines in the data dir, exportable as an eval dataset.

Each rating or comment appends a line; the latest line for an answer id wins, so changing a
thumb or adding a comment later never rewrites the file (appends are safe across processes).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
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
    from ingest.manifest import utc_now

    record.created_at = record.created_at or utc_now()
    path = feedback_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(asdict(record), ensure_ascii=False) + "\n"
    # One write call with O_APPEND: lines from concurrent sessions never interleave.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode("utf-8"))
    finally:
        os.close(fd)


def read_feedback(path: Path) -> list[dict[str, Any]]:
    """The latest record per answer, in first-seen order; damaged lines are skipped."""
    latest: dict[str, dict[str, Any]] = {}
    if not path.exists():
        return []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            item = json.loads(line)
            key = str(item["answer_id"])
        except (ValueError, KeyError, TypeError):
            continue
        previous = latest.get(key, {})
        # A comment-only line keeps the earlier thumb; a thumb-only line keeps the comment.
        if item.get("rating") is None and "rating" in previous:
            item["rating"] = previous["rating"]
        if not item.get("comment") and previous.get("comment"):
            item["comment"] = previous["comment"]
        latest[key] = item
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
