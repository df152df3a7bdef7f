"""The web UI in a real browser: `folio ui` driven by headless Chromium (Debian's package).

Screenshots of every step go to build/test-output/ui-browser/ (or $FOLIO_TEST_OUTPUT).
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
from conftest import REPO
from helpers import write_pdf
from servers import folio_ui

pytestmark = pytest.mark.slow

# Records every text the last assistant message shows: streaming means many growing texts.
OBSERVE = """
window.folioTexts = [];
new MutationObserver(() => {
  const msgs = document.querySelectorAll('[data-testid="stChatMessage"]');
  if (msgs.length < 2) return;
  const text = msgs[msgs.length - 1].innerText;
  if (window.folioTexts[window.folioTexts.length - 1] !== text) window.folioTexts.push(text);
}).observe(document.body, {subtree: true, childList: true, characterData: true});
"""


@pytest.fixture
def shots() -> Path:
    folder = Path(os.environ.get("FOLIO_TEST_OUTPUT", REPO / "build" / "test-output"))
    folder = folder / "ui-browser"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def ui_url(base_env: dict[str, str], tmp_path: Path) -> Iterator[str]:
    # quote+generate: the model's answer streams, and the quote replaces it if unsupported.
    env = {**os.environ, **base_env, "FOLIO_ANSWER_MODE": "quote+generate"}
    env["FOLIO_MAX_TOKENS"] = "48"
    with folio_ui(env, tmp_path / "ui.log") as (url, _):
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def test_upload_ask_open_page_and_leave_feedback(
    ui_url: str, browser: Any, shots: Path, tmp_path: Path, base_env: dict[str, str]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    pdf = write_pdf(
        tmp_path / "harbour-report.pdf",
        [
            "# Harbour report\nThe harbour office opens at seven in the morning on weekdays.",
            "# Lighthouse\nThe Skerry lighthouse was built in 1887 from local granite.",
            "# Ferries\nFerries to the outer islands leave every ninety minutes in summer.",
        ],
    )
    os.environ["PYTEST_SHOT"] = str(shots)
    browser.get(ui_url)
    chat_box = "textarea[data-testid='stChatInputTextArea']"
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, chat_box), what="the page")

    # Upload through the real file input (what drag and drop feeds).
    browser.find_element(By.CSS_SELECTOR, "[data-testid='stFileUploader'] input[type='file']") \
        .send_keys(str(pdf))  # fmt: skip
    sidebar = "[data-testid='stSidebar']"
    wait_for(
        browser,
        lambda d: (
            "harbour-report.pdf" in d.find_element(By.CSS_SELECTOR, sidebar).text
            and "1 added" in d.find_element(By.CSS_SELECTOR, sidebar).text
        ),
        what="the uploaded document in the side panel",
    )
    assert "3 pages" in browser.find_element(By.CSS_SELECTOR, sidebar).text
    browser.save_screenshot(str(shots / "01-uploaded.png"))

    # Ask; the answer streams into the page token by token.
    browser.execute_script(OBSERVE)
    box = browser.find_element(By.CSS_SELECTOR, chat_box)
    box.send_keys("When was the Skerry lighthouse built?")
    box.send_keys(Keys.ENTER)
    wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "[data-testid='stFeedback'] button"),
        what="the finished answer",
    )
    browser.save_screenshot(str(shots / "02-answer.png"))
    texts = [t for t in browser.execute_script("return window.folioTexts") if t.strip()]
    streaming = [t for t in texts if "Sources" not in t]
    assert len(streaming) >= 3, f"no streaming seen: {texts[:5]}"
    message = browser.find_elements(By.CSS_SELECTOR, "[data-testid='stChatMessage']")[-1]
    assert "1887" in message.text

    # The page-2 source: open it, see the page rendered and its text.
    summary = [
        s
        for s in message.find_elements(By.CSS_SELECTOR, "[data-testid='stExpander'] summary")
        if "harbour-report.pdf, page 2" in s.text
    ]
    assert summary, message.text
    assert "cited" in summary[0].text
    summary[0].click()
    toggle = wait_for(
        browser,
        lambda d: [
            t for t in d.find_elements(By.CSS_SELECTOR, "[data-testid='stCheckbox'] label")
            if "Open page 2" in t.text and t.is_displayed()
        ],
        what="the 'Open page 2' toggle",
    )  # fmt: skip
    toggle[0].click()
    image = wait_for(
        browser,
        lambda d: [
            i for i in d.find_elements(By.CSS_SELECTOR, "[data-testid='stImage']")
            if "harbour-report.pdf, page 2" in i.text
        ],
        what="the rendered page 2",
    )  # fmt: skip
    picture = image[0].find_element(By.TAG_NAME, "img")
    wait_for(browser, lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalHeight > 0", picture
    ), 30, "the page image to load")  # fmt: skip
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'});", picture)
    page_text = browser.find_element(By.CSS_SELECTOR, ".folio-page").text
    assert "Skerry lighthouse was built in 1887" in page_text
    assert "harbour office" not in page_text  # page 2 only, not page 1
    time.sleep(0.5)
    browser.save_screenshot(str(shots / "03-source-page-2.png"))
    image[0].screenshot(str(shots / "03b-page-2-image.png"))

    # Feedback: thumbs up and a comment, stored with the question and its sources.
    thumbs = browser.find_elements(By.CSS_SELECTOR, "[data-testid='stFeedback'] button")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", thumbs[0])
    thumbs[0].click()
    comment = wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "input[placeholder^='What was right']"),
        what="the comment box",
    )
    comment[0].send_keys("Right page, right year")
    comment[0].send_keys(Keys.ENTER)
    wait_for(
        browser,
        lambda d: "Thanks: feedback saved." in d.find_element(By.TAG_NAME, "body").text,
        what="the feedback confirmation",
    )
    time.sleep(0.5)
    browser.save_screenshot(str(shots / "04-feedback.png"))
    feedback = Path(base_env["FOLIO_DATA_DIR"]) / "feedback.jsonl"
    wait_for(browser, lambda d: "Right page" in feedback.read_text(), 20, "the feedback file")
    records = [json.loads(line) for line in feedback.read_text().splitlines()]
    assert records[-1]["comment"] == "Right page, right year"
    assert any(r["rating"] == 1 for r in records)
    assert any(s["page"] == 2 for s in records[-1]["sources"])
