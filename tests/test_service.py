"""The service layer every interface calls: the answer queue (order, positions, cancel), the
empty-collection answer, conversations and feedback. Real Chroma, real models, real files."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Folio
from folio.service import AskRequest, BadRequest, FolioService, NotFound, Queued, ServiceError
from folio.settings import load_settings
from helpers import write_pdf
from retrieval.chain import Answer, Token


@pytest.fixture
def service(folio: Folio, docs: Path) -> Iterator[FolioService]:
    write_pdf(
        docs / "harbour.pdf",
        [
            "# Harbour report\nThe harbour office opens at seven in the morning on weekdays.",
            "# Lighthouse\nThe Skerry lighthouse was built in 1887 from local granite.",
        ],
    )
    assert folio.json("ingest", docs)["added"] == 1
    settings = load_settings(
        data_dir=Path(folio.env["FOLIO_DATA_DIR"]), n_threads=1, torch_threads=1
    )
    svc = FolioService(settings)
    yield svc
    svc.close()


def test_questions_are_answered_in_order_and_a_waiting_one_knows_its_place(
    service: FolioService,
) -> None:
    slow = AskRequest(
        "When was the Skerry lighthouse built?", answer_mode="generate", max_tokens=48
    )
    # Answers that generate share one lane (quotes have their own: see the test below).
    generating = {"answer_mode": "quote+generate", "max_tokens": 12}
    first = service.submit(slow)
    second = service.submit(AskRequest("When does the harbour office open?", **generating))
    third = service.submit(AskRequest("What was the lighthouse built from?", **generating))
    assert second.position >= 1 and third.position == second.position + 1
    events = list(third.follow())
    assert isinstance(events[0], Queued) and events[0].position >= 2
    positions = [e.position for e in events if isinstance(e, Queued)]
    assert positions == sorted(positions, reverse=True)  # it moves up, never back
    answer = events[-1]
    assert isinstance(answer, Answer) and answer.quote and "granite" in answer.quote.text
    # Nothing was dropped and the order held: each started after the one before finished.
    assert first.result().question == slow.question
    harbour = second.result()
    assert harbour.quote and "harbour office opens at seven" in harbour.quote.text
    assert first.started_at and second.started_at and third.started_at
    assert first.started_at < second.started_at < third.started_at
    assert answer.timings["queue_ms"] and answer.timings["queue_ms"] > 0


@pytest.mark.parametrize("mode", ["generate", "quote+generate"])
def test_cancel_drops_a_waiting_question_and_stops_a_running_one(
    service: FolioService, tmp_path: Path, mode: str
) -> None:
    counting = tmp_path / "counting.yaml"  # a prompt that keeps a tiny model going for long
    counting.write_text(
        "name: counting\nversion: 1\nkind: completion\nstop: []\ntemplate: |\n"
        "  {context}\n  Question: {question}\n  Count from 1 to 1000: 1, 2, 3, 4, 5,\n",
        encoding="utf-8",
    )
    running = service.submit(
        AskRequest(
            "When was the Skerry lighthouse built?", prompt=str(counting),
            answer_mode=mode, max_tokens=900,
        )
    )  # fmt: skip
    waiting = service.submit(
        AskRequest("When does the harbour office open?", answer_mode="generate")
    )
    events = running.follow()
    first = next(e for e in events if isinstance(e, Token))  # generating now
    waiting.cancel()
    running.cancel()
    rest = list(events)
    answer = rest[-1]
    assert isinstance(answer, Answer) and answer.to_json()["stopped"] is True
    assert answer.timings["completion_tokens"] is not None
    assert answer.timings["completion_tokens"] < 300  # it stopped long before max_tokens
    assert first.text and answer.generated  # the partial answer is kept
    # ... and shown, in quote+generate too (not swapped for the quote the user never saw).
    assert answer.answer.strip() and answer.answer.split()[0] in answer.generated
    assert waiting.state == "cancelled" and list(waiting.follow()) == []
    # The queue goes on: the next question is answered.
    after = service.ask(AskRequest("When does the harbour office open?"))
    assert "seven" in after.answer and after.to_json()["stopped"] is False


def test_an_empty_collection_says_so(service: FolioService, folio: Folio) -> None:
    assert service.create_collection("empty-one") is True
    assert service.create_collection("empty-one") is False
    answer = service.ask(AskRequest("Anything?", collection="empty-one"))
    assert answer.refused and "The collection 'empty-one' is empty" in answer.answer
    assert "folio ingest PATH --collection empty-one" in answer.answer
    # The CLI says the same, because it asks the service.
    cli = folio.json("ask", "Anything?", "--collection", "empty-one")
    assert cli["answer"] == answer.answer
    names = {c["name"]: c for c in service.collections()}
    assert names["empty-one"] == {"name": "empty-one", "documents": 0, "chunks": 0}
    assert names["default"]["documents"] == 1 and names["default"]["chunks"] >= 2


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (AskRequest("   "), "empty_question"),
        (AskRequest("Why?", k=0), "k_out_of_range"),
        (AskRequest("Why?", collection="Bad Name"), "invalid_collection"),
        (AskRequest("Why?", chat="no spaces allowed"), "invalid_chat_id"),
        (AskRequest("Why?", retrieval_mode="psychic"), "invalid_option"),
        (AskRequest("Why?", prompt="no-such-prompt"), "invalid_option"),
    ],
)
def test_bad_requests_are_refused_before_queueing(
    service: FolioService, request_: AskRequest, code: str
) -> None:
    with pytest.raises(BadRequest) as raised:
        service.submit(request_)
    assert raised.value.code == code and raised.value.status == 422


def test_chats_are_saved_renamed_and_deleted(service: FolioService, folio: Folio) -> None:
    first = service.ask(AskRequest("When was the Skerry lighthouse built?", new_chat=True))
    assert first.chat
    follow_up = service.ask(AskRequest("What was it built from?", chat=first.chat))
    assert "granite" in follow_up.answer and follow_up.chat == first.chat
    transcript = service.chat(first.chat)
    assert [t["question"] for t in transcript["turns"]] == [first.question, follow_up.question]
    assert transcript["turns"][1] == follow_up.to_json()  # the whole ask object is kept
    assert service.rename_chat(first.chat, "Lighthouse facts")["title"] == "Lighthouse facts"
    assert folio.json("chats")["chats"][0]["title"] == "Lighthouse facts"
    service.delete_chat(first.chat)
    with pytest.raises(NotFound):
        service.chat(first.chat)
    assert folio.json("chats")["chats"] == []


def test_feedback_is_one_record_per_rating_for_a_known_answer(
    service: FolioService, folio: Folio
) -> None:
    answer = service.ask(AskRequest("When was the Skerry lighthouse built?"))
    service.feedback(answer.answer_id, "down", "It should say 1887 in the answer")
    with pytest.raises(NotFound):
        service.feedback("no-such-answer", "up")
    lines = (Path(folio.env["FOLIO_DATA_DIR"]) / "feedback.jsonl").read_text().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["rating"] == 0 and record["comment"] == "It should say 1887 in the answer"
    assert record["question"] == answer.question and record["collection"] == "default"


@pytest.mark.parametrize("path", ["", "/", "relative/notes.md", "..", "../data"])
def test_removing_an_empty_root_or_relative_path_is_refused(
    service: FolioService, path: str
) -> None:
    with pytest.raises(BadRequest) as raised:
        service.remove(None, [path])
    assert raised.value.code == "invalid_path"
    assert len(service.sources()["documents"]) == 1  # nothing was removed


def test_an_upload_that_cannot_be_ingested_leaves_the_previous_file(
    service: FolioService, folio: Folio
) -> None:
    from filelock import FileLock

    from folio.service import Upload, error_for

    first = service.upload(None, [Upload("notes.md", b"# Notes\n\nThe gate code is 4711.\n")])
    assert first.report.added == 1
    saved = service.upload_dir("default") / "notes.md"
    quick = FolioService(service.settings.model_copy(update={"lock_timeout_s": 0.2}))
    busy = FileLock(str(service.settings.data_dir / "folio.lock"))  # another writer is busy
    with busy, pytest.raises(Exception) as raised:
        quick.upload(None, [Upload("notes.md", b"# Notes\n\nThe gate code is 1234.\n")])
    quick.close()
    error = error_for(raised.value)
    assert error is not None and error.code == "index_locked" and error.status == 409
    assert "4711" in saved.read_text()  # the file on disk is still the indexed version
    assert sorted(p.name for p in saved.parent.iterdir()) == ["notes.md"]  # no stray backup
    assert "4711" in folio.json("ask", "What is the gate code?")["answer"]


def test_upload_names_keep_letters_of_any_script() -> None:
    from folio.service.documents import safe_upload_name

    assert safe_upload_name("отчёт за квартал.pdf") == "отчёт за квартал.pdf"
    assert safe_upload_name("報告.pdf") == "報告.pdf"
    assert safe_upload_name("résumé.pdf") != safe_upload_name("rósumí.pdf")


def test_a_search_never_creates_a_collection(service: FolioService) -> None:
    assert service.search("nowhere", "lighthouse") == {"query": "lighthouse", "results": []}
    assert "nowhere" not in service.collection_names()


def test_a_chat_id_belongs_to_one_collection(service: FolioService) -> None:
    first = service.ask(AskRequest("When was the Skerry lighthouse built?", chat="harbour-chat"))
    assert first.chat == "harbour-chat"
    service.create_collection("other")
    with pytest.raises(ServiceError) as raised:
        service.submit(AskRequest("Anything?", collection="other", chat="harbour-chat"))
    assert raised.value.code == "chat_in_other_collection" and raised.value.status == 409


def test_removing_an_uploaded_document_by_name_deletes_its_file(service: FolioService) -> None:
    from folio.service import Upload

    result = service.upload(
        None,
        [
            Upload("ferries.md", b"# Ferries\n\nThe ferry leaves at noon.\n"),
            Upload("ferries.md", b"# Ferries\n\nThe ferry leaves at one.\n"),
            Upload("broken.pdf", b"%PDF-1.7\nnot really"),
        ],
    )
    # Failures are named as the client named them; a second part with the same name is refused.
    assert [f["path"] for f in result.report.failed] == ["ferries.md", "broken.pdf"]
    assert "same name" in result.report.failed[0]["error"]
    saved = service.upload_dir("default") / "ferries.md"
    assert "noon" in saved.read_text()
    removed = service.remove(None, ["ferries.md"])
    assert removed["removed"] == [str(saved)] and removed["chunks_removed"] >= 1
    assert not saved.exists()  # Folio's uploaded copy goes with its document
    assert [d["path"] for d in service.sources()["documents"]] != [str(saved)]


def test_a_quote_does_not_wait_behind_a_long_generation(
    service: FolioService, tmp_path: Path
) -> None:
    counting = tmp_path / "counting.yaml"
    counting.write_text(
        "name: counting\nversion: 1\nkind: completion\nstop: []\ntemplate: |\n"
        "  {context}\n  Question: {question}\n  Count from 1 to 1000: 1, 2, 3, 4, 5,\n",
        encoding="utf-8",
    )
    long = service.submit(
        AskRequest("When was the Skerry lighthouse built?", prompt=str(counting),
                   answer_mode="generate", max_tokens=900)
    )  # fmt: skip
    next(e for e in long.follow() if isinstance(e, Token))  # generating now
    quick = service.ask(AskRequest("When does the harbour office open?"))  # quote mode
    assert "seven" in quick.answer
    assert long.state == "running"  # answered while the generation still runs
    long.cancel()
    assert long.result().stopped


def test_an_open_service_sees_what_another_process_ingests_and_removes(
    service: FolioService, folio: Folio, tmp_path: Path
) -> None:
    """The web UI and `folio serve` stay open while the CLI ingests: embedded Chroma keeps its
    vector index in memory, and without a reopen new documents were missing from dense search
    (and removed ones could fail with "Error finding id")."""
    question = "When does the ferry to Skerry leave?"
    assert service.search(None, question, mode="dense")["results"]  # the store is open now
    later = tmp_path / "later"
    later.mkdir()
    write_pdf(later / "ferry.pdf", ["# Ferry\nThe ferry to Skerry leaves at noon from pier four."])

    def other_process(*args: str | Path) -> None:
        done = folio.subprocess(*args, "--json")
        _, err = done.communicate(timeout=300)
        assert done.returncode == 0, err

    other_process("ingest", later)
    hits = service.search(None, question, mode="dense")["results"]
    assert hits[0]["source"].endswith("ferry.pdf") and "pier four" in hits[0]["text"]
    other_process("remove", later / "ferry.pdf")
    hits = service.search(None, question, mode="dense")["results"]
    assert hits and not any(h["source"].endswith("ferry.pdf") for h in hits)
