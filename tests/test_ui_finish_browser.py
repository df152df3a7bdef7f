"""First run in a real browser (`folio ui` and headless Chromium): an empty collection shows the
welcome, the new-collection popover closes after Create, and a 400 px wide window reaches the
upload control, with the keyboard too.

Screenshots go to build/test-output/ui-finish-browser/ (or $FOLIO_TEST_OUTPUT).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import chromium, wait_for
from conftest import REPO
from servers import folio_ui

pytestmark = pytest.mark.slow

UPLOADER = '[data-testid="stFileUploader"]'


@pytest.fixture
def shots() -> Path:
    folder = Path(os.environ.get("FOLIO_TEST_OUTPUT", REPO / "build" / "test-output"))
    folder = folder / "ui-finish-browser"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def browser(tmp_path: Path, shots: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("PYTEST_SHOT", str(shots))
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def body_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    return str(driver.find_element(By.TAG_NAME, "body").text)


def within_window(driver: Any, element: Any) -> bool:
    """Shown, and inside the window's width and height once scrolled to."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    box = element.rect
    width, height = driver.execute_script("return [window.innerWidth, window.innerHeight];")
    return bool(
        element.is_displayed()
        and box["x"] >= 0
        and box["x"] + box["width"] <= width
        and 0 <= box["y"] <= height
    )


def test_first_run_welcome_and_upload_at_400_px(
    base_env: dict[str, str], tmp_path: Path, browser: Any, shots: Path
) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    notes = tmp_path / "ferries.md"
    notes.write_text("# Ferries\n\nThe ferry to Skerry leaves at noon on weekdays.\n")
    env = {**os.environ, **base_env}
    with folio_ui(env, tmp_path / "ui.log") as (url, _):
        # A new server, an empty collection: the main area says what to do.
        browser.get(url)
        wait_for(browser, lambda d: "Welcome to Folio" in body_text(d), 120, "the welcome")
        welcome = body_text(browser)
        assert "folio ingest PATH" in welcome and "Supported formats" in welcome
        browser.save_screenshot(str(shots / "01-welcome-1400px.png"))
        assert "GPU offload" not in body_text(browser)  # operator details wait in a closed panel
        browser.find_element(By.XPATH, "//summary[contains(., 'About this server')]").click()
        wait_for(browser, lambda d: "GPU offload: off" in body_text(d), 30, "About this server")
        browser.save_screenshot(str(shots / "01-about-this-server.png"))

        # A new collection from the keyboard: type its name, Enter; the popover closes.
        browser.find_element(By.XPATH, "//button[contains(., 'New collection')]").click()
        name = wait_for(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, "input[aria-label='Name']"),
            30,
            "the new-collection popover",
        )[0]
        name.send_keys("team-b", Keys.ENTER)
        wait_for(
            browser,
            lambda d: "collection team-b has no documents" in body_text(d),
            60,
            "the welcome of the new collection",
        )
        wait_for(
            browser,
            lambda d: not d.find_elements(By.CSS_SELECTOR, "input[aria-label='Name']"),
            10,
            "the popover to close",
        )
        browser.save_screenshot(str(shots / "02-created-team-b.png"))

        # A phone-sized window: the welcome's own upload box is right there.
        browser.set_window_size(400, 900)
        browser.refresh()
        wait_for(
            browser, lambda d: "Welcome to Folio" in body_text(d), 120, "the welcome at 400 px"
        )
        box = browser.find_element(By.CSS_SELECTOR, f".st-key-folio-welcome {UPLOADER}")
        assert within_window(browser, box)
        browser.save_screenshot(str(shots / "03-welcome-400px.png"))
        box.find_element(By.CSS_SELECTOR, 'input[type="file"]').send_keys(str(notes))
        wait_for(browser, lambda d: "Welcome to Folio" not in body_text(d), 120, "the upload")

        # With documents, the sidebar holds them: its named toggle opens it from the keyboard.
        browser.refresh()
        toggle = wait_for(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, '[data-testid="stExpandSidebarButton"]'),
            60,
            "the sidebar toggle",
        )[0]
        assert within_window(browser, toggle)
        assert toggle.get_attribute("aria-label") == "Expand sidebar"
        after = "return getComputedStyle(arguments[0], '::after').content;"
        wait_for(
            browser,
            lambda d: "Documents" in d.execute_script(after, toggle),
            30,
            "the toggle's 'Documents' label",
        )
        wait_for(browser, lambda d: "Ask questions about" in body_text(d), 60, "the page")
        browser.save_screenshot(str(shots / "04-documents-toggle-400px.png"))
        for _ in range(15):  # Tab from the top of the page to the toggle, then Enter
            focused = browser.switch_to.active_element
            if focused.get_attribute("data-testid") == "stExpandSidebarButton":
                break
            ActionChains(browser).send_keys(Keys.TAB).perform()
        assert browser.switch_to.active_element.get_attribute("data-testid") == (
            "stExpandSidebarButton"
        ), "Tab never reached the sidebar toggle"
        ActionChains(browser).send_keys(Keys.ENTER).perform()
        sidebar = f'[data-testid="stSidebar"] {UPLOADER}'
        wait_for(
            browser,
            lambda d: within_window(d, d.find_element(By.CSS_SELECTOR, sidebar)),
            30,
            "the sidebar's upload control at 400 px",
        )
        assert "ferries.md" in body_text(browser)
        browser.save_screenshot(str(shots / "05-sidebar-upload-400px.png"))
