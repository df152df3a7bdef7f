"""Conversations that keep their subject, and saved chats, through the CLI (real models)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import Folio
from helpers import write_pdf

NORDWIND = [
    "# Nordwind Shipping quarterly report\n"
    "Nordwind's container revenue in the third quarter was 41 million euros.\n"
    "Container revenue was up 12% from a year ago, driven by new routes to Rotterdam.",
    "# Fleet\nNordwind operates nineteen container ships, all registered in Bergen.",
]
SOLBERG = (
    "# Solberg Mining quarterly report\n\n"
    "Solberg's ore revenue in the third quarter was 17 million euros.\n\n"
    "Ore revenue was down 8% from a year ago, because the Kiruna pit was closed for repairs.\n\n"
    "## Staff\n\nSolberg employs 640 miners at two pits in northern Sweden."
)


@pytest.fixture
def reports(folio: Folio, docs: Path) -> Folio:
    """Two look-alike quarterly reports about different companies."""
    write_pdf(docs / "nordwind.pdf", NORDWIND)
    (docs / "solberg.md").write_text(SOLBERG)
    assert folio.json("ingest", docs)["added"] == 2
    return folio


def ask(folio: Folio, question: str, *args: str) -> dict:
    result = folio("ask", question, "--json", *args)
    assert result.exit_code == 0, result.stderr
    return result.json()


def test_follow_up_keeps_its_subject(reports: Folio) -> None:
    follow_up = "And how did that compare to a year ago?"
    nordwind = "What was Nordwind's container revenue in the third quarter?"
    solberg = "What was Solberg's ore revenue in the third quarter?"
    for chat, question, source, figure in [
        ("nord", nordwind, "nordwind.pdf", "12%"),
        ("sol", solberg, "solberg.md", "8%"),
    ]:
        first = ask(reports, question, "--chat", chat)
        assert first["chat"] == chat and first["standalone_question"] == question
        second = ask(reports, follow_up, "--chat", chat)
        assert second["chat"] == chat and second["question"] == follow_up
        # Retrieval kept the subject: the right report first, with the year-ago figure in it.
        assert second["sources"][0]["source"].endswith(source)
        assert figure in second["sources"][0]["text"]
        assert second["quote"]["source"].endswith(source)
        assert question.split("'")[0].split()[-1] in second["standalone_question"]
        assert second["answer_id"] != first["answer_id"]


def test_unrelated_next_question_gets_no_earlier_content(reports: Folio) -> None:
    ask(reports, "What was Nordwind's container revenue in the third quarter?", "--chat", "c1")
    unrelated = "How many miners does Solberg employ?"
    in_chat = ask(reports, unrelated, "--chat", "c1")
    alone = ask(reports, unrelated)
    assert in_chat["standalone_question"] == unrelated
    assert [s["chunk_id"] for s in in_chat["sources"]] == [s["chunk_id"] for s in alone["sources"]]
    assert "640" in in_chat["answer"] and "Nordwind" not in in_chat["answer"]
    # A plain ask is not saved; the chat has its two turns.
    assert alone["chat"] is None and len(alone["answer_id"]) == 32
    chats = reports.json("chats")["chats"]
    assert [(c["id"], c["turns"]) for c in chats] == [("c1", 2)]


@pytest.mark.slow
def test_conversations_survive_a_new_process_and_concurrent_writers(reports: Folio) -> None:
    def run(*args: str) -> dict:
        proc = reports.subprocess(*args)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        return json.loads(out)

    first = run(
        "ask", "What was Solberg's ore revenue in the third quarter?", "--chat", "q3", "--json"
    )
    listed = run("chats", "--json")["chats"]
    assert listed[0]["id"] == "q3" and listed[0]["turns"] == 1
    assert listed[0]["title"] == first["question"] and listed[0]["collection"] == "default"
    second = run("ask", "And how did that compare to a year ago?", "--chat", "q3", "--json")
    assert second["sources"][0]["source"].endswith("solberg.md")
    assert "Solberg" in second["standalone_question"]
    # Two processes adding to one conversation at once: both turns are kept.
    procs = [
        reports.subprocess("ask", question, "--chat", "q3", "--json")
        for question in ("How many miners does Solberg employ?", "Where are its ships registered?")
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    assert run("chats", "--json")["chats"][0]["turns"] == 4


@pytest.mark.parametrize("chat_id", ["bad id", "../etc", "x" * 65, ""])
def test_invalid_chat_ids_are_usage_errors(folio: Folio, chat_id: str) -> None:
    for args in (["ask", "Anything?", "--chat", chat_id], ["chat", "--chat", chat_id]):
        result = folio(*args)
        assert result.exit_code == 2
        assert result.stderr.startswith("error: invalid chat id") and result.stderr.count("\n") == 1
    assert folio.json("chats") == {"chats": []}


def test_chat_prints_its_id_resumes_and_chats_filter_by_collection(
    reports: Folio, docs: Path
) -> None:
    started = reports("chat", input="What was Nordwind's container revenue in the third quarter?\n")
    assert started.exit_code == 0
    chat_id = started.stdout.split()[1]  # "Chat <id> in 'default' (resume it with ...)"
    resumed = reports("chat", "--chat", chat_id, input="And how did that compare to a year ago?\n")
    assert resumed.exit_code == 0
    assert resumed.stdout.startswith(f"Resuming chat {chat_id} in 'default': 1 turn(s)")
    assert "nordwind.pdf" in resumed.stdout.split("Sources:")[1].splitlines()[1]

    assert reports.json("ingest", docs, "--collection", "other")["added"] == 2
    ask(reports, "How many miners does Solberg employ?", "--collection", "other", "--chat", "o1")
    every = reports.json("chats")["chats"]
    assert {(c["id"], c["collection"], c["turns"]) for c in every} == {
        (chat_id, "default", 2),
        ("o1", "other", 1),
    }
    only = reports.json("chats", "--collection", "other")["chats"]
    assert [c["id"] for c in only] == ["o1"] and only[0]["title"].startswith("How many miners")
    text = reports("chats", "--collection", "default")
    assert chat_id in text.stdout and "o1" not in text.stdout


def test_followup_suite_loads_with_and_without_shared_datasets(tmp_path: Path) -> None:
    from conftest import SHARED_DATASETS
    from eval.datasets import load_dataset

    alone = load_dataset("followups", tmp_path / "work", tmp_path / "no-shared", None, 0)
    assert len(alone.items) >= 10 and all(i.id.startswith("fu-s") for i in alone.items)
    assert all(i.history and i.evidence for i in alone.items)
    assert sum("skipped" in note for note in alone.notes) == 2
    if not SHARED_DATASETS.is_dir():
        pytest.skip("../shared/datasets is not there")
    full = load_dataset("followups", tmp_path / "work", SHARED_DATASETS, None, 0)
    assert len(full.items) >= 30 and all(1 <= len(i.history) <= 2 for i in full.items)
    names = {d.name for d in full.documents}
    assert {"2023 Q3 NVDA.pdf", "Harvard_University.txt", "folio-user-guide.md"} <= names
