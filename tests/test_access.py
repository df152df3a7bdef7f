"""Access control: the UI password hash, `folio password-hash`, the open-bind refusal, login.

The browser test drives the real `folio ui` in headless Chromium, as tests/test_ui_browser.py
does; its screenshots go to build/test-output/access/ (or $FOLIO_TEST_OUTPUT).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import chromium, wait_for
from conftest import REPO, Folio, free_port
from folio.auth import (
    OpenBindError,
    api_key_matches,
    hash_password,
    parse_password_hash,
    refuse_open_bind,
    verify_password,
)
from servers import folio_ui

PASSWORD = "harbour lights 1887"


def test_hash_is_salted_self_describing_and_verifies() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)
    assert first.startswith("scrypt$n=16384,r=8,p=1$")
    assert first != second  # a random salt per hash
    parsed = parse_password_hash(first)
    assert len(parsed.salt) == 16 and len(parsed.key) == 32
    assert PASSWORD not in first
    assert verify_password(PASSWORD, first) and verify_password(PASSWORD, second)
    assert not verify_password(PASSWORD + " ", first)
    assert not verify_password("", first)


@pytest.mark.parametrize(
    "stored",
    ["", "hunter2", "bcrypt$x$y$z", "scrypt$n=16384$AAAA$AAAA", "scrypt$n=16384,r=8,p=1$@@$@@"],
)
def test_a_malformed_hash_is_an_error_naming_the_setting(stored: str) -> None:
    with pytest.raises(ValueError, match="ui_password_hash"):
        verify_password(PASSWORD, stored)


def test_api_key_matches_only_the_exact_key() -> None:
    assert api_key_matches("s3cret-key", "s3cret-key")
    assert not api_key_matches("s3cret-kez", "s3cret-key")
    assert not api_key_matches("s3cret", "s3cret-key")
    assert not api_key_matches(None, "s3cret-key")
    assert not api_key_matches("", "")  # an empty key never opens anything
    assert api_key_matches("clé-ü", "clé-ü")  # non-ASCII keys compare too


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.1.1", "localhost", "::1", "[::1]"])
def test_loopback_hosts_need_no_password(host: str) -> None:
    refuse_open_bind(host, secured=False, insecure=False, how="set it")


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "folio.example.org", ""])
def test_open_hosts_are_refused_unless_secured_or_insecure(host: str) -> None:
    with pytest.raises(OpenBindError, match=r"refusing to listen on .* Set FOLIO_X, or pass"):
        refuse_open_bind(host, secured=False, insecure=False, how="set FOLIO_X")
    refuse_open_bind(host, secured=True, insecure=False, how="set FOLIO_X")
    refuse_open_bind(host, secured=False, insecure=True, how="set FOLIO_X")


def test_password_hash_command_prints_a_hash_that_verifies(folio: Folio) -> None:
    result = folio("password-hash", "--stdin", input=PASSWORD + "\n")
    assert result.exit_code == 0, result.stderr
    printed = result.stdout.strip()
    assert verify_password(PASSWORD, printed)  # the newline is not part of the password
    assert "FOLIO_UI_PASSWORD_HASH='" in result.stderr and "ui_password_hash:" in result.stderr

    empty = folio("password-hash", "--stdin", input="\n")
    assert empty.exit_code == 2
    assert "empty" in empty.stderr and not empty.stdout.strip()


def test_password_hash_command_asks_twice_on_a_terminal(folio: Folio) -> None:
    mismatch = folio("password-hash", input=f"{PASSWORD}\nsomething else\n")
    assert mismatch.exit_code != 0 and not mismatch.stdout.strip()
    result = folio("password-hash", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.stderr
    assert verify_password(PASSWORD, result.stdout.strip())
    assert PASSWORD not in result.stdout + result.stderr  # typed without echo


def _run_ui(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`folio ui` as a real process: if it wrongly starts, the timeout ends the test."""
    return subprocess.run(
        [sys.executable, "-m", "folio", "ui", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ui_refuses_a_network_address_without_a_password(base_env: dict[str, str]) -> None:
    port = free_port()
    result = _run_ui(base_env, "--host", "0.0.0.0", "--port", str(port))
    assert result.returncode == 2
    assert "refusing to listen on 0.0.0.0 without a password" in result.stderr
    assert "folio password-hash" in result.stderr and "--insecure" in result.stderr
    assert "Traceback" not in result.stderr
    with pytest.raises(OSError):  # nothing started on the port
        urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2)


def test_ui_refuses_a_malformed_password_hash(base_env: dict[str, str]) -> None:
    env = {**base_env, "FOLIO_UI_PASSWORD_HASH": "not-a-hash"}
    result = _run_ui(env, "--port", str(free_port()))
    assert result.returncode == 2
    assert "ui_password_hash" in result.stderr and "folio password-hash" in result.stderr


@pytest.fixture
def locked_ui(base_env: dict[str, str], tmp_path: Path) -> Iterator[tuple[str, int, str]]:
    """`folio ui` with a password hash in its environment: (url, server pid, the hash)."""
    stored = hash_password(PASSWORD)
    env = {**os.environ, **base_env, "FOLIO_UI_PASSWORD_HASH": stored}
    with folio_ui(env, tmp_path / "ui.log") as (url, pid):
        yield url, pid, stored


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


@pytest.mark.slow
def test_ui_shows_only_the_password_form_until_the_password_is_right(
    folio: Folio, docs: Path, locked_ui: tuple[str, int, str], browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, pid, stored = locked_ui
    shots = Path(os.environ.get("FOLIO_TEST_OUTPUT", REPO / "build" / "test-output")) / "access"
    shots.mkdir(parents=True, exist_ok=True)
    # The hash reaches Streamlit through its environment, not a command line `ps` shows.
    assert stored not in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    (docs / "harbour-secrets.md").write_text("# Harbour\nThe harbour office opens at seven.\n")
    assert folio("ingest", docs).exit_code == 0

    password_box = "input[type='password']"
    body = lambda d: d.find_element(By.TAG_NAME, "body").text  # noqa: E731
    browser.get(url)
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, password_box), 60, "the form")
    time.sleep(1)  # let anything else the page would draw arrive
    browser.save_screenshot(str(shots / "01-password-form.png"))
    assert "harbour-secrets.md" not in body(browser)
    for hidden in ["[data-testid='stSidebar']", "[data-testid='stFileUploader']",
                   "textarea[data-testid='stChatInputTextArea']"]:  # fmt: skip
        assert not browser.find_elements(By.CSS_SELECTOR, hidden), hidden

    started = time.monotonic()
    browser.find_element(By.CSS_SELECTOR, password_box).send_keys("harbour lights 1888", Keys.ENTER)
    wait_for(browser, lambda d: "Wrong password" in body(d), 30, "the refusal")
    assert time.monotonic() - started >= 1.0  # guessing is slowed down
    browser.save_screenshot(str(shots / "02-wrong-password.png"))
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stFileUploader']")

    browser.find_element(By.CSS_SELECTOR, password_box).send_keys(PASSWORD, Keys.ENTER)
    wait_for(
        browser,
        lambda d: d.find_elements(By.CSS_SELECTOR, "textarea[data-testid='stChatInputTextArea']"),
        120,
        "the app after logging in",
    )
    sidebar = wait_for(
        browser,
        lambda d: [s for s in d.find_elements(By.CSS_SELECTOR, "[data-testid='stSidebar']")
                   if "harbour-secrets.md" in s.text],
        60,
        "the documents in the side panel",
    )  # fmt: skip
    assert browser.find_elements(By.CSS_SELECTOR, "[data-testid='stFileUploader']")
    assert "Wrong password" not in body(browser)
    browser.save_screenshot(str(shots / "03-logged-in.png"))

    logout = [b for b in sidebar[0].find_elements(By.TAG_NAME, "button") if "Log out" in b.text]
    assert logout, sidebar[0].text
    logout[0].click()
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, password_box), 30, "the form")
    assert not browser.find_elements(By.CSS_SELECTOR, "[data-testid='stFileUploader']")


def test_page_logic_asks_for_the_password_first(
    base_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same gate through Streamlit's AppTest (no browser): fast, runs without -m slow."""
    from streamlit.testing.v1 import AppTest

    for key, value in {**base_env, "FOLIO_UI_PASSWORD_HASH": hash_password(PASSWORD)}.items():
        monkeypatch.setenv(key, value)
    page = AppTest.from_file(str(REPO / "app" / "streamlit_app.py"), default_timeout=180)
    page.run()
    assert not page.exception, page.exception
    assert [box.label for box in page.text_input] == ["Password"]
    assert not page.chat_input and not page.sidebar.children

    page.text_input[0].input("not it")
    page.button[0].click().run()
    assert [e.value for e in page.error] == ["Wrong password"]
    assert not page.chat_input

    page.text_input[0].input(PASSWORD)
    page.button[0].click().run()
    assert not page.exception, page.exception
    assert page.chat_input and not page.error
    assert "Log out" in [b.label for b in page.sidebar.button]


def test_page_with_a_malformed_hash_lets_nobody_in(
    base_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from streamlit.testing.v1 import AppTest

    for key, value in {**base_env, "FOLIO_UI_PASSWORD_HASH": "scrypt$oops"}.items():
        monkeypatch.setenv(key, value)
    page = AppTest.from_file(str(REPO / "app" / "streamlit_app.py"), default_timeout=60)
    page.run()
    page.text_input[0].input("anything")
    page.button[0].click().run()
    assert not page.exception, page.exception
    assert "ui_password_hash" in page.error[0].value
    assert not page.chat_input and not page.sidebar.children
