"""Prompt templates as files: each has a name, a version, its text and its stop sequences."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml

PROMPTS_DIR = Path(__file__).resolve().parent


class PromptNotFoundError(ValueError):
    pass


@dataclass(frozen=True)
class PromptSpec:
    name: str
    version: int
    kind: Literal["chat", "completion"]
    template: str
    stop: tuple[str, ...] = ()
    system: str = ""
    description: str = ""

    def render(self, **values: str) -> str:
        return self.template.format(**values)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "version": self.version}


@functools.lru_cache(maxsize=32)
def load_prompt(name: str) -> PromptSpec:
    """A prompt by name (from prompts/) or by path to a YAML file of the same shape."""
    path = Path(name)
    if not path.is_file():
        path = PROMPTS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise PromptNotFoundError(
            f"prompt '{name}' not found; available: {', '.join(available_prompts())}"
        )
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return PromptSpec(
        name=str(data["name"]),
        version=int(data["version"]),
        kind=data.get("kind", "chat"),
        template=str(data["template"]),
        stop=tuple(data.get("stop") or ()),
        system=str(data.get("system") or ""),
        description=str(data.get("description") or ""),
    )


def available_prompts() -> list[str]:
    return sorted(p.stem for p in PROMPTS_DIR.glob("*.yaml"))
