"""Saved conversations: one SQLite file per collection under DATA_DIR/conversations/.

Every interface (CLI today, the web UI later) shares this store. A turn keeps the question, the
standalone question retrieval used, the answer, its sources and timings, and the answer id that
feedback refers to. SQLite's own locking (WAL, `BEGIN IMMEDIATE`) makes two processes appending to
the same conversation safe: each turn number is taken inside the writing transaction.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CHAT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TITLE_CHARS = 80

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS turns (
    chat_id TEXT NOT NULL REFERENCES conversations(id),
    n INTEGER NOT NULL,
    answer_id TEXT NOT NULL UNIQUE,
    question TEXT NOT NULL,
    standalone_question TEXT NOT NULL,
    answer TEXT NOT NULL,
    refused INTEGER NOT NULL,
    mode TEXT NOT NULL,
    sources TEXT NOT NULL,
    timings TEXT NOT NULL,
    created_at TEXT NOT NULL,
    ask TEXT,  -- the whole ask object (added later: NULL in turns saved before)
    PRIMARY KEY (chat_id, n)
);
"""


class ChatIdError(ValueError):
    """A conversation id that is not 1-64 letters, digits, '-' or '_'."""


def check_chat_id(chat_id: str) -> str:
    if not CHAT_ID.match(chat_id):
        raise ChatIdError(f"invalid chat id {chat_id[:80]!r}: use 1-64 letters, digits, '-' or '_'")
    return chat_id


def new_chat_id() -> str:
    """A readable, sortable, practically unique id such as 20261125-2110-3f9a1c."""
    return f"{datetime.now(UTC):%Y%m%d-%H%M}-{secrets.token_hex(3)}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class StoredTurn:
    n: int
    answer_id: str
    question: str
    standalone_question: str
    answer: str
    refused: bool
    mode: str
    sources: list[dict[str, Any]]
    timings: dict[str, Any]
    created_at: str
    ask: dict[str, Any] | None = None

    def ask_object(self) -> dict[str, Any]:
        """The turn's `folio ask --json` object (what was saved of it, for older turns)."""
        return self.ask if self.ask is not None else self.to_json()

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "answer_id": self.answer_id,
            "question": self.question,
            "standalone_question": self.standalone_question,
            "answer": self.answer,
            "refused": self.refused,
            "mode": self.mode,
            "sources": self.sources,
            "timings": self.timings,
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Conversation:
    id: str
    collection: str
    title: str
    created_at: str
    updated_at: str
    turns: list[StoredTurn] = field(default_factory=list)
    turn_count: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "collection": self.collection,
            "turns": self.turn_count,
            "updated_at": self.updated_at,
        }

    def transcript(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "collection": self.collection,
            "turns": [t.ask_object() for t in self.turns],
        }


def conversations_dir(data_dir: Path) -> Path:
    return data_dir / "conversations"


class ConversationStore:
    """The conversations of one collection."""

    def __init__(self, data_dir: Path, collection: str) -> None:
        self.collection = collection
        self.path = conversations_dir(data_dir) / f"{collection}.sqlite3"

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: transactions are ours, so a writer can take the lock up front.
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA busy_timeout=30000")
            db.executescript(_SCHEMA)
            if "ask" not in {row[1] for row in db.execute("PRAGMA table_info(turns)")}:
                db.execute("ALTER TABLE turns ADD COLUMN ask TEXT")  # stores from before
            if write:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                except BaseException:
                    db.execute("ROLLBACK")
                    raise
                db.execute("COMMIT")
            else:
                yield db
        finally:
            db.close()

    def get(self, chat_id: str) -> Conversation | None:
        check_chat_id(chat_id)
        if not self.path.exists():
            return None
        with self._db() as db:
            row = db.execute(
                "SELECT id, title, created_at, updated_at FROM conversations WHERE id = ?",
                (chat_id,),
            ).fetchone()
            if row is None:
                return None
            turns = [
                StoredTurn(
                    n=t[0],
                    answer_id=t[1],
                    question=t[2],
                    standalone_question=t[3],
                    answer=t[4],
                    refused=bool(t[5]),
                    mode=t[6],
                    sources=json.loads(t[7]),
                    timings=json.loads(t[8]),
                    created_at=t[9],
                    ask=json.loads(t[10]) if t[10] else None,
                )
                for t in db.execute(
                    "SELECT n, answer_id, question, standalone_question, answer, refused, mode,"
                    " sources, timings, created_at, ask FROM turns WHERE chat_id = ? ORDER BY n",
                    (chat_id,),
                )
            ]
        return Conversation(row[0], self.collection, row[1], row[2], row[3], turns, len(turns))

    def append(self, chat_id: str, answer: Any) -> StoredTurn:
        """Save one answered turn (a retrieval.chain.Answer); creates the conversation if new."""
        check_chat_id(chat_id)
        now = _now()
        sources = [
            {"n": h.rank, "chunk_id": h.chunk_id, "source": h.source, "page": h.page,
             "score": round(h.score, 6)}
            for h in answer.sources
        ]  # fmt: skip
        with self._db(write=True) as db:
            db.execute(
                "INSERT OR IGNORE INTO conversations (id, title, created_at, updated_at)"
                " VALUES (?, ?, ?, ?)",
                (chat_id, _title(answer.question), now, now),
            )
            (n,) = db.execute(
                "SELECT COALESCE(MAX(n), 0) + 1 FROM turns WHERE chat_id = ?", (chat_id,)
            ).fetchone()
            ask = answer.to_json()
            turn = StoredTurn(
                n, answer.answer_id, answer.question, answer.standalone_question, answer.answer,
                answer.refused, answer.mode, sources, dict(answer.timings), now, ask,
            )  # fmt: skip
            db.execute(
                "INSERT INTO turns (chat_id, n, answer_id, question, standalone_question, answer,"
                " refused, mode, sources, timings, created_at, ask)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (chat_id, turn.n, turn.answer_id, turn.question, turn.standalone_question,
                 turn.answer, int(turn.refused), turn.mode, json.dumps(turn.sources),
                 json.dumps(turn.timings), now, json.dumps(ask, ensure_ascii=False)),
            )  # fmt: skip
            db.execute("UPDATE conversations SET updated_at = ? WHERE id = ?", (now, chat_id))
        return turn

    def rename(self, chat_id: str, title: str) -> bool:
        """False when there is no such conversation."""
        check_chat_id(chat_id)
        with self._db(write=True) as db:
            changed = db.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", (_title(title), chat_id)
            ).rowcount
        return bool(changed)

    def delete(self, chat_id: str) -> bool:
        """False when there is no such conversation."""
        check_chat_id(chat_id)
        with self._db(write=True) as db:
            db.execute("DELETE FROM turns WHERE chat_id = ?", (chat_id,))
            deleted = db.execute("DELETE FROM conversations WHERE id = ?", (chat_id,)).rowcount
        return bool(deleted)

    def find_turn(self, answer_id: str) -> dict[str, Any] | None:
        """The ask object of the turn that gave this answer."""
        if not self.path.exists():
            return None
        with self._db() as db:
            row = db.execute(
                "SELECT chat_id, n FROM turns WHERE answer_id = ?", (answer_id,)
            ).fetchone()
        conversation = self.get(row[0]) if row else None
        if conversation is None:
            return None
        return next(t.ask_object() for t in conversation.turns if t.answer_id == answer_id)

    def conversations(self) -> list[Conversation]:
        if not self.path.exists():
            return []
        with self._db() as db:
            rows = db.execute(
                "SELECT c.id, c.title, c.created_at, c.updated_at, COUNT(t.n) FROM conversations c"
                " LEFT JOIN turns t ON t.chat_id = c.id GROUP BY c.id ORDER BY c.updated_at DESC"
            ).fetchall()
        return [Conversation(r[0], self.collection, r[1], r[2], r[3], [], r[4]) for r in rows]


def list_conversations(data_dir: Path, collection: str | None = None) -> list[Conversation]:
    """Conversations of one collection, or of every collection; the most recent first."""
    names = [collection] if collection is not None else _collections(data_dir)
    found = [c for name in names for c in ConversationStore(data_dir, name).conversations()]
    return sorted(found, key=lambda c: c.updated_at, reverse=True)


def _collections(data_dir: Path) -> list[str]:
    return sorted(p.stem for p in conversations_dir(data_dir).glob("*.sqlite3"))


def find_conversation(data_dir: Path, chat_id: str) -> Conversation | None:
    """A conversation by id, whichever collection it belongs to."""
    check_chat_id(chat_id)
    for name in _collections(data_dir):
        found = ConversationStore(data_dir, name).get(chat_id)
        if found is not None:
            return found
    return None


def find_turn(data_dir: Path, answer_id: str) -> tuple[str, dict[str, Any]] | None:
    """(collection, ask object) of a saved answer."""
    for name in _collections(data_dir):
        ask = ConversationStore(data_dir, name).find_turn(answer_id)
        if ask is not None:
            return name, ask
    return None


def _title(question: str) -> str:
    text = " ".join(question.split())
    return text if len(text) <= TITLE_CHARS else text[: TITLE_CHARS - 1].rstrip() + "…"
