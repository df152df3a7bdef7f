"""The first run: an empty collection says what Folio does and how to give it documents."""

from __future__ import annotations

import streamlit as st

from app import panels
from folio.service import FolioService, error_for

FORMATS = (
    "PDF, Markdown (.md), plain text (.txt), HTML, Word (.docx) and images (PNG, JPEG, TIFF: "
    "read by OCR, as are scanned PDF pages)"
)


def show(service: FolioService, collection: str) -> bool:
    """Draw the welcome in the main area when `collection` has no documents; True when drawn.

    Call it where the conversation would be, when the conversation is empty: the page then
    explains itself instead of staring back blank.
    """
    try:
        if service.sources(collection)["documents"]:
            return False
    except Exception as exc:  # the store is down: the sidebar already says so
        if error_for(exc) is None:
            raise
        return False
    limit = service.settings.max_file_mb
    ingest = "folio ingest PATH" + (
        "" if collection == "default" else f" --collection {collection}"
    )
    with st.container(key="folio-welcome", border=True):
        st.subheader("Welcome to Folio", anchor=False)
        st.markdown(
            "Folio answers questions from your own documents and shows where each answer "
            "comes from: the document, the page and the passage. Everything stays on this "
            f"server. The collection **{_plain(collection)}** has no documents yet."
        )
        st.markdown(
            "1. **Add documents**: drop files on the box below (or on *Add documents* in the "
            "sidebar), or ask the operator to run "
            f"`{ingest}` on the server.\n"
            "2. **Ask** a question in the box at the bottom of the page. Each answer cites its "
            "sources; open one to see the page it came from."
        )
        st.caption(f"Supported formats: {FORMATS}; up to {limit:g} MB per file.")
        panels.uploads(service, place="welcome")  # on a phone the sidebar is folded away
    return True


def _plain(text: str) -> str:
    # Collection names are lowercase letters, digits and dashes: nothing Markdown would read,
    # but escape anyway so a future naming rule cannot inject formatting.
    return "".join(f"\\{c}" if c in "\\`*_{}[]()#+-.!|<>" else c for c in text)
