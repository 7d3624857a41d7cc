"""Prompt templates as data: the TOML files in the repository's `prompts/` folder.

`load_prompts("answer")` reads prompts/answer.toml (or the file of the same name in the
`prompts_dir` setting's folder, so users can edit prompts without touching code; a key their
file lacks, such as one added in a later release, comes from the built-in file). Templates are
`str.format` strings; sentinel phrases (e.g. the not-in-KB reply) live there too, shared by code
and tests. This module knows nothing about models.
"""

from __future__ import annotations

import functools
import tomllib
from pathlib import Path
from typing import Any

from lantern.errors import LanternError

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "prompts"


@functools.lru_cache(maxsize=16)
def load_prompts(name: str, folder: str | None = None) -> dict[str, Any]:
    if folder and Path(folder).resolve() != BUILTIN_DIR:
        return load_prompts(name) | _read(Path(folder) / f"{name}.toml")
    return _read(BUILTIN_DIR / f"{name}.toml")


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LanternError(f"prompt file {path} is missing; restore it from the repository or fix the prompts_dir setting.") from None
    except tomllib.TOMLDecodeError as exc:
        raise LanternError(f"prompt file {path} is not valid TOML ({exc}).") from None
