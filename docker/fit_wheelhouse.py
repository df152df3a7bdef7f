"""Swap wheelhouse wheels the image's Python cannot install for the newest release that it can.

The wheelhouse holds the versions installed in .venv, whose Python may be newer than the base
image's (Debian bookworm's python3 is 3.11.2; soupsieve 4.x wants >= 3.11.5). Each such wheel is
replaced with the newest wheel whose Requires-Python admits the image's Python, and said so.

    python docker/fit_wheelhouse.py build/wheelhouse 3.11.2
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.utils import parse_wheel_filename


def requires_python(wheel: Path) -> SpecifierSet:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(name).decode("utf-8", "replace"))
    return SpecifierSet(metadata.get("Requires-Python") or "")


def main(wheelhouse: Path, python_version: str) -> int:
    for wheel in sorted(wheelhouse.glob("*.whl")):
        if requires_python(wheel).contains(python_version, prereleases=True):
            continue
        name, version, _, _ = parse_wheel_filename(wheel.name)
        wheel.unlink()
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--only-binary=:all:", "--python-version", python_version, "-d", str(wheelhouse),
             str(name)],
            check=True,
        )  # fmt: skip
        replaced = [w.name for w in wheelhouse.glob(f"{wheel.name.split('-')[0]}-*.whl")]
        print(f"{name} {version} needs another Python than {python_version}: using {replaced}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), sys.argv[2]))
