"""The `folio` command line. Heavy libraries load inside the commands that need them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from folio.settings import Settings, SettingsError, load_settings

app = typer.Typer(
    name="folio",
    help="Folio: private, local question answering over your own documents.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML settings file (FOLIO_* env vars override it).",
                 envvar="FOLIO_CONFIG", dir_okay=False),
]  # fmt: skip
CollectionOption = Annotated[
    str | None, typer.Option("--collection", help="Collection name [env FOLIO_COLLECTION].")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")]


class _State:
    config: Path | None = None


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings_from(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config or _State.config, **overrides)
    except SettingsError as exc:
        fail(str(exc), 2)


@contextmanager
def user_errors() -> Iterator[None]:
    """Known failures become one clear line and an exit code, never a traceback."""
    from folio.service import BadRequest, error_for

    try:
        yield
    except Exception as exc:
        error = error_for(exc)
        if error is None:
            raise
        usage = isinstance(error, BadRequest) or error.code == "config_mismatch"
        fail(error.message, 2 if usage else 1)


def open_service(settings: Settings) -> Any:
    """The service every command calls (folio.service.FolioService)."""
    from folio.service import FolioService

    return FolioService(settings)


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False))


@app.callback()
def main_options(config: ConfigOption = None) -> None:
    """Folio: private, local question answering over your own documents."""
    _State.config = config


WATCH_HELP = (
    "Keep the collection in sync with PATHs: a catch-up sync first (what changed while not "
    "watching), then one sync per burst of changes (added, changed, deleted files). With --json, "
    "one ingest object per sync and line, with 'sync' (1, 2, ...) and 'trigger' (start|change). "
    "Ctrl-C stops (exit 130), so does SIGTERM (exit 0); errors in single files do not."
)


@app.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or directories (recursive).")],
    collection: CollectionOption = None,
    as_json: JsonOption = False,
    rebuild: Annotated[
        bool,
        typer.Option("--rebuild", help="Re-embed everything (after a model or chunking change)."),
    ] = False,
    no_prune: Annotated[
        bool, typer.Option("--no-prune", help="Keep documents that disappeared from a directory.")
    ] = False,
    max_file_mb: Annotated[
        float | None,
        typer.Option("--max-file-mb", help="Skip files larger than this (default 200)."),
    ] = None,
    watch: Annotated[bool, typer.Option("--watch", help=WATCH_HELP)] = False,
    debounce: Annotated[
        float,
        typer.Option(
            "--debounce",
            min=0.05,
            envvar="FOLIO_WATCH_DEBOUNCE_S",
            help="With --watch: seconds without changes before a sync (a folder that never goes "
            "quiet still syncs every 30 s or 10x this) [env FOLIO_WATCH_DEBOUNCE_S].",
        ),
    ] = 2.0,
    poll: Annotated[
        bool,
        typer.Option(
            "--poll",
            help="With --watch: look for changes by rescanning (network shares, where the "
            "system's change events do not arrive).",
        ),
    ] = False,
    config: ConfigOption = None,
) -> None:
    """Add, update and prune documents; unchanged files are not embedded again."""
    from folio.progress import ingest_progress

    settings = settings_from(config, collection=collection, max_file_mb=max_file_mb)
    if watch:
        from folio.cli_watch import watch as watch_paths

        code = watch_paths(
            settings, paths, as_json=as_json, prune=not no_prune, rebuild=rebuild,
            debounce_s=debounce, polling=poll,
        )  # fmt: skip
        raise typer.Exit(code)
    with user_errors(), ingest_progress(enabled=not as_json and sys.stderr.isatty()) as progress:
        report = open_service(settings).ingest(
            None, paths, prune=not no_prune, rebuild=rebuild, progress=progress
        )
    if as_json:
        emit_json(report.to_json())
    else:
        typer.echo(ingest_summary(report, settings.collection))
    raise typer.Exit(report.exit_code)


def ingest_summary(report: Any, collection: str) -> str:
    if not (report.added or report.updated or report.removed) and report.unchanged:
        head = f"Nothing to embed: {report.unchanged} document(s) unchanged in '{collection}'."
    else:
        head = (
            f"'{collection}': {report.added} added, {report.updated} updated, "
            f"{report.unchanged} unchanged, {report.removed} removed."
        )
    tail = (
        f" {report.chunks_added} chunks added, {report.chunks_removed} removed;"
        f" {report.skipped} skipped, {len(report.failed)} failed; {report.seconds:.1f}s."
    )
    return head + tail


KOption = Annotated[
    int | None, typer.Option("--k", "-k", min=1, max=100, help="How many chunks [default 5].")
]
ModeOption = Annotated[
    str | None, typer.Option("--mode", help="dense, bm25 or hybrid [default hybrid].")
]
MmrOption = Annotated[
    float | None, typer.Option("--mmr", min=0, max=1, help="MMR diversity: 1 = relevance only.")
]
SourceOption = Annotated[
    str | None, typer.Option("--source", help="Only documents whose path matches this glob.")
]
NeighborsOption = Annotated[
    int | None, typer.Option("--neighbors", min=0, max=5, help="Widen hits by N chunks each side.")
]


@app.command()
def search(
    query: Annotated[str | None, typer.Argument(help="What to look for.")] = None,
    k: KOption = None,
    collection: CollectionOption = None,
    mode: ModeOption = None,
    mmr: MmrOption = None,
    source: SourceOption = None,
    neighbors: NeighborsOption = None,
    batch: Annotated[
        Path | None,
        typer.Option(
            "--batch",
            help="Queries, one per line (or JSON lines with 'question').",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """The chunks closest to a query (hybrid dense + BM25 by default)."""
    if (query is None) == (batch is None):
        fail("give a QUERY or --batch FILE", 2)
    settings = settings_from(
        config, collection=collection, k=k, retrieval_mode=mode, mmr_lambda=mmr, neighbors=neighbors
    )
    with user_errors():
        service = open_service(settings)
        if batch is not None:
            from folio.cli_qa import read_batch

            for line in read_batch(batch):
                emit_json(service.search(None, line, source=source))
            return
        assert query is not None
        found = service.search(None, query, source=source)
    if as_json:
        emit_json(found)
        return
    hits = found["results"]
    if not hits:
        typer.echo(f"No results in collection '{settings.collection}'.")
    for hit in hits:
        where = f"{hit['source']}" + (f", page {hit['page']}" if hit.get("page") else "")
        snippet = " ".join(hit["text"].split())
        typer.echo(f"[{hit['rank']}] {hit['score']:.3f}  {where}\n    {snippet[:300]}")


@app.command()
def sources(
    collection: CollectionOption = None, as_json: JsonOption = False, config: ConfigOption = None
) -> None:
    """The documents in a collection."""
    settings = settings_from(config, collection=collection)
    with user_errors():
        found = open_service(settings).sources()
    if as_json:
        emit_json(found)
        return
    if not found["documents"]:
        typer.echo(f"Collection '{settings.collection}' has no documents.")
    for doc in found["documents"]:
        pages = f"{doc['pages']} pages, " if doc["pages"] else ""
        typer.echo(
            f"{doc['path']}  ({pages}{doc['chunks']} chunks, {doc['ingested_at']}, "
            f"{doc['sha256'][:12]})"
        )


@app.command()
def remove(
    paths: Annotated[list[Path], typer.Argument(help="Documents, or directories of documents.")],
    collection: CollectionOption = None,
    as_json: JsonOption = False,
    config: ConfigOption = None,
) -> None:
    """Remove documents and their chunks from a collection."""
    settings = settings_from(config, collection=collection)
    targets = [str(raw.expanduser().absolute()) for raw in paths]
    with user_errors():
        result = open_service(settings).remove(
            None, targets, on_wait=lambda m: typer.echo(m, err=True)
        )
    for target in result["not_found"]:
        typer.echo(f"error: {target}: not in collection '{settings.collection}'", err=True)
    if as_json:
        emit_json(result)
    else:
        typer.echo(
            f"Removed {len(result['removed'])} document(s), {result['chunks_removed']} chunks."
        )
    raise typer.Exit(1 if result["not_found"] else 0)


@app.command()
def doctor(as_json: JsonOption = False, config: ConfigOption = None) -> None:
    """Check models, llama.cpp (GPU offload), Chroma and the index; say how to fix problems."""
    from folio.doctor import diagnose, render

    settings = settings_from(config)
    report = diagnose(settings)
    if as_json:
        emit_json(report)
    else:
        typer.echo(render(report))
    raise typer.Exit(0 if report["ok"] else 1)


def main() -> None:
    app()


# ask/chat and ui/feedback live in their own modules; importing them registers them on `app`.
from folio import cli_auth, cli_eval, cli_qa, cli_serve, cli_ui  # noqa: E402

__all__ = ["app", "cli_auth", "cli_eval", "cli_qa", "cli_serve", "cli_ui", "main"]
