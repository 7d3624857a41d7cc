"""Helpers every command shares: effective settings with flag overrides, printing, errors."""

from __future__ import annotations

import json
import sys
from typing import Any

from lantern.settings import Settings, load_settings

GLOBAL_FLAGS: dict[str, Any] = {}
"""Flags given before the command (e.g. --home); they override settings like command flags."""


def settings(**flags: Any) -> Settings:
    """Effective settings for this run: command flags and global flags over env, config.toml, defaults."""
    return load_settings(GLOBAL_FLAGS | {k: v for k, v in flags.items() if v is not None})


def flag_overrides(**flags: Any) -> dict[str, Any]:
    return GLOBAL_FLAGS | {k: v for k, v in flags.items() if v is not None}


def error(message: str) -> None:
    """One line on stderr, the way every failure is reported."""
    print(f"error: {message}", file=sys.stderr)


def notice(message: str) -> None:
    print(message, file=sys.stderr)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))
