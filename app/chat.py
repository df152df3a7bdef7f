"""Saved conversations in the page: which one is open, the sidebar list, and stored turns.

Conversations live in the service's store (the same one `folio ask --chat` and `folio chats`
use), so the page keeps only which conversation is open: per collection in session state (a
collection switch and back reopens it) and in the URL's `?chat=` (a reload, or a restarted
server, reopens it).
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime
from typing import Any

import streamlit as st

from folio.service import FolioService, NotFound, ServiceError

CHATS_LISTED = 8  # the most recent; the rest fold into "Older conversations"
TITLE_SHOWN = 48
# A list reads from the left; the open conversation is the outlined one.
LIST_STYLE = """<style>
.st-key-folio-chats button, .st-key-folio-chats button > div { justify-content: flex-start; }
.st-key-folio-chats button p { text-align: left; }
</style>"""


# --- which conversation is open ---------------------------------------------------------------
def current_chat() -> str | None:
    """The open conversation of the current collection (None: a new one, not saved yet)."""
    state = st.session_state
    chat_of: dict[str, str | None] = state.setdefault("chat_of", {})
    return chat_of.get(state.collection)


def open_chat(chat_id: str | None) -> None:
    state = st.session_state
    state.setdefault("chat_of", {})[state.collection] = chat_id
    state.pop("renaming", None)
    state.pop("confirm-delete", None)


def restore_from_url(service: FolioService, default_collection: str) -> None:
    """On a session's first run: reopen the conversation (or collection) the URL names."""
    state = st.session_state
    if "chat_of" in state:
        return
    state.chat_of = {}
    chat_id = st.query_params.get("chat")
    collection = st.query_params.get("collection")
    if chat_id:
        found = _saved_or_pending_collection(service, chat_id)
        if found is None:
            st.toast("That conversation no longer exists; here is a new one.")
        else:
            state.collection = found
            state.chat_of[found] = chat_id
            return
    if collection and collection in service.collection_names():
        state.collection = collection
    else:
        state.collection = default_collection


def _saved_or_pending_collection(service: FolioService, chat_id: str) -> str | None:
    try:
        return str(service.chat(chat_id)["collection"])
    except NotFound:  # its first answer may still be on its way (a reload while answering)
        jobs = service.chat_jobs(chat_id)
        return jobs[0].collection if jobs else None
    except ServiceError:  # a malformed id in the URL
        return None


def sync_url(default_collection: str) -> None:
    """Keep the URL naming what is open, so a reload (or a bookmark) comes back to it."""
    params = st.query_params
    chat_id = current_chat()
    collection = st.session_state.collection
    wanted = {"chat": chat_id, "collection": None if chat_id or collection ==
              default_collection else collection}  # fmt: skip
    for name, value in wanted.items():
        if value is None:
            if name in params:
                del params[name]
        elif params.get(name) != value:
            params[name] = value


# --- stored turns -----------------------------------------------------------------------------
def stored_turns(service: FolioService, chat_id: str | None) -> list[dict[str, Any]]:
    """The ask objects of a saved conversation, oldest first ([] before its first answer)."""
    if chat_id is None:
        return []
    try:
        return list(service.chat(chat_id)["turns"])
    except NotFound:
        return []


# --- the sidebar list -------------------------------------------------------------------------
def ago(iso: str, now: datetime | None = None) -> str:
    """'just now', '5 min ago', '3 h ago', 'yesterday', or the date: when it was last active."""
    try:
        then = datetime.fromisoformat(iso)
    except ValueError:
        return iso[:16]
    now = now or datetime.now(UTC)
    seconds = (now - then).total_seconds()
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{seconds // 60:.0f} min ago"
    if seconds < 86400:
        return f"{seconds // 3600:.0f} h ago"
    if seconds < 2 * 86400:
        return "yesterday"
    return f"{then:%d %b %Y}" if then.year != now.year else f"{then:%d %b}"


def _escape_md(text: str) -> str:
    return "".join(f"\\{c}" if c in "\\`*_{}[]()#+-.!|<>:~$" else c for c in text)


def _short(title: str) -> str:
    return title if len(title) <= TITLE_SHOWN else title[: TITLE_SHOWN - 1].rstrip() + "…"


def conversations(service: FolioService) -> None:
    """The collection's saved conversations, the newest first: open, rename, delete."""
    state = st.session_state
    st.subheader("Conversations")
    chats = service.chats(state.collection)["chats"]
    current = current_chat()
    if not chats:
        st.caption("Every question you ask is saved here as a conversation.")
    recent, older = chats[:CHATS_LISTED], chats[CHATS_LISTED:]
    st.html(LIST_STYLE)
    with st.container(key="folio-chats", gap="small"):
        for chat in recent:
            _chat_button(chat, current)
        if older:
            with st.expander(f"Older conversations ({len(older)})"):
                for chat in older:
                    _chat_button(chat, current)
    summary = next((c for c in chats if c["id"] == current), None)
    if summary is not None:
        _manage(service, summary)


def _chat_button(chat: dict[str, Any], current: str | None) -> None:
    turns = chat["turns"]
    st.button(
        f"{_escape_md(_short(chat['title']))} :gray[· {ago(chat['updated_at'])}]",
        key=f"chat-{chat['id']}",
        help=f"{chat['title']}\n\n{turns} question{'s' if turns != 1 else ''}, last active "
        f"{chat['updated_at'][:16].replace('T', ' ')} UTC",
        type="secondary" if chat["id"] == current else "tertiary",
        icon=":material/chat_bubble:"
        if chat["id"] == current
        else ":material/chat_bubble_outline:",
        width="stretch",
        on_click=open_chat,
        args=(chat["id"],),
    )


def _manage(service: FolioService, chat: dict[str, Any]) -> None:
    """Rename and delete the open conversation (delete asks first)."""
    state = st.session_state
    chat_id = chat["id"]
    if state.get("renaming") == chat_id:
        with st.form(f"rename-{chat_id}", border=False):
            title = st.text_input(
                "New title", value=chat["title"], max_chars=80, key="rename-title"
            )
            save, cancel = st.columns(2)
            if save.form_submit_button("Save", type="primary", width="stretch", key="rename-save"):
                try:
                    service.rename_chat(chat_id, title)
                    state.pop("renaming", None)
                    st.rerun()
                except ServiceError as exc:
                    st.error(exc.message)
            if cancel.form_submit_button("Cancel", width="stretch", key="rename-cancel"):
                state.pop("renaming", None)
                st.rerun()
        return
    if state.get("confirm-delete") == chat_id:
        st.warning(f"Delete the conversation “{_short(chat['title'])}”? This cannot be undone.")
        yes, no = st.columns(2)
        if yes.button("Delete", key="delete-chat-yes", type="primary", width="stretch"):
            _delete(service, chat_id)
            st.rerun()
        if no.button("Cancel", key="delete-chat-no", width="stretch"):
            state.pop("confirm-delete", None)
            st.rerun()
        return
    rename, delete = st.columns(2)
    if rename.button("Rename", key="rename-chat", icon=":material/edit:", width="stretch"):
        state["renaming"] = chat_id
        st.rerun()
    if delete.button("Delete", key="delete-chat", icon=":material/delete:", width="stretch"):
        state["confirm-delete"] = chat_id
        st.rerun()


def _delete(service: FolioService, chat_id: str) -> None:
    # Its unanswered questions go with it: stopped first, or a late answer would save the
    # conversation again.
    jobs = service.chat_jobs(chat_id)
    for job in jobs:
        job.cancel()
    deadline = time.monotonic() + 5
    while any(not job.finished for job in jobs) and time.monotonic() < deadline:
        time.sleep(0.05)
    with contextlib.suppress(NotFound):  # nothing saved (stopped before its first word)
        service.delete_chat(chat_id)
    open_chat(None)
    st.toast("Conversation deleted.")
