"""Folio's web page: chat over your documents with page-level sources, uploads and feedback.

Run it with `folio ui`. Settings come from FOLIO_* variables (and FOLIO_CONFIG), as for the CLI.
Conversations are saved by the service (app/chat.py); questions are the service's jobs, which the
page follows (app/questions.py); sources and previews are app/sources.py.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from app import chat, panels, questions, welcome
from app.render import STYLE, answer_html, as_answer, timings_caption
from app.sources import show_sources
from folio.service import FolioService, ServiceError, error_for
from folio.settings import Settings, SettingsError, load_settings
from retrieval.chain import NOT_FOUND, Answer

QUEUE_SHOWN_MS = 100  # a shorter wait in the queue is not worth a word in the caption


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


def _save_feedback(service: FolioService, answer: Answer) -> None:
    state = st.session_state
    rating = state.get(f"fb-{answer.answer_id}")
    comment = state.get(f"fbc-{answer.answer_id}", "") or ""
    thumb = None if rating is None else ("up" if rating == 1 else "down")
    if thumb is None and not comment.strip():
        return
    service.feedback(answer.answer_id, thumb, comment)
    state[f"fb-saved-{answer.answer_id}"] = True


def timing_line(answer: Answer) -> str:
    """The wait from submit: the time in the queue behind other answers, then the answer's own
    times (total_ms counts from when this answer started)."""
    own = timings_caption(answer)
    queued = answer.timings.get("queue_ms") or 0
    if queued < QUEUE_SHOWN_MS:
        return own
    return f"waited {queued / 1000:.1f} s for earlier answers, then {own}"


def _show_answer(service: FolioService, answer: Answer) -> None:
    if answer.refused and answer.answer != NOT_FOUND:  # the service says why: an empty collection
        st.info(answer.answer, icon=":material/info:")
    elif answer.refused:
        st.info(
            f"{NOT_FOUND} Nothing in this collection answers it well enough.",
            icon=":material/search_off:",
        )
    else:
        st.html(answer_html(answer))
        if answer.stopped:
            st.badge("Stopped", icon=":material/stop_circle:", color="orange")
            st.caption("Generation was stopped; the answer is what came before.")
        if answer.generated and answer.answer != answer.generated:
            st.caption(
                "The model's own answer was not supported by the sources; the best-matching "
                "quote is shown instead."
            )
        elif any(not s.supported for s in answer.sentences):
            st.caption("Underlined sentences are not supported by the sources.")
    st.caption(timing_line(answer))
    key = answer.answer_id
    show_sources(service, answer, key)
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


def _recall_feedback(service: FolioService, turns: list[dict[str, Any]]) -> None:
    """A reopened conversation shows the thumbs and comments given before (this session has
    not drawn those answers yet: their feedback widgets start from what was saved)."""
    state = st.session_state
    if all(f"fb-{t['answer_id']}" in state for t in turns):
        return
    from folio.feedback import feedback_path, read_feedback

    given = {r["answer_id"]: r for r in read_feedback(feedback_path(service.settings))}
    for turn in turns:
        key = turn["answer_id"]
        if f"fb-{key}" in state or key not in given:
            continue
        if given[key].get("rating") is not None:
            state[f"fb-{key}"] = given[key]["rating"]
        state.setdefault(f"fbc-{key}", given[key].get("comment") or "")


def _conversation(service: FolioService, chat_id: str | None) -> None:
    """The open conversation: saved turns, then this conversation's questions not answered yet."""
    active, ended = questions.snapshot(service, chat_id)  # before the turns: see snapshot()
    turns = chat.stored_turns(service, chat_id)
    _recall_feedback(service, turns)
    if not turns and not active and not ended:
        welcome.show(service, st.session_state.collection)  # an empty collection explains itself
    for ask in turns:
        answer = as_answer(ask)
        with st.chat_message("user"):
            st.text(answer.question)
        with st.chat_message("assistant"):
            _show_answer(service, answer)
    questions.show_ended(ended)
    if active:
        questions.follow(service, tuple(active))


def main() -> None:
    st.set_page_config(page_title="Folio", page_icon=":material/menu_book:", layout="wide")
    st.html(STYLE)
    settings = _settings()
    from app.login import require_login  # the password gate: nothing below runs before it

    require_login(settings)
    service = get_service(settings.model_dump_json())
    state = st.session_state
    state.setdefault("messages", [])  # panels reset it on a collection switch; unused here
    chat.restore_from_url(service, settings.collection)

    with st.sidebar:
        st.button(
            "New conversation", icon=":material/add_comment:", width="stretch",
            key="new-chat", on_click=chat.open_chat, args=(None,),
        )  # fmt: skip
        try:
            panels.collections(service)
            chat.conversations(service)
            panels.documents(service)
            panels.uploads(service)
        except Exception as exc:  # the store is down, the index locked: one line, not a trace
            error = error_for(exc)
            if error is None:
                raise
            st.error(error.message)
        options = panels.answer_settings(service)
        panels.status(service, options.get("llm_model"))

    st.title("Folio")
    st.caption(f"Ask questions about the documents in **{state.collection}**.")

    question = st.chat_input("Ask a question about your documents")
    if question and question.strip():
        try:
            questions.submit(service, question.strip(), options)
        except ServiceError as exc:  # a bad option, a full queue: say what, keep the page
            st.error(f"Could not ask: {exc.message}")
    _conversation(service, chat.current_chat())
    chat.sync_url(settings.collection)


main()
