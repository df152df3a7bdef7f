"""Find the files to ingest under the given paths, and hash them."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from ingest.documents import IngestError, SourceFile
from ingest.loaders import SUPPORTED_EXTENSIONS


@dataclass
class Discovery:
    files: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, notice)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (path, error)
    directories: list[Path] = field(default_factory=list)


def _hidden(name: str) -> bool:
    return name.startswith(".")


# Editors' and downloaders' temporary files: never the document itself, often half-written.
# Office owner files (~$report.docx) and Emacs autosaves (#notes.md#) carry a document's name.
_TEMPORARY_PREFIXES = ("~$", "#")
_TEMPORARY_SUFFIXES = ("~", "#", ".crdownload", ".part", ".partial", ".download", ".tmp", ".swp")


def ignored_name(name: str) -> bool:
    """Hidden entries and temporary files: discovery skips them silently (so does the watcher)."""
    lowered = name.lower()
    return (
        _hidden(name)
        or name.startswith(_TEMPORARY_PREFIXES)
        or lowered.endswith(_TEMPORARY_SUFFIXES)
    )


def discover(paths: list[Path]) -> Discovery:
    """Files and directories (recursive, hidden entries skipped); each file listed once."""
    found = Discovery()
    seen: set[Path] = set()

    def consider(file: Path) -> None:
        resolved = file.absolute()
        if resolved in seen:
            return
        seen.add(resolved)
        if file.suffix.lower() in SUPPORTED_EXTENSIONS:
            found.files.append(resolved)
        else:
            found.skipped.append(
                (str(resolved), f"unsupported file type '{file.suffix or '(none)'}'")
            )

    for raw in paths:
        path = raw.expanduser()
        if path.is_dir():
            found.directories.append(path.absolute())
            for root, dirs, names in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not _hidden(d))
                for name in sorted(names):
                    if not ignored_name(name) and (Path(root) / name).is_file():
                        consider(Path(root) / name)
        elif path.is_file():
            consider(path)
        else:
            found.failed.append((str(path.absolute()), "no such file or directory"))
    return found


def hash_file(path: Path, max_bytes: int) -> SourceFile:
    """Stat and sha256 a file; size-limit and empty-file checks happen here, before parsing."""
    try:
        stat = path.stat()
        if stat.st_size == 0:
            raise IngestError("empty file")
        if stat.st_size > max_bytes:
            raise IngestError(
                f"{stat.st_size / 1048576:.1f} MB is over the {max_bytes / 1048576:.0f} MB limit "
                "(--max-file-mb)"
            )
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except PermissionError:
        raise IngestError("permission denied") from None
    except OSError as exc:
        raise IngestError(f"cannot read file ({exc.strerror or exc})") from None
    return SourceFile(
        path=str(path),
        size=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        sha256=digest.hexdigest(),
        extension=path.suffix.lower(),
    )
