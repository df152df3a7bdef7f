"""Documents in and out of a collection: uploads staged safely, removals matched by path."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ingest.pipeline import IngestReport

UPLOAD_TYPES = ("pdf", "md", "markdown", "txt", "text", "html", "htm", "docx")
# Letters and digits of any script stay (отчёт.pdf, 報告.pdf); anything else becomes "_".
_UNSAFE = re.compile(r"[^\w.()\- ]+")


class UploadError(ValueError):
    """An upload rejected before ingestion; the message names the file and the reason."""


def safe_upload_name(name: str) -> str:
    """A plain file name: no directories, no traversal, no hidden files, no odd characters."""
    if ".." in name.replace("\\", "/").split("/"):
        raise UploadError(f"{name}: a file name may not contain '..'")
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if base.startswith("."):
        raise UploadError(f"{name}: hidden files are not accepted")
    base = _UNSAFE.sub("_", base).strip(" .")
    if not base:
        raise UploadError(f"{name}: not a usable file name")
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem or ext.lower() not in UPLOAD_TYPES:
        raise UploadError(f"{name}: unsupported file type (allowed: {', '.join(UPLOAD_TYPES)})")
    return f"{stem[:120]}.{ext.lower()}"


@dataclass(frozen=True)
class Upload:
    name: str
    data: bytes


@dataclass
class UploadResult:
    report: IngestReport  # rejected files are in report.failed too
    errors: list[str] = field(default_factory=list)  # one plain line per file that failed


@dataclass
class StagedUpload:
    """An upload written into the collection's folder; the file it replaced is kept aside
    until the ingest succeeds, so a broken new version never costs the old one."""

    name: str
    path: Path
    backup: Path | None

    def keep(self) -> None:
        if self.backup is not None:
            self.backup.unlink(missing_ok=True)

    def undo(self) -> None:
        if self.backup is not None:
            self.backup.replace(self.path)
        else:
            self.path.unlink(missing_ok=True)


def stage_uploads(
    uploads: list[Upload], folder: Path, max_bytes: int
) -> tuple[list[StagedUpload], list[tuple[str, str]]]:
    """(staged files, [(name, reason)] for the rejected ones)."""
    rejected: list[tuple[str, str]] = []
    staged: list[StagedUpload] = []
    taken: set[str] = set()
    for item in uploads:
        try:
            name = safe_upload_name(item.name)
            if name in taken:
                raise UploadError(f"{item.name}: another file of this upload has the same name")
            taken.add(name)
            if len(item.data) > max_bytes:
                raise UploadError(
                    f"{item.name}: {len(item.data) / 1048576:.1f} MB is over the "
                    f"{max_bytes / 1048576:g} MB upload limit"
                )
            if not item.data:
                raise UploadError(f"{item.name}: empty file")
        except UploadError as exc:
            rejected.append((item.name, str(exc).removeprefix(f"{item.name}: ")))
            continue
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / name
        backup = None
        if target.exists():
            backup = target.with_name(f".{name}.previous")
            target.replace(backup)
        partial = target.with_name(f".{name}.partial")
        partial.write_bytes(item.data)
        partial.replace(target)
        staged.append(StagedUpload(item.name, target, backup))
    return staged, rejected


def document_path(path: str, uploads: Path) -> str:
    """An absolute path as given; a bare file name means the collection's uploaded file."""
    from folio.service.errors import BadRequest

    if "/" not in path and path not in ("", ".", ".."):
        return str(uploads / path)
    if not path.startswith("/") or not path.strip("/"):
        raise BadRequest(
            "invalid_path", f"'{path[:200]}' is neither an absolute path nor an uploaded file name"
        )
    return path


def match_documents(known: list[str], targets: list[str]) -> tuple[list[str], list[str]]:
    """(stored paths matched, targets that matched nothing): a target is a stored path or a
    directory holding stored paths."""
    matched: list[str] = []
    missing: list[str] = []
    for target in targets:
        hits = [p for p in known if p == target or p.startswith(target.rstrip("/") + "/")]
        if hits:
            matched.extend(hits)
        else:
            missing.append(target)
    return sorted(set(matched)), missing
