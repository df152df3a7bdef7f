"""The web UI's password gate: nothing of Folio is shown or loaded until the password is right.

Streamlit renders everything on the server, so stopping the script before the app draws
anything keeps documents, uploads and deletes away from a browser that has not logged in.
Success is remembered per browser session (a reload or a new tab asks again).
"""

from __future__ import annotations

import threading
import time

import streamlit as st

from folio.auth import verify_password
from folio.settings import Settings

# Seconds a wrong password waits before it is answered. Checks are serialised process-wide
# (below), so this bounds guessing to about one try per second however many sessions try.
WRONG_PASSWORD_DELAY_S = 1.0
_SESSION_KEY = "folio_logged_in"
# Module state survives Streamlit's reruns (the module is imported once per process).
_checks = threading.Lock()


def _password_is_right(password: str, stored_hash: str) -> bool:
    with _checks:
        if verify_password(password, stored_hash):
            return True
        time.sleep(WRONG_PASSWORD_DELAY_S)
        return False


def _log_out() -> None:
    # Forget the whole session (chat history included), not only the login flag.
    for key in list(st.session_state.keys()):
        del st.session_state[key]


def require_login(settings: Settings) -> None:
    """Ask for the password when `ui_password_hash` is set; stop the page until it is right."""
    stored_hash = settings.ui_password_hash
    if not stored_hash:
        return
    if st.session_state.get(_SESSION_KEY):
        st.sidebar.button("Log out", icon=":material/logout:", on_click=_log_out)
        return

    st.title("Folio")
    st.caption("This Folio is protected: enter the password to reach its documents.")
    with st.form("folio-login", clear_on_submit=True, width=480):
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Log in", type="primary")
    if submitted and password:
        try:
            right = _password_is_right(password, stored_hash)
        except ValueError as exc:  # a malformed setting: say which, let nobody in
            st.error(str(exc))
            st.stop()
        if right:
            st.session_state[_SESSION_KEY] = True
            st.rerun()
        st.error("Wrong password")
    elif submitted:
        st.warning("Type the password first.")
    st.stop()
