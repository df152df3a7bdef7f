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


def _open(settings: Any) -> tuple[Any, Any]:
    from folio.store import ChromaStore
    from ingest.index import recover_if_idle
    from retrieval.chain import AnswerChain
    from retrieval.search import QueryToChunks

    store = ChromaStore(settings.data_dir, settings.chroma_url)
    recover_if_idle(settings, store, settings.collection)
    retriever = QueryToChunks(settings, store)
    return AnswerChain(settings, retriever), retriever


def _where(source: str, page: int | None) -> str:
    return source.rsplit("/", 1)[-1] + (f", page {page}" if page else "")


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
        typer.echo("\n(the generated text is not supported well enough by the sources)")
    if not streamed.strip() or result.answer != result.generated:
        typer.echo(result.answer)
    else:
        typer.echo()
    if result.quote and not result.refused:
        q = result.quote
        typer.echo(f'\nQuote [{q.hit.rank}]: "{q.text}" ({_where(q.hit.source, q.hit.page)})')
    if result.sources:
        typer.echo("\nSources:")
        for hit in result.sources:
            typer.echo(f"  [{hit.rank}] {_where(hit.source, hit.page)}  (score {hit.score:.2f})")
    unsupported = [s for s in result.sentences if not s.supported]
    if result.generated and not result.refused:
        typer.echo(f"\nSupport {result.support:.2f}" + (
            f"; unsupported: {' | '.join(s.sentence for s in unsupported)}" if unsupported else ""
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
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Answer a question from your documents, with page citations (streams as it generates)."""
    from retrieval.search import SearchOptions

    if (question is None) == (batch is None):
        fail("give a QUESTION or --batch FILE", 2)
    settings = settings_from(
        config, collection=collection, k=k, prompt=prompt, answer_mode=answer_mode,
        retrieval_mode=mode, temperature=temperature,
    )  # fmt: skip
    options = SearchOptions.from_settings(settings, source_glob=source)
    questions = [question] if question is not None else list(read_batch(batch))  # type: ignore[arg-type]
    with user_errors():
        chain, retriever = _open(settings)
        try:
            for text in questions:
                events = chain.stream(text, options=options)
                if as_json:
                    *_, result = events
                    emit_json(result.to_json())
                else:
                    print_answer(events, stream=True)
        finally:
            retriever.close()


@app.command()
def chat(
    collection: CollectionOption = None,
    k: KOption = None,
    prompt: PromptOption = None,
    config: ConfigOption = None,
) -> None:
    """An interactive chat: follow-up questions use the conversation so far. Ctrl-D to leave."""
    settings = settings_from(config, collection=collection, k=k, prompt=prompt)
    history: list[tuple[str, str]] = []
    with user_errors():
        chain, retriever = _open(settings)
        try:
            while True:
                try:
                    question = input("you> ").strip()
                except EOFError:
                    break
                if question in ("exit", "quit"):
                    break
                if question:
                    result = print_answer(chain.stream(question, history), stream=True)
                    history.append((question, result.answer))
        finally:
            retriever.close()
