"""Documents in and out of a collection: uploads staged safely, removals matched by path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from folio.settings import Settings
from ingest.pipeline import IngestReport

# Images (scans, photos of pages) are read by OCR, one page per TIFF frame.
UPLOAD_TYPES = (
    "pdf", "md", "markdown", "txt", "text", "html", "htm", "docx",
    "png", "jpg", "jpeg", "tif", "tiff",
)  # fmt: skip
# The names an upload under way has staged: a crash leaves it for the next upload to undo.
STAGED_JOURNAL = ".staged"
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
        with (folder / STAGED_JOURNAL).open("a", encoding="utf-8") as journal:
            journal.write(name + "\n")  # read back only if this upload never finishes
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


@contextmanager
def uploads_lock(settings: Settings, folder: Path) -> Iterator[None]:
    """A collection's upload folder, locked across processes (waits up to lock_timeout_s).
    What an upload killed midway staged is undone first; a finished upload clears its journal."""
    from filelock import FileLock, Timeout

    from ingest.index import IndexLockedError

    locks = settings.data_dir / "locks"  # not in the upload folder: that holds users' files only
    locks.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(locks / f"uploads-{folder.name}.lock"))
    try:
        lock.acquire(timeout=settings.lock_timeout_s)
    except Timeout:
        raise IndexLockedError(
            f"uploads to {folder} are locked by another upload "
            f"(waited {settings.lock_timeout_s:.0f}s); try again when it has finished"
        ) from None
    try:
        restore_interrupted_uploads(settings, folder)
        yield
    finally:
        (folder / STAGED_JOURNAL).unlink(missing_ok=True)
        lock.release()


def restore_interrupted_uploads(settings: Settings, folder: Path) -> list[str]:
    """Undo the files an upload killed midway (SIGKILL, power loss) staged in a collection's
    folder (`uploads/<collection>/`), so each is the version the manifest committed: a replaced
    file's backup comes back if the new version was never committed, and a new file no committed
    document uses is deleted. Returns the names put right."""
    import hashlib

    from ingest.index import manifest_path
    from ingest.manifest import Manifest

    journal = folder / STAGED_JOURNAL
    if not journal.exists():
        return []
    names = sorted(set(journal.read_text(encoding="utf-8").split()))
    committed: dict[str, str] = {}
    if manifest_path(settings, folder.name).exists():
        manifest = Manifest(manifest_path(settings, folder.name))
        try:
            committed = {d.path: d.sha256 for d in manifest.documents()}
        finally:
            manifest.close()

    def sha256(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    for name in names:
        target, backup = folder / name, folder / f".{name}.previous"
        (folder / f".{name}.partial").unlink(missing_ok=True)
        old = committed.get(str(target))
        if backup.exists():
            if old is not None and sha256(backup) == old:
                backup.replace(target)  # the manifest still holds the version it replaced
            else:
                backup.unlink()  # the new version was committed
        elif target.exists() and (old is None or sha256(target) != old):
            target.unlink()  # staged, never committed: its client got an error
    journal.unlink()
    return names
