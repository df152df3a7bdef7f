"""Asking the page a question under AppTest and waiting for the answer.

The page does not answer in the script run that takes the question: the service's worker does,
and the page polls it (a fragment with run_every, which AppTest does not fire). So a test reruns
the page until no answer is pending: no Stop or Cancel button is left.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import REPO, Folio
from helpers import write_pdf

PAGE = str(REPO / "app" / "streamlit_app.py")
HARBOUR = [
    "# Harbour report\nThe harbour office opens at seven in the morning on weekdays.",
    "# Lighthouse\nThe Skerry lighthouse was built in 1887 from local granite.",
]


def harbour_collection(folio: Folio, docs: Path, monkeypatch: pytest.MonkeyPatch) -> Folio:
    """The default collection holding one 2-page PDF; the page's settings come from the
    environment, as `folio ui` gives them."""
    for key, value in folio.env.items():
        monkeypatch.setenv(key, value)
    write_pdf(docs / "harbour.pdf", HARBOUR)
    assert folio.json("ingest", docs)["added"] == 1
    return folio


def open_page() -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    return at


def pending(at: AppTest) -> bool:
    """An answer is still waiting or being generated (its Stop or Cancel button shows)."""
    return any(b.key and b.key.startswith(("stop-", "cancel-")) for b in at.button)


def wait_for_answers(at: AppTest, timeout: float = 180) -> AppTest:
    deadline = time.monotonic() + timeout
    while pending(at):
        if time.monotonic() > deadline:
            raise AssertionError(f"no answer within {timeout:.0f} s")
        time.sleep(0.3)
        at.run()
        assert not at.exception, at.exception
    return at


def ask(at: AppTest, question: str, timeout: float = 180) -> AppTest:
    """Send a question from the chat box and wait until it is answered."""
    at.chat_input[0].set_value(question).run()
    assert not at.exception, at.exception
    return wait_for_answers(at, timeout)
