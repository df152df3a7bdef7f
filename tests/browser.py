"""Headless Chromium for the real-browser tests (Debian's chromium and chromium-driver)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1700",
]  # fmt: skip


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """A selenium driver for headless Chromium with its own profile folder."""
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("chromium and chromium-driver are missing: run `make browser` (apt-get)")
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Any, timeout: float = 120, what: str = "") -> Any:
    """Wait for `condition(driver)`; on a timeout, a screenshot lands in $PYTEST_SHOT."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)
    except TimeoutException:
        driver.save_screenshot(str(Path(os.environ.get("PYTEST_SHOT", "/tmp")) / "timeout.png"))
        raise AssertionError(f"timed out waiting for {what}") from None
