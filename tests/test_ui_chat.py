"""Saved conversations, the answer queue and Stop in the page, through Streamlit's AppTest:
real Chroma, the real embedder and GGUF model, the real conversation store."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from app.chat import ago
from conftest import REPO, Folio
from page_answers import ask, harbour_collection, pending, wait_for_answers

PAGE = str(REPO / "app" / "streamlit_app.py")
LIGHTHOUSE = "When was the Skerry lighthouse built?"
HARBOUR = "When does the harbour office open?"
# SmolLM2 writes on to max_tokens for this one (1024 tokens: ~25 s on one core).
ESSAY = "Write a long essay about the Skerry lighthouse built in 1887 from local granite."


@pytest.fixture
def env(folio: Folio, docs: Path, monkeypatch: pytest.MonkeyPatch) -> Folio:
    """A collection holding one PDF; the page's settings come from the environment."""
    return harbour_collection(folio, docs, monkeypatch)


def open_page(chat: str | None = None, collection: str | None = None) -> AppTest:
    """A fresh browser session (a reload), optionally on a URL naming a conversation."""
    at = AppTest.from_file(PAGE, default_timeout=180)
    if chat:
        at.query_params["chat"] = chat
    if collection:
        at.query_params["collection"] = collection
    at.run()
    assert not at.exception, at.exception
    return at


def conversation(at: AppTest) -> list[str]:
    """The questions and answers shown, in order (answers by their text)."""
    shown = []
    for message in at.chat_message:
        texts = [t.value for t in message.text]
        htmls = [str(h.proto.body) for h in message.get("html")]
        infos = [i.value for i in message.info]
        shown.append(" ".join(texts + htmls + infos))
    return shown


def chat_buttons(at: AppTest) -> list[str]:
    return [b.label for b in at.sidebar.button if b.key and b.key.startswith("chat-")]


def test_questions_are_saved_and_a_reload_reopens_the_conversation(env: Folio) -> None:
    at = open_page()
    assert chat_buttons(at) == []
    ask(at, LIGHTHOUSE)
    ask(at, HARBOUR)
    shown = conversation(at)
    assert len(shown) == 4 and LIGHTHOUSE in shown[0] and "1887" in shown[1]
    assert HARBOUR in shown[2] and "seven in the morning" in shown[3]
    chat_id = at.query_params["chat"]
    at.get("feedback")[0].set_value(1).run()
    comment = next(t for t in at.text_input if t.key and t.key.startswith("fbc-"))
    comment.input("Right year").run()

    # One store for every interface: the CLI lists the page's conversation.
    chats = env.json("chats")["chats"]
    assert [c["id"] for c in chats] == [chat_id] and chats[0]["turns"] == 2
    labels = chat_buttons(at)
    assert len(labels) == 1 and labels[0].startswith("When was the Skerry lighthouse built")
    assert "just now" in labels[0]

    # A reload (a new session on the same URL) shows the same conversation, sources included.
    again = open_page(chat=chat_id)
    assert conversation(again) == shown
    assert any("harbour.pdf" in e.label for e in again.expander)
    # ... with the feedback given before.
    assert again.get("feedback")[0].value == 1
    assert next(t for t in again.text_input if t.key and t.key.startswith("fbc-")).value == (
        "Right year"
    )
    # ... and goes on with it: a follow-up lands in the same saved conversation.
    ask(again, "Which material was used for it?")
    assert env.json("chats")["chats"][0]["turns"] == 3
    assert len(again.chat_message) == 6


def test_new_conversation_and_switching_back(env: Folio) -> None:
    at = open_page()
    ask(at, LIGHTHOUSE)
    first = at.query_params["chat"]
    at.button(key="new-chat").click().run()
    assert len(at.chat_message) == 0 and "chat" not in at.query_params
    time.sleep(1.1)  # last activity is kept to the second: this one is newer
    ask(at, HARBOUR)
    second = at.query_params["chat"]
    assert second != first
    labels = chat_buttons(at)
    assert len(labels) == 2 and labels[0].startswith("When does the harbour")  # newest first
    at.button(key=f"chat-{first}").click().run()
    shown = conversation(at)
    assert len(shown) == 2 and LIGHTHOUSE in shown[0] and "1887" in shown[1]
    assert at.query_params["chat"] == first


def test_a_collection_switch_and_back_keeps_the_conversation(env: Folio, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "ferries.md").write_text("# Ferries\n\nThe ferry leaves at noon.")
    env("ingest", other, "--collection", "team-b")
    at = open_page()
    ask(at, LIGHTHOUSE)
    chat_id = at.query_params["chat"]
    at.sidebar.selectbox[0].select("team-b").run()
    assert at.session_state["collection"] == "team-b"
    assert len(at.chat_message) == 0 and chat_buttons(at) == []
    assert at.query_params["collection"] == "team-b"
    at.sidebar.selectbox[0].select("default").run()
    shown = conversation(at)
    assert len(shown) == 2 and "1887" in shown[1]
    assert at.query_params["chat"] == chat_id


def test_rename_and_delete_ask_first(env: Folio) -> None:
    at = open_page()
    ask(at, LIGHTHOUSE)
    at.button(key="rename-chat").click().run()
    at.text_input(key="rename-title").input("Lighthouse history")
    at.button(key="rename-save").click().run()
    assert chat_buttons(at)[0].startswith("Lighthouse history")
    assert env.json("chats")["chats"][0]["title"] == "Lighthouse history"

    at.button(key="delete-chat").click().run()
    assert any("cannot be undone" in w.value for w in at.sidebar.warning)
    at.button(key="delete-chat-no").click().run()
    assert env.json("chats")["chats"] != []  # Cancel keeps it
    at.button(key="delete-chat").click().run()
    at.button(key="delete-chat-yes").click().run()
    assert env.json("chats")["chats"] == []
    assert chat_buttons(at) == [] and len(at.chat_message) == 0
    assert "chat" not in at.query_params


def test_an_unknown_conversation_in_the_url_opens_a_new_one(env: Folio) -> None:
    at = open_page(chat="20200101-0000-abcdef")
    assert len(at.chat_message) == 0 and "chat" not in at.query_params
    bad = open_page(chat="../../etc")
    assert len(bad.chat_message) == 0 and not bad.error


@pytest.mark.slow
def test_queued_question_waits_then_is_answered_and_stop_keeps_the_text(
    env: Folio, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generate mode with a long answer: a second question waits behind the first; Stop ends
    the first at once, keeps its text, and the second is answered after it."""
    monkeypatch.setenv("FOLIO_ANSWER_MODE", "generate")
    monkeypatch.setenv("FOLIO_MAX_TOKENS", "1024")
    at = open_page()
    at.chat_input[0].set_value(ESSAY).run()
    at.chat_input[0].set_value(LIGHTHOUSE).run()
    assert any("Waiting: 1 answer ahead of yours" in i.value for i in at.info), [
        i.value for i in at.info
    ]
    # The first answer streams: its text so far shows with a Stop button.
    deadline = time.monotonic() + 120
    while not [h for h in at.get("html") if "folio-streaming" in str(h.proto.body)]:
        assert time.monotonic() < deadline, "no streamed text"
        time.sleep(0.3)
        at.run()
    # A reload (another session on the URL) while it generates follows the same questions.
    other = open_page(chat=at.query_params["chat"])
    assert [b.key for b in other.button if b.key and b.key.startswith(("stop-", "cancel-"))] == [
        b.key for b in at.button if b.key and b.key.startswith(("stop-", "cancel-"))
    ]
    assert len(other.chat_message) == 4
    time.sleep(1.0)
    stop = [b for b in at.button if b.key and b.key.startswith("stop-")]
    assert len(stop) == 1
    stop[0].click().run()
    wait_for_answers(at)
    assert not pending(at)
    shown = conversation(at)
    assert len(shown) == 4 and shown[0] == ESSAY
    assert len(shown[1].strip()) > 20  # the partial answer is kept
    assert LIGHTHOUSE in shown[2]
    assert any("Generation was stopped" in c.value for c in at.caption), shown
    chat_id = at.query_params["chat"]
    turns = reopen_turns(chat_id)
    assert turns[0]["stopped"] is True and turns[0]["answer"].strip()
    assert turns[1]["stopped"] is False
    assert turns[1]["timings"]["queue_ms"] > 500  # it waited for the first answer
    assert any("waited" in c.value and "for earlier answers" in c.value for c in at.caption)


def reopen_turns(chat_id: str) -> list[dict[str, object]]:
    """The saved ask objects, read back through the service as a restarted server would."""
    from folio.service import FolioService
    from folio.settings import load_settings

    service = FolioService(load_settings())
    try:
        return list(service.chat(chat_id)["turns"])
    finally:
        service.close()


def test_last_activity_reads_as_people_say_it() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert ago((now - timedelta(seconds=20)).isoformat(), now) == "just now"
    assert ago((now - timedelta(minutes=5)).isoformat(), now) == "5 min ago"
    assert ago((now - timedelta(hours=3)).isoformat(), now) == "3 h ago"
    assert ago((now - timedelta(hours=30)).isoformat(), now) == "yesterday"
    assert ago((now - timedelta(days=9)).isoformat(), now) == "17 Nov"
    assert ago("2025-01-02T10:00:00+00:00", now) == "02 Jan 2025"
