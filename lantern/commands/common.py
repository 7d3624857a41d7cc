"""Helpers every command shares: effective settings with flag overrides, printing, errors."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

from lantern.errors import LanternError
from lantern.settings import Settings, default_home, load_settings

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


def display_path(path: str) -> str:
    """A path as the user would type it: relative to the current folder when it is inside it."""
    from pathlib import Path

    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def parse_set_flags(pairs: list[str]) -> dict[str, Any]:
    """`--set NAME=VALUE` pairs as overrides; values are parsed as JSON when they can be (numbers, lists, true)."""
    overrides: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        name = name.strip().lower().replace("-", "_")
        if not sep or name not in Settings.model_fields:
            raise LanternError(f"--set {pair!r}: expected NAME=VALUE with a setting name from `lantern config`.")
        try:
            overrides[name] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[name] = raw
    return overrides


class _HomeLogHandler(logging.Handler):
    """Appends to LANTERN_HOME/logs/lantern.log, creating it only when something is logged."""

    def __init__(self) -> None:
        super().__init__()
        self._file: logging.FileHandler | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if self._file is None:
            from pathlib import Path

            folder = Path(GLOBAL_FLAGS.get("home") or default_home()) / "logs"
            folder.mkdir(parents=True, exist_ok=True)
            self._file = logging.FileHandler(folder / "lantern.log", encoding="utf-8")
            self._file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        self._file.emit(record)


def start_logging() -> None:
    """Route the `lantern` loggers to the log file at the configured level."""
    logger = logging.getLogger("lantern")
    if any(isinstance(h, _HomeLogHandler) for h in logger.handlers):
        return
    try:
        level = settings().log_level
    except LanternError:
        level = "WARNING"  # the command itself reports the bad setting
    logger.setLevel(level)
    logger.addHandler(_HomeLogHandler())
    logger.propagate = False
