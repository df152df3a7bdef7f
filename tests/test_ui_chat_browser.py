"""Conversations, the answer queue and Stop in a real browser: `folio ui` driven by headless
Chromium, with the real GGUF model generating.

Screenshots of every step go to build/test-output/ui-chat-browser/ (or $FOLIO_TEST_OUTPUT).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import chromium, wait_for
from conftest import REPO, Folio
from helpers import write_pdf
from servers import folio_ui

pytestmark = pytest.mark.slow

# SmolLM2 writes on to max_tokens for this one: long enough to queue behind and to stop.
ESSAY = "Write a long essay about the Skerry lighthouse built in 1887 from local granite."
LIGHTHOUSE = "When was the Skerry lighthouse built?"
CHAT_BOX = "textarea[data-testid='stChatInputTextArea']"
MESSAGES = "[data-testid='stChatMessage']"


@pytest.fixture
def shots() -> Iterator[Path]:
    folder = Path(os.environ.get("FOLIO_TEST_OUTPUT", REPO / "build" / "test-output"))
    folder = folder / "ui-chat-browser"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PYTEST_SHOT"] = str(folder)  # wait_for's screenshot on a timeout
    yield folder


@pytest.fixture
def ui_env(folio: Folio, docs: Path, base_env: dict[str, str]) -> dict[str, str]:
    write_pdf(
        docs / "harbour.pdf",
        [
            "# Harbour report\nThe harbour office opens at seven in the morning on weekdays.",
            "# Lighthouse\nThe Skerry lighthouse was built in 1887 from local granite.",
        ],
    )
    assert folio.json("ingest", docs)["added"] == 1
    return {**os.environ, **base_env, "FOLIO_ANSWER_MODE": "generate", "FOLIO_MAX_TOKENS": "1024"}


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


# Read in one script call: the page redraws pending answers every 0.4 s, and an element found
# by one WebDriver call may be replaced before the next one reads it.
def messages(driver: Any) -> list[str]:
    script = f"return [...document.querySelectorAll({MESSAGES!r})].map(m => m.innerText)"
    return list(driver.execute_script(script))


def message(driver: Any, n: int) -> str:
    """Message n, or "" while the page is redrawing it."""
    shown = messages(driver)
    return shown[n] if len(shown) > n else ""


def body(driver: Any) -> str:
    return str(driver.execute_script("return document.body.innerText"))


def streamed(driver: Any) -> str:
    script = "return [...document.querySelectorAll('.folio-streaming')].map(e => e.innerText)"
    return " ".join(driver.execute_script(script))


def click_stop(driver: Any) -> None:
    """Click the (one) Stop button as a user would, again if a redraw replaced it meanwhile."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By

    for _ in range(5):
        try:
            buttons = driver.find_elements(By.CSS_SELECTOR, "[class*='st-key-stop-'] button")
            shown = [b for b in buttons if b.is_displayed()]
            assert len(shown) == 1 and "Stop" in shown[0].text
            shown[0].click()
            return
        except StaleElementReferenceException:
            time.sleep(0.1)
    raise AssertionError("the Stop button kept being redrawn")


def send(driver: Any, question: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, CHAT_BOX), what="chat box")
    box[0].send_keys(question)
    box[0].send_keys(Keys.ENTER)


def answered(driver: Any, count: int) -> bool:
    """`count` answers are finished: each shows its feedback thumbs; none is pending."""
    from selenium.webdriver.common.by import By

    done = driver.find_elements(By.CSS_SELECTOR, f"{MESSAGES} [data-testid='stFeedback']")
    busy = driver.find_elements(By.CSS_SELECTOR, "[class*='st-key-stop-'] button")
    return len(done) >= count and not busy


def saved_turns(env: dict[str, str], chat_id: str) -> list[dict[str, Any]]:
    """The conversation as the store has it, read by the CLI (one store for every interface)."""
    folio = Folio({k: v for k, v in env.items() if k.startswith(("FOLIO_", "HF_", "TRANSF"))})
    chats = folio.json("chats")["chats"]
    assert [c["id"] for c in chats] == [chat_id], chats
    path = Path(env["FOLIO_DATA_DIR"]) / "conversations" / "default.sqlite3"
    import sqlite3

    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT ask FROM turns WHERE chat_id = ? ORDER BY n", (chat_id,))
        return [json.loads(row[0]) for row in rows]


def test_queue_stop_reload_and_restart(
    ui_env: dict[str, str], browser: Any, shots: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    with folio_ui(ui_env, tmp_path / "ui-1.log") as (url, _):
        browser.get(url)
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, CHAT_BOX), what="the page")

        # A long answer streams; a second question sent meanwhile waits its turn, in view.
        send(browser, ESSAY)
        wait_for(browser, lambda d: len(streamed(d)) > 40, what="the first answer streaming")
        browser.save_screenshot(str(shots / "01-generating.png"))
        send(browser, LIGHTHOUSE)
        wait_for(
            browser, lambda d: "Waiting: 1 answer ahead of yours" in body(d),
            what="the second question waiting",
        )  # fmt: skip
        assert "Searching" not in body(browser)  # one status per answer, no spinner beside it
        browser.save_screenshot(str(shots / "02-second-question-waits.png"))
        shown = messages(browser)
        assert len(shown) == 4 and ESSAY in shown[0] and LIGHTHOUSE in shown[2], shown

        # Stop ends the first answer at once and keeps its text; the second is answered next.
        before_stop = streamed(browser)
        click_stop(browser)
        stopped_at = time.monotonic()
        wait_for(browser, lambda d: "Stopped" in message(d, 1), 30, "the stopped answer")
        assert time.monotonic() - stopped_at < 5
        wait_for(browser, lambda d: answered(d, 2), 180, "the second answer")
        time.sleep(0.5)
        browser.save_screenshot(str(shots / "03-stopped-then-answered.png"))
        shown = messages(browser)
        assert len(shown) == 4, shown
        assert "Generation was stopped" in shown[1] and "1887" in shown[3]
        assert "waited" in shown[3] and "for earlier answers" in shown[3]  # the queue wait
        chat_id = browser.current_url.split("chat=")[1].split("&")[0]
        turns = saved_turns(ui_env, chat_id)
        kept = " ".join(turns[0]["answer"].split()[:4])
        assert kept and kept in " ".join(before_stop.split())  # what streamed is what is kept
        assert kept in " ".join(shown[1].split())
        assert [t["question"] for t in turns] == [ESSAY, LIGHTHOUSE]
        assert turns[0]["stopped"] is True and turns[0]["answer"].strip()
        assert turns[0]["timings"]["completion_tokens"] < 1000  # it did stop early
        assert turns[1]["stopped"] is False and turns[1]["timings"]["queue_ms"] > 100

        # A reload reopens the conversation from the URL.
        browser.refresh()
        wait_for(browser, lambda d: answered(d, 2), 60, "the conversation after a reload")
        assert messages(browser) == shown
        browser.save_screenshot(str(shots / "04-after-reload.png"))

    # A restarted server (same data dir) shows it too: in the list, and at its URL.
    with folio_ui(ui_env, tmp_path / "ui-2.log") as (url, _):
        browser.get(url)
        sidebar = "[data-testid='stSidebar']"
        entry = wait_for(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, f"{sidebar} .st-key-chat-{chat_id} button"),
            what="the conversation in the sidebar list",
        )  # fmt: skip
        assert "Write a long essay" in entry[0].text
        wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, CHAT_BOX), what="the page")
        assert messages(browser) == []  # a fresh visit starts a new conversation
        browser.save_screenshot(str(shots / "05-restarted-list.png"))
        entry[0].click()
        wait_for(browser, lambda d: answered(d, 2), 60, "the conversation opened from the list")
        assert f"chat={chat_id}" in browser.current_url
        reopened = messages(browser)
        assert ESSAY in reopened[0] and "Stopped" in reopened[1] and "1887" in reopened[3]
        browser.get(f"{url}/?chat={chat_id}")
        wait_for(browser, lambda d: answered(d, 2), 60, "the conversation at its URL")
        assert messages(browser) == reopened
        time.sleep(0.5)
        browser.save_screenshot(str(shots / "06-restarted-url.png"))

        # The conversation goes on after the restart; two questions sent back to back are both
        # answered, in the order they were sent.
        send(browser, "What was it built from?")
        send(browser, "When does the harbour office open?")
        wait_for(browser, lambda d: answered(d, 4), 180, "both new answers")
        time.sleep(0.5)
        browser.save_screenshot(str(shots / "07-two-more-in-order.png"))
        shown = messages(browser)
        assert len(shown) == 8, shown
        assert "What was it built from?" in shown[4] and "harbour office" in shown[6]
        assert "granite" in shown[5] and "seven" in shown[7]
        questions = [t["question"] for t in saved_turns(ui_env, chat_id)]
        assert questions[2:] == ["What was it built from?", "When does the harbour office open?"]
