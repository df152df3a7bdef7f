"""The web page's logic through Streamlit's AppTest: real Chroma, real models, real files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from conftest import Folio
from folio.service.documents import UploadError, safe_upload_name
from helpers import write_pdf, write_truncated_pdf
from page_answers import harbour_collection, open_page


@pytest.fixture
def page(folio: Folio, docs: Path, monkeypatch: pytest.MonkeyPatch) -> AppTest:
    """The page over a collection holding one PDF; settings come from the environment."""
    harbour_collection(folio, docs, monkeypatch)
    return open_page()


def html_text(at: AppTest) -> str:
    return "\n".join(str(element.proto.body) for element in at.get("html"))


def sidebar_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.sidebar.markdown) + "\n".join(
        c.value for c in at.sidebar.caption
    )


def ask(at: AppTest, question: str) -> AppTest:
    from page_answers import ask as ask_and_wait  # the service answers; the page follows

    return ask_and_wait(at, question)


def test_ask_shows_quote_and_page_sources(page: AppTest) -> None:
    ask(page, "When was the Skerry lighthouse built?")
    assert "built in 1887" in html_text(page)
    labels = [e.label for e in page.expander]
    assert any("harbour.pdf, page 2" in label and "cited" in label for label in labels), labels
    # The cited passage is highlighted in the source text.
    assert re.search(r"<mark>[^<]*Skerry lighthouse was built in 1887[^<]*</mark>", html_text(page))
    assert any("retrieval" in c.value and "ms" in c.value for c in page.caption)


def test_off_topic_question_is_refused_not_an_error(page: AppTest) -> None:
    ask(page, "What is the boiling point of liquid nitrogen in kelvin?")
    assert any("Not found in your documents" in i.value for i in page.info)
    assert not page.error


def test_new_chat_clears_the_conversation(page: AppTest) -> None:
    ask(page, "When was the Skerry lighthouse built?")
    assert len(page.chat_message) == 2
    page.sidebar.button[0].click().run()
    assert len(page.chat_message) == 0


def test_upload_adds_documents_and_reports_bad_files(page: AppTest, tmp_path: Path) -> None:
    broken = b"%PDF-1.7\nthis is not really a pdf"
    ferries = b"# Ferries\n\nThe ferry leaves at noon."
    page.sidebar.file_uploader[0].set_value(
        [
            ("../../evil notes.md", ferries, "text/markdown"),
            ("ferry notes.md", ferries, "text/markdown"),
            ("broken.pdf", broken, "application/pdf"),
        ]
    ).run()
    assert not page.exception, page.exception
    listing = sidebar_text(page)
    assert "ferry notes\\.md" in listing, listing
    errors = [e.value for e in page.sidebar.error]
    assert len(errors) == 2, errors
    assert errors[0].startswith("../../evil notes.md:") and "'..'" in errors[0]
    assert errors[1].startswith("broken.pdf:"), errors
    data = tmp_path / "data"
    uploaded = sorted(p.name for p in (data / "uploads" / "default").iterdir())
    assert uploaded == ["ferry notes.md"]  # neither failed file is left behind
    ask(page, "When does the ferry leave?")
    assert "The ferry leaves at noon." in html_text(page)


def test_failed_reupload_keeps_the_previous_version(page: AppTest, tmp_path: Path) -> None:
    good = write_pdf(tmp_path / "good.pdf", ["# Gate\nThe gate code is 4711.", "# Shed\nNo code."])
    bad = write_truncated_pdf(tmp_path / "bad.pdf", ["# Gate\nThe gate code is 1234."])
    page.sidebar.file_uploader[0].set_value(("guide.pdf", good.read_bytes(), "application/pdf"))
    page.run()
    page.sidebar.file_uploader[0].set_value(("guide.pdf", bad.read_bytes(), "application/pdf"))
    page.run()
    errors = [e.value for e in page.sidebar.error]
    assert len(errors) == 1 and errors[0].startswith("guide.pdf: "), errors
    saved = tmp_path / "data" / "uploads" / "default" / "guide.pdf"
    assert saved.read_bytes() == good.read_bytes()
    assert sorted(p.name for p in saved.parent.iterdir()) == ["guide.pdf"]
    ask(page, "What is the gate code?")
    assert "4711" in html_text(page)


def test_remove_button_removes_the_document(page: AppTest) -> None:
    remove = [b for b in page.sidebar.button if b.key and b.key.startswith("rm-")]
    assert len(remove) == 1
    remove[0].click().run()
    assert any("Documents (1)" in s.value for s in page.sidebar.subheader)  # it asks first
    confirm = [b for b in page.sidebar.button if b.key and b.key.startswith("confirm-rm-")]
    confirm[0].click().run()
    assert "Documents (0)" in sidebar_text(page) or any(
        "Documents (0)" in s.value for s in page.sidebar.subheader
    )
    ask(page, "When was the Skerry lighthouse built?")
    assert any("The collection 'default' is empty" in i.value for i in page.info)


def test_feedback_is_stored_and_exported(page: AppTest, folio: Folio, tmp_path: Path) -> None:
    ask(page, "When was the Skerry lighthouse built?")
    page.get("feedback")[0].set_value(1).run()
    comment = next(t for t in page.text_input if t.key and t.key.startswith("fbc-"))
    comment.input("Exactly right").run()
    lines = (tmp_path / "data" / "feedback.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    last = records[-1]
    assert last["rating"] == 1 and last["comment"] == "Exactly right"
    assert last["question"] == "When was the Skerry lighthouse built?"
    assert "1887" in last["answer"]
    assert last["prompt"]["name"] and last["model"]["path"].endswith(".gguf")
    assert any(s["page"] == 2 for s in last["sources"])

    exported = folio("feedback", "export")
    assert exported.exit_code == 0, exported.stderr
    rows = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(rows) == 1
    row = rows[0]
    assert row["question"] == "When was the Skerry lighthouse built?"
    assert row["answerable"] is True and "1887" in row["answers"][0]
    assert {"source": str(Path(row["evidence"][0]["source"])), "page": 2} in row["evidence"]


def test_document_text_is_rendered_escaped(
    page: AppTest, folio: Folio, docs: Path, tmp_path: Path
) -> None:
    (docs / "script.md").write_text(
        "# Notes\n\nThe alarm code <script>alert('x')</script> is <b>9931</b> for the shed."
    )
    folio("ingest", docs)
    ask(page, "What is the alarm code for the shed?")
    from app.render import CITATION_SCRIPT  # the page's own script (`[n]` links), no user text

    body = html_text(page).replace(CITATION_SCRIPT, "")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in body
    assert "<script>" not in body and "<b>9931</b>" not in body


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("report.PDF", "report.pdf"),
        ("C:\\Users\\x\\notes.md", "notes.md"),
        ("we$ird name;.html", "we_ird name_.html"),
    ],
)
def test_upload_names_are_sanitised(name: str, expected: str) -> None:
    assert safe_upload_name(name) == expected


@pytest.mark.parametrize(
    "name", ["..", "noext", "tool.exe", "../", "notes.md/", "../../etc/passwd.txt", ".hidden.md"]
)
def test_unusable_upload_names_are_refused(name: str) -> None:
    """Traversal and hidden names are refused, not rewritten: the user learns what happened."""
    with pytest.raises(UploadError, match=r"file|'\.\.'"):
        safe_upload_name(name)


def test_create_and_switch_collections(page: AppTest) -> None:
    page.text_input(key="new-collection").input("team-b")
    page.button(key="create-collection").click().run()
    assert page.session_state["collection"] == "team-b"
    assert any("Documents (0)" in s.value for s in page.sidebar.subheader)
    ask(page, "When was the Skerry lighthouse built?")
    assert any("The collection 'team-b' is empty" in i.value for i in page.info)
    page.sidebar.selectbox[0].select("default").run()
    assert len(page.chat_message) == 0  # the conversation belonged to the other collection
    assert any("Documents (1)" in s.value for s in page.sidebar.subheader)
    page.text_input(key="new-collection").input("Bad Name!")
    page.button(key="create-collection").click().run()
    assert any("collection names use lowercase" in e.value for e in page.error)


def test_the_page_and_the_cli_give_the_same_answer_object(page: AppTest, folio: Folio) -> None:
    """Both ask the service: the same question and settings give the same answer object."""
    question = "When was the Skerry lighthouse built?"
    ask(page, question)
    from folio.service import FolioService  # the page shows the saved conversation's turn
    from folio.settings import load_settings

    shown = FolioService(load_settings()).chat(page.query_params["chat"])["turns"][-1]
    cli = folio.json("ask", question)
    volatile = ("timings", "answer_id", "chat")
    for key in volatile:
        shown.pop(key), cli.pop(key)
    assert shown == cli
    assert "1887" in shown["answer"] and shown["citations"][0]["page"] == 2
