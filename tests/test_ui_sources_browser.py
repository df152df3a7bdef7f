"""Sources in a real browser (headless Chromium driving a real `folio ui`): clicking `[1]` in the
answer opens source 1, and its page renders at least 1,200 px wide with the cited passage
highlighted in the highlight colour.

Screenshots go to build/test-output/ui-sources-browser/ (or $FOLIO_TEST_OUTPUT).
"""

from __future__ import annotations

import io
import os
import shutil
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from browser import chromium, wait_for
from conftest import REPO, Folio
from helpers import write_labelled_pdf
from servers import folio_ui

pytestmark = pytest.mark.slow

QUESTION = "When was the Skerry lighthouse built?"
PAGES = [
    "# Preface\nThis report describes the harbour of Skerry and its buildings.",
    "# Lighthouse\nThe Skerry lighthouse was built in 1887 from local granite.",
    "# Ferries\nFerries to the outer islands leave every ninety minutes in summer.",
]
PASSAGE = "Skerry lighthouse was built in 1887"


@pytest.fixture
def shots() -> Path:
    folder = Path(os.environ.get("FOLIO_TEST_OUTPUT", REPO / "build" / "test-output"))
    folder = folder / "ui-sources-browser"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["PYTEST_SHOT"] = str(folder)
    return folder


@pytest.fixture
def report(folio: Folio, docs: Path) -> Path:
    pdf = write_labelled_pdf(docs / "report.pdf", PAGES)
    assert folio.json("ingest", docs)["added"] == 1
    return pdf


@pytest.fixture
def ui_url(base_env: dict[str, str], tmp_path: Path, report: Path) -> Iterator[str]:
    env = {**os.environ, **base_env, "FOLIO_ANSWER_MODE": "quote"}
    with folio_ui(env, tmp_path / "ui.log") as (url, _):
        yield url


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with chromium(tmp_path / "chromium-profile") as driver:
        yield driver


def passage_box(pdf: Path, page: int, passage: str, width_px: int) -> tuple[int, int, int, int]:
    """Where the passage's characters are on the page image (pixels), from pdfium's own text
    search: independent of how the page drew its highlight."""
    import pypdfium2

    document = pypdfium2.PdfDocument(str(pdf))
    try:
        pdf_page = document[page - 1]
        page_width, page_height = pdf_page.get_size()
        text_page = pdf_page.get_textpage()
        found = text_page.search(passage).get_next()
        assert found, f"{passage!r} is not on page {page}"
        index, count = found
        boxes = [text_page.get_charbox(i) for i in range(index, index + count)]
    finally:
        document.close()
    scale = width_px / page_width
    left, bottom = min(b[0] for b in boxes), min(b[1] for b in boxes)
    right, top = max(b[2] for b in boxes), max(b[3] for b in boxes)
    return (
        int(left * scale),
        int((page_height - top) * scale),
        int(right * scale),
        int((page_height - bottom) * scale),
    )


def test_citation_opens_its_source_and_the_page_shows_the_passage(
    ui_url: str, browser: Any, shots: Path, report: Path
) -> None:
    from PIL import Image
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from app.previews import HIGHLIGHT_ON_WHITE

    browser.get(ui_url)
    chat_box = "textarea[data-testid='stChatInputTextArea']"
    wait_for(browser, lambda d: d.find_elements(By.CSS_SELECTOR, chat_box), what="the page")
    box = browser.find_element(By.CSS_SELECTOR, chat_box)
    box.send_keys(QUESTION)
    box.send_keys(Keys.ENTER)
    links = wait_for(
        browser,
        lambda d: [a for a in d.find_elements(By.CSS_SELECTOR, "a.folio-cite") if a.text == "[1]"],
        what="the answer with its [1] citation",
    )
    time.sleep(0.5)
    browser.save_screenshot(str(shots / "01-answer.png"))

    # Source 1 is closed until its citation is clicked; then it is open and on screen.
    source = links[0].get_attribute("data-source")
    expander = browser.find_element(By.CSS_SELECTOR, f".st-key-{source} details")
    assert not expander.get_attribute("open")
    summary = expander.find_element(By.TAG_NAME, "summary")
    assert "[1] report.pdf, page 2 (printed 15)" in summary.text, summary.text
    assert "match" in summary.text and "cited" in summary.text
    browser.execute_script("window.scrollTo(0, 0);")
    links[0].click()
    wait_for(browser, lambda d: expander.get_attribute("open"), 10, "source 1 to open")
    body = expander.find_element(By.CSS_SELECTOR, "[data-testid='stExpanderDetails']")
    wait_for(browser, lambda d: PASSAGE in body.text, 10, "source 1's text")
    wait_for(
        browser,
        lambda d: d.execute_script(
            "const r = arguments[0].getBoundingClientRect();"
            "return r.top >= 0 && r.top < window.innerHeight;",
            summary,
        ),
        10,
        "source 1 scrolled into view",
    )
    assert "<mark>" in body.get_attribute("innerHTML")
    time.sleep(0.5)
    browser.save_screenshot(str(shots / "02-source-1-opened-by-citation.png"))

    # Its page: rendered >= 1,200 px wide, the passage highlighted on the image.
    toggle = wait_for(
        browser,
        lambda d: [
            t for t in body.find_elements(By.CSS_SELECTOR, "[data-testid='stCheckbox'] label")
            if "Open page 2" in t.text
        ],
        what="the 'Open page 2' toggle",
    )  # fmt: skip
    toggle[0].click()
    figure = wait_for(
        browser,
        lambda d: [
            i for i in body.find_elements(By.CSS_SELECTOR, "[data-testid='stImage']")
            if "page 2 (printed 15)" in i.text
        ],
        what="the rendered page 2",
    )  # fmt: skip
    assert "highlighted" in figure[0].text
    picture = figure[0].find_element(By.TAG_NAME, "img")
    wait_for(browser, lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", picture
    ), 30, "the page image to load")  # fmt: skip
    natural = browser.execute_script("return arguments[0].naturalWidth", picture)
    assert natural >= 1200, natural
    with urllib.request.urlopen(picture.get_attribute("src"), timeout=10) as response:
        image = Image.open(io.BytesIO(response.read())).convert("RGB")
    assert image.width == natural
    left, top, right, bottom = passage_box(report, 2, PASSAGE, image.width)
    inside = [image.getpixel((x, y)) for x in range(left, right) for y in range(top, bottom)]
    tinted = sum(pixel == HIGHLIGHT_ON_WHITE for pixel in inside) / len(inside)
    assert tinted > 0.4, f"{tinted:.0%} of the passage's box is in the highlight colour"
    page_rest = [image.getpixel((x, bottom + 60)) for x in range(left, right)]
    assert HIGHLIGHT_ON_WHITE not in page_rest
    for _ in range(2):  # the page may still settle after the image loads
        browser.execute_script("arguments[0].scrollIntoView({block: 'start'});", figure[0])
        time.sleep(0.7)
    browser.save_screenshot(str(shots / "03-page-2-highlighted.png"))
    image.crop((0, 0, image.width, bottom + 200)).save(shots / "03b-page-2-image-top.png")

    # Full size: the page at its rendered width, 1:1.
    full = [
        t for t in body.find_elements(By.CSS_SELECTOR, "[data-testid='stCheckbox'] label")
        if "Full size" in t.text
    ]  # fmt: skip
    full[0].click()
    big = wait_for(
        browser,
        lambda d: body.find_elements(By.CSS_SELECTOR, ".folio-full-page img"),
        what="the full-size page",
    )
    wait_for(browser, lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].clientWidth >= 1200", big[0]
    ), 30, "the full-size image at its own width")  # fmt: skip
    browser.execute_script("arguments[0].scrollIntoView({block: 'start'});", big[0])
    time.sleep(0.5)
    browser.save_screenshot(str(shots / "04-full-size.png"))
