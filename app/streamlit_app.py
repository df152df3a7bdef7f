"""Folio's web page: chat over your documents with page-level sources, uploads and feedback.

Run it with `folio ui`. Settings come from FOLIO_* variables (and FOLIO_CONFIG), as for the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import streamlit as st

from app import panels
from app.render import STYLE, answer_html, timings_caption
from app.service import FolioService
from folio.feedback import FeedbackRecord, new_answer_id, record_feedback
from folio.settings import Settings, SettingsError, load_settings
from retrieval.chain import NOT_FOUND, Answer, Token


@st.cache_resource(show_spinner="Loading Folio…")
def get_service(settings_json: str) -> FolioService:
    """One service per process and settings: models and stores are shared by all sessions."""
    return FolioService(Settings.model_validate_json(settings_json))


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        st.error(f"Folio's settings are invalid: {exc}")
        st.stop()


def _stream_text(events: Iterator[Token | Answer], done: dict[str, Answer]) -> Iterator[str]:
    for event in events:
        if isinstance(event, Answer):
            done["answer"] = event
        else:
            yield event.text


def _ask(service: FolioService, question: str, options: dict[str, Any]) -> None:
    state = st.session_state
    history = [
        (m["question"], m["answer"].answer) for m in state.messages if m["role"] == "assistant"
    ]
    state.messages.append({"role": "user", "text": question})
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        notice = st.empty()
        done: dict[str, Answer] = {}
        events = service.answer(
            state.collection,
            question,
            history,
            on_queued=lambda: notice.info("Queued: another answer is being generated…"),
            **options,
        )
        try:
            with st.spinner("Searching your documents…"):
                first = next(events)
            notice.empty()
            if isinstance(first, Answer):
                done["answer"] = first
            else:
                st.write_stream(_stream_text(_chain_first(first, events), done))
        except Exception as exc:  # a missing model or an unreachable store: say what, keep going
            notice.empty()
            st.error(f"Could not answer: {exc}")
            state.messages.pop()
            return
    state.messages.append(
        {"role": "assistant", "question": question, "answer": done["answer"],
         "id": new_answer_id(), "model": options["llm_model"]}
    )  # fmt: skip
    st.rerun()


def _chain_first(first: Token, rest: Iterator[Token | Answer]) -> Iterator[Token | Answer]:
    yield first
    yield from rest


def _save_feedback(service: FolioService, message: dict[str, Any]) -> None:
    state = st.session_state
    rating = state.get(f"fb-{message['id']}")
    comment = state.get(f"fbc-{message['id']}", "") or ""
    answer: Answer = message["answer"]
    data = answer.to_json()
    record_feedback(
        service.settings,
        FeedbackRecord(
            answer_id=message["id"],
            rating=rating,
            comment=comment.strip(),
            question=answer.question,
            answer=answer.answer,
            refused=answer.refused,
            collection=state.collection,
            sources=data["sources"],
            citations=data["citations"],
            prompt=data["prompt"],
            model={**data["model"], "name": message.get("model")},
        ),
    )
    state[f"fb-saved-{message['id']}"] = True


def _show_answer(service: FolioService, message: dict[str, Any]) -> None:
    answer: Answer = message["answer"]
    if answer.refused:
        st.info(f"{NOT_FOUND} Nothing in this collection answers it well enough.", icon="🔎")
    else:
        st.html(answer_html(answer))
        if answer.generated and answer.answer != answer.generated:
            st.caption(
                "The model's own answer was not supported by the sources; the best-matching "
                "quote is shown instead."
            )
        elif any(not s.supported for s in answer.sentences):
            st.caption("Underlined sentences are not supported by the sources.")
    st.caption(timings_caption(answer))
    panels.sources(service, answer, message["id"])
    cols = st.columns([1, 4])
    with cols[0]:
        st.feedback(
            "thumbs", key=f"fb-{message['id']}", on_change=_save_feedback,
            args=(service, message),
        )  # fmt: skip
    with cols[1]:
        st.text_input(
            "Comment (optional)",
            key=f"fbc-{message['id']}",
            placeholder="What was right or wrong? (Enter to send)",
            label_visibility="collapsed",
            on_change=_save_feedback,
            args=(service, message),
        )
    if st.session_state.get(f"fb-saved-{message['id']}"):
        st.caption("Thanks: feedback saved.")


def main() -> None:
    st.set_page_config(page_title="Folio", page_icon="📚", layout="wide")
    st.html(STYLE)
    settings = _settings()
    service = get_service(settings.model_dump_json())
    state = st.session_state
    state.setdefault("messages", [])
    state.setdefault("collection", settings.collection)

    with st.sidebar:
        if st.button("New chat", icon=":material/refresh:", width="stretch"):
            state.messages = []
        panels.collections(service)
        panels.documents(service)
        panels.uploads(service)
        options = panels.answer_settings(service)
        panels.status(service, options["llm_model"])

    st.title("Folio")
    st.caption(f"Ask questions about the documents in **{state.collection}**.")

    for message in state.messages:
        with st.chat_message(message["role"]):
            if message["role"] == "user":
                st.text(message["text"])
            else:
                _show_answer(service, message)

    question = st.chat_input("Ask a question about your documents")
    if question and question.strip():
        _ask(service, question.strip(), options)


main()
