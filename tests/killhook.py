"""Run `folio` in a real process that SIGKILLs itself right after the Nth call of a method.

    python -c "import killhook; killhook.main()" CLASS.METHOD N folio-args...

Used by the crash tests to die at exact points (after the store write, before the manifest
commit, ...) that a timer would hit only by luck. The product code knows nothing of it.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from typing import Any


def install(target: str, nth: int) -> None:
    from folio.store import ChromaStore
    from ingest.manifest import Manifest

    owners = {"ChromaStore": ChromaStore, "Manifest": Manifest}
    owner_name, method_name = target.split(".")
    owner = owners[owner_name]
    original = getattr(owner, method_name)
    calls = 0

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        result = original(*args, **kwargs)
        calls += 1
        if calls == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, method_name, wrapper)


def main() -> None:
    target, nth, *args = sys.argv[1:]
    install(target, int(nth))
    from folio.cli import app

    app(args=args, prog_name="folio")


if __name__ == "__main__":
    main()
