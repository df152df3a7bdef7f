"""`folio ask`, `folio chat` and batch questions: answers streamed, cited, and grounded."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from folio.cli import (
    CollectionOption,
    ConfigOption,
    JsonOption,
    KOption,
    ModeOption,
    SourceOption,
    app,
    emit_json,
    fail,
    open_service,
    settings_from,
    user_errors,
)

BatchOption = Annotated[
    Path | None,
    typer.Option("--batch", help="One question per line (or JSON lines with a 'question' field).",
                 exists=True, dir_okay=False),
]  # fmt: skip
PromptOption = Annotated[str | None, typer.Option("--prompt", help="Prompt template name or file.")]
TemperatureOption = Annotated[float | None, typer.Option("--temperature", min=0, help="Sampling.")]
AnswerModeOption = Annotated[
    str | None, typer.Option("--answer-mode", help="quote, generate or quote+generate.")
]
ChatOption = Annotated[
    str | None,
    typer.Option("--chat", help="Conversation id (letters, digits, - and _; created when new)."),
]


def read_batch(path: Path) -> Iterator[str]:
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("{"):
            try:
                yield str(json.loads(line)["question"])
            except (ValueError, KeyError):
                fail(f"{path}: a JSON line needs a 'question' field: {line[:80]}", 2)
        else:
            yield line


def _check_chat(chat: str | None) -> None:
    from folio.conversations import ChatIdError, check_chat_id

    if chat is not None:
        try:
            check_chat_id(chat)
        except ChatIdError as exc:
            fail(str(exc), 2)


def follow(service: Any, request: Any) -> Iterator[Any]:
    """The job's tokens and answer; Ctrl-C stops the generation (the worker is a thread)."""
    from folio.service import Queued

    job = service.submit(request)
    try:
        for event in job.follow():
            if not isinstance(event, Queued):
                yield event
    finally:
        job.cancel()  # no-op once answered; after Ctrl-C the worker stops generating


def _where(hit: Any) -> str:
    """file, page N (printed M): the PDF's own page label when it differs from the index."""
    page = f", page {hit.page}" if hit.page else ""
    printed = f" (printed {hit.page_label})" if hit.page and hit.page_label else ""
    return hit.source.rsplit("/", 1)[-1] + page + printed


def _flagged(sentence: Any) -> str:
    """An unsupported sentence, with the numbers and names that no source contains."""
    terms = sentence.unsupported_terms
    return sentence.sentence + (f" (not in the sources: {', '.join(terms)})" if terms else "")


def print_answer(events: Iterator[Any], stream: bool) -> Any:
    """Stream tokens to stdout, then the quote, the sources and the grounding verdict."""
    from retrieval.chain import Answer

    streamed = ""
    result: Answer | None = None
    for event in events:
        if isinstance(event, Answer):
            result = event
        elif stream:
            streamed += event.text
            typer.echo(event.text, nl=False)
    assert result is not None
    if streamed.strip() and result.answer != result.generated:
        typer.echo(
            "\n(that draft is not the answer: parts of it were unsupported by the sources or"
            " prompt text; the checked answer is:)"
        )
    if not streamed.strip() or result.answer != result.generated:
        typer.echo(result.answer)
    else:
        typer.echo()
    if result.quote and not result.refused:
        q = result.quote
        typer.echo(f'\nQuote [{q.hit.rank}]: "{q.text}" ({_where(q.hit)})')
    if result.sources:
        typer.echo("\nSources:")
        for hit in result.sources:
            typer.echo(f"  [{hit.rank}] {_where(hit)}  (score {hit.score:.2f})")
    unsupported = [s for s in result.sentences if not s.supported]
    if result.generated and not result.refused:
        typer.echo(f"\nSupport {result.support:.2f}" + (
            f"; unsupported: {' | '.join(_flagged(s) for s in unsupported)}" if unsupported else ""
        ))  # fmt: skip
    return result


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question.")] = None,
    collection: CollectionOption = None,
    k: KOption = None,
    prompt: PromptOption = None,
    temperature: TemperatureOption = None,
    answer_mode: AnswerModeOption = None,
    mode: ModeOption = None,
    source: SourceOption = None,
    batch: BatchOption = None,
    chat: ChatOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Answer a question from your documents, with page citations (streams as it generates).
    With --chat ID the answer continues (and is saved in) conversation ID."""
    from folio.service import AskRequest

    if (question is None) == (batch is None):
        fail("give a QUESTION or --batch FILE", 2)
    settings = settings_from(
        config, collection=collection, k=k, prompt=prompt, answer_mode=answer_mode,
        retrieval_mode=mode, temperature=temperature,
    )  # fmt: skip
    _check_chat(chat)
    questions = [question] if question is not None else list(read_batch(batch))  # type: ignore[arg-type]
    with user_errors():
        service = open_service(settings)
        try:
            for text in questions:
                events = follow(service, AskRequest(text, chat=chat, source=source))
                if as_json:
                    *_, result = events
                    emit_json(result.to_json())
                else:
                    print_answer(events, stream=True)
                    if chat is not None:
                        typer.echo(f"\n(chat {chat})")
        finally:
            service.close()


@app.command()
def chat(
    collection: CollectionOption = None,
    k: KOption = None,
    prompt: PromptOption = None,
    chat: ChatOption = None,
    config: ConfigOption = None,
) -> None:
    """An interactive, saved chat: follow-ups use the conversation so far. Ctrl-D to leave.
    --chat ID resumes conversation ID (or starts it); without it a new id is made and printed."""
    from folio.conversations import new_chat_id
    from folio.service import AskRequest, NotFound

    settings = settings_from(config, collection=collection, k=k, prompt=prompt)
    chat_id = new_chat_id() if chat is None else chat
    _check_chat(chat_id)
    with user_errors():
        service = open_service(settings)
        try:
            turns = service.chat(chat_id)["turns"]
        except NotFound:
            turns = []
        if turns:
            typer.echo(
                f"Resuming chat {chat_id} in '{settings.collection}': {len(turns)} turn(s), "
                f'last asked: "{_short(turns[-1]["question"])}"'
            )
        else:
            typer.echo(
                f"Chat {chat_id} in '{settings.collection}' (resume it with "
                f"`folio chat --chat {chat_id}`)"
            )
        try:
            while True:
                try:
                    question = input("you> ").strip()
                except EOFError:
                    break
                if question in ("exit", "quit"):
                    break
                if question:
                    print_answer(follow(service, AskRequest(question, chat=chat_id)), stream=True)
        finally:
            service.close()


def _short(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@app.command()
def chats(
    collection: CollectionOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Saved conversations, most recent first: of every collection unless --collection."""
    settings = settings_from(config)
    with user_errors():
        found = open_service(settings).chats(collection)["chats"]
    if as_json:
        emit_json({"chats": found})
        return
    if not found:
        typer.echo("No saved chats" + (f" in '{collection}'." if collection else "."))
    for c in found:
        typer.echo(
            f"{c['id']}  [{c['collection']}]  {c['turns']} turn(s), {c['updated_at']}  {c['title']}"
        )
