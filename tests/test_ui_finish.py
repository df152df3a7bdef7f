"""First run and fit and finish on the web page (AppTest over real Chroma, models and files):
the welcome, one feedback record per answer, remove asks first, the new-collection popover
closes, answer settings per mode, the About panel, no emoji glyphs, safe Markdown answers."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import text_format
from streamlit.testing.v1 import AppTest

from app.markdown import safe_markdown, urls_in
from conftest import REPO, Folio
from page_answers import ask, harbour_collection, open_page

QUESTION = "When was the Skerry lighthouse built?"


@pytest.fixture
def page(folio: Folio, docs: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The page over the default collection holding one PDF."""
    harbour_collection(folio, docs, monkeypatch)
    return open_page()


def run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, at.exception
    return at


def main_text(at: AppTest) -> str:
    parts = [m.value for m in at.main.markdown] + [c.value for c in at.main.caption]
    return "\n".join(parts + [s.value for s in at.main.subheader])


def sidebar_subheaders(at: AppTest) -> list[str]:
    return [s.value for s in at.sidebar.subheader]


def create_collection(at: AppTest, name: str) -> AppTest:
    at.text_input(key="new-collection").input(name)
    at.button(key="create-collection").click()
    return run(at)


# --- feedback ---------------------------------------------------------------------------------


def test_thumb_then_comment_is_one_feedback_record(
    page: AppTest, folio: Folio, tmp_path: Path
) -> None:
    ask(page, QUESTION)
    page.get("feedback")[0].set_value(0)
    run(page)
    comment = next(t for t in page.text_input if t.key and t.key.startswith("fbc-"))
    comment.input("It should name the granite quarry")
    run(page)
    lines = (tmp_path / "data" / "feedback.jsonl").read_text().splitlines()
    assert len(lines) == 1, lines  # one record per answer, not one per click
    record = json.loads(lines[0])
    assert record["rating"] == 0 and record["comment"] == "It should name the granite quarry"
    assert record["question"] == QUESTION and "1887" in record["answer"]
    page.get("feedback")[0].set_value(1)  # changing the thumb keeps the comment
    run(page)
    lines = (tmp_path / "data" / "feedback.jsonl").read_text().splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["rating"] == 1
    assert json.loads(lines[0])["comment"] == "It should name the granite quarry"
    exported = folio("feedback", "export")
    assert exported.exit_code == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(rows) == 1 and rows[0]["comment"] == "It should name the granite quarry"
    assert "1887" in rows[0]["answers"][0]


WRITER = """
import sys
from folio.feedback import FeedbackRecord, record_feedback
from folio.settings import Settings

settings, worker = Settings(data_dir=sys.argv[1]), sys.argv[2]
def record(answer_id, rating, comment):
    return FeedbackRecord(answer_id, rating, comment, "q", "a", False, "default", [], [], {}, {})
for i in range(15):
    record_feedback(settings, record(f"{worker}-{i}", 1, ""))
    record_feedback(settings, record("shared", None, f"from {worker}"))
    record_feedback(settings, record(f"{worker}-{i}", None, f"comment {i}"))
"""


def test_feedback_from_several_processes_keeps_one_record_each(tmp_path: Path) -> None:
    """Four writers at once (like two web pages and the API): nothing lost, one line per id."""
    data = tmp_path / "data"
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(data), f"w{n}"], cwd=REPO)
        for n in range(4)
    ]
    assert [w.wait(timeout=120) for w in writers] == [0, 0, 0, 0]
    records = [json.loads(line) for line in (data / "feedback.jsonl").read_text().splitlines()]
    ids = [r["answer_id"] for r in records]
    assert len(ids) == len(set(ids)) == 4 * 15 + 1
    for r in records:
        if r["answer_id"] == "shared":
            assert r["rating"] is None and r["comment"].startswith("from w")
        else:  # the thumb and the later comment, merged
            assert r["rating"] == 1 and r["comment"].startswith("comment "), r


def test_feedback_written_before_as_a_line_per_change_becomes_one_line(tmp_path: Path) -> None:
    from folio.feedback import FeedbackRecord, feedback_path, read_feedback, record_feedback
    from folio.settings import Settings

    settings = Settings(data_dir=tmp_path / "data")
    path = feedback_path(settings)
    path.parent.mkdir(parents=True)

    def record(answer_id: str, rating: int | None, comment: str, at: str = "") -> FeedbackRecord:
        return FeedbackRecord(
            answer_id, rating, comment, "q", "a", False, "default", [], [], {}, {}, at
        )

    old = [
        record("a1", 0, "", "2026-01-01T00:00:00"),
        record("b2", 1, ""),
        record("a1", None, "wrong year"),
    ]
    path.write_text("".join(json.dumps(asdict(r)) + "\n" for r in old))
    record_feedback(settings, record("a1", None, "wrong year, it was 1887"))
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["answer_id"] for r in records] == ["a1", "b2"]
    assert records[0]["rating"] == 0 and records[0]["comment"] == "wrong year, it was 1887"
    assert records[0]["created_at"] == "2026-01-01T00:00:00" and records[0]["updated_at"]
    assert read_feedback(path) == records


# --- documents and collections ----------------------------------------------------------------


def sidebar_button(at: AppTest, prefix: str) -> Any:
    found = [b for b in at.sidebar.button if (b.key or "").startswith(prefix)]
    assert len(found) <= 1, [b.key for b in found]
    return found[0] if found else None


def test_remove_asks_for_confirmation_first(page: AppTest) -> None:
    sidebar_button(page, "rm-").click()
    run(page)
    assert any(s.startswith("Documents (1)") for s in sidebar_subheaders(page))
    question = [m.value for m in page.sidebar.markdown if m.value.startswith("Remove ")]
    assert question and "harbour\\.pdf" in question[0] and "cannot be undone" in question[0]
    sidebar_button(page, "cancel-rm-").click()
    run(page)
    assert sidebar_button(page, "confirm-rm-") is None
    assert any(s.startswith("Documents (1)") for s in sidebar_subheaders(page))
    sidebar_button(page, "rm-").click()
    run(page)
    sidebar_button(page, "confirm-rm-").click()
    run(page)
    assert any(s.startswith("Documents (0)") for s in sidebar_subheaders(page))


def test_new_collection_popover_closes_after_create(page: AppTest) -> None:
    page.session_state["new-collection-popover"] = True  # the user opened it
    run(page)
    create_collection(page, "Bad Name!")
    assert any("collection names use lowercase" in e.value for e in page.sidebar.error)
    assert page.session_state["new-collection-popover"] is True  # stays open to fix the name
    create_collection(page, "team-b")
    assert page.session_state["collection"] == "team-b"
    assert page.session_state["new-collection-popover"] is False
    assert page.text_input(key="new-collection").value == ""
    assert not page.sidebar.error


def test_empty_collection_shows_the_welcome(page: AppTest) -> None:
    assert "Welcome to Folio" not in main_text(page)  # the default collection has a document
    create_collection(page, "team-b")
    shown = main_text(page)
    assert "Welcome to Folio" in shown
    assert "folio ingest PATH --collection team-b" in shown
    assert "Add documents" in shown and "sidebar" in shown
    assert "PDF, Markdown" in shown and "DOCX" in shown.upper()
    # The welcome holds its own upload box: on a phone the sidebar is folded away.
    ferries = b"# Ferries\n\nThe ferry leaves at noon."
    page.main.file_uploader[0].set_value(("ferries.md", ferries, "text/markdown"))
    run(page)
    assert "Welcome to Folio" not in main_text(page)
    assert any(s.startswith("Documents (1)") for s in sidebar_subheaders(page))
    ask(page, "When does the ferry leave?")
    assert "The ferry leaves at noon" in "\n".join(_rendered(page._tree))
    create_collection(page, "team-c")
    assert "Welcome to Folio" in main_text(page)
    ask(page, QUESTION)
    assert any("The collection 'team-c' is empty" in i.value for i in page.info)
    assert "Welcome to Folio" not in main_text(page)  # the conversation has begun


# --- settings and diagnostics -----------------------------------------------------------------


def slider_labels(at: AppTest) -> list[str]:
    return [s.label for s in at.sidebar.slider]


def test_answer_settings_show_only_what_the_mode_uses(page: AppTest) -> None:
    assert page.selectbox(key="answer-mode").value == "quote"
    assert slider_labels(page) == ["Sources (k)"]
    assert [s.label for s in page.sidebar.selectbox if s.key != "answer-mode"] == ["Collection"]
    page.selectbox(key="answer-mode").select("generate")
    run(page)
    assert slider_labels(page) == ["Sources (k)", "Temperature", "Top-p", "Top-k", "Max tokens"]
    shown = {s.label for s in page.sidebar.selectbox}
    assert {"Model", "Prompt style"} <= shown
    page.slider(key="temp").set_value(0.5)
    run(page)
    page.selectbox(key="answer-mode").select("quote")
    run(page)
    assert slider_labels(page) == ["Sources (k)"]
    page.selectbox(key="answer-mode").select("quote+generate")  # the chosen values come back
    run(page)
    assert page.slider(key="temp").value == 0.5 and not page.warning


def test_operator_details_are_in_about_this_server(page: AppTest, tmp_path: Path) -> None:
    status = [c.value for c in page.sidebar.caption]
    assert any("Ready: answers quote your documents." in c for c in status), status
    assert not any("CMAKE" in c or "rebuild" in c for c in status), status  # not for end users
    about = next(e for e in page.sidebar.expander if e.label == "About this server")
    details = "\n".join(m.value for m in about.markdown)
    assert "GPU offload: off" in details and 'CMAKE_ARGS="-DGGML_CUDA=on"' in details
    assert "llama-cpp-python 0." in details and "llama.cpp build:" in details
    assert str(tmp_path / "data" / "chroma") in details
    assert "Index of 'default': 1 document, 2 chunks" in details, details
    page.selectbox(key="answer-mode").select("generate")
    run(page)
    status = [c.value for c in page.sidebar.caption]
    assert any("Ready: answers from SmolLM2-135M" in c for c in status), status


# --- glyphs -----------------------------------------------------------------------------------


def _is_emoji(char: str) -> bool:
    code = ord(char)
    return (
        0x1F000 <= code <= 0x1FAFF
        or 0x2600 <= code <= 0x27BF
        or 0x2B00 <= code <= 0x2BFF
        or code == 0xFE0F
    )


def _rendered(node: Any) -> list[str]:
    found = []
    proto = getattr(node, "proto", None)
    if proto is not None:
        found.append(text_format.MessageToString(proto, as_utf8=True))
    for child in getattr(node, "children", {}).values():
        found.extend(_rendered(child))
    return found


def test_no_glyph_needs_an_emoji_font(page: AppTest) -> None:
    ask(page, QUESTION)
    ask(page, "What is the boiling point of liquid nitrogen in kelvin?")
    rendered = "\n".join(_rendered(page._tree))
    assert "1887" in rendered and "Not found in your documents" in rendered
    emoji = sorted({c for c in rendered if _is_emoji(c)})
    assert not emoji, emoji
    for source in sorted((REPO / "app").glob("*.py")):  # the page icon is not in the tree
        used = sorted({c for c in source.read_text() if _is_emoji(c)})
        assert not used, (source.name, used)


# --- safe Markdown ----------------------------------------------------------------------------


def test_answers_render_lists_bold_and_code() -> None:
    shown = safe_markdown("Steps:\n\n- **Close** the `valve` [1]\n- Wait\n\n1. one\n2. two")
    assert "<li><strong>Close</strong> the <code>valve</code> [1]</li>" in shown
    assert "<ol>" in shown and "<li>two</li>" in shown


def test_answers_never_carry_html() -> None:
    shown = safe_markdown("Code <script>alert(1)</script> <b>9931</b>\n\n```\n<img src=x>\n```")
    assert "<script>" not in shown and "<b>" not in shown and "<img" not in shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown
    assert "&lt;img src=x&gt;" in shown


def test_only_links_the_documents_contain_are_links() -> None:
    sources = ["Forms are at https://intranet.example/forms. Ask the desk."]
    allowed = urls_in(sources)
    assert allowed == {"https://intranet.example/forms"}
    shown = safe_markdown(
        "See [the forms](https://intranet.example/forms), [this](https://evil.example/x), "
        "<https://evil.example/y>, [js](javascript:alert(1)) and ![pic](https://intranet.example/forms)",
        allowed,
    )
    assert shown.count("<a ") == 2  # the form link, and the image turned into its link text
    assert 'href="https://intranet.example/forms"' in shown
    assert 'rel="noopener noreferrer nofollow"' in shown
    assert "evil.example" in shown and 'href="https://evil.example' not in shown
    assert 'href="javascript' not in shown and "<img" not in shown


def test_unsupported_sentences_are_marked_without_breaking_lists() -> None:
    text = "The gate opens at seven. It closes at noon.\n\n- Code 4711\n- Code 9999 [2]"
    noon = text.index("It closes")
    last = text.index("- Code 9999")
    shown = safe_markdown(
        text, marked=[(noon, noon + len("It closes at noon.")), (last, len(text))]
    )
    assert (
        '<p>The gate opens at seven. <span class="folio-unsupported" '
        'title="not supported by the sources">It closes at noon.</span></p>'
    ) in shown
    assert "<li>Code 4711</li>" in shown
    assert '<li><span class="folio-unsupported"' in shown and "Code 9999 [2]</span></li>" in shown
    # A private-use character in the model's text cannot open a mark of its own.
    assert "<span" not in safe_markdown("odd \ue000 text \ue001 here")
