"""Folio's web page: chat over your documents with page-level sources, uploads and feedback.

Run it with `folio ui`. Settings come from FOLIO_* variables (and FOLIO_CONFIG), as for the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import streamlit as st

from app import panels
from app.render import STYLE, answer_html, timings_caption
from folio.service import AskRequest, FolioService, Queued, ServiceError, error_for
from folio.settings import Settings, SettingsError, load_settings
from retrieval.chain import NOT_FOUND, Answer, Token
from retrieval.followups import PastTurn


@st.cache_resource(show_spinner="Loading Folio…")
def get_service(settings_json: str) -> FolioService:
    """One service per process and settings: models, stores and the answer queue are shared by
    all sessions."""
    service = FolioService(Settings.model_validate_json(settings_json))
    # The LLM loads with the first generated answer: llama.cpp swaps the process's stdout while
    # it loads, which must not happen on a thread beside the page's own work.
    service.warm_up(llm=False)
    return service


def _settings() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        st.error(f"Folio's settings are invalid: {exc}")
        st.stop()


def _stream_text(
    events: Iterator[Queued | Token | Answer], done: dict[str, Answer]
) -> Iterator[str]:
    for event in events:
        if isinstance(event, Answer):
            done["answer"] = event
        elif isinstance(event, Token):
            yield event.text


def _ask(service: FolioService, question: str, options: dict[str, Any]) -> None:
    state = st.session_state
    history = [
        PastTurn(m["answer"].question, m["answer"].standalone_question)
        for m in state.messages
        if m["role"] == "assistant"
    ]
    state.messages.append({"role": "user", "text": question})
    with st.chat_message("user"):
        st.text(question)
    with st.chat_message("assistant"):
        notice = st.empty()
        done: dict[str, Answer] = {}
        job = None
        try:
            job = service.submit(
                AskRequest(question, collection=state.collection, history=history, **options)
            )
            events = job.follow()
            first = next(events)
            while isinstance(first, Queued):
                notice.info(f"Queued: {first.position} question(s) ahead are being answered…")
                first = next(events)
            notice.empty()
            if isinstance(first, Answer):
                done["answer"] = first
            else:
                st.write_stream(_stream_text(_chain_first(first, events), done))
        except ServiceError as exc:  # a missing model or an unreachable store: say what
            notice.empty()
            st.error(f"Could not answer: {exc.message}")
            state.messages.pop()
            return
        finally:
            # A rerun or a closed tab abandons this script run: its question stops, so it does
            # not keep the one answer queue busy for nobody.
            if job is not None and "answer" not in done:
                job.cancel()
    state.messages.append(
        {"role": "assistant", "answer": done["answer"], "model": options["llm_model"]}
    )
    st.rerun()


def _chain_first(first: Token, rest: Iterator[Queued | Token | Answer]) -> Iterator[Any]:
    yield first
    yield from rest


def _save_feedback(service: FolioService, answer: Answer) -> None:
    state = st.session_state
    rating = state.get(f"fb-{answer.answer_id}")
    comment = state.get(f"fbc-{answer.answer_id}", "") or ""
    thumb = None if rating is None else ("up" if rating == 1 else "down")
    if thumb is None and not comment.strip():
        return
    service.feedback(answer.answer_id, thumb, comment)
    state[f"fb-saved-{answer.answer_id}"] = True


def _show_answer(service: FolioService, message: dict[str, Any]) -> None:
    answer: Answer = message["answer"]
    if answer.refused and answer.answer != NOT_FOUND:  # the service says why: an empty collection
        st.info(answer.answer, icon=":material/info:")
    elif answer.refused:
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
    key = answer.answer_id
    panels.sources(service, answer, key)
    cols = st.columns([1, 4])
    with cols[0]:
        st.feedback("thumbs", key=f"fb-{key}", on_change=_save_feedback, args=(service, answer))
    with cols[1]:
        st.text_input(
            "Comment (optional)",
            key=f"fbc-{key}",
            placeholder="What was right or wrong? (Enter to send)",
            label_visibility="collapsed",
            on_change=_save_feedback,
            args=(service, answer),
        )
    if st.session_state.get(f"fb-saved-{key}"):
        st.caption("Thanks: feedback saved.")


def main() -> None:
    st.set_page_config(page_title="Folio", page_icon="📚", layout="wide")
    st.html(STYLE)
    settings = _settings()
    from app.login import require_login  # the password gate: nothing below runs before it

    require_login(settings)
    service = get_service(settings.model_dump_json())
    state = st.session_state
    state.setdefault("messages", [])
    state.setdefault("collection", settings.collection)

    with st.sidebar:
        if st.button("New chat", icon=":material/refresh:", width="stretch"):
            state.messages = []
        try:
            panels.collections(service)
            panels.documents(service)
            panels.uploads(service)
        except Exception as exc:  # the store is down, the index locked: one line, not a trace
            error = error_for(exc)
            if error is None:
                raise
            st.error(error.message)
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
